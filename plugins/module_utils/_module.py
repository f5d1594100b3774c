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

import json
import re
from typing import Any, Callable, Dict, NoReturn, Optional, Set, Tuple

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance as _glance
from ansible_collections.osimage.glance.plugins.module_utils._openstack import session as _session
from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._errors import InvalidOptionsError, OsimageError


# Keys whose values are secrets wherever they appear: the password inside a
# ``cloud`` dict or ``auth`` (neither is no_log as a whole, so that auth_url,
# user, project and domain names stay readable in messages), a token, an
# application credential's or OIDC client's secret, a passphrase. Under such a
# key everything is secret.
_SECRET_KEY_RE = re.compile(r'passw(?:or)?d|passphrase|passcode|secret|token|api_key|(?:^|[-_])pass$', re.IGNORECASE)
# ...but not what names, locates or types one: token_endpoint, secret_id,
# auth_type, a signing key's path.
_READABLE_KEY_RE = re.compile(r'(?:^|[-_])(?:url|uri|endpoint|type|id|uuid|name|path|file|ref)$', re.IGNORECASE)
# A string that holds a secret in dict form (JSON or key=value, e.g. an
# ad-hoc ``-a 'cloud={"auth": ...}'``) but does not parse: masked whole.
_SECRET_IN_TEXT_RE = re.compile(r'(?:passw(?:or)?d|passphrase|passcode|secret|token|api_key|pass)["\']?\s*[:=]',
                                re.IGNORECASE)


def _is_secret_key(key):
    key = str(key)
    return bool(_SECRET_KEY_RE.search(key)) and not _READABLE_KEY_RE.search(key)


def _parsed_dict(text):
    """``text`` as a dict the way AnsibleModule's ``type='dict'`` reads a
    string (JSON or key=value), or None."""
    if not (text.lstrip().startswith('{') or '=' in text):
        return None
    try:
        value = check_type_dict(text.strip())
    except Exception:  # pylint: disable=broad-except
        return None
    return value if isinstance(value, dict) else None


def _with_escaped_forms(values):
    """Each secret and the forms it takes inside a longer string: the repr
    of a dict (the logged "Invoked with" line) and JSON (a dict given as a
    JSON string), where quotes and backslashes are escaped."""
    forms = set()
    for value in values:
        forms.update((value, repr(value)[1:-1], json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]))
    forms.discard('')
    return forms


def secret_values(value: Any) -> Set[str]:
    """Every value held under a secret-looking key in nested dicts/lists (and
    in strings that are dicts in JSON or key=value form), with the escaped
    forms it takes inside longer strings."""
    return _with_escaped_forms(_secrets(value, False))


