# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The upload core: validation, JSON patches, the digest cache, the host
lock and the hashing upload body."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import time

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _upload as upload

SCHEMA = {'properties': {
    'disk_format': {'enum': [None, 'ami', 'ari', 'aki', 'raw', 'qcow2']},
    'container_format': {'enum': [None, 'ami', 'ari', 'aki', 'bare']},
    'id': {}, 'name': {}, 'status': {}, 'tags': {}, 'min_ram': {}, 'min_disk': {}, 'visibility': {},
    'protected': {}, 'owner': {}, 'os_hash_value': {}, 'os_hash_algo': {}, 'checksum': {}, 'size': {},
}}
CORE = set(SCHEMA['properties'])
# A copy of GET /v2/schemas/image of the local cloud's Glance (33.0.0).
with open(os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'glance_image_schema.json')) as _fileobj:
    REAL_SCHEMA = json.load(_fileobj)


def test_formats_are_checked_against_the_schema():
    with pytest.raises(errors.BadRequestError) as info:
        upload.validate_metadata(SCHEMA, 'x', 'vhd', 'bare')
    assert info.value.msg == "disk_format 'vhd' is not accepted by this Glance; it accepts: ami, ari, aki, raw, qcow2."
    with pytest.raises(errors.BadRequestError):
        upload.validate_metadata(SCHEMA, 'x', 'raw', 'ovf')
    upload.validate_metadata(SCHEMA, 'x', 'qcow2', 'bare')


def test_amazon_formats_must_match_and_names_are_limited():
    with pytest.raises(errors.BadRequestError) as info:
        upload.validate_metadata(SCHEMA, 'x', 'aki', 'bare')
    assert 'aki, ari or ami, both must be the same' in info.value.msg
    upload.validate_metadata(SCHEMA, 'x', 'ami', 'ami')
    upload.validate_metadata(SCHEMA, 'x' * 255, 'raw', 'bare')
    with pytest.raises(errors.BadRequestError) as info:
        upload.validate_metadata(SCHEMA, 'x' * 256, 'raw', 'bare')
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
        upload.check_properties(REAL_SCHEMA, {key: 'x', 'fine': 'y'})
    assert info.value.msg.startswith("properties has 1 key(s) that Glance would refuse; nothing was created")
    assert '. %s: ' % key in info.value.msg and text in info.value.msg
    assert info.value.details['bad_properties'] == [key]


def test_a_read_only_key_of_the_operators_schema_is_refused():
    schema = dict(REAL_SCHEMA, properties=dict(REAL_SCHEMA['properties'], os_secure_boot={'readOnly': True}))
    with pytest.raises(errors.BadRequestError) as info:
        upload.check_properties(schema, {'os_secure_boot': 'required'})
    assert 'os_secure_boot: read-only in the image schema of this Glance' in info.value.msg


def test_every_bad_key_is_named_at_once():
    with pytest.raises(errors.BadRequestError) as info:
        upload.check_properties(REAL_SCHEMA, {'id': 'x', 'os_hash_value': 'y', 'os_hidden': 'maybe', 'ok': '1'})
    assert info.value.details['bad_properties'] == ['id', 'os_hash_value', 'os_hidden']
    assert "os_hidden: Glance's schema wants a boolean (true or false), not 'maybe'" in info.value.msg


def test_schema_attributes_get_their_type_and_the_rest_become_strings():
    props = upload.check_properties(REAL_SCHEMA, {
        'os_hidden': 'true', 'os_distro': 'debian', 'os_version': 12, 'ratio': 1.5, 'flag': False, 'gone': None})
    assert props == {'os_hidden': True, 'os_distro': 'debian', 'os_version': '12', 'ratio': '1.5',
                     'flag': 'false', 'gone': None}
    assert upload.check_properties(REAL_SCHEMA, {'os_hidden': 'no'}) == {'os_hidden': False}
    assert upload.check_properties(REAL_SCHEMA, {'os_hidden': True}) == {'os_hidden': True}


@pytest.mark.parametrize('props, text', [
    ({'os_hidden': None}, "os_hidden: it cannot be removed or null: Glance's schema wants a boolean"),
    ({'os_hidden': 'sometimes'}, "wants a boolean (true or false), not 'sometimes'"),
    ({'hw_disk_bus': ['scsi']}, "hw_disk_bus: Glance's schema wants a string, not a list (to store structured "
                                "data, give it as text, for example with the to_json filter)"),
    ({'meta': {'a': 1}}, 'wants a string, not a dict'),
])
def test_wrong_types_are_refused_with_the_expected_type(props, text):
    with pytest.raises(errors.BadRequestError) as info:
        upload.check_properties(REAL_SCHEMA, props)
    assert text in info.value.msg


