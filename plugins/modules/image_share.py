#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_share
short_description: Manage who can use a Glance image - visibility, members and member acceptance
version_added: 0.1.0
description:
  - Sets the visibility of an OpenStack Glance image (C(private), C(shared), C(community), C(public)) and
    the projects it is shared with (its members), as the image's owner.
  - As a member project, accepts, rejects or resets (C(pending)) an image shared with it
    (I(member_status)), which only the member project itself (or an admin) may do.
  - Both in one task - a member with its own I(members[].cloud) is added by the owner and then
    accepted or rejected with the member's credentials.
  - Glance keeps members only on C(shared) images. When members are wanted and I(visibility) is not
    given, a private image is made C(shared) (the diff shows it). I(visibility=private) with members is a
    contradiction and is refused before anything is done. A C(community) or C(public) image is not narrowed
    to C(shared) unless I(visibility=shared) says so.
  - Members that an image had while it was shared stay in Glance, hidden, while it is not shared and
    come back when it is shared again. They cannot be listed before that, so check mode cannot predict
    them; a real run takes them into account (and I(purge_members=true) removes them).
  - Without I(visibility), I(members) and I(member_status) the module changes nothing and returns the
    image's visibility and members.
  - Idempotent. Check mode predicts every change without making it.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the image, its members and the projects, and predicts the result; changes nothing.
  diff_mode:
    support: full
    details: Shows the visibility and the map of member project id to member status before and after.
  platform:
    platforms: all
options:
  image:
    description:
      - Name or id of the image.
      - A name that more than one visible image has is an error that lists their ids.
      - On the owner's side the image must be owned by the project of the credentials (or they must
        have the admin role).
    type: str
    required: true
  visibility:
    description:
      - The visibility the image must have.
      - C(public) needs Glance's C(publicize_image) policy, which only admins pass by default.
      - Changing away from C(shared) hides the members (see above); with I(purge_members=true) and
        no I(members) they are removed first.
      - Without it the visibility is left alone, except that an image that gets members becomes
        C(shared).
    type: str
    choices: [private, shared, community, public]
  members:
    description:
      - The projects the image must be shared with, as the image's owner.
      - Members not listed here are kept unless I(purge_members=true).
      - Needs a C(shared) image; see I(visibility).
    type: list
    elements: dict
    suboptions:
      project:
        description:
          - Name or id of the member project.
          - A name is resolved through Keystone. Keystone's default policy lets only admins look up
            other projects, so other users can give by name only projects they have a role in, or a
            member with I(cloud); otherwise give the project id (the module says so).
          - An id is taken as it is when Keystone does not let the caller check it.
          - May be left out when I(cloud) is given; it then is the project I(cloud) authenticates to.
        type: str
      status:
        description:
          - The member status the project must have. New members start as C(pending).
          - Only the member project itself (or an admin) can set it, so unless the credentials of the
            task are the member's or an admin's, give I(cloud).
          - Without it the status is left as it is.
        type: str
        choices: [accepted, rejected, pending]
      cloud:
        description:
          - Credentials of the member project, to set I(status) with - a cloud name from
            C(clouds.yaml) or a dict of cloud settings, like the I(cloud) option.
          - The project they authenticate to is the member; it must match I(project) when that is
            given.
          - This second connection takes I(interface) and I(api_retries) from the task and everything
            else from this cloud.
        type: raw
  purge_members:
    description:
      - Remove the members that I(members) does not list (C(members=[]) removes all). Without
        I(members) it does nothing.
      - Removals happen before additions, so they make room under Glance's member quota.
    type: bool
    default: false
  member_status:
    description:
      - The member side - the status the project of the credentials must have as a member of the
        image, run with the member's credentials.
      - An image that is not shared with that project is an error.
      - Cannot be combined with I(visibility), I(members) or I(purge_members).
    type: str
    choices: [accepted, rejected, pending]
notes:
  - Glance limits the members of one image (C(image_member_quota), 128 by default); going over it is
    an error that says so.
seealso:
  - module: osimage.glance.image_fetch
  - module: openstack.cloud.image
'''

EXAMPLES = r'''
# Under Keystone's default policy only an admin may look projects up by name, so a member
# without its own cloud is given by project id ("openstack project show -f value -c id NAME"
# run by the member, or "openstack token issue -c project_id" with its credentials).
- name: Share an image with two projects by id (the image becomes shared)
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - project: 3c4f9a1d2e5b4c6d8e7f9a0b1c2d3e4f
      - project: 9b1e4c1f0a7d4f0e8a2f51c5f6a3b2d1

- name: Share and accept in one task, with the member's own credentials (its project is the member)
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - cloud: alt
        status: accepted

- name: Accept an image shared with this project (run as the member)
  osimage.glance.image_share:
    cloud: alt
    image: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
    member_status: accepted

- name: Share with exactly this project, removing all others
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - project: 9b1e4c1f0a7d4f0e8a2f51c5f6a3b2d1
    purge_members: true

- name: Make the image private again, removing all members first
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    visibility: private
    members: []
    purge_members: true

- name: Publish an image to every project (needs an admin by default)
  osimage.glance.image_share:
    cloud: admin
    image: debian-12-golden
    visibility: public
'''

RETURN = r'''
id:
  description: Id of the image.
  returned: always
  type: str
  sample: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
name:
  description: Name of the image.
  returned: always
  type: str
  sample: debian-12-golden
owner:
  description: Id of the project that owns the image.
  returned: always
  type: str
  sample: 2426041665f84900adcb18bf61c00458
