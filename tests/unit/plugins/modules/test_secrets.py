# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""No secret reaches syslog/journald or the module's output, for every
module: once with valid arguments (each run goes on to Keystone, which
rejects the password) and once failing argument validation.

The real module stack runs - AnsibleModule, openstacksdk's config loader and
keystoneauth - with two boundaries faked: syslog (what AnsibleModule.log
finally writes; the journal is turned off so every message goes there) and
the HTTP transport, where a small Keystone answers version discovery and
refuses every token request with 401."""

from __future__ import annotations

import json
import syslog

import pytest
import requests

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.osimage.glance.plugins.modules import image_convert, image_fetch, image_share
from ansible_collections.osimage.glance.plugins.modules import image_upload, image_verify

KEYSTONE = 'http://keystone.test:5000/v3'
# Unique markers, with the characters that are escaped in a repr or JSON.
PASSWORD = 'Marker-pw-7f3a\'q"b\\s'
MEMBER_PASSWORD = 'Marker-member-91c4'
SECRET = 'Marker-appcred-5d2e'
PASSPHRASE = 'Marker-passphrase-c81b'
MARKERS = ('Marker-pw-7f3a', MEMBER_PASSWORD, SECRET, PASSPHRASE)


def cloud(password=PASSWORD, username='demo'):
    return {'auth': {'auth_url': KEYSTONE, 'username': username, 'password': password, 'project_name': 'demo',
                     'user_domain_name': 'Default', 'project_domain_name': 'Default'},
            'region_name': 'RegionOne'}


class FakeKeystone(object):
    """Keystone at the HTTP transport: version discovery, and 401 for every
    token request (whose bodies it keeps, to show the password got there)."""

    def __init__(self):
        self.token_requests = []

    def send(self, request, **kwargs):
        response = requests.Response()
        response.url = request.url
        response.request = request
        response.headers['Content-Type'] = 'application/json'
        if request.method == 'POST' and request.url.endswith('/auth/tokens'):
            self.token_requests.append(request.body.decode('utf-8') if isinstance(request.body, bytes)
                                       else request.body)
            response.status_code, response.reason = 401, 'Unauthorized'
            body = {'error': {'code': 401, 'title': 'Unauthorized',
                              'message': 'The request you have made requires authentication.'}}
        elif request.method == 'GET' and request.url.rstrip('/') == KEYSTONE:
            response.status_code, response.reason = 200, 'OK'
            body = {'version': {'id': 'v3.14', 'status': 'stable', 'updated': '2020-04-07T00:00:00Z',
                                'links': [{'rel': 'self', 'href': KEYSTONE + '/'}],
                                'media-types': [{'base': 'application/json',
                                                 'type': 'application/vnd.openstack.identity-v3+json'}]}}
        else:
            response.status_code, response.reason = 404, 'Not Found'
            body = {'error': {'code': 404, 'message': 'not here', 'title': 'Not Found'}}
        response._content = json.dumps(body).encode('utf-8')  # pylint: disable=protected-access
        return response


@pytest.fixture
def keystone(monkeypatch):
    fake = FakeKeystone()
    # A bound method on the class: called without the adapter.
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", fake.send)
    return fake


@pytest.fixture
def syslogged(monkeypatch):
    """Every message the module writes to syslog."""
    messages = []
    monkeypatch.setattr(basic, 'has_journal', False)
    monkeypatch.setattr(basic, 'HAS_SYSLOG', True)
    monkeypatch.setattr(syslog, 'openlog', lambda *args, **kwargs: None)
    monkeypatch.setattr(syslog, 'syslog', lambda *args: messages.append(args[-1]))
    return messages


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out, err = capsys.readouterr()
    return out, err, json.loads(out)


def assert_no_marker(*texts):
    for text in texts:
        for marker in MARKERS:
            assert marker not in text


def assert_logged_invocation(messages):
    invoked = [message for message in messages if 'Invoked with' in message]
    assert invoked, messages
    # Names and URLs stay readable in the log line.
    assert KEYSTONE in invoked[0] and "'username': 'demo'" in invoked[0]


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / 'disk.raw'
    path.write_bytes(b'\0' * 65536)
    return path


@pytest.fixture
def encrypted_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / 'signer.pem'
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    return path


def cases(tmp_path, raw_file, key_path):
    """``(module, valid args, args failing validation)`` for every module."""
    dest = str(tmp_path / 'out.raw')
    signing = {'private_key': str(key_path), 'passphrase': PASSPHRASE, 'certificate': str(key_path)}
    member = {'cloud': cloud(MEMBER_PASSWORD, username='alt')}
    return [
        (image_fetch, dict(image='cirros', dest=dest, cloud=cloud()),
         dict(image='cirros', dest=dest, cloud=cloud(), verify_signature='maybe')),
        (image_verify, dict(path=str(raw_file), image='cirros', cloud=cloud()),
         dict(path=str(raw_file), image='cirros', cloud=cloud(), checks=['bogus'])),
        (image_upload, dict(name='marker-test', filename=str(raw_file), disk_format='raw', signing=signing,
                            cloud=cloud()),
         dict(name='marker-test', filename=str(raw_file), disk_format='raw', cloud=cloud(),
              signing=dict(signing, hash_method='MD5'))),
        (image_share, dict(image='cirros', members=[member], cloud=cloud()),
         dict(image='cirros', members=[dict(member, status='bogus')], cloud=cloud())),
        # A cloud that holds an application credential, given as module options.
        (image_share, dict(image='cirros', members=[{'project': 'alt'}], auth_type='v3applicationcredential',
                           auth={'auth_url': KEYSTONE, 'application_credential_id': 'ac-id-1',
                                 'application_credential_secret': SECRET}),
         dict(image='cirros', members=[{'project': 'alt'}], auth_type='v3applicationcredential',
              interface='bogus', auth={'auth_url': KEYSTONE, 'application_credential_id': 'ac-id-1',
                                       'application_credential_secret': SECRET})),
    ]


@pytest.mark.parametrize('index', range(5))
def test_no_secret_in_log_or_output_when_keystone_refuses(index, keystone, syslogged, capsys, tmp_path,
                                                          raw_file, encrypted_key):
    module, args, dummy = cases(tmp_path, raw_file, encrypted_key)[index]
    out, err, result = run(module, args, capsys)
    assert result['failed'] is True
    # The run got as far as Keystone, with the password.
    assert keystone.token_requests
    assert_no_marker(out, err, *syslogged)
    if 'cloud' in args:
        assert 'Marker-pw-7f3a' in keystone.token_requests[0]
        assert_logged_invocation(syslogged)
        # The message names the Keystone and the user, unmasked.
        assert 'Keystone at %s rejected the credentials of user demo' % KEYSTONE in result['msg']
        assert result['invocation']['module_args']['cloud']['auth']['username'] == 'demo'
    else:
        assert SECRET in keystone.token_requests[0]
        assert any('Invoked with' in message for message in syslogged)
        assert 'Keystone at %s rejected the credentials' % KEYSTONE in result['msg']
        assert result['invocation']['module_args']['auth']['application_credential_id'] == 'ac-id-1'
        assert result['invocation']['module_args']['auth']['auth_url'] == KEYSTONE


@pytest.mark.parametrize('index', range(5))
def test_no_secret_in_log_or_output_when_validation_fails(index, keystone, syslogged, capsys, tmp_path,
                                                          raw_file, encrypted_key):
    module, dummy, args = cases(tmp_path, raw_file, encrypted_key)[index]
    out, err, result = run(module, args, capsys)
    assert result['failed'] is True
    assert 'bogus' in result['msg'] or 'MD5' in result['msg'] or 'maybe' in result['msg']
    assert not keystone.token_requests
    assert_no_marker(out, err, *syslogged)
    module_args = result['invocation']['module_args']
    auth = module_args['cloud']['auth'] if module_args.get('cloud') else module_args['auth']
    assert auth['auth_url'] == KEYSTONE


def test_signing_key_path_stays_readable(keystone, syslogged, capsys, tmp_path, raw_file, encrypted_key):
    dummy, dummy, args = cases(tmp_path, raw_file, encrypted_key)[2]
    out, err, result = run(image_upload, args, capsys)
    assert result['invocation']['module_args']['signing']['private_key'] == str(encrypted_key)
    assert_no_marker(out, err, *syslogged)


def test_no_passphrase_in_log_or_output_of_image_convert(syslogged, capsys, tmp_path, raw_file):
    dest = tmp_path / 'out.qcow2'
    args = dict(src=str(raw_file), dest=str(dest), format='qcow2', encryption={'passphrase': PASSPHRASE, 'iter_time': 10})
    out, err, result = run(image_convert, args, capsys)
    assert result.get('failed') is not True, result.get('msg')
    assert dest.exists()
    assert_no_marker(out, err, *syslogged)
    assert any('Invoked with' in message and str(raw_file) in message for message in syslogged)
    bad = dict(args, encryption={'passphrase': PASSPHRASE, 'iter_time': 'often'}, subformat='bogus')
    out, err, result = run(image_convert, bad, capsys)
    assert result['failed'] is True
    assert_no_marker(out, err, *syslogged)


@pytest.mark.parametrize('value', [
    # As an ad-hoc run gives them: ``-a 'auth="auth_url=... password=..."'`` and JSON.
    'auth_url=%s username=demo password=Marker-pw-7f3a project_name=demo' % KEYSTONE,
    json.dumps(cloud()['auth']),
    # Neither parses: masked whole.
    '{"auth_url": "%s", "password": "Marker-pw-7f3a",' % KEYSTONE,
])
def test_no_secret_in_log_or_output_for_auth_given_as_a_string(value, keystone, syslogged, capsys, tmp_path):
    for extra in ({}, {'interface': 'bogus'}):
        out, err, result = run(image_fetch, dict(image='cirros', dest=str(tmp_path / 'x'), auth=value, **extra),
                               capsys)
        assert result['failed'] is True
        assert_no_marker(out, err, *syslogged)


def test_no_secret_in_log_or_output_for_cloud_given_as_a_json_string(keystone, syslogged, capsys, tmp_path):
    args = dict(image='cirros', dest=str(tmp_path / 'x'), cloud=json.dumps(cloud()))
    out, err, result = run(image_fetch, args, capsys)
    # Read as the dict it is: the password got to Keystone, the names stay readable.
    assert 'Marker-pw-7f3a' in keystone.token_requests[0]
    assert 'Keystone at %s rejected the credentials of user demo' % KEYSTONE in result['msg']
    assert_no_marker(out, err, *syslogged)
    out, err, result = run(image_fetch, dict(args, interface='bogus'), capsys)
    assert result['failed'] is True
    assert_no_marker(out, err, *syslogged)
