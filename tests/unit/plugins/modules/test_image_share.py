# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_share against a small in-memory Glance and Keystone faked at the
keystoneauth session (the boundary): the real GlanceAPI sends its requests
to a fake that follows Glance's sharing rules (members only on shared
images, hidden members, only the member or an admin sets a status, member
quota, admin-only public images) and Keystone's default policy (only
admins list projects)."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance as _glance
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.modules import image_share

GLANCE = 'http://glance.test:9292'
KEYSTONE = 'http://keystone.test:5000/v3'

PROJECTS = {
    'demo': 'd' * 32,
    'alt': 'a' * 32,
    'ops': '0' * 32,
    'admin': 'f' * 32,
}
# Which projects each user has a role in, and the roles of its token.
USERS = {
    'demo': (['demo', 'ops'], ['member', 'reader']),
    'alt': (['alt'], ['member', 'reader']),
    'admin': (['admin'], ['admin', 'member', 'reader']),
}


class FakeResponse(object):
    def __init__(self, status_code, body=None):
        self.status_code = status_code
        self._body = body
        self.text = json.dumps(body) if isinstance(body, (dict, list)) else (body or '')
        self.reason = ''

    def json(self):
        return self._body

    def close(self):
        pass


class FakeCloud(object):
    """The state of Glance and Keystone, shared by all connections."""

    def __init__(self, member_quota=128):
        self.images = {}
        self.members = {}  # image id -> {project id: status}, kept while not shared
        self.member_quota = member_quota
        self.writes = []  # (method, path) of every change, in order
        self.extra_projects = []  # (id, name, domain) for duplicate names

    def add_image(self, name, owner='demo', visibility='private'):
        image_id = str(uuid.uuid4())
        self.images[image_id] = dict(id=image_id, name=name, owner=PROJECTS[owner], visibility=visibility,
                                     status='active')
        self.members[image_id] = {}
        return image_id


