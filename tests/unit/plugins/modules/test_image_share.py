# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_share against the one fake Glance (tests/unit/plugins/conftest.py),
which follows Glance's sharing rules (members only on shared images, hidden
members, only the member or an admin sets a status, member quota,
admin-only public images), with the real Keystone client over its fake
Keystone and Keystone's default policy (only admins list projects). Every
cloud name is a user's connection to the same Glance."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance as _glance
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.modules import image_share

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


@pytest.fixture
def cloud(fake_glance, monkeypatch):
    """The fake Glance with the projects and users above; a module's
    connections (the task's and its members' clouds) are recorded."""
    fake_glance.identity.projects = [dict(id=pid, name=name, domain_id='default') for name, pid in PROJECTS.items()]
    fake_glance.identity.users = dict(USERS)
    connections = []

    def from_params(cls, params):
        assert isinstance(params['cloud'], str), 'the fake knows clouds by name'
        connections.append(params)
        return fake_glance.connected_as(params['cloud'])

    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', classmethod(from_params))
    fake_glance.connections = connections
    return fake_glance


def add_image(cloud, name, owner='demo', visibility='private'):
    image_id = cloud.add(name=name, owner=PROJECTS[owner], visibility=visibility, status='active')['id']
    cloud.members[image_id] = {}
    return image_id


def writes(cloud):
    """The sharing changes Glance made, in order: ('PATCH', visibility),
    ('POST', member), ('PUT', member, status), ('DELETE', member)."""
    short = []
    for method, path, body in cloud.writes:
        if method == 'PATCH':
            short.append(('PATCH', body[0]['value']))
        elif method == 'POST':
            short.append(('POST', body['member']))
        elif method == 'PUT':
            short.append(('PUT', path.split('/')[-1], body['status']))
        else:
            short.append((method, path.split('/')[-1]))
    return short


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
    image_id = add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys, check=True)
    assert result['changed'] is True
    assert result['diff'] == {'before': {'visibility': 'private', 'members': {}},
                              'after': {'visibility': 'shared', 'members': {ALT: 'pending'}}}
    assert result['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'pending'}]
    assert writes(cloud) == []
    assert cloud.images[image_id]['visibility'] == 'private'


def test_sharing_makes_the_image_shared_then_adds_the_member(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['rc'] == 0 and result['changed'] is True
    assert writes(cloud) == [('PATCH', 'shared'), ('POST', ALT)]
    assert cloud.images[image_id]['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'pending'}]
    assert result['resolved_projects'] == {ALT: ALT}
    again = run_module({'image': image_id, 'members': [{'project': ALT}]}, capsys)
    assert again['changed'] is False
    assert again['diff']['before'] == again['diff']['after']
    assert len(writes(cloud)) == 2


def test_member_with_its_cloud_is_added_and_accepted_with_its_credentials(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    members = [{'project': 'alt', 'status': 'accepted', 'cloud': 'alt'}]
    check = run_module({'image': 'golden', 'members': members}, capsys, check=True)
    assert check['diff']['after']['members'] == {ALT: 'accepted'}
    assert writes(cloud) == []
    real = run_module({'image': 'golden', 'members': members}, capsys)
    assert real['changed'] is True
    assert writes(cloud) == [('PATCH', 'shared'), ('POST', ALT), ('PUT', ALT, 'accepted')]
    assert cloud.members[image_id] == {ALT: 'accepted'}
    assert real['resolved_projects'] == {'alt': ALT}
    # The member's connection takes only the cloud and the transport options.
    assert cloud.connections[-1] == {'cloud': 'alt', 'interface': 'public', 'api_retries': 3}
    assert run_module({'image': 'golden', 'members': members}, capsys)['changed'] is False


def test_member_cloud_without_project_names_the_member_by_its_token(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
    result = run_module({'image': 'golden', 'members': [{'cloud': 'alt', 'status': 'rejected'}]}, capsys)
    assert cloud.members[image_id] == {ALT: 'rejected'}
    assert result['resolved_projects'] == {'alt': ALT}


def test_member_cloud_of_another_project_is_refused_before_any_change(cloud, capsys):
    add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': OPS, 'cloud': 'alt'}]}, capsys)
    assert result['failed'] is True
    assert "authenticates to project alt (%s), not to '%s'" % (ALT, OPS) in result['msg']
    assert writes(cloud) == []


def test_a_member_cloud_that_cannot_connect_is_named_as_the_members(cloud, capsys, monkeypatch):
    add_image(cloud, 'golden')
    fake_from_params = _glance.GlanceAPI.from_params

    def from_params(params):
        if params['cloud'] == 'no-such-cloud':
            raise errors.CloudConfigError('Cannot configure the cloud connection: Cloud no-such-cloud was not found.')
        return fake_from_params(params)

    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', from_params)
    result = run_module({'image': 'golden', 'members': [{'project': 'alt', 'cloud': 'no-such-cloud'}]}, capsys)
    assert result['msg'] == ("The cloud of member 'alt': Cannot configure the cloud connection: Cloud no-such-cloud "
                             'was not found.')
    assert writes(cloud) == []


def test_status_without_the_members_credentials_fails_before_any_change(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT, 'status': 'accepted'}]}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith('Only project %s itself (or an admin) can set its member status' % ALT)
    assert 'cloud' in result['msg']
    assert writes(cloud) == [] and cloud.images[image_id]['visibility'] == 'private'


def test_an_admin_may_set_a_members_status(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'pending'}
    result = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt', 'status': 'accepted'}]},
                        capsys)
    assert result['changed'] is True
    assert cloud.members[image_id] == {ALT: 'accepted'}


def test_members_not_listed_stay_unless_purged(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
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
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id] = {OPS: 'accepted'}
    run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys)
    assert writes(cloud) == [('DELETE', OPS), ('POST', ALT)]


def test_member_quota_is_one_clear_message(cloud, capsys):
    cloud.member_quota = 1
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id] = {OPS: 'accepted'}
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['failed'] is True
    assert 'has 1 members, and Glance refused to add project %s: its member quota' % ALT in result['msg']
    assert 'purge_members=true' in result['msg']
    assert result['status_code'] == 413 and result['member_count'] == 1