visibility:
  description: Visibility of the image (predicted in check mode).
  returned: always
  type: str
  sample: shared
members:
  description:
    - The image's members with their statuses (predicted in check mode), sorted by project id.
    - Empty for an image that is not shared. On the member side only the caller's own membership.
  returned: always
  type: list
  elements: dict
  contains:
    project_id:
      description: Id of the member project.
      type: str
      sample: 188a37002e0f4c2ba0d231a39e7edf0a
    status:
      description: Member status.
      type: str
      sample: accepted
member_status:
  description: The caller's member status (predicted in check mode).
  returned: when I(member_status) is given
  type: str
  sample: accepted
resolved_projects:
  description: The project of every I(members) entry, as given (or the cloud's project name), mapped to its id.
  returned: when I(members) is given
  type: dict
  sample: {alt: 188a37002e0f4c2ba0d231a39e7edf0a}
'''

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import other_cloud_params
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule

STATUSES = ('accepted', 'rejected', 'pending')


def describe(image):
    return '%s (%s)' % (image.get('name'), image['id'])


def members_map(members):
    return dict((member['member_id'], member['status']) for member in members)


def members_list(status_by_id):
    return [dict(project_id=project_id, status=status_by_id[project_id]) for project_id in sorted(status_by_id)]


def image_result(image, visibility, status_by_id):
    return dict(id=image['id'], name=image.get('name'), owner=image.get('owner'), visibility=visibility,
                members=members_list(status_by_id))


# -- the owner's side ---------------------------------------------------------
class WantedMember(object):
    """One entry of ``members``, resolved to a project id."""

    def __init__(self, label, project_id, status, api=None):
        self.label = label
        self.project_id = project_id
        self.status = status
        self.api = api  # a GlanceAPI with the member's credentials, or None

    @property
    def name(self):
        if self.label == self.project_id:
            return self.project_id
        return '%s (%s)' % (self.label, self.project_id)


def check_owner(image, me):
    if image.get('owner') != me['project_id'] and 'admin' not in me['roles']:
        raise errors.NotAuthorizedError(
            'Image %s is owned by project %s, not by %s (%s), the project of these credentials: only its '
            'owner (or an admin) can change its visibility and members. To accept or reject an image shared '
            'with this project use member_status instead.'
            % (describe(image), image.get('owner'), me['project_name'], me['project_id']),
            owner=image.get('owner'))


def resolve_members(module, api, image, entries):
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


def wanted_visibility(module, image, wanted):
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


def plan_members(current, wanted, purge):
    """What to do to go from ``current`` (id -> status) to ``wanted``."""
    wanted_ids = set(member.project_id for member in wanted)
    removals = sorted(project_id for project_id in current if purge and project_id not in wanted_ids)
    additions = [member for member in wanted if member.project_id not in current]
    status_changes = [member for member in wanted
                      if member.status and current.get(member.project_id, 'pending') != member.status]
    return removals, additions, status_changes


def predict_members(current, plan):
    removals, additions, status_changes = plan
    after = dict((project_id, status) for project_id, status in current.items() if project_id not in removals)
    for member in additions:
        after[member.project_id] = 'pending'
    for member in status_changes:
        after[member.project_id] = member.status
    return after


def check_status_rights(me, image, status_changes):
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


def list_current_members(api, image, visibility):
    if visibility != 'shared':
        return {}  # Glance shows no members of an image that is not shared
    return members_map(api.list_members(image['id'], 'Listing the members of image %s' % describe(image)))


def set_visibility(api, image, visibility):
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


def add_member(api, image, member, count):
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


def set_member_status(api, image, member):
    what = 'Setting the member status of project %s on image %s to %s' % (member.name, describe(image), member.status)
    try:
        api.set_member_status(image['id'], member.project_id, member.status, what)
    except errors.NotAuthorizedError as exc:
        raise errors.NotAuthorizedError(
            'Glance refused to set the member status of project %s on image %s: only the member project '
            "itself (or an admin) may change it. Use the member's credentials (cloud in the members entry, "
            'or member_status run as the member). Glance said: %s' % (member.name, describe(image), exc.msg),
            status_code=403)


def check_options(params):
    """Contradictions in the options, refused before any request."""
    if params['visibility'] == 'private' and params['members']:
        raise errors.InvalidOptionsError(
            'visibility=private contradicts members: a private image has no members (Glance keeps members only '
            'on shared images). Use visibility=shared to share it with these projects, or drop members (with '
            'members=[] and purge_members=true to remove the ones it has).')


def ensure_shared(module, api):
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
def ensure_member_status(module, api):
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


def run(module, api):
    if module.params['member_status']:
        changed, result = ensure_member_status(module, api)
    else:
        changed, result = ensure_shared(module, api)
    result['changed'] = changed
    return result


def main():
    module = GlanceModule(
        argument_spec=dict(
            image=dict(type='str', required=True),
            visibility=dict(type='str', choices=['private', 'shared', 'community', 'public']),
            members=dict(type='list', elements='dict', options=dict(
                project=dict(type='str'),
                status=dict(type='str', choices=list(STATUSES)),
                cloud=dict(type='raw'),
            ), required_one_of=[('project', 'cloud')]),
            purge_members=dict(type='bool', default=False),
            member_status=dict(type='str', choices=list(STATUSES)),
        ),
        mutually_exclusive=[('member_status', 'visibility'), ('member_status', 'members'),
                            ('member_status', 'purge_members')],
        supports_check_mode=True,
    )
    module.run(run)


if __name__ == '__main__':
    main()