class Caller(object):
    """One connection's view: the user's token and its requests."""

    def __init__(self, cloud, user):
        self.cloud = cloud
        self.user = user
        projects, self.roles = USERS[user]
        self.project_name = user if user in projects else projects[0]
        self.project_id = PROJECTS[self.project_name]
        self.own_projects = projects
        self.admin = 'admin' in self.roles

    # -- Glance --------------------------------------------------------------
    def visible(self, image):
        if self.admin or image['owner'] == self.project_id or image['visibility'] in ('public', 'community'):
            return True
        return image['visibility'] == 'shared' and self.project_id in self.cloud.members[image['id']]

    def listed(self, image, member_status):
        if image['visibility'] == 'community':
            return image['owner'] == self.project_id
        if image['visibility'] == 'shared' and image['owner'] != self.project_id and not self.admin:
            status = self.cloud.members[image['id']].get(self.project_id)
            return status is not None and member_status in ('all', status)
        return self.visible(image)

    def glance(self, method, path, params, body):
        cloud = self.cloud
        if path == '/images' and method == 'GET':
            status = (params.get('member_status') or ['accepted'])[0]
            name = (params.get('name') or [None])[0]
            found = [dict(i) for i in cloud.images.values()
                     if (name is None or i['name'] == name) and self.listed(i, status)]
            return FakeResponse(200, {'images': found})
        match = re.match(r'^/images/([^/]+)(/members(?:/([^/]+))?)?$', path)
        image = cloud.images.get(match.group(1)) if match else None
        if image is None or not self.visible(image):
            return FakeResponse(404, 'No image found with ID %s' % (match and match.group(1)))
        owner = self.admin or image['owner'] == self.project_id
        members = cloud.members[image['id']]
        if match.group(2) is None:
            if method == 'GET':
                return FakeResponse(200, dict(image))
            if method == 'PATCH':
                if not owner:
                    return FakeResponse(403, 'You are not authorized to complete modify_image action.')
                value = body[0]['value']
                if value == 'public' and not self.admin:
                    return FakeResponse(403, 'You are not authorized to complete publicize_image action.')
                cloud.writes.append(('PATCH', value))
                image['visibility'] = value
                return FakeResponse(200, dict(image))
        member_id = match.group(3)
        if image['visibility'] != 'shared':
            return FakeResponse(403 if method != 'PUT' else 404, 'Only shared images have members.')
        if member_id is None:
            if method == 'GET':
                shown = members if owner else dict((k, v) for k, v in members.items() if k == self.project_id)
                return FakeResponse(200, {'members': [dict(member_id=k, status=v) for k, v in shown.items()]})
            if method == 'POST':
                if not owner:
                    return FakeResponse(403, 'not allowed')
                if body['member'] in members:
                    return FakeResponse(409, 'Member %s is duplicated' % body['member'])
                if len(members) >= cloud.member_quota:
                    return FakeResponse(413, 'The request returned a 413 Request Entity Too Large.')
                cloud.writes.append(('POST', body['member']))
                members[body['member']] = 'pending'
                return FakeResponse(200, dict(member_id=body['member'], status='pending'))
        if member_id not in members or not (owner or member_id == self.project_id):
            return FakeResponse(404, '%s not found in the member list' % member_id)
        if method == 'GET':
            return FakeResponse(200, dict(member_id=member_id, status=members[member_id]))
        if method == 'PUT':
            if member_id != self.project_id and not self.admin:
                return FakeResponse(403, 'You are not authorized to complete modify_member action.')
            cloud.writes.append(('PUT', member_id, body['status']))
            members[member_id] = body['status']
            return FakeResponse(200, dict(member_id=member_id, status=body['status']))
        if method == 'DELETE' and owner:
            cloud.writes.append(('DELETE', member_id))
            del members[member_id]
            return FakeResponse(204)
        return FakeResponse(403, 'not allowed')

    # -- Keystone ------------------------------------------------------------
    def all_projects(self):
        return ([dict(id=pid, name=name, domain_id='default') for name, pid in PROJECTS.items()]
                + [dict(id=pid, name=name, domain_id=domain) for pid, name, domain in self.cloud.extra_projects])

    def keystone(self, path, params):
        if path == '/auth/projects':
            return FakeResponse(200, {'projects': [p for p in self.all_projects() if p['name'] in self.own_projects]})
        if path == '/projects':
            if not self.admin:
                return FakeResponse(403, {'error': {'message': 'not authorized: identity:list_projects'}})
            name = params['name'][0]
            return FakeResponse(200, {'projects': [p for p in self.all_projects() if p['name'] == name]})
        project_id = path.split('/')[-1]
        found = [p for p in self.all_projects() if p['id'] == project_id]
        if not self.admin and not (found and found[0]['name'] in self.own_projects):
            return FakeResponse(403, {'error': {'message': 'not authorized: identity:get_project'}})
        return FakeResponse(200, {'project': found[0]}) if found else FakeResponse(404, 'Could not find project')


class FakeAccess(object):
    def __init__(self, caller):
        self.user_id = 'user-' + caller.user
        self.username = caller.user
        self.project_id = caller.project_id
        self.project_name = caller.project_name
        self.project_domain_id = 'default'
        self.role_names = caller.roles


class FakeAuth(object):
    def __init__(self, caller):
        self.caller = caller

    def get_access(self, session):
        return FakeAccess(self.caller)


class FakeSession(object):
    def __init__(self, caller):
        self.caller = caller
        self.auth = FakeAuth(caller)

    def get_token(self):
        return 'token-' + self.caller.user

    def request(self, url, method, json=None, params=None, headers=None, **kwargs):  # pylint: disable=redefined-outer-name
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        query.update(dict((k, [str(v)]) for k, v in (params or {}).items()))
        if url.startswith(GLANCE + '/v2'):
            if method == 'PATCH':
                assert headers['Content-Type'] == 'application/openstack-images-v2.1-json-patch'
            return self.caller.glance(method, parts.path[len('/v2'):], query, json)
        assert url.startswith(KEYSTONE) and method == 'GET'
        return self.caller.keystone(parts.path[len('/v3'):], query)