def test_image_of_another_project_is_not_managed(cloud, capsys):
    image_id = add_image(cloud, 'theirs', owner='alt', visibility='shared')
    cloud.members[image_id] = {PROJECTS['demo']: 'accepted'}
    result = run_module({'image': 'theirs', 'members': [{'project': OPS}]}, capsys)
    assert result['failed'] is True
    assert 'is owned by project %s, not by demo' % ALT in result['msg']
    assert 'member_status' in result['msg']
    assert writes(cloud) == []


def test_missing_image_is_one_clear_message(cloud, capsys):
    result = run_module({'image': 'nope', 'visibility': 'shared'}, capsys)
    assert result['failed'] is True
    assert "No image with name or id 'nope' is visible" in result['msg']


def test_the_owner_cannot_be_a_member(cloud, capsys):
    add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': PROJECTS['demo']}]}, capsys)
    assert 'owns image golden' in result['msg'] and writes(cloud) == []


def test_a_project_listed_twice_is_refused(cloud, capsys):
    add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': ALT}, {'cloud': 'alt'}]}, capsys)
    assert "lists project %s twice (as '%s' and 'alt')" % (ALT, ALT) in result['msg']


def test_an_entry_needs_project_or_cloud(cloud, capsys):
    add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'status': 'accepted'}]}, capsys)
    assert result['failed'] is True
    assert 'one of the following is required: project, cloud' in result['msg']


def test_member_status_cannot_be_combined_with_owner_options(cloud, capsys):
    result = run_module({'image': 'golden', 'member_status': 'accepted', 'visibility': 'shared'}, capsys)
    assert result['failed'] is True
    assert 'mutually exclusive: member_status|visibility' in result['msg']


# -- owner side: project names ----------------------------------------------------
def test_a_name_the_user_may_not_look_up_asks_for_the_id(cloud, capsys):
    add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith("Cannot resolve the project name 'alt': Keystone at %s does not let user "
                                    'demo list other projects' % cloud.identity.endpoint)
    assert 'Give the project id instead' in result['msg']
    assert writes(cloud) == []


def test_a_name_of_one_of_the_users_own_projects_resolves_without_admin(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'members': [{'project': 'ops'}]}, capsys)
    assert result['changed'] is True
    assert cloud.members[image_id] == {OPS: 'pending'}
    assert result['resolved_projects'] == {'ops': OPS}


def test_an_admin_resolves_any_name(cloud, capsys):
    image_id = add_image(cloud, 'golden', owner='admin')
    result = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert cloud.members[image_id] == {ALT: 'pending'}
    assert result['resolved_projects'] == {'alt': ALT}


def test_an_unknown_name_and_an_ambiguous_name_are_clear_errors(cloud, capsys):
    add_image(cloud, 'golden', owner='admin')
    unknown = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'nobody'}]}, capsys)
    assert unknown['msg'] == ("Keystone at %s has no project with name or id 'nobody'. Check the name (names are "
                              'case-sensitive) or give the project id.' % cloud.identity.endpoint)
    cloud.identity.projects.append(dict(id='b' * 32, name='alt', domain_id='other-domain'))
    ambiguous = run_module({'cloud': 'admin', 'image': 'golden', 'members': [{'project': 'alt'}]}, capsys)
    assert ambiguous['msg'].startswith("2 projects are named 'alt': %s (domain default), %s (domain other-domain)"
                                       % (ALT, 'b' * 32))
    assert ambiguous['project_ids'] == [ALT, 'b' * 32]
    assert writes(cloud) == []


