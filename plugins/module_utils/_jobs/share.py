# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The job of image_share: who may use an image.

The owner's side (``ensure_shared``): visibility, members (resolved through
Keystone, or by a member's own cloud), purge, and member statuses set with
the member's credentials. The member's side (``ensure_member_status``):
accept, reject or reset an image shared with the caller's project. Both
return ``(changed, result)``, predict everything in check mode and put a
``diff`` in the result. Glance is reached only through
``_openstack.glance.GlanceAPI``, Keystone through its ``keystone``.

Private to the collection; not a public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import other_cloud_params

if TYPE_CHECKING:  # only for the hints: the module runner is not needed at run time here
    from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule


STATUSES = ('accepted', 'rejected', 'pending')


def describe(image: dict) -> str:
    return '%s (%s)' % (image.get('name'), image['id'])


def members_map(members: list) -> dict:
    return dict((member['member_id'], member['status']) for member in members)


def members_list(status_by_id: dict) -> list:
    return [dict(project_id=project_id, status=status_by_id[project_id]) for project_id in sorted(status_by_id)]


def image_result(image: dict, visibility: str | None, status_by_id: dict) -> dict:
    return dict(id=image['id'], name=image.get('name'), owner=image.get('owner'), visibility=visibility,
                members=members_list(status_by_id))


# -- the owner's side ---------------------------------------------------------
class WantedMember(object):
    """One entry of ``members``, resolved to a project id."""

    def __init__(self, label: str, project_id: str, status: str | None, api: GlanceAPI | None = None):
        self.label = label
        self.project_id = project_id
        self.status = status
        self.api = api  # a GlanceAPI with the member's credentials, or None

    @property
    def name(self) -> str:
        if self.label == self.project_id:
            return self.project_id
        return '%s (%s)' % (self.label, self.project_id)


def check_owner(image: dict, me: dict) -> None:
    if image.get('owner') != me['project_id'] and 'admin' not in me['roles']:
        raise errors.NotAuthorizedError(
            'Image %s is owned by project %s, not by %s (%s), the project of these credentials: only its '
            'owner (or an admin) can change its visibility and members. To accept or reject an image shared '
            'with this project use member_status instead.'
            % (describe(image), image.get('owner'), me['project_name'], me['project_id']),
            owner=image.get('owner'))


def resolve_members(module: GlanceModule, api: GlanceAPI, image: dict, entries: list) -> list:
    """The wanted members with project ids; a member with ``cloud`` is
    resolved by that cloud's own token (which needs no Keystone policy)."""
    wanted = []
    seen = {}
    for entry in entries:
        given = entry.get('project')
        if entry.get('cloud') is not None:
            try:
                member_api = GlanceAPI.from_params(other_cloud_params(entry['cloud'], module.params))
                who = member_api.keystone.whoami()
            except (errors.CloudConfigError, errors.AuthenticationError) as exc:
                raise type(exc)('The cloud of member %r: %s' % (given or entry['cloud'], exc.msg), **exc.details)
            if given is not None and given not in (who['project_id'], who['project_name']):
                raise errors.InvalidOptionsError(
                    'The cloud of member %r authenticates to project %s (%s), not to %r. Give that '
                    "member's own credentials as its cloud, or leave project out."
                    % (given, who['project_name'], who['project_id'], given))
            member = WantedMember(given or who['project_name'], who['project_id'], entry.get('status'), member_api)
        else:
            if given is None:
                raise errors.InvalidOptionsError('Every entry of members needs project or cloud (or both).')
            project = api.keystone.find_project(given)
            member = WantedMember(given, project['id'], entry.get('status'))
        if member.project_id == image.get('owner'):
            raise errors.InvalidOptionsError(
                'Project %s owns image %s, so it cannot be a member of it.' % (member.name, describe(image)))
        if member.project_id in seen:
            raise errors.InvalidOptionsError(
                'members lists project %s twice (as %r and %r). List each project once.'
                % (member.project_id, seen[member.project_id], member.label))
        seen[member.project_id] = member.label
        wanted.append(member)
    return wanted


