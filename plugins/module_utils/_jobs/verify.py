# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The image_verify job: a file or block device checked against a Glance
image or given expectations, in one read pass (see ``_trust.verification``).

Private to the collection; not a public API.
"""

from __future__ import annotations

from typing import Any, Dict, List, Union

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust
from ansible_collections.osimage.glance.plugins.module_utils._trust.verification import (
    CHECK_ORDER, Expectations, Verification, certificate_store)

EXPLICIT_OPTIONS = ('checksum', 'hash_algo', 'hash_value', 'disk_format') + trust.SIGNATURE_PROPERTIES
# Glance image states whose data (and digests) exist.
STATES_WITH_DATA = ('active', 'deactivated')


def signature_required(params: Dict[str, Any]) -> Union[bool, str]:
    """require_signature as given, else whether checks asks for the signature
    check by name (an audit that lists it must not pass an unsigned image)."""
    if params['require_signature'] is not None:
        return params['require_signature']
    if 'signature' in (params['checks'] or ()):
        return 'checks lists signature; give require_signature=false to accept an unsigned image'
    return False


def choose_checks(params: Dict[str, Any], exp: Expectations, explicit_mode: bool,
                  required: Union[bool, str]) -> List[str]:
    """The checks to run: those asked for (each must have something to
    compare with), or every one that applies; ``required``: whether a
    signature is required (``signature_required``)."""
    signature_applies = (not explicit_mode or any(exp.signature_props.values()) or required
                         or bool(params['trusted_certificates']))
    if params['checks'] is None:
        wanted = set(['format'])
        if exp.digests:
            wanted.add('checksum')
        if signature_applies:
            wanted.add('signature')
    else:
        wanted = set(params['checks'])
        if 'checksum' in wanted and not exp.digests:
            raise errors.VerificationError(
                'checks includes checksum, but there is no expected digest to compare with: give image, or '
                'checksum or hash_algo and hash_value.', check='checksum')
    return [check for check in CHECK_ORDER if check in wanted]


def run(module: GlanceModule, api: GlanceAPI) -> Dict[str, Any]:
    """Verify params['path'] in one read; the module's result."""
    params = module.params
    path = params['path']
    explicit_mode = not params['image']
    if explicit_mode:
        exp = Expectations.from_params(params)
        what = path
    else:
        exp = Expectations.from_image(api.find_image(params['image']), STATES_WITH_DATA)
        what = '%s (image %s)' % (path, exp.image['id'])
    required = signature_required(params)
    checks = choose_checks(params, exp, explicit_mode, required)

    # Everything that can fail without the data fails before reading it.
    verification = Verification.prepare(
        what, exp, checks, certificate_store(api), certificate_path=params['certificate_path'],
        trusted_certificates=params['trusted_certificates'], require_signature=required,
        allowed_formats=params['allowed_formats'], max_virtual_size=params['max_virtual_size'])
    rpass = stream.read_pass(path, verification.start(), block_limit=exp.size)

    # No "path" key: Ansible would overwrite "size" with the file's stat (0 for a device).
    result = dict(changed=False, size=rpass.size, digests=rpass.hexdigests(), image=exp.describe_image())
    try:
        result.update(verification.evaluate(rpass, path))
    except errors.VerificationError as exc:
        exc.details.update(size=result['size'], digests=result['digests'], image=result['image'])
        raise
    return result