class FakeConfig(object):
    def __init__(self, user):
        self.user = user

    def get_auth_args(self):
        return {'auth_url': KEYSTONE, 'username': self.user}


class FakeConnection(object):
    def __init__(self, cloud, user):
        self.session = FakeSession(Caller(cloud, user))
        self.config = FakeConfig(user)

    def endpoint_for(self, service_type):
        return {'image': GLANCE, 'identity': KEYSTONE}[service_type]


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeCloud()
    connections = []

    def from_params(cls, params):
        assert isinstance(params['cloud'], str), 'the fake knows clouds by name'
        connections.append(params)
        return cls(FakeConnection(fake, params['cloud']), retries=params.get('api_retries', 3))

    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', classmethod(from_params))
    fake.connections = connections
    return fake


def run_module(args, capsys, check=False):
    args = dict(args)
    args.setdefault('cloud', 'demo')
    args['_ansible_check_mode'] = check
    args['_ansible_diff'] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_share.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


ALT, OPS = PROJECTS['alt'], PROJECTS['ops']


# -- owner side: members --------------------------------------------------------
def test_check_mode_predicts_sharing_and_changes_nothing(cloud, capsys):
    image_id = cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys, check=True)
    assert result['changed'] is True
    assert result['diff'] == {'before': {'visibility': 'private', 'members': {}},
                              'after': {'visibility': 'shared', 'members': {ALT: 'pending'}}}
    assert result['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'pending'}]
    assert cloud.writes == []
    assert cloud.images[image_id]['visibility'] == 'private'


def test_sharing_makes_the_image_shared_then_adds_the_member(cloud, capsys):
    image_id = cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['rc'] == 0 and result['changed'] is True
    assert cloud.writes == [('PATCH', 'shared'), ('POST', ALT)]
    assert cloud.images[image_id]['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'pending'}]
    assert result['resolved_projects'] == {ALT: ALT}
    again = run_module({'image': image_id, 'members': [{'project': ALT}]}, capsys)
    assert again['changed'] is False
    assert again['diff']['before'] == again['diff']['after']
    assert len(cloud.writes) == 2


def test_member_with_its_cloud_is_added_and_accepted_with_its_credentials(cloud, capsys):
    image_id = cloud.add_image('golden')
    members = [{'project': 'alt', 'status': 'accepted', 'cloud': 'alt'}]
    check = run_module({'image': 'golden', 'members': members}, capsys, check=True)
    assert check['diff']['after']['members'] == {ALT: 'accepted'}
    assert cloud.writes == []
    real = run_module({'image': 'golden', 'members': members}, capsys)
    assert real['changed'] is True
    assert cloud.writes == [('PATCH', 'shared'), ('POST', ALT), ('PUT', ALT, 'accepted')]
    assert cloud.members[image_id] == {ALT: 'accepted'}
    assert real['resolved_projects'] == {'alt': ALT}
    # The member's connection takes only the cloud and the transport options.
    assert cloud.connections[-1] == {'cloud': 'alt', 'interface': 'public', 'api_retries': 3}
    assert run_module({'image': 'golden', 'members': members}, capsys)['changed'] is False


def test_member_cloud_without_project_names_the_member_by_its_token(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    result = run_module({'image': 'golden', 'members': [{'cloud': 'alt', 'status': 'rejected'}]}, capsys)
    assert cloud.members[image_id] == {ALT: 'rejected'}
    assert result['resolved_projects'] == {'alt': ALT}


def test_member_cloud_of_another_project_is_refused_before_any_change(cloud, capsys):
    cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': OPS, 'cloud': 'alt'}]}, capsys)
    assert result['failed'] is True
    assert "authenticates to project alt (%s), not to '%s'" % (ALT, OPS) in result['msg']
    assert cloud.writes == []


def test_a_member_cloud_that_cannot_connect_is_named_as_the_members(cloud, capsys, monkeypatch):
    cloud.add_image('golden')
    fake_from_params = _glance.GlanceAPI.from_params

    def from_params(params):
        if params['cloud'] == 'no-such-cloud':
            raise errors.CloudConfigError('Cannot configure the cloud connection: Cloud no-such-cloud was not found.')
        return fake_from_params(params)

    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', from_params)
    result = run_module({'image': 'golden', 'members': [{'project': 'alt', 'cloud': 'no-such-cloud'}]}, capsys)
    assert result['msg'] == ("The cloud of member 'alt': Cannot configure the cloud connection: Cloud no-such-cloud "
                             'was not found.')
    assert cloud.writes == []


def test_status_without_the_members_credentials_fails_before_any_change(cloud, capsys):
    image_id = cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT, 'status': 'accepted'}]}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith('Only project %s itself (or an admin) can set its member status' % ALT)
    assert 'cloud' in result['msg']
    assert cloud.writes == [] and cloud.images[image_id]['visibility'] == 'private'