def wanted_visibility(module: GlanceModule, image: dict, wanted: list) -> str | None:
    """The visibility to end with: members need a shared image."""
    option = module.params['visibility']
    current = image.get('visibility')
    if not wanted:
        return option or current
    if option in ('community', 'public'):
        raise errors.InvalidOptionsError(
            'visibility=%s cannot have members: Glance keeps members only on shared images. Use '
            'visibility=shared, or leave members out.' % option)
    if option is None and current in ('community', 'public'):
        raise errors.InvalidOptionsError(
            'Image %s is %s, and Glance keeps members only on shared images. Set visibility=shared to '
            'make it shared with the members only (projects that are not members lose access), or '
            'leave members out.' % (describe(image), current))
    return 'shared'


def plan_members(current: dict, wanted: list, purge: bool) -> tuple:
    """What to do to go from ``current`` (id -> status) to ``wanted``."""
    wanted_ids = set(member.project_id for member in wanted)
    removals = sorted(project_id for project_id in current if purge and project_id not in wanted_ids)
    additions = [member for member in wanted if member.project_id not in current]
    status_changes = [member for member in wanted
                      if member.status and current.get(member.project_id, 'pending') != member.status]
    return removals, additions, status_changes


def predict_members(current: dict, plan: tuple) -> dict:
    removals, additions, status_changes = plan
    after = dict((project_id, status) for project_id, status in current.items() if project_id not in removals)
    for member in additions:
        after[member.project_id] = 'pending'
    for member in status_changes:
        after[member.project_id] = member.status
    return after


def check_status_rights(me: dict, image: dict, status_changes: list) -> None:
    """Only the member project (or an admin) may set a member status:
    fail before changing anything instead of half way."""
    for member in status_changes:
        if member.api is None and me['project_id'] != member.project_id and 'admin' not in me['roles']:
            raise errors.NotAuthorizedError(
                'Only project %s itself (or an admin) can set its member status on image %s to %s; the '
                'credentials of this task are those of project %s (%s). Give that member a cloud with '
                "the member's credentials (members: [{project: %s, status: %s, cloud: ...}]), or let "
                'the member run image_share with member_status.'
                % (member.name, describe(image), member.status, me['project_name'], me['project_id'],
                   member.label, member.status))


def list_current_members(api: GlanceAPI, image: dict, visibility: str | None) -> dict:
    if visibility != 'shared':
        return {}  # Glance shows no members of an image that is not shared
    return members_map(api.list_members(image['id'], 'Listing the members of image %s' % describe(image)))


def set_visibility(api: GlanceAPI, image: dict, visibility: str) -> dict:
    what = 'Changing the visibility of image %s from %s to %s' % (describe(image), image.get('visibility'), visibility)
    try:
        return api.update_image(image['id'], [{'op': 'replace', 'path': '/visibility', 'value': visibility}], what)
    except errors.NotAuthorizedError as exc:
        if visibility in ('public', 'community'):
            policy = 'publicize_image' if visibility == 'public' else 'communitize_image'
            raise errors.NotAuthorizedError(
                'Glance does not allow the credentials of this task to make image %s %s (policy %s%s). '
                'Ask an admin to do it%s. Glance said: %s'
                % (describe(image), visibility, policy, ', admin-only by default' if visibility == 'public' else '',
                   ', or use visibility=community' if visibility == 'public' else '', exc.msg),
                status_code=403)
        raise


def add_member(api: GlanceAPI, image: dict, member: WantedMember, count: int) -> None:
    what = 'Adding project %s as a member of image %s' % (member.name, describe(image))
    try:
        api.add_member(image['id'], member.project_id, what)
    except errors.OverQuotaError as exc:
        raise errors.OverQuotaError(
            'Image %s has %d members, and Glance refused to add project %s: its member quota '
            '(image_member_quota, 128 by default) is reached. Remove members (purge_members=true removes '
            'those not listed) or ask the operator to raise the quota. Glance said: %s'
            % (describe(image), count, member.name, exc.msg), status_code=413, member_count=count)
    except errors.ConflictError:
        pass  # added meanwhile by someone else: what we wanted


def set_member_status(api: GlanceAPI, image: dict, member: WantedMember) -> None:
    what = 'Setting the member status of project %s on image %s to %s' % (member.name, describe(image), member.status)
    try:
        api.set_member_status(image['id'], member.project_id, member.status, what)
    except errors.NotAuthorizedError as exc:
        raise errors.NotAuthorizedError(
            'Glance refused to set the member status of project %s on image %s: only the member project '
            "itself (or an admin) may change it. Use the member's credentials (cloud in the members entry, "
            'or member_status run as the member). Glance said: %s' % (member.name, describe(image), exc.msg),
            status_code=403)


