# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Keystone over the Glance session (project lookup, who the token is) and
the image-member requests, against a fake openstacksdk connection (the
boundary) that answers with scripted responses."""

from __future__ import annotations


import pytest

from keystoneauth1 import exceptions as ka_exceptions

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance
from ansible_collections.osimage.glance.plugins.module_utils._openstack import session as _session
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.tests.unit.plugins.module_utils._openstack.connection_fakes import (
    AUTH_URL, GLANCE, FakeConnection, FakeResponse)

KEYSTONE = AUTH_URL
ALT = 'a' * 32


def forbidden(rule):
    return FakeResponse(403, {'error': {'code': 403, 'message': 'You are not authorized to perform the requested '
                                                                'action: %s.' % rule}})


def make_api(*responses, identity=KEYSTONE, access_failures=()):
    catalog = {'image': GLANCE} if identity is None else {'image': GLANCE, 'identity': identity}
    conn = FakeConnection(responses, access_failures=access_failures, catalog=catalog)
    sleeps = []
    return glance.GlanceAPI(conn, retries=2, backoff=0.5, sleep=sleeps.append), conn, sleeps


def urls(conn):
    return [(method, url) for method, url, _kwargs in conn.session.requests]


# -- where Keystone is ----------------------------------------------------------
@pytest.mark.parametrize('catalog, root', [
    ('http://keystone.test:5000/v3', 'http://keystone.test:5000/v3'),
    ('http://keystone.test:5000/', 'http://keystone.test:5000/v3'),
    ('https://cloud.test/identity', 'https://cloud.test/identity/v3'),
    (None, KEYSTONE),  # no identity endpoint in the catalog: the auth_url
])
def test_keystone_v3_root_comes_from_the_catalog(catalog, root):
    api = make_api(identity=catalog)[0]
    assert api.keystone.identity_endpoint == root


def test_keystone_down_is_retried_then_named_as_keystone():
    refused = ka_exceptions.ConnectFailure('Unable to establish connection to %s: refused' % KEYSTONE)
    api, conn, sleeps = make_api(refused, refused, refused)
    with pytest.raises(errors.ServiceUnavailableError) as info:
        api.keystone._get_json('/auth/projects', 'Listing my projects')  # pylint: disable=protected-access
    assert info.value.msg.startswith('Listing my projects: could not reach Keystone at %s after 3 attempt(s)'
                                     % KEYSTONE)
    assert sleeps == [0.5, 1.0]
    assert all(kwargs['connect_retries'] == 0 for _m, _u, kwargs in conn.session.requests)


def test_keystone_refusal_names_keystone_and_the_rule():
    api = make_api(forbidden('identity:list_projects'))[0]
    with pytest.raises(errors.NotAuthorizedError) as info:
        api.keystone._get_json('/projects', 'Listing projects', params={'name': 'alt'})  # pylint: disable=protected-access
    assert info.value.msg.startswith('Listing projects: Keystone at %s refused' % KEYSTONE)
    assert 'identity:list_projects' in info.value.msg


# -- who the token is -------------------------------------------------------------------
def test_whoami_reads_the_token():
    api = make_api()[0]
    assert api.keystone.whoami() == dict(user_id='u-1', user_name='demo', project_id='d' * 32, project_name='demo',
                                         project_domain_id='default', roles=['member', 'reader'])


def test_whoami_retries_an_unreachable_keystone():
    refused = ka_exceptions.ConnectFailure('refused')
    api, _conn, sleeps = make_api(access_failures=[refused])
    assert api.keystone.whoami()['project_name'] == 'demo'
    assert sleeps == [0.5]


# -- project lookup ------------------------------------------------------------------------
def test_admin_finds_a_project_by_name():
    api, conn, _sleeps = make_api(FakeResponse(200, {'projects': [{'id': ALT, 'name': 'alt', 'domain_id': 'default'}]}))
    assert api.keystone.find_project('alt') == dict(id=ALT, name='alt', verified=True)
    method, url, kwargs = conn.session.requests[0]
    assert (method, url, kwargs['params']) == ('GET', KEYSTONE + '/projects', {'name': 'alt'})


def test_a_name_two_domains_have_is_ambiguous():
    both = [{'id': 'b' * 32, 'name': 'alt', 'domain_id': 'other'}, {'id': ALT, 'name': 'alt', 'domain_id': 'default'}]
    api = make_api(FakeResponse(200, {'projects': both}))[0]
    with pytest.raises(errors.AmbiguousProjectError) as info:
        api.keystone.find_project('alt')
    assert info.value.msg == ("2 projects are named 'alt': %s (domain default), %s (domain other). "
                              'Give the id of the one you mean.' % (ALT, 'b' * 32))


def test_an_unknown_name_is_not_found_when_keystone_could_list():
    api = make_api(FakeResponse(200, {'projects': []}))[0]
    with pytest.raises(errors.NotFoundError, match="has no project with name or id 'nobody'"):
        api.keystone.find_project('nobody')


def test_without_list_rights_a_name_of_the_users_own_projects_resolves():
    own = {'projects': [{'id': 'd' * 32, 'name': 'demo'}, {'id': '0' * 32, 'name': 'ops'}]}
    api, conn, _sleeps = make_api(forbidden('identity:list_projects'), FakeResponse(200, own))
    assert api.keystone.find_project('ops') == dict(id='0' * 32, name='ops', verified=True)
    assert urls(conn)[1] == ('GET', KEYSTONE + '/auth/projects')


def test_without_list_rights_another_projects_name_asks_for_the_id():
    own = {'projects': [{'id': 'd' * 32, 'name': 'demo'}]}
    api = make_api(forbidden('identity:list_projects'), FakeResponse(200, own))[0]
    with pytest.raises(errors.NotAuthorizedError) as info:
        api.keystone.find_project('alt')
    assert info.value.msg.startswith("Cannot resolve the project name 'alt': Keystone at %s does not let user demo "
                                     'list other projects' % KEYSTONE)
    assert 'Give the project id instead' in info.value.msg


def test_an_id_keystone_shows_is_verified():
    api, conn, _sleeps = make_api(FakeResponse(200, {'project': {'id': ALT, 'name': 'alt'}}))
    assert api.keystone.find_project(ALT) == dict(id=ALT, name='alt', verified=True)
    assert urls(conn) == [('GET', KEYSTONE + '/projects/' + ALT)]


def test_an_id_keystone_will_not_show_is_taken_unverified():
    api = make_api(forbidden('identity:get_project'), FakeResponse(200, {'projects': []}))[0]
    assert api.keystone.find_project(ALT) == dict(id=ALT, name=None, verified=False)


def test_a_name_that_looks_like_an_id_is_still_found_by_name():
    api = make_api(FakeResponse(404, {'error': {'message': 'Could not find project'}}),
                   FakeResponse(200, {'projects': [{'id': 'real-id', 'name': ALT}]}))[0]
    assert api.keystone.find_project(ALT)['id'] == 'real-id'


def test_own_projects_are_read_once_per_connection():
    api, conn, _sleeps = make_api(forbidden('identity:list_projects'),
                                  FakeResponse(200, {'projects': [{'id': 'o' * 32, 'name': 'ops'}]}),
                                  forbidden('identity:list_projects'))
    api.keystone.find_project('ops')
    api.keystone.find_project('ops')
    assert [url for _m, url in urls(conn)].count(KEYSTONE + '/auth/projects') == 1


# -- image members and the image patch ---------------------------------------------------
def test_member_requests_go_to_glance_with_their_bodies():
    api, conn, _sleeps = make_api(FakeResponse(200, {'members': [{'member_id': ALT, 'status': 'pending'}]}),
                                  FakeResponse(200, {'member_id': ALT, 'status': 'pending'}),
                                  FakeResponse(200, {'member_id': ALT, 'status': 'accepted'}),
                                  FakeResponse(204))
    assert api.list_members('img', 'Listing') == [{'member_id': ALT, 'status': 'pending'}]
    assert api.add_member('img', ALT, 'Adding')['status'] == 'pending'
    assert api.set_member_status('img', ALT, 'accepted', 'Accepting')['status'] == 'accepted'
    api.remove_member('img', ALT, 'Removing')
    sent = [(method, url, kwargs.get('json')) for method, url, kwargs in conn.session.requests]
    assert sent == [('GET', GLANCE + '/v2/images/img/members', None),
                    ('POST', GLANCE + '/v2/images/img/members', {'member': ALT}),
                    ('PUT', GLANCE + '/v2/images/img/members/' + ALT, {'status': 'accepted'}),
                    ('DELETE', GLANCE + '/v2/images/img/members/' + ALT, None)]


def test_member_quota_is_an_over_quota_error():
    api = make_api(FakeResponse(413, {'message': 'Maximum number of members reached'}))[0]
    with pytest.raises(errors.OverQuotaError, match='Maximum number of members reached'):
        api.add_member('img', ALT, 'Adding')


def test_image_patch_uses_the_json_patch_media_type():
    api, conn, _sleeps = make_api(FakeResponse(200, {'id': 'img', 'visibility': 'shared'}))
    ops = [{'op': 'replace', 'path': '/visibility', 'value': 'shared'}]
    assert api.update_image('img', ops, 'Sharing')['visibility'] == 'shared'
    method, url, kwargs = conn.session.requests[0]
    assert (method, url, kwargs['json']) == ('PATCH', GLANCE + '/v2/images/img', ops)
    assert kwargs['headers'] == {'Content-Type': 'application/openstack-images-v2.1-json-patch'}


def test_find_image_passes_filters_to_the_name_listing():
    api, conn, _sleeps = make_api(FakeResponse(200, {'images': [{'id': 'img', 'name': 'golden'}]}))
    assert api.find_image('golden', member_status='all')['id'] == 'img'
    assert conn.session.requests[0][2]['params'] == {'name': 'golden', 'member_status': 'all', 'limit': 1000}


# -- a second connection ------------------------------------------------------------------
def test_a_second_cloud_takes_only_the_transport_options():
    params = dict(cloud='demo', auth={'password': 'owner-secret'}, region_name='RegionTwo', interface='internal',
                  api_retries=5, api_timeout=30, validate_certs=False)
    assert _session.other_cloud_params('alt', params) == dict(cloud='alt', interface='internal', api_retries=5)
    member_dict = {'auth': {'username': 'alt'}}
    assert _session.connection_kwargs(_session.other_cloud_params(member_dict, params)) == dict(
        auth={'username': 'alt'}, interface='internal')


def test_a_policy_refusal_is_asked_once_per_connection():
    api, conn, _sleeps = make_api(forbidden('identity:get_project'), FakeResponse(200, {'projects': []}))
    assert [api.keystone.find_project(c * 32)['verified'] for c in 'abc'] == [False, False, False]
    assert urls(conn) == [('GET', KEYSTONE + '/projects/' + 'a' * 32), ('GET', KEYSTONE + '/auth/projects')]