def test_an_admin_may_set_a_members_status(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'pending'}
    result = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt', 'status': 'accepted'}]},
                        capsys)
    assert result['changed'] is True
    assert cloud.members[image_id] == {ALT: 'accepted'}


def test_members_not_listed_stay_unless_purged(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'accepted', OPS: 'pending'}
    kept = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert kept['changed'] is False and cloud.members[image_id] == {ALT: 'accepted', OPS: 'pending'}
    check = run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys, check=True)
    assert check['changed'] is True and check['diff']['after']['members'] == {ALT: 'accepted'}
    assert cloud.members[image_id] == {ALT: 'accepted', OPS: 'pending'}
    purged = run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys)
    assert purged['changed'] is True
    assert cloud.members[image_id] == {ALT: 'accepted'}
    assert purged['members'] == [{'project_id': ALT, 'status': 'accepted'}]


def test_removals_come_before_additions_to_make_room_under_the_quota(cloud, capsys):
    cloud.member_quota = 1
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {OPS: 'accepted'}
    run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys)
    assert cloud.writes == [('DELETE', OPS), ('POST', ALT)]


def test_member_quota_is_one_clear_message(cloud, capsys):
    cloud.member_quota = 1
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {OPS: 'accepted'}
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['failed'] is True
    assert 'has 1 members, and Glance refused to add project %s: its member quota' % ALT in result['msg']
    assert 'purge_members=true' in result['msg']
    assert result['status_code'] == 413 and result['member_count'] == 1


def test_image_of_another_project_is_not_managed(cloud, capsys):
    image_id = cloud.add_image('theirs', owner='alt', visibility='shared')
    cloud.members[image_id] = {PROJECTS['demo']: 'accepted'}
    result = run_module({'image': 'theirs', 'members': [{'project': OPS}]}, capsys)
    assert result['failed'] is True
    assert 'is owned by project %s, not by demo' % ALT in result['msg']
    assert 'member_status' in result['msg']
    assert cloud.writes == []


def test_missing_image_is_one_clear_message(cloud, capsys):
    result = run_module({'image': 'nope', 'visibility': 'shared'}, capsys)
    assert result['failed'] is True
    assert "No image with name or id 'nope' is visible" in result['msg']


def test_the_owner_cannot_be_a_member(cloud, capsys):
    cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': PROJECTS['demo']}]}, capsys)
    assert 'owns image golden' in result['msg'] and cloud.writes == []


def test_a_project_listed_twice_is_refused(cloud, capsys):
    cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}, {'cloud': 'alt'}]}, capsys)
    assert "lists project %s twice (as '%s' and 'alt')" % (ALT, ALT) in result['msg']


def test_an_entry_needs_project_or_cloud(cloud, capsys):
    cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'status': 'accepted'}]}, capsys)
    assert result['failed'] is True
    assert 'one of the following is required: project, cloud' in result['msg']