def test_the_operators_schema_limits_apply():
    """A Glance with schema-image.json has typed and patterned properties
    (kernel_id a uuid, os_version at most 255 characters)."""
    uuid_pattern = REAL_SCHEMA['properties']['id']['pattern']
    schema = dict(REAL_SCHEMA, properties=dict(
        REAL_SCHEMA['properties'], kernel_id={'type': ['null', 'string'], 'pattern': uuid_pattern},
        hw_count={'type': 'integer', 'minimum': 1}))
    assert upload.check_properties(schema, {'hw_count': '4'}) == {'hw_count': 4}
    for props, text in [({'kernel_id': 'vmlinuz'}, "kernel_id: 'vmlinuz' does not match the pattern"),
                        ({'hw_count': 0}, 'hw_count: 0 is less than the minimum 1'),
                        ({'hw_count': 'four'}, "wants an integer, not 'four'")]:
        with pytest.raises(errors.BadRequestError) as info:
            upload.check_properties(schema, props)
        assert text in info.value.msg


def test_options_are_checked_against_the_schema():
    upload.check_options(REAL_SCHEMA, {'id': '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5', 'tags': ['a'], 'owner': None})
    with pytest.raises(errors.BadRequestError) as info:
        upload.check_options(REAL_SCHEMA, {'id': 'golden', 'tags': ['t' * 256], 'owner': 'o' * 256})
    assert info.value.msg.startswith('Glance would refuse these options; nothing was created or changed.')
    assert "id: 'golden' does not match the pattern" in info.value.msg
    assert 'tags: it is 256 characters long; Glance allows at most 255' in info.value.msg
    assert 'owner: it is 256 characters long' in info.value.msg


def test_check_readable(tmp_path):
    with pytest.raises(errors.DestinationError) as info:
        upload.check_readable(str(tmp_path / 'missing'))
    assert 'does not exist' in info.value.msg
    with pytest.raises(errors.DestinationError) as info:
        upload.check_readable(str(tmp_path))
    assert 'not a regular file' in info.value.msg
    path = tmp_path / 'f'
    path.write_bytes(b'x')
    assert upload.check_readable(str(path)).st_size == 1


def test_patch_adds_replaces_removes_and_purges():
    image = {'id': 'i', 'status': 'active', 'name': 'n', 'min_ram': 0, 'tags': ['b'], 'disk_format': 'raw',
             'keep': '1', 'change': 'old', 'drop': 'x', 'os_glance_importing_to_stores': '',
             'img_signature': 'sig'}
    wanted = {'name': 'n', 'min_ram': 128, 'tags': ['a', 'b'], 'disk_format': 'raw', 'visibility': None}
    props = upload.check_properties(REAL_SCHEMA, {'change': 'new', 'add': 5, 'flag': True, 'keep': '1'})
    ops = upload.metadata_patch(image, wanted, props, purge=True, core=CORE)
    assert ops == [
        {'op': 'replace', 'path': '/min_ram', 'value': 128},
        {'op': 'replace', 'path': '/tags', 'value': ['a', 'b']},
        {'op': 'add', 'path': '/add', 'value': '5'},
        {'op': 'replace', 'path': '/change', 'value': 'new'},
        {'op': 'add', 'path': '/flag', 'value': 'true'},
        {'op': 'remove', 'path': '/drop'},
    ]
    after = upload.apply_patch(image, ops)
    assert upload.metadata_patch(after, wanted, props, purge=True, core=CORE) == []
    # Without purge, unknown properties stay.
    assert upload.metadata_patch(after, wanted, dict(props, drop=None), purge=False, core=CORE) == []


def test_formats_of_an_image_with_data_cannot_change():
    image = {'id': 'i', 'status': 'active', 'disk_format': 'raw'}
    with pytest.raises(errors.ConflictError) as info:
        upload.metadata_patch(image, {'disk_format': 'qcow2'}, {}, False, CORE)
    assert 'Glance cannot change disk_format once an image has data' in info.value.msg
    queued = dict(image, status='queued')
    assert upload.metadata_patch(queued, {'disk_format': 'qcow2'}, {}, False, CORE) == [
        {'op': 'replace', 'path': '/disk_format', 'value': 'qcow2'}]


