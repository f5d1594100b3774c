# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The cloud transport's own parts: module options to connection keyword
arguments, the server's reason in an error, what a failed connect says, and
the AnsiballZ payload kept off sys.path while connecting."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.osimage.glance.plugins.module_utils._openstack import session as _session
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors

AUTH_URL = 'http://keystone.test:5000/v3'


def test_named_cloud_maps_openstack_cloud_options_to_sdk_names():
    params = dict(cloud='prod', auth=None, auth_type=None, region_name='RegionTwo', validate_certs=False,
                  ca_cert='/ca.pem', client_cert=None, client_key=None, api_timeout=30, interface='internal')
    assert _session.connection_kwargs(params) == dict(
        cloud='prod', region_name='RegionTwo', verify=False, cacert='/ca.pem', api_timeout=30,
        interface='internal')


def test_cloud_dict_is_passed_through_with_the_interface():
    params = dict(cloud={'auth': {'auth_url': AUTH_URL}}, interface='public')
    assert _session.connection_kwargs(params) == {'auth': {'auth_url': AUTH_URL}, 'interface': 'public'}


def test_cloud_dict_given_as_json_is_read_as_a_dict():
    params = dict(cloud='{"auth": {"auth_url": "%s"}}' % AUTH_URL, interface='public')
    assert _session.connection_kwargs(params) == {'auth': {'auth_url': AUTH_URL}, 'interface': 'public'}
    with pytest.raises(errors.CloudConfigError, match='not valid JSON'):
        _session.connection_kwargs(dict(cloud='{"auth": ', interface='public'))


def test_cloud_dict_with_options_beside_it_names_them():
    params = dict(cloud={'auth': {}}, region_name='r', api_timeout=3, interface='public')
    with pytest.raises(errors.CloudConfigError, match='api_timeout, region_name must go inside that dict'):
        _session.connection_kwargs(params)


def test_cloud_of_another_type_is_refused():
    with pytest.raises(errors.CloudConfigError, match='not list'):
        _session.connection_kwargs(dict(cloud=['a']))


@pytest.fixture
def no_clouds_yaml(tmp_path, monkeypatch):
    """No clouds.yaml anywhere openstacksdk looks, and no OS_* settings."""
    for name in list(os.environ):
        if name.startswith('OS_'):
            monkeypatch.delenv(name)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'config'))
    monkeypatch.chdir(tmp_path)


def _connect_error(params):
    session = _session.Session.from_params(dict(dict(cloud=None, auth=None, interface='public'), **params))
    with pytest.raises(errors.CloudConfigError) as caught:
        session.conn  # pylint: disable=pointless-statement
    return caught.value.msg


def test_no_cloud_at_all_says_what_to_set(no_clouds_yaml):
    msg = _connect_error({})
    assert 'Auth plugin requires' not in msg
    assert 'the option cloud is not set, OS_CLOUD is not set' in msg
    assert 'export OS_CLOUD' in msg and 'auth_url' in msg


def test_auth_without_auth_url_names_the_option(no_clouds_yaml):
    msg = _connect_error(dict(auth=dict(username='alice', password='s3cret-marker')))
    assert msg.startswith('The option auth lacks auth_url.')
    assert 's3cret-marker' not in msg


def test_os_cloud_without_a_clouds_yaml_names_the_cloud(no_clouds_yaml, monkeypatch):
    monkeypatch.setenv('OS_CLOUD', 'prod')
    msg = _connect_error({})
    assert "The cloud 'prod' (from OS_CLOUD) has no auth_url" in msg
    assert 'clouds.yaml' in msg


def test_connecting_leaves_the_ansiballz_payload_off_sys_path(monkeypatch):
    """stevedore keys its entry-point cache by sys.path: the payload's
    per-run path must not be part of it while the auth plugin is loaded."""
    payload = '/tmp/ansible_image_fetch_payload_x/ansible_image_fetch_payload.zip'
    monkeypatch.setattr(sys, 'path', ['/usr/lib/python3', payload, '/venv/site-packages'])
    monkeypatch.setattr(_session, '_own_archive', lambda: payload)
    seen = []

    class FakeRegion(object):
        def get_session(self):
            seen.append(list(sys.path))
            return 'session'

    class FakeConfigModule(object):
        @staticmethod
        def get_cloud_region(**kwargs):
            seen.append(list(sys.path))
            return FakeRegion()

    monkeypatch.setattr(_session, 'sdk', lambda: {'config': FakeConfigModule})
    conn = _session.connect_cloud(cloud='demo')
    assert conn.session == 'session'
    assert seen == [['/usr/lib/python3', '/venv/site-packages']] * 2
    assert sys.path == ['/usr/lib/python3', payload, '/venv/site-packages']


def test_sys_path_is_restored_when_connecting_fails(monkeypatch):
    payload = '/tmp/payload.zip'
    monkeypatch.setattr(sys, 'path', [payload, '/venv/site-packages'])
    with pytest.raises(RuntimeError):
        with _session.payload_off_sys_path(payload):
            assert payload not in sys.path
            raise RuntimeError('refused')
    assert sys.path == [payload, '/venv/site-packages']
