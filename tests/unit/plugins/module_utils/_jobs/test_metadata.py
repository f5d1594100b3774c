# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Image metadata against Glance's image schema: the checks made before any
byte moves, and the JSON patches."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import claims
from ansible_collections.osimage.glance.plugins.module_utils._jobs import metadata

SCHEMA = {'properties': {
    'disk_format': {'enum': [None, 'ami', 'ari', 'aki', 'raw', 'qcow2']},
    'container_format': {'enum': [None, 'ami', 'ari', 'aki', 'bare']},
    'id': {}, 'name': {}, 'status': {}, 'tags': {}, 'min_ram': {}, 'min_disk': {}, 'visibility': {},
    'protected': {}, 'owner': {}, 'os_hash_value': {}, 'os_hash_algo': {}, 'checksum': {}, 'size': {},
}}
CORE = set(SCHEMA['properties'])
# A copy of GET /v2/schemas/image of the local cloud's Glance (33.0.0).
with open(os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'glance_image_schema.json')) as _fileobj:
    REAL_SCHEMA = json.load(_fileobj)


def test_formats_are_checked_against_the_schema():
    with pytest.raises(errors.BadRequestError) as info:
        metadata.validate_metadata(SCHEMA, 'x', 'vhd', 'bare')
    assert info.value.msg == "disk_format 'vhd' is not accepted by this Glance; it accepts: ami, ari, aki, raw, qcow2."
    with pytest.raises(errors.BadRequestError):
        metadata.validate_metadata(SCHEMA, 'x', 'raw', 'ovf')
    metadata.validate_metadata(SCHEMA, 'x', 'qcow2', 'bare')


def test_amazon_formats_must_match_and_names_are_limited():
    with pytest.raises(errors.BadRequestError) as info:
        metadata.validate_metadata(SCHEMA, 'x', 'aki', 'bare')
    assert 'aki, ari or ami, both must be the same' in info.value.msg
    metadata.validate_metadata(SCHEMA, 'x', 'ami', 'ami')
    metadata.validate_metadata(SCHEMA, 'x' * 255, 'raw', 'bare')
    with pytest.raises(errors.BadRequestError) as info:
        metadata.validate_metadata(SCHEMA, 'x' * 256, 'raw', 'bare')
    assert 'name is 256 characters long' in info.value.msg


@pytest.mark.parametrize('key, text', [
    ('id', 'use the option id instead'),
    ('disk_format', 'use the option disk_format instead'),
    ('min_ram', 'use the option min_ram instead'),
    ('owner', 'use the option owner instead'),
    ('stores', 'use the option stores (or all_stores) instead'),
    ('os_hash_value', 'computed by Glance from the uploaded data; it cannot be set'),
    ('os_hash_algo', 'computed by Glance from the uploaded data'),
    ('checksum', 'computed by Glance'),
    ('status', 'set by Glance'),
    ('created_at', 'a time stamp set by Glance'),
    ('self', 'a link set by Glance'),
    ('locations', "Glance's location API"),
    ('os_glance_importing_to_stores', "reserved for Glance's own use"),
    ('deleted', "reserved for Glance's own use"),
    ('k' * 256, 'at most 255 characters'),
])
def test_keys_glance_would_refuse_are_named_with_what_to_do(key, text):
    with pytest.raises(errors.BadRequestError) as info:
        metadata.check_properties(REAL_SCHEMA, {key: 'x', 'fine': 'y'})
    assert info.value.msg.startswith("properties has 1 key(s) that Glance would refuse; nothing was created")
    assert '. %s: ' % key in info.value.msg and text in info.value.msg
    assert info.value.details['bad_properties'] == [key]


def test_a_read_only_key_of_the_operators_schema_is_refused():
    schema = dict(REAL_SCHEMA, properties=dict(REAL_SCHEMA['properties'], os_secure_boot={'readOnly': True}))
    with pytest.raises(errors.BadRequestError) as info:
        metadata.check_properties(schema, {'os_secure_boot': 'required'})
    assert 'os_secure_boot: read-only in the image schema of this Glance' in info.value.msg


def test_every_bad_key_is_named_at_once():
    with pytest.raises(errors.BadRequestError) as info:
        metadata.check_properties(REAL_SCHEMA, {'id': 'x', 'os_hash_value': 'y', 'os_hidden': 'maybe', 'ok': '1'})
    assert info.value.details['bad_properties'] == ['id', 'os_hash_value', 'os_hidden']
    assert "os_hidden: Glance's schema wants a boolean (true or false), not 'maybe'" in info.value.msg


def test_schema_attributes_get_their_type_and_the_rest_become_strings():
    props = metadata.check_properties(REAL_SCHEMA, {
        'os_hidden': 'true', 'os_distro': 'debian', 'os_version': 12, 'ratio': 1.5, 'flag': False, 'gone': None})
    assert props == {'os_hidden': True, 'os_distro': 'debian', 'os_version': '12', 'ratio': '1.5',
                     'flag': 'false', 'gone': None}
    assert metadata.check_properties(REAL_SCHEMA, {'os_hidden': 'no'}) == {'os_hidden': False}
    assert metadata.check_properties(REAL_SCHEMA, {'os_hidden': True}) == {'os_hidden': True}