def check_options(params: dict) -> None:
    """Contradictions in the options, refused before any request."""
    if params['visibility'] == 'private' and params['members']:
        raise errors.InvalidOptionsError(
            'visibility=private contradicts members: a private image has no members (Glance keeps members only '
            'on shared images). Use visibility=shared to share it with these projects, or drop members (with '
            'members=[] and purge_members=true to remove the ones it has).')


def ensure_shared(module: GlanceModule, api: GlanceAPI) -> tuple[bool, dict]:
    """The owner's side; returns ``(changed, result)``."""
    params = module.params
    check_options(params)
    me = api.keystone.whoami()
    image = api.find_image(params['image'])
    check_owner(image, me)
    entries = params['members'] or []
    wanted = resolve_members(module, api, image, entries)
    visibility = wanted_visibility(module, image, wanted)
    current = list_current_members(api, image, image.get('visibility'))
    purge = params['purge_members'] and params['members'] is not None

    plan = plan_members(current, wanted, purge)
    check_status_rights(me, image, plan[2])
    if visibility == 'shared':
        predicted = predict_members(current, plan)
    else:
        predicted = {}
    before = dict(visibility=image.get('visibility'), members=current)
    changed = visibility != image.get('visibility') or any(plan)

    if changed and not module.check_mode:
        shared_now = image.get('visibility') == 'shared'
        if visibility == 'shared' and not shared_now:
            image = set_visibility(api, image, visibility)
            # Members hidden while the image was not shared are back now.
            current = list_current_members(api, image, visibility)
            plan = plan_members(current, wanted, purge)
            check_status_rights(me, image, plan[2])
        removals, additions, status_changes = plan
        if shared_now or visibility == 'shared':
            for project_id in removals:
                api.remove_member(image['id'], project_id, 'Removing project %s from the members of image %s'
                                  % (project_id, describe(image)))
            count = len(current) - len(removals)
            for member in additions:
                add_member(api, image, member, count)
                count += 1
            for member in status_changes:
                set_member_status(member.api or api, image, member)
        if visibility != image.get('visibility'):
            image = set_visibility(api, image, visibility)
        image = api.get_image(image['id'], 'Reading image %s' % describe(image))
        visibility = image.get('visibility')
        final = list_current_members(api, image, visibility)
    else:
        final = predicted

    result = image_result(image, visibility, final)
    if params['members'] is not None:
        result['resolved_projects'] = dict((member.label, member.project_id) for member in wanted)
    result['diff'] = dict(before=before, after=dict(visibility=visibility, members=final))
    return changed, result


# -- the member's side --------------------------------------------------------
def ensure_member_status(module: GlanceModule, api: GlanceAPI) -> tuple[bool, dict]:
    """The member's side; returns ``(changed, result)``."""
    wanted = module.params['member_status']
    me = api.keystone.whoami()
    # A name lookup must include images not accepted yet.
    image = api.find_image(module.params['image'], member_status='all')
    if image.get('owner') == me['project_id']:
        raise errors.InvalidOptionsError(
            'Image %s is owned by project %s (%s), the project of these credentials. member_status is set '
            'by a member project with its own credentials; the owner shares with members.'
            % (describe(image), me['project_name'], me['project_id']))
    what = 'Reading the membership of project %s in image %s' % (me['project_name'], describe(image))
    try:
        member = api.get_member(image['id'], me['project_id'], what)
    except (errors.NotFoundError, errors.NotAuthorizedError):
        raise errors.NotFoundError(
            'Image %s (visibility %s, owner %s) is not shared with project %s (%s): only a member can accept '
            'or reject it. Its owner must add this project to its members first.'
            % (describe(image), image.get('visibility'), image.get('owner'), me['project_name'], me['project_id']))
    current = member['status']
    changed = current != wanted
    if changed and not module.check_mode:
        entry = WantedMember(me['project_name'], me['project_id'], wanted)
        set_member_status(api, image, entry)
        current = api.get_member(image['id'], me['project_id'], what)['status']
    after = current if not module.check_mode else wanted
    result = image_result(image, image.get('visibility'), {me['project_id']: after})
    result['member_status'] = after
    result['diff'] = dict(
        before=dict(visibility=image.get('visibility'), members={me['project_id']: member['status']}),
        after=dict(visibility=image.get('visibility'), members={me['project_id']: after}))
    return changed, result
