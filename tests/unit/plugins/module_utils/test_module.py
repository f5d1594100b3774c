# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The module runner: secrets inside dict options never reach the output."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils import _module
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors


def test_secret_values_finds_secrets_at_any_depth_only_under_secret_keys():
    value = {'cloud': {'auth': {'username': 'demo', 'password': 'hunter2', 'project_name': 'demo',
                                'auth_url': 'http://keystone.test/v3'},
                       'region_name': 'RegionOne', 'auth_type': 'token'},
             'members': [{'project': 'alt', 'cloud': {'auth': {'application_credential_secret': 's3cr3t',
                                                               'application_credential_id': 'ac1'}}}],
             'signing': {'passphrase': 'open sesame', 'private_key': '/keys/signer.pem'},
             'oidc': {'client_secret': 'cs', 'access_token_endpoint': 'http://idp.test/token', 'token': 'tk',
                      'access_token_type': 'Bearer', 'passcode': 123456, 'os_pass': 'op'},
             'token': None}
    assert _module.secret_values(value) == {'hunter2', 's3cr3t', 'open sesame', 'cs', 'tk', '123456', 'op'}


def test_secret_values_holds_the_escaped_forms_of_a_secret():
    secret = 'a\'b"c\\d'
    found = _module.secret_values({'auth': {'password': secret}})
    # As it shows in the repr of a dict (the logged invocation) and in JSON.
    assert repr({'password': secret}).split(': ', 1)[1][1:-2] in found
    assert json.dumps(secret)[1:-1] in found
    assert secret in found


@pytest.mark.parametrize('text', [
    'auth_url=http://keystone.test/v3 username=demo password=hunter2',
    '{"auth": {"auth_url": "http://keystone.test/v3", "password": "hunter2"}}',
])
def test_secret_values_reads_dicts_given_as_strings(text):
    assert _module.secret_values({'cloud': text}) >= {'hunter2', text}


def test_secret_values_masks_a_secret_bearing_string_that_does_not_parse_whole():
    text = '{"auth_url": "http://keystone.test/v3", "password": "hunter2"'
    assert text in _module.secret_values({'auth': text})
    # A plain name is no secret.
    assert _module.secret_values({'cloud': 'devstack', 'name': 'password-reset-image'}) == set()


def test_password_inside_a_cloud_dict_is_masked_in_the_result(capsys):
    def fail(module, api):
        raise errors.CloudConfigError('cannot connect as %s' % module.params['cloud']['auth']['password'])

    args = {'cloud': {'auth': {'auth_url': 'http://keystone.test/v3', 'password': 'hunter2'}}}
    with patch_module_args(args):
        module = _module.GlanceModule(argument_spec={})
        with pytest.raises(SystemExit):
            module.run(fail)
    output = capsys.readouterr().out
    result = json.loads(output)
    assert 'hunter2' not in output
    assert result['failed'] is True
    assert result['invocation']['module_args']['cloud']['auth']['auth_url'] == 'http://keystone.test/v3'


def test_auth_url_and_user_stay_readable_in_a_message_when_auth_is_given(capsys):
    def fail(module, api):
        auth = module.params['auth']
        raise errors.AuthenticationError('Keystone at %s rejected the credentials of user %s'
                                         % (auth['auth_url'], auth['username']))

    args = {'auth': {'auth_url': 'http://keystone.test/v3', 'username': 'demo', 'password': 'hunter2'}}
    with patch_module_args(args):
        module = _module.GlanceModule(argument_spec={})
        with pytest.raises(SystemExit):
            module.run(fail)
    output = capsys.readouterr().out
    assert 'hunter2' not in output
    assert json.loads(output)['msg'] == 'Keystone at http://keystone.test/v3 rejected the credentials of user demo'


def run_with(args, argument_spec, capsys, **kwargs):
    ran = []
    with patch_module_args(args):
        module = _module.GlanceModule(argument_spec=argument_spec, **kwargs)
        with pytest.raises(SystemExit):
            module.run(lambda module, api: ran.append(True) or {'changed': False})
    return json.loads(capsys.readouterr().out), ran


def test_numbers_below_their_minimum_are_refused_before_the_run(capsys):
    spec = {'timeout': {'type': 'int', 'default': 3600},
            'limits': {'type': 'dict', 'default': {}, 'options': {'cpu_time': {'type': 'int', 'default': 0}}}}
    bounds = {'timeout': (0, '0 means no limit'), 'limits.cpu_time': (0, None)}
    result, ran = run_with({'timeout': -5, 'limits': {'cpu_time': -1}, 'api_retries': -1}, spec, capsys,
                           bounds=bounds)
    assert result['failed'] is True and ran == []
    assert result['msg'] == ('api_retries is -1 but must be 0 or more (0 means no retries); limits.cpu_time is -1 '
                             'but must be 0 or more; timeout is -5 but must be 0 or more (0 means no limit). '
                             'Nothing was done.')
    assert result['bad_options'] == ['api_retries', 'limits.cpu_time', 'timeout']


def test_zero_and_the_defaults_pass_and_a_zero_api_timeout_does_not(capsys):
    spec = {'timeout': {'type': 'int', 'default': 3600}}
    result, ran = run_with({'timeout': 0}, spec, capsys, bounds={'timeout': (0, None)})
    assert ran == [True] and 'failed' not in result
    result, ran = run_with({'api_timeout': 0}, spec, capsys)
    assert ran == [] and 'api_timeout is 0 but must be 1 or more' in result['msg']
    result, ran = run_with({}, {}, capsys, cloud=False)
    assert ran == [True]


@pytest.mark.parametrize('diff', [True, False])
def test_the_module_tells_diff_mode_and_carries_warnings(capsys, diff):
    seen = []

    def job(module, api):
        seen.append(module.diff_mode)
        module.warn('the image is old')
        return {'changed': False}

    with patch_module_args({'_ansible_diff': diff}):
        module = _module.GlanceModule({}, cloud=False)
        with pytest.raises(SystemExit):
            module.run(job)
    result = json.loads(capsys.readouterr().out)
    assert seen == [diff]
    # A plain string up to ansible-core 2.18, a structured warning from 2.19 on.
    assert len(result['warnings']) == 1 and 'the image is old' in json.dumps(result['warnings'][0])


@pytest.mark.parametrize('changed', [True, False])
def test_a_job_returning_changed_and_result_exits_with_both(capsys, changed):
    with patch_module_args({}):
        module = _module.GlanceModule({}, cloud=False)
        with pytest.raises(SystemExit):
            module.run(lambda module, api: (changed, {'id': 'i1'}))
    result = json.loads(capsys.readouterr().out)
    assert result['changed'] is changed and result['id'] == 'i1'
