# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""What image_convert's options ask qemu-img to create (the module's
behaviour is tested in tests/unit/plugins/modules/test_image_convert.py)."""

from __future__ import annotations

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import convert


def params(**given):
    base = dict(format='raw', subformat=None, compress=False, encryption=None, options={})
    base.update(given)
    return base


def test_vhd_keeps_the_exact_size_unless_told_otherwise():
    assert convert.Output(params(format='vhd')).options == {'force_size': True}
    assert convert.Output(params(format='vhd', options={'force_size': False})).options == {'force_size': False}
    assert convert.Output(params(format='vhd')).qemu_format == 'vpc'


def test_encryption_options_name_the_secret_and_never_hold_the_passphrase():
    encryption = dict(passphrase='words', cipher_alg='aes-256', cipher_mode=None, ivgen_alg=None, hash_alg=None,
                      iter_time=10)
    qcow2 = convert.Output(params(format='qcow2', encryption=encryption))
    assert qcow2.options == {'encrypt.format': 'luks', 'encrypt.key-secret': convert.SECRET_ID,
                             'encrypt.cipher-alg': 'aes-256', 'encrypt.iter-time': 10}
    raw = convert.Output(params(format='raw', encryption=encryption))
    assert raw.qemu_format == 'luks' and raw.inspector_format == 'luks' and raw.fully_allocated
    assert raw.options == {'key-secret': convert.SECRET_ID, 'cipher-alg': 'aes-256', 'iter-time': 10}
    assert 'words' not in repr(qcow2.options) + repr(raw.options)


@pytest.mark.parametrize('given, allocated', [
    (params(format='qcow2'), False),
    (params(format='qcow2', options={'preallocation': 'full'}), True),
    (params(format='vdi', options={'static': True}), True),
    (params(format='vhdx', subformat='fixed'), True),
])
def test_fully_allocated_outputs_are_known(given, allocated):
    assert convert.Output(given).fully_allocated is allocated


def test_a_size_option_is_refused():
    with pytest.raises(errors.InvalidOptionsError, match="options.size is not allowed: the virtual size is the"):
        convert.Output(params(options={'size': '1G'}))