# -- owner side: visibility ---------------------------------------------------------
def test_visibility_changes_in_four_steps(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    check = run_module({'image': 'golden', 'visibility': 'community'}, capsys, check=True)
    assert check['changed'] is True and check['visibility'] == 'community'
    assert cloud.images[image_id]['visibility'] == 'private'
    real = run_module({'image': 'golden', 'visibility': 'community'}, capsys)
    assert real['changed'] is True and cloud.images[image_id]['visibility'] == 'community'
    assert run_module({'image': 'golden', 'visibility': 'community'}, capsys, check=True)['changed'] is False
    assert run_module({'image': 'golden', 'visibility': 'community'}, capsys)['changed'] is False


def test_public_refused_by_policy_is_one_clear_message(cloud, capsys):
    image_id = add_image(cloud, 'golden')
    result = run_module({'image': 'golden', 'visibility': 'public'}, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith('Glance does not allow the credentials of this task to make image golden (%s) '
                                    'public (policy publicize_image, admin-only by default)' % image_id)
    assert cloud.images[image_id]['visibility'] == 'private'


@pytest.mark.parametrize('check', [True, False])
def test_private_with_members_is_refused_before_any_request(cloud, capsys, monkeypatch, check):
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id][OPS] = 'accepted'

    def no_request(*args, **kwargs):
        raise AssertionError('a request was sent')

    for name in ('answer', 'find_image', 'list_images', 'get_image'):
        monkeypatch.setattr(type(cloud), name, no_request)
    monkeypatch.setattr(type(cloud.caller), 'send', no_request)
    monkeypatch.setattr(type(cloud.caller), 'access', no_request)
    result = run_module({'image': 'golden', 'visibility': 'private', 'members': [{'project': ALT}]}, capsys,
                        check=check)
    assert result['failed'] is True
    assert result['msg'] == ('visibility=private contradicts members: a private image has no members (Glance keeps '
                             'members only on shared images). Use visibility=shared to share it with these '
                             'projects, or drop members (with members=[] and purge_members=true to remove the '
                             'ones it has).')
    assert writes(cloud) == [] and cloud.images[image_id]['visibility'] == 'shared'
    assert cloud.members[image_id] == {OPS: 'accepted'}


@pytest.mark.parametrize('visibility', ['community', 'public'])
def test_members_on_a_community_or_public_image_need_shared_said_out_loud(cloud, capsys, visibility):
    add_image(cloud, 'golden', visibility=visibility)
    implicit = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert 'is %s, and Glance keeps members only on shared images. Set visibility=shared' % visibility in implicit['msg']
    explicit = run_module({'image': 'golden', 'visibility': visibility, 'members': [{'project': ALT}]}, capsys)
    assert explicit['msg'].startswith('visibility=%s cannot have members' % visibility)
    assert writes(cloud) == []


def test_back_to_private_removes_members_first_when_purging(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'accepted'}
    args = {'image': 'golden', 'visibility': 'private', 'members': [], 'purge_members': True}
    check = run_module(args, capsys, check=True)
    assert check['diff'] == {'before': {'visibility': 'shared', 'members': {ALT: 'accepted'}},
                             'after': {'visibility': 'private', 'members': {}}}
    assert writes(cloud) == []
    real = run_module(args, capsys)
    assert real['changed'] is True
    assert writes(cloud) == [('DELETE', ALT), ('PATCH', 'private')]
    assert cloud.members[image_id] == {}
    assert run_module(args, capsys)['changed'] is False


def test_members_hidden_while_private_come_back_and_a_real_run_sees_them(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='private')
    cloud.members[image_id] = {OPS: 'accepted'}  # from an earlier time as a shared image
    result = run_module({'image': 'golden', 'members': [{'project': ALT}]}, capsys)
    assert result['members'] == [{'project_id': OPS, 'status': 'accepted'}, {'project_id': ALT, 'status': 'pending'}]
    cloud.images[image_id]['visibility'] = 'private'
    run_module({'image': 'golden', 'members': [{'project': ALT}], 'purge_members': True}, capsys)
    assert cloud.members[image_id] == {ALT: 'pending'}


def test_without_wishes_the_image_state_is_reported(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
    cloud.members[image_id] = {ALT: 'rejected'}
    result = run_module({'image': 'golden'}, capsys)
    assert result['changed'] is False
    assert result['visibility'] == 'shared'
    assert result['members'] == [{'project_id': ALT, 'status': 'rejected'}]
    assert 'resolved_projects' not in result


# -- member side ---------------------------------------------------------------------
def test_member_accepts_in_four_steps(cloud, capsys):
    image_id = add_image(cloud, 'golden', visibility='shared')
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
    image_id = add_image(cloud, 'golden', visibility='community')
    result = run_module({'cloud': 'alt', 'image': image_id, 'member_status': 'accepted'}, capsys)
    assert result['failed'] is True
    assert 'is not shared with project alt (%s)' % ALT in result['msg']
    private = add_image(cloud, 'hidden')
    missing = run_module({'cloud': 'alt', 'image': private, 'member_status': 'accepted'}, capsys)
    assert "No image with name or id '%s' is visible" % private in missing['msg']


def test_the_owner_cannot_use_member_status(cloud, capsys):
    add_image(cloud, 'golden', visibility='shared')
    result = run_module({'image': 'golden', 'member_status': 'accepted'}, capsys)
    assert 'owned by project demo' in result['msg'] and 'the owner shares with members' in result['msg']
