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
    value = {'cloud': {'auth': {'username': 'demo', 'password': 'hunter2', 'project_name': 'demo'},
                       'region_name': 'RegionOne'},
             'members': [{'project': 'alt', 'cloud': {'auth': {'application_credential_secret': 's3cr3t'}}}],
             'signing': {'passphrase': 'open sesame', 'private_key': '/keys/signer.pem'},
             'token': None}
    assert _module.secret_values(value) == {'hunter2', 's3cr3t', 'open sesame', '/keys/signer.pem'}


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