@pytest.mark.parametrize('props, text', [
    ({'os_hidden': None}, "os_hidden: it cannot be removed or null: Glance's schema wants a boolean"),
    ({'os_hidden': 'sometimes'}, "wants a boolean (true or false), not 'sometimes'"),
    ({'hw_disk_bus': ['scsi']}, "hw_disk_bus: Glance's schema wants a string, not a list (to store structured "
                                "data, give it as text, for example with the to_json filter)"),
    ({'meta': {'a': 1}}, 'wants a string, not a dict'),
])
def test_wrong_types_are_refused_with_the_expected_type(props, text):
    with pytest.raises(errors.BadRequestError) as info:
        metadata.check_properties(REAL_SCHEMA, props)
    assert text in info.value.msg


def test_the_operators_schema_limits_apply():
    """A Glance with schema-image.json has typed and patterned properties
    (kernel_id a uuid, os_version at most 255 characters)."""
    uuid_pattern = REAL_SCHEMA['properties']['id']['pattern']
    schema = dict(REAL_SCHEMA, properties=dict(
        REAL_SCHEMA['properties'], kernel_id={'type': ['null', 'string'], 'pattern': uuid_pattern},
        hw_count={'type': 'integer', 'minimum': 1}))
    assert metadata.check_properties(schema, {'hw_count': '4'}) == {'hw_count': 4}
    for props, text in [({'kernel_id': 'vmlinuz'}, "kernel_id: 'vmlinuz' does not match the pattern"),
                        ({'hw_count': 0}, 'hw_count: 0 is less than the minimum 1'),
                        ({'hw_count': 'four'}, "wants an integer, not 'four'")]:
        with pytest.raises(errors.BadRequestError) as info:
            metadata.check_properties(schema, props)
        assert text in info.value.msg


def test_options_are_checked_against_the_schema():
    metadata.check_options(REAL_SCHEMA, {'id': '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5', 'tags': ['a'], 'owner': None})
    with pytest.raises(errors.BadRequestError) as info:
        metadata.check_options(REAL_SCHEMA, {'id': 'golden', 'tags': ['t' * 256], 'owner': 'o' * 256})
    assert info.value.msg.startswith('Glance would refuse these options; nothing was created or changed.')
    assert "id: 'golden' does not match the pattern" in info.value.msg
    assert 'tags: it is 256 characters long; Glance allows at most 255' in info.value.msg
    assert 'owner: it is 256 characters long' in info.value.msg


def test_patch_adds_replaces_removes_and_purges():
    image = {'id': 'i', 'status': 'active', 'name': 'n', 'min_ram': 0, 'tags': ['b'], 'disk_format': 'raw',
             'keep': '1', 'change': 'old', 'drop': 'x', 'os_glance_importing_to_stores': '',
             'img_signature': 'sig'}
    wanted = {'name': 'n', 'min_ram': 128, 'tags': ['a', 'b'], 'disk_format': 'raw', 'visibility': None}
    props = metadata.check_properties(REAL_SCHEMA, {'change': 'new', 'add': 5, 'flag': True, 'keep': '1'})
    ops = metadata.metadata_patch(image, wanted, props, purge=True, core=CORE)
    assert ops == [
        {'op': 'replace', 'path': '/min_ram', 'value': 128},
        {'op': 'replace', 'path': '/tags', 'value': ['a', 'b']},
        {'op': 'add', 'path': '/add', 'value': '5'},
        {'op': 'replace', 'path': '/change', 'value': 'new'},
        {'op': 'add', 'path': '/flag', 'value': 'true'},
        {'op': 'remove', 'path': '/drop'},
    ]
    after = metadata.apply_patch(image, ops)
    assert metadata.metadata_patch(after, wanted, props, purge=True, core=CORE) == []
    # Without purge, unknown properties stay.
    assert metadata.metadata_patch(after, wanted, dict(props, drop=None), purge=False, core=CORE) == []


def test_formats_of_an_image_with_data_cannot_change():
    image = {'id': 'i', 'status': 'active', 'disk_format': 'raw'}
    with pytest.raises(errors.ConflictError) as info:
        metadata.metadata_patch(image, {'disk_format': 'qcow2'}, {}, False, CORE)
    assert 'Glance cannot change disk_format once an image has data' in info.value.msg
    queued = dict(image, status='queued')
    assert metadata.metadata_patch(queued, {'disk_format': 'qcow2'}, {}, False, CORE) == [
        {'op': 'replace', 'path': '/disk_format', 'value': 'qcow2'}]


def test_metadata_view_shows_properties():
    view = metadata.metadata_view({'id': 'i', 'name': 'n', 'tags': ['z', 'a'], 'color': 'red'}, CORE)
    assert view['tags'] == ['a', 'z'] and view['properties'] == {'color': 'red'}
    assert metadata.metadata_view(None, CORE) == {'state': 'absent'}


def test_the_claim_is_no_property_of_the_image():
    image = {'id': 'x', 'name': 'golden', 'purpose': 'a', claims.CLAIM_PROPERTY: 'other.7@b:1'}
    assert metadata.user_properties(image, CORE) == {'purpose': 'a'}
    assert metadata.metadata_patch(image, {}, {'purpose': 'a'}, True, CORE) == []