def _secrets(value, secret):
    found = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found |= _secrets(item, secret or _is_secret_key(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= _secrets(item, secret)
    elif isinstance(value, str):
        if secret and value:
            found.add(value)
        else:
            parsed = _parsed_dict(value)
            inner = _secrets(parsed, False) if parsed is not None else set()
            if inner or (parsed is None and _SECRET_IN_TEXT_RE.search(value)):
                # The string itself too: it is the raw form that a failed
                # validation prints and that a parser other than ours reads.
                found |= inner | {value}
    elif secret and isinstance(value, (int, float)) and not isinstance(value, bool):
        # A password written as a number in YAML; it is logged as text.
        found.add(str(value))
    return found


# Lower bounds of the cloud options (AnsibleModule's argument spec has none).
CLOUD_BOUNDS = {'api_timeout': (1, 'seconds to wait for one API response'),
                'api_retries': (0, '0 means no retries')}


def check_bounds(params: Dict[str, Any], bounds: Dict[str, Tuple[int, str]]) -> None:
    """Refuse numeric options below their minimum, all in one message.

    ``bounds`` maps an option (``limits.timeout`` for a suboption) to
    ``(minimum, hint)``; the hint says what the smallest values mean. A
    negative timeout or size is otherwise taken and fails later with a
    confusing message, possibly after something was created."""
    problems, bad = [], []
    for path in sorted(bounds):
        minimum, hint = bounds[path]
        value = params
        for part in path.split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
            problems.append('%s is %s but must be %s or more%s' % (path, value, minimum,
                                                                   ' (%s)' % hint if hint else ''))
            bad.append(path)
    if problems:
        raise InvalidOptionsError('%s. Nothing was done.' % '; '.join(problems), bad_options=bad)


class _SecretsFirstModule(AnsibleModule):
    """An AnsibleModule that knows every secret in its arguments before it
    validates or logs them.

    AnsibleModule logs "Invoked with ..." to syslog/journald and prints
    ``invocation.module_args`` on a validation error, masking only the values
    of no_log options, and those only once validation has found them. Every
    ansible-core from 2.16 to 2.21 reads the raw arguments in ``_load_params``
    after creating ``no_log_values`` and before anything else, so the secrets
    are added right there.
    """

    def _load_params(self):
        super(_SecretsFirstModule, self)._load_params()
        self.no_log_values.update(secret_values(self.params))


class GlanceModule(object):
    """An AnsibleModule with the cloud options, run around one function.

    ``run(func)`` calls ``func(module, api)`` with this wrapper and a
    ``GlanceAPI`` and exits with the dict it returns (or, from a job's
    ``ensure_*`` function, ``(changed, result)``); an ``OsimageError``
    raised anywhere below becomes one ``fail_json`` with its message. The
    ``GlanceAPI`` connects to the cloud only when first used, so work that
    needs no cloud never needs the SDK or credentials.
    """

    def __init__(self, argument_spec: Dict[str, Dict[str, Any]], cloud: bool = True, bounds: Optional[Dict[str, Tuple[int, str]]] = None,
            **kwargs: Any) -> None:
        """``cloud=False``: a module that never talks to a cloud; it takes no
        cloud options and ``run`` passes None for the API. ``bounds``: the
        minimums of numeric options (see ``check_bounds``)."""
        self.cloud = cloud
        self.bounds = dict(CLOUD_BOUNDS if cloud else {}, **(bounds or {}))
        spec = _session.cloud_argument_spec() if cloud else {}
        spec.update(argument_spec)
        self.ansible = _SecretsFirstModule(argument_spec=spec, **kwargs)
        self.params = self.ansible.params
        # Every child process starts through this module's run_command.
        qemu.bind(self.ansible)

    # -- what a module may use of AnsibleModule: nothing reaches into it -------
    @property
    def check_mode(self) -> bool:
        return self.ansible.check_mode

    @property
    def diff_mode(self) -> bool:
        """Whether the user asked for a diff (``--diff``)."""
        return bool(self.ansible._diff)  # pylint: disable=protected-access

    def warn(self, warning: str) -> None:
        """A warning shown with the task's result."""
        self.ansible.warn(warning)

    def atomic_move(self, src: str, dest: str, **kwargs: Any) -> None:
        """Rename ``src`` over ``dest`` atomically, keeping dest's attributes."""
        self.ansible.atomic_move(src, dest, **kwargs)

    def set_file_attributes(self, path: str, changed: bool, diff: dict | None = None) -> bool:
        """Apply the file options (mode, owner, group, SELinux context) to
        ``path``; ``changed`` or-ed with whether they changed anything."""
        file_args = self.ansible.load_file_common_arguments(self.params, path=path)
        return self.ansible.set_fs_attributes_if_different(file_args, changed, diff=diff)

    def run(self, func: Callable[[GlanceModule, Optional[_glance.GlanceAPI]], Dict[str, Any]]) -> NoReturn:
        try:
            # With the argument validation: before anything is done.
            check_bounds(self.params, self.bounds)
            # Connects (and needs openstacksdk) only on first use of the cloud.
            api = _glance.GlanceAPI.from_params(self.params) if self.cloud else None
            result = func(self, api)
            if isinstance(result, tuple):
                changed, result = result
                result['changed'] = changed
        except OsimageError as exc:
            self.ansible.fail_json(msg=exc.msg, **exc.details)
        self.ansible.exit_json(**result)
