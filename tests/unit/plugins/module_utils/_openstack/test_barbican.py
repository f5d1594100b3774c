# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The lazy connection, and Barbican secrets over the same session, against
a fake openstacksdk connection (the boundary)."""

from __future__ import annotations

import base64

import pytest

from keystoneauth1 import exceptions as ka_exceptions

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance
from ansible_collections.osimage.glance.plugins.module_utils._openstack import session as _session
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import upload
from ansible_collections.osimage.glance.tests.unit.plugins.module_utils._openstack.connection_fakes import (
    GLANCE, FakeConnection as SharedConnection, FakeResponse)

BARBICAN = 'http://barbican.test:9311'
SECRET = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'


def connection(responses=(), catalog=None):
    """A connection whose catalog has Glance and Barbican (or ``catalog``)."""
    return SharedConnection(responses, catalog={'image': GLANCE, 'key-manager': BARBICAN} if catalog is None else catalog)


def test_connection_is_made_on_first_use_only():
    made = []

    def connect():
        made.append(1)
        return connection([FakeResponse(200, b'pem'), FakeResponse(200, b'again')])

    api = glance.GlanceAPI(connect=connect)
    assert made == []
    assert api.barbican.get_secret_payload(SECRET, 'Fetching') == b'pem'
    assert api.barbican.get_secret_payload(SECRET, 'Fetching') == b'again'
    assert made == [1]


def test_from_params_does_not_connect(monkeypatch):
    monkeypatch.setattr(_session, 'connect_cloud', lambda **kwargs: pytest.fail('connected'))
    api = glance.GlanceAPI.from_params({'cloud': 'demo', 'interface': 'public', 'api_retries': 2})
    assert api.session.retries == 2


def test_missing_sdk_is_reported_on_first_use(monkeypatch):
    monkeypatch.setattr(_session, 'HAS_SDK', False)
    monkeypatch.setattr(_session, 'SDK_IMPORT_ERROR', 'Traceback: no openstack')
    api = glance.GlanceAPI.from_params({'cloud': 'demo', 'interface': 'public'})
    with pytest.raises(errors.MissingLibraryError) as failure:
        api.find_image('cirros')
    assert 'openstacksdk' in failure.value.msg
    assert failure.value.details['exception'] == 'Traceback: no openstack'


def test_secret_payload_is_fetched_as_bytes_from_the_catalog_endpoint():
    conn = connection([FakeResponse(200, b'-----BEGIN CERTIFICATE-----')])
    api = glance.GlanceAPI(conn)
    assert api.barbican.get_secret_payload(SECRET, 'Fetching certificate') == b'-----BEGIN CERTIFICATE-----'
    method, url, kwargs = conn.session.requests[0]
    assert (method, url) == ('GET', '%s/v1/secrets/%s/payload' % (BARBICAN, SECRET))
    assert kwargs['headers'] == {'Accept': 'application/octet-stream'}


def test_catalog_endpoint_with_version_is_not_doubled():
    conn = connection([FakeResponse(200, b'x')], catalog={'key-manager': BARBICAN + '/v1/'})
    glance.GlanceAPI(conn).barbican.get_secret_payload(SECRET, 'Fetching')
    assert conn.session.requests[0][1] == '%s/v1/secrets/%s/payload' % (BARBICAN, SECRET)


def test_missing_secret_names_barbican_and_the_reason():
    conn = connection([FakeResponse(404, text='Not Found: Secret not found.')])
    with pytest.raises(errors.NotFoundError) as failure:
        glance.GlanceAPI(conn).barbican.get_secret_payload(SECRET, 'Fetching certificate %s' % SECRET)
    assert failure.value.msg == ('Fetching certificate %s: Barbican at %s found no such resource (HTTP 404): '
                                 'Not Found: Secret not found.' % (SECRET, BARBICAN))


def test_barbican_down_is_retried_then_named():
    refused = ka_exceptions.ConnectFailure('Connection refused')
    conn = connection([refused, refused, FakeResponse(200, b'x')])
    api = glance.GlanceAPI(conn, retries=2, sleep=lambda seconds: None)
    assert api.barbican.get_secret_payload(SECRET, 'Fetching') == b'x'
    conn = connection([refused] * 3)
    api = glance.GlanceAPI(conn, retries=2, sleep=lambda seconds: None)
    with pytest.raises(errors.ServiceUnavailableError, match='could not reach Barbican at %s after 3' % BARBICAN):
        api.barbican.get_secret_payload(SECRET, 'Fetching')


def test_no_key_manager_in_the_catalog_is_a_config_error():
    api = glance.GlanceAPI(connection(catalog={'image': 'http://glance.test:9292'}))
    with pytest.raises(errors.CloudConfigError, match='no key-manager \\(Barbican\\) endpoint'):
        api.barbican.get_secret_payload(SECRET, 'Fetching')


PEM = b'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
OTHER = '1c4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'


def listing(*uuids):
    return FakeResponse(200, body={'secrets': [{'secret_ref': '%s/v1/secrets/%s' % (BARBICAN, uuid)} for uuid in uuids]})


def test_a_certificate_with_the_same_name_and_payload_is_reused():
    conn = connection([listing(OTHER, SECRET), FakeResponse(200, b'other pem'), FakeResponse(200, PEM)])
    api = glance.GlanceAPI(conn)
    assert upload.ensure_certificate(api.barbican, 'cert-1', PEM, check_mode=False) == (False, SECRET)
    method, url, kwargs = conn.session.requests[0]
    assert (method, url) == ('GET', '%s/v1/secrets' % BARBICAN)
    assert kwargs['params'] == {'name': 'cert-1', 'secret_type': 'certificate', 'limit': 100}
    assert [request[0] for request in conn.session.requests] == ['GET', 'GET', 'GET']


def test_check_mode_predicts_a_new_certificate_and_creates_nothing():
    conn = connection([listing(OTHER), FakeResponse(200, b'other pem')])
    api = glance.GlanceAPI(conn)
    assert upload.ensure_certificate(api.barbican, 'cert-1', PEM, check_mode=True) == (True, None)
    assert [request[0] for request in conn.session.requests] == ['GET', 'GET']


def test_a_new_certificate_is_stored_the_way_glance_reads_it():
    created = FakeResponse(201, body={'secret_ref': '%s/v1/secrets/%s' % (BARBICAN, SECRET)})
    conn = connection([listing(), created])
    api = glance.GlanceAPI(conn)
    assert upload.ensure_certificate(api.barbican, 'cert-1', PEM, check_mode=False) == (True, SECRET)
    method, url, kwargs = conn.session.requests[1]
    assert (method, url) == ('POST', '%s/v1/secrets' % BARBICAN)
    assert kwargs['json'] == {'name': 'cert-1', 'secret_type': 'certificate',
                              'payload': base64.b64encode(PEM).decode('ascii'),
                              'payload_content_type': 'application/octet-stream',
                              'payload_content_encoding': 'base64'}