def test_member_status_cannot_be_combined_with_owner_options(cloud, capsys):
    result = run_module({'image': 'golden', 'member_status': 'accepted', 'visibility': 'shared'}, capsys)
    assert result['failed'] is True
    assert 'mutually exclusive: member_status|visibility' in result['msg']


# -- owner side: project names ----------------------------------------------------
def test_a_name_the_user_may_not_look_up_asks_for_the_id(cloud, capsys):
    cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith("Cannot resolve the project name 'alt': Keystone at %s does not let user "
                                    'demo list other projects' % KEYSTONE)
    assert 'Give the project id instead' in result['msg']
    assert cloud.writes == []


def test_a_name_of_one_of_the_users_own_projects_resolves_without_admin(cloud, capsys):
    image_id = cloud.add_image('golden')
    result = run_module({'image': 'golden', 'members': [{'project': 'ops'}]}, capsys)
    assert result['changed'] is True
    assert cloud.members[image_id] == {OPS: 'pending'}
    assert result['resolved_projects'] == {'ops': OPS}


def test_an_admin_resolves_any_name(cloud, capsys):
    image_id = cloud.add_image('golden', owner='admin')
    result = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert cloud.members[image_id] == {ALT: 'pending'}
    assert result['resolved_projects'] == {'alt': ALT}


def test_an_unknown_name_and_an_ambiguous_name_are_clear_errors(cloud, capsys):
    cloud.add_image('golden', owner='admin')
    unknown = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'nobody'}]}, capsys)
    assert unknown['msg'] == ("Keystone at %s has no project with name or id 'nobody'. Check the name (names are "
                              'case-sensitive) or give the project id.' % KEYSTONE)
    cloud.extra_projects.append(('b' * 32, 'alt', 'other-domain'))
    ambiguous = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert ambiguous['msg'].startswith("2 projects are named 'alt': %s (domain default), %s (domain other-domain)"
                                       % (ALT, 'b' * 32))
    assert ambiguous['project_ids'] == [ALT, 'b' * 32]
    assert cloud.writes == []


# -- owner side: visibility ---------------------------------------------------------
def test_visibility_changes_in_four_steps(cloud, capsys):
    image_id = cloud.add_image('golden')
    check = run_module({'image': 'golden', 'visibility': 'community'}, capsys, check=True)
    assert check['changed'] is True and check['visibility'] == 'community'
    assert cloud.images[image_id]['visibility'] == 'private'
    real = run_module({'image': 'golden', 'visibility': 'community'}, capsys)
    assert real['changed'] is True and cloud.images[image_id]['visibility'] == 'community'
    assert run_module({'image': 'golden', 'visibility': 'community'}, capsys, check=True)['changed'] is False
    assert run_module({'image': 'golden', 'visibility': 'community'}, capsys)['changed'] is False


def test_public_refused_by_policy_is_one_clear_message(cloud, capsys):
    image_id = cloud.add_image('golden')
    result = run_module({'image': 'golden', 'visibility': 'public'}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith('Glance does not allow the credentials of this task to make image golden (%s) '
                                    'public (policy publicize_image, admin-only by default)' % image_id)
    assert cloud.images[image_id]['visibility'] == 'private'


@pytest.mark.parametrize('check', [True, False])
def test_private_with_members_is_refused_before_any_request(cloud, capsys, monkeypatch, check):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id][OPS] = 'accepted'

    def no_request(*args, **kwargs):
        raise AssertionError('a request was sent')

    monkeypatch.setattr(FakeSession, 'request', no_request)
    monkeypatch.setattr(FakeSession, 'get_token', no_request)
    result = run_module({'image': 'golden', 'visibility': 'private', 'members': [{'project': ALT}]}, capsys,
                        check=check)
    assert result['failed'] is True
    assert result['msg'] == ('visibility=private contradicts members: a private image has no members (Glance keeps '
                             'members only on shared images). Use visibility=shared to share it with these '
                             'projects, or drop members (with members=[] and purge_members=true to remove the '
                             'ones it has).')
    assert cloud.writes == [] and cloud.images[image_id]['visibility'] == 'shared'
    assert cloud.members[image_id] == {OPS: 'accepted'}