def test_metadata_view_shows_properties():
    view = upload.metadata_view({'id': 'i', 'name': 'n', 'tags': ['z', 'a'], 'color': 'red'}, CORE)
    assert view['tags'] == ['a', 'z'] and view['properties'] == {'color': 'red'}
    assert upload.metadata_view(None, CORE) == {'state': 'absent'}


def old_file(tmp_path, data=b'data'):
    path = tmp_path / 'f'
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))
    return str(path), os.stat(path)


def test_digest_cache_round_trip_in_xattr_or_fallback(tmp_path):
    path, st = old_file(tmp_path)
    cache = upload.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.get(path, st, 'sha512') is None
    where = cache.put(path, st, 'sha512', 'abc')
    assert where in ('xattr', 'file')
    assert cache.get(path, st, 'sha512') == 'abc'
    # A changed file (other mtime or size) is not served from the cache.
    with open(path, 'ab') as fileobj:
        fileobj.write(b'more')
    assert cache.get(path, os.stat(path), 'sha512') is None


def test_digest_cache_falls_back_when_xattrs_are_unsupported(tmp_path, monkeypatch):
    def no_xattr(*args):
        raise OSError(errno.ENOTSUP, 'Operation not supported')

    monkeypatch.setattr(os, 'setxattr', no_xattr)
    monkeypatch.setattr(os, 'getxattr', no_xattr)
    path, st = old_file(tmp_path)
    cache = upload.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.put(path, st, 'sha512', 'abc') == 'file'
    assert cache.get(path, st, 'sha512') == 'abc'
    assert oct(os.stat(tmp_path / 'cache').st_mode & 0o777) == '0o700'


def test_digest_cache_ignores_a_recently_modified_file(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'data')
    cache = upload.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.put(str(path), os.stat(path), 'sha512', 'abc') is None
    assert cache.get(str(path), os.stat(path), 'sha512') is None


def test_digest_cache_ignores_damaged_records(tmp_path):
    path, st = old_file(tmp_path)
    cache = upload.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    os.makedirs(cache.fallback_dir)
    with open(cache._fallback_path(path, 'sha512'), 'w') as fileobj:
        fileobj.write('garbage')
    assert cache.get(path, st, 'sha512') is None


def test_host_lock_serialises_holders(tmp_path):
    order = []
    first = upload.HostLock('cloud|project|owner|name', 10, directory=str(tmp_path)).acquire()

    def second():
        with upload.HostLock('cloud|project|owner|name', 10, directory=str(tmp_path)):
            order.append('second')

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    order.append('first')
    first.release()
    thread.join(5)
    assert order == ['first', 'second']


def test_host_lock_times_out_with_a_clear_message(tmp_path):
    held = upload.HostLock('k', 10, directory=str(tmp_path)).acquire()
    try:
        with pytest.raises(errors.ImageStateError) as info:
            upload.HostLock('k', 0.2, directory=str(tmp_path)).acquire()
        assert 'Another run on this host' in info.value.msg
        # Other keys are not blocked.
        upload.HostLock('other', 1, directory=str(tmp_path)).acquire().release()
    finally:
        held.release()


def test_hashing_body_sends_and_hashes_in_one_pass(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / 'f'
    path.write_bytes(data)
    body = upload.HashingBody(str(path), len(data), ['sha512'], chunk_size=1024 * 1024)
    assert len(body) == len(data)
    assert b''.join(body) == data
    assert body.hexdigests() == {'sha512': hashlib.sha512(data).hexdigest()}
    # A retried request iterates again: a fresh pass with fresh digests.
    assert b''.join(body) == data
    assert body.hexdigests()['sha512'] == hashlib.sha512(data).hexdigest()
    assert body.sent == len(data)


def test_hashing_body_abandoned_half_way_has_no_digest(tmp_path):
    data = os.urandom(2 * 1024 * 1024)
    path = tmp_path / 'f'
    path.write_bytes(data)
    body = upload.HashingBody(str(path), len(data), ['sha512'], chunk_size=1024 * 1024)
    chunks = iter(body)
    next(chunks)
    chunks.close()
    assert body.hexdigests() == {}
