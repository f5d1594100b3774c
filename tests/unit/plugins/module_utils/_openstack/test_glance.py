# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Glance v2 calls against a fake openstacksdk connection (the boundary):
retries through the session, one clear error per failure, pagination,
look-ups by name or id."""

from __future__ import annotations


import pytest

from keystoneauth1 import exceptions as ka_exceptions

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance
from ansible_collections.osimage.glance.plugins.module_utils._openstack import session as _session
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.tests.unit.plugins.module_utils._openstack.connection_fakes import (
    AUTH_URL, GLANCE, FakeConnection as SharedConnection, FakeResponse)

ENDPOINT = GLANCE


def connection(responses=(), tokens=(), endpoint=ENDPOINT):
    """A connection whose catalog has only the image endpoint ``endpoint``."""
    return SharedConnection(responses, tokens, catalog={'image': endpoint},
                            auth_args={'auth_url': AUTH_URL, 'username': 'demo', 'password': 'secret'})


def make_api(conn, retries=3):
    sleeps = []
    api = glance.GlanceAPI(conn, retries=retries, backoff=0.5, sleep=sleeps.append)
    return api, sleeps


def test_server_reason_reads_glance_html_pages():
    html = ('<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1>'
            'No image found with ID abc<br /><br /></body></html>')
    response = FakeResponse(404, text=html, reason='Not Found')
    assert _session.server_reason(response) == '404 Not Found No image found with ID abc'


def test_server_reason_reads_json_errors():
    response = FakeResponse(400, body={'badRequest': {'message': 'Invalid disk format', 'code': 400}})
    assert _session.server_reason(response) == 'Invalid disk format'


def test_connection_refused_is_retried_then_named():
    refused = ka_exceptions.ConnectFailure('Unable to establish connection to %s: refused' % ENDPOINT)
    conn = connection(responses=[refused] * 4)
    api, sleeps = make_api(conn, retries=3)
    with pytest.raises(errors.ServiceUnavailableError) as info:
        api.list_images('Listing images')
    assert len(conn.session.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert info.value.msg.startswith('Listing images: could not reach Glance at %s after 4 attempt(s)' % ENDPOINT)
    assert conn.session.requests[0][1] == ENDPOINT + '/v2/images'
    # Our loop owns the retries; keystoneauth must not add its own.
    assert all(request[2]['connect_retries'] == 0 for request in conn.session.requests)


def test_a_503_then_success_returns_the_success():
    conn = connection(responses=[FakeResponse(503, text='busy'), FakeResponse(200, body={'images': []})])
    api, sleeps = make_api(conn)
    assert api.list_images('Listing images') == []
    assert sleeps == [0.5]


def test_a_500_on_a_read_is_retried():
    conn = connection(responses=[FakeResponse(500, text='database is locked'),
                                 FakeResponse(200, body={'images': []})])
    api, sleeps = make_api(conn)
    assert api.list_images('Listing images') == []
    assert sleeps == [0.5]


def test_a_500_on_a_put_without_data_is_retried():
    conn = connection(responses=[FakeResponse(500, text='database is locked'), FakeResponse(200, body={})])
    api, sleeps = make_api(conn)
    api.set_member_status('x', 'y', 'accepted', 'Accepting')
    assert len(conn.session.requests) == 2
    assert sleeps == [0.5]


def test_a_500_on_a_delete_is_retried():
    """Concurrent runs against a busy database: deleting twice does nothing twice."""
    conn = connection(responses=[FakeResponse(500, text='database is locked'), FakeResponse(204)])
    api, sleeps = make_api(conn)
    api.delete_image('x', 'Deleting image x')
    assert len(conn.session.requests) == 2
    assert sleeps == [0.5]


def test_a_500_on_a_data_upload_or_post_is_not_retried():
    # The body may be a one-pass stream, and a POST may have happened.
    for call in (lambda api: api.upload_data('x', iter([b'x']), 'Uploading'),
                 lambda api: api.create_image({}, 'Creating')):
        conn = connection(responses=[FakeResponse(500, text='boom'), FakeResponse(200, body={})])
        api, sleeps = make_api(conn)
        with pytest.raises(errors.OsimageError, match='boom'):
            call(api)
        assert len(conn.session.requests) == 1
        assert sleeps == []


def test_keystone_down_is_named_as_keystone():
    down = ka_exceptions.ConnectFailure('Unable to establish connection to %s' % AUTH_URL)
    conn = connection(tokens=[down, down])
    api = make_api(conn, retries=1)[0]
    with pytest.raises(errors.ServiceUnavailableError, match='could not reach Keystone at %s after 2' % AUTH_URL):
        api.list_images('Listing images')
    assert conn.session.requests == []


def test_wrong_password_is_one_clear_message_without_the_password():
    conn = connection(tokens=[ka_exceptions.Unauthorized('The request you have made requires authentication.')])
    api, sleeps = make_api(conn)
    with pytest.raises(errors.AuthenticationError) as info:
        api.list_images('Listing images')
    assert 'rejected the credentials of user demo' in info.value.msg
    assert 'secret' not in info.value.msg
    assert sleeps == []


@pytest.mark.parametrize('status, cls', [
    (400, errors.BadRequestError), (403, errors.NotAuthorizedError), (404, errors.NotFoundError),
    (409, errors.ConflictError), (413, errors.OverQuotaError),
])
def test_http_errors_become_one_error_each_with_the_reason(status, cls):
    conn = connection(responses=[FakeResponse(status, body={'message': 'server says why'})])
    api, sleeps = make_api(conn)
    with pytest.raises(cls) as info:
        api.get_image('x', 'Reading image x')
    assert 'server says why' in info.value.msg
    assert 'HTTP %d' % status in info.value.msg
    assert info.value.details['status_code'] == status
    assert sleeps == []


def test_missing_image_endpoint_is_a_config_error():
    api = make_api(connection(endpoint=None))[0]
    with pytest.raises(errors.CloudConfigError, match='no image \\(Glance\\) endpoint'):
        api.list_images('Listing images')


def test_list_images_follows_pagination():
    pages = [FakeResponse(200, body={'images': [{'id': '1'}], 'next': '/v2/images?marker=1&name=x'}),
             FakeResponse(200, body={'images': [{'id': '2'}]})]
    conn = connection(responses=pages)
    api = make_api(conn)[0]
    assert [image['id'] for image in api.list_images('Listing', name='x')] == ['1', '2']
    assert conn.session.requests[1][1] == ENDPOINT + '/v2/images?marker=1&name=x'


def test_list_images_stops_at_max_images():
    pages = [FakeResponse(200, body={'images': [{'id': '1'}, {'id': '2'}], 'next': '/v2/images?marker=2&limit=2'}),
             FakeResponse(200, body={'images': [{'id': '3'}]})]
    conn = connection(responses=pages)
    api = make_api(conn)[0]
    assert [image['id'] for image in api.list_images('Listing', max_images=2)] == ['1', '2']
    assert len(conn.session.requests) == 1 and conn.session.requests[0][2]['params'] == {'limit': 2}


def test_find_image_by_name_that_several_images_have_lists_the_ids():
    body = {'images': [{'id': 'b-id', 'name': 'cirros'}, {'id': 'a-id', 'name': 'cirros'}]}
    api = make_api(connection(responses=[FakeResponse(200, body=body)]))[0]
    with pytest.raises(errors.AmbiguousImageError, match="2 images are named 'cirros': a-id, b-id"):
        api.find_image('cirros')


def test_find_image_by_id_falls_back_to_a_name_that_looks_like_an_id():
    uuid = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'
    responses = [FakeResponse(404, text='not found'),
                 FakeResponse(200, body={'images': [{'id': 'other', 'name': uuid}]})]
    api = make_api(connection(responses=responses))[0]
    assert api.find_image(uuid)['id'] == 'other'


def test_find_image_that_is_not_there_says_where_it_looked():
    conn = connection(responses=[FakeResponse(200, body={'images': []}), FakeResponse(200, body={'images': []})])
    api = make_api(conn)[0]
    with pytest.raises(errors.NotFoundError, match="No image with name or id 'nope' is visible .* %s" % ENDPOINT):
        api.find_image('nope')
    assert [request[1] for request in conn.session.requests] == [
        ENDPOINT + '/v2/images', ENDPOINT + '/v2/images']
    assert conn.session.requests[1][2]['params'] == {'name': 'nope', 'os_hidden': 'true', 'limit': 1000}


def test_find_image_finds_a_hidden_image_by_name():
    """Glance leaves hidden images out of a listing unless os_hidden=true."""
    conn = connection(responses=[FakeResponse(200, body={'images': []}),
                                 FakeResponse(200, body={'images': [{'id': 'h-id', 'name': 'golden'}]})])
    api = make_api(conn)[0]
    assert api.find_image('golden')['id'] == 'h-id'


@pytest.mark.parametrize('catalog, root', [
    ('http://glance.test:9292', 'http://glance.test:9292/v2'),
    ('http://glance.test:9292/', 'http://glance.test:9292/v2'),
    ('https://cloud.test/image', 'https://cloud.test/image/v2'),
    ('https://cloud.test/image/v2/', 'https://cloud.test/image/v2'),
])
def test_v2_root_is_built_from_the_catalog_endpoint(catalog, root):
    api = make_api(connection(endpoint=catalog))[0]
    assert api.base_url == root
