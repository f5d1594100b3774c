# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The module runner: the common options, the missing-library check, and the
one place where domain errors become ``fail_json``.

Private to the collection; not a public API.
"""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.osimage.glance.plugins.module_utils import _cloud
from ansible_collections.osimage.glance.plugins.module_utils import _process
from ansible_collections.osimage.glance.plugins.module_utils._errors import OsimageError


# Keys whose values are secrets wherever they appear, e.g. the password inside
# a ``cloud`` dict (which, like openstack.cloud's, is not no_log as a whole so
# that cloud names stay readable in the output).
_SECRET_KEY_RE = re.compile(r'password|secret|token|passphrase|private_key', re.IGNORECASE)


def secret_values(value, secret=False):
    """Every string held under a secret-looking key in nested dicts/lists."""
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= secret_values(item, secret or bool(_SECRET_KEY_RE.search(str(key))))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= secret_values(item, secret)
    elif secret and isinstance(value, str) and value:
        found.add(value)
    return found


class GlanceModule(object):
    """An AnsibleModule with the cloud options, run around one function.

    ``run(func)`` calls ``func(module, api)`` with this wrapper and a
    ``GlanceAPI`` and exits with the dict it returns; an ``OsimageError``
    raised anywhere below becomes one ``fail_json`` with its message. The
    ``GlanceAPI`` connects to the cloud only when first used, so work that
    needs no cloud never needs the SDK or credentials.
    """

    def __init__(self, argument_spec, cloud=True, **kwargs):
        """``cloud=False``: a module that never talks to a cloud; it takes no
        cloud options and ``run`` passes None for the API."""
        self.cloud = cloud
        spec = _cloud.cloud_argument_spec() if cloud else {}
        spec.update(argument_spec)
        self.ansible = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.ansible.params
        # Masked in everything the module returns, the logged invocation included.
        self.ansible.no_log_values.update(secret_values(self.params))
        # Every child process starts through this module's run_command.
        _process.bind(self.ansible)

    @property
    def check_mode(self):
        return self.ansible.check_mode

    def run(self, func):
        try:
            # Connects (and needs openstacksdk) only on first use of the cloud.
            api = _cloud.GlanceAPI.from_params(self.params) if self.cloud else None
            result = func(self, api)
        except OsimageError as exc:
            self.ansible.fail_json(msg=exc.msg, **exc.details)
        self.ansible.exit_json(**result)
