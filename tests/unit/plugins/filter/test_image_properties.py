# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.osimage.glance.plugins.filter.image_properties import FilterModule, image_properties

# An image record as Glance v2 returns it (GET /v2/images/{id}).
RECORD = {
    'id': '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5', 'name': 'debian-12', 'status': 'active', 'visibility': 'shared',
    'protected': False, 'os_hidden': False, 'checksum': 'c' * 32, 'os_hash_algo': 'sha512',
    'os_hash_value': 'a' * 128, 'owner': 'p' * 32, 'size': 1024, 'virtual_size': 4096, 'min_ram': 512,
    'min_disk': 2, 'disk_format': 'qcow2', 'container_format': 'bare', 'created_at': '2026-01-01T00:00:00Z',
    'updated_at': '2026-01-01T00:00:00Z', 'tags': ['golden'], 'self': '/v2/images/0b4a', 'file': '/v2/images/0b4a/file',
    'schema': '/v2/schemas/image', 'stores': 'fast,slow', 'direct_url': None, 'locations': [],
    'os_glance_importing_to_stores': '', 'os_glance_failed_import': '', 'os_glance_import_task': 'x',
    'img_signature': 'c2ln', 'img_signature_hash_method': 'SHA-256', 'img_signature_key_type': 'RSA-PSS',
    'img_signature_certificate_uuid': 'u', 'hw_disk_bus': 'scsi', 'os_distro': 'debian',
    'owner_specified.openstack.md5': 'm', 'kernel_id': 'k',
}


def test_only_custom_properties_remain():
    assert image_properties(RECORD) == {
        'hw_disk_bus': 'scsi', 'os_distro': 'debian', 'owner_specified.openstack.md5': 'm', 'kernel_id': 'k'}


def test_signature_kept_on_request():
    kept = image_properties(RECORD, keep_signature=True)
    assert kept['img_signature'] == 'c2ln'
    assert kept['img_signature_certificate_uuid'] == 'u'
    assert 'os_glance_import_task' not in kept


def test_drop_names_and_prefixes():
    assert image_properties(RECORD, drop=['kernel_id'], drop_prefixes=['owner_specified.']) == {
        'hw_disk_bus': 'scsi', 'os_distro': 'debian'}


def test_values_become_glance_strings():
    assert image_properties({'name': 'x', 'hw_vif_multiqueue_enabled': True, 'hw_cpu_cores': 2, 'gone': None}) == {
        'hw_vif_multiqueue_enabled': 'true', 'hw_cpu_cores': '2'}


def test_not_a_record_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match='needs a Glance image record'):
        image_properties(['not', 'a', 'dict'])


def test_registered_under_its_name():
    assert FilterModule().filters()['image_properties'] is image_properties


def test_an_upload_claim_is_never_copied():
    record = dict(RECORD, osimage_glance_claim='0123456789ab.42@host1:1796400000')
    assert 'osimage_glance_claim' not in image_properties(record)
    assert 'osimage_glance_claim' not in image_properties(record, keep_signature=True)