@pytest.mark.parametrize('visibility', ['community', 'public'])
def test_members_on_a_community_or_public_image_need_shared_said_out_loud(cloud, capsys, visibility):
    cloud.add_image('golden', visibility=visibility)
    implicit = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert 'is %s, and Glance keeps members only on shared images. Set visibility=shared' % visibility in implicit['msg']
    explicit = run_module({'image': 'golden', 'visibility': visibility, 'members': [{'project': ALT}]}, capsys)
    assert explicit['msg'].startswith('visibility=%s cannot have members' % visibility)
    assert cloud.writes == []


def test_back_to_private_removes_members_first_when_purging(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'accepted'}
    args = {'image': 'golden', 'visibility': 'private', 'members': [], 'purge_members': True}
    check = run_module(args, capsys, check=True)
    assert check['diff'] == {'before': {'visibility': 'shared', 'members': {ALT: 'accepted'}},
                             'after': {'visibility': 'private', 'members': {}}}
    assert cloud.writes == []
    real = run_module(args, capsys)
    assert real['changed'] is True
    assert cloud.writes == [('DELETE', ALT), ('PATCH', 'private')]
    assert cloud.members[image_id] == {}
    assert run_module(args, capsys)['changed'] is False


def test_members_hidden_while_private_come_back_and_a_real_run_sees_them(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='private')
    cloud.members[image_id] = {OPS: 'accepted'}  # from an earlier time as a shared image
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['members'] == [{'project_id': OPS, 'status': 'accepted'}, {'project_id': ALT, 'status': 'pending'}]
    cloud.images[image_id]['visibility'] = 'private'
    run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys)
    assert cloud.members[image_id] == {ALT: 'pending'}


def test_without_wishes_the_image_state_is_reported(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'rejected'}
    result = run_module({'image': 'golden'}, capsys)
    assert result['changed'] is False
    assert result['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'rejected'}]
    assert 'resolved_projects' not in result


# -- member side ---------------------------------------------------------------------
def test_member_accepts_in_four_steps(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'pending'}
    args = {'cloud': 'alt', 'image': 'golden', 'member_status': 'accepted'}
    check = run_module(args, capsys, check=True)
    assert check['changed'] is True and check['member_status'] == 'accepted'
    assert check['diff']['before']['members'] == {ALT: 'pending'}
    assert cloud.members[image_id] == {ALT: 'pending'}
    real = run_module(args, capsys)
    assert real['changed'] is True and cloud.members[image_id] == {ALT: 'accepted'}
    assert real['members'] == [{'project_id': ALT, 'status': 'accepted'}]
    assert run_module(args, capsys, check=True)['changed'] is False
    assert run_module(dict(args, image=image_id), capsys)['changed'] is False


def test_member_side_of_an_image_not_shared_with_the_project(cloud, capsys):
    image_id = cloud.add_image('golden', visibility='community')
    result = run_module({'cloud': 'alt', 'image': image_id, 'member_status': 'accepted'}, capsys)
    assert result['failed'] is True
    assert 'is not shared with project alt (%s)' % ALT in result['msg']
    private = cloud.add_image('hidden')
    missing = run_module({'cloud': 'alt', 'image': private, 'member_status': 'accepted'}, capsys)
    assert "No image with name or id '%s' is visible" % private in missing['msg']


def test_the_owner_cannot_use_member_status(cloud, capsys):
    cloud.add_image('golden', visibility='shared')
    result = run_module({'image': 'golden', 'member_status': 'accepted'}, capsys)
    assert 'owned by project demo' in result['msg'] and 'the owner shares with members' in result['msg']
