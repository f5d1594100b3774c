# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The upload core: validation, JSON patches, the digest cache, the claim
verdict on other runs' half-made images and the hashing upload body."""

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


class Clocks(object):
    """This host's wall clock and a monotonic clock, both moved by hand."""

    def __init__(self, wall=1000000.0):
        self.now = wall
        self.mono = 0.0

    def wall(self):
        return self.now

    def monotonic(self):
        return self.mono

    def advance(self, seconds):
        self.now += seconds
        self.mono += seconds


def half_made(status='saving', claim=None, **more):
    image = dict(id='img-1', name='golden', status=status, size=None, checksum=None, updated_at='t0')
    if claim is not None:
        image[upload.CLAIM_PROPERTY] = claim
    image.update(more)
    return image


def watch_for(clocks, stale_after=60, run_id='me.1'):
    return upload.ClaimWatch(run_id, stale_after, clock=clocks.monotonic, wall=clocks.wall)


def test_claims_round_trip_and_foreign_values_are_not_claims():
    value = upload.claim_value('abc.42', 'host-a.example', 1700000000.9)
    assert value == 'abc.42@host-a.example:1700000000'
    claim = upload.parse_claim(value)
    assert (claim.run_id, claim.host, claim.when) == ('abc.42', 'host-a.example', 1700000000)
    for other in (None, '', 'x', 'abc@host', 'abc@host:soon', '@host:1', 'abc@:1', 5):
        assert upload.parse_claim(other) is None
    assert upload.new_run_id() != upload.new_run_id()


def test_fresh_claim_is_live_however_long_it_is_watched():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    for dummy in range(10):
        image = half_made(claim=upload.claim_value('other.7', 'b', clocks.now - 5))
        assert watch.judge(image) == upload.LIVE
        clocks.advance(30)


def test_old_claim_is_stale_only_after_an_unchanged_watch():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(claim=upload.claim_value('other.7', 'b', clocks.now - 3600))
    assert watch.judge(image) == upload.LIVE  # first look: not yet watched
    clocks.advance(upload.CLAIM_WATCH - 1)
    assert watch.judge(image) == upload.LIVE
    clocks.advance(1)
    assert watch.judge(image) == upload.STALE


@pytest.mark.parametrize('change', [
    {upload.CLAIM_PROPERTY: 'other.7@b:5'},     # a refresh (even with a clock far behind)
    {'updated_at': 't1'},
    {'status': 'uploading'},
    {'size': 1024},
])
def test_an_image_that_changes_is_live_even_with_an_old_claim(change):
    """A writer whose clock is wrong by more than stale_after still refreshes:
    any change starts the watch again."""
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(claim='other.7@b:1')
    assert watch.judge(image) == upload.LIVE
    clocks.advance(upload.CLAIM_WATCH + 1)
    image.update(change)
    assert watch.judge(image) == upload.LIVE
    clocks.advance(upload.CLAIM_WATCH - 1)
    assert watch.judge(image) == upload.LIVE
    clocks.advance(1)
    assert watch.judge(image) == upload.STALE


def test_a_claim_given_up_needs_only_the_watch():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=100000)
    image = half_made(status='queued', claim=upload.claim_value('other.7', 'b', 0))
    assert watch.judge(image) == upload.LIVE
    clocks.advance(upload.CLAIM_WATCH)
    assert watch.judge(image) == upload.STALE
    assert 'which gave it up' in watch.describe(image)


def test_an_import_is_never_stale():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=0)
    for image in (half_made(status='importing', claim='other.7@b:1'),
                  half_made(status='uploading', claim='other.7@b:1', os_glance_importing_to_stores='slow')):
        watch.judge(image)
        clocks.advance(10 * upload.CLAIM_WATCH)
        assert watch.judge(image) == upload.LIVE


def test_an_unclaimed_image_is_never_stale_only_stuck():
    clocks = Clocks()
    watch = watch_for(clocks, stale_after=60)
    image = half_made(status='queued')
    assert watch.judge(image) == upload.FOREIGN
    clocks.advance(59)
    assert watch.judge(image) == upload.FOREIGN
    clocks.advance(1)
    assert watch.judge(image) == upload.STUCK
    assert 'no osimage_glance_claim property: not made by this module' in watch.describe(image)


def test_own_claim_and_finished_images():
    clocks = Clocks()
    watch = watch_for(clocks, run_id='me.1')
    assert watch.judge(half_made(claim='me.1@a:1')) == upload.MINE
    assert watch.judge(half_made(status='active', claim='other.7@b:1')) == upload.DONE
    assert watch.judge(None) == upload.DONE


def test_claim_keeper_refreshes_until_stopped_and_survives_refusals():
    sent = []
    ticks = threading.Semaphore(0)

    def patch(ops):
        sent.append(ops)
        ticks.release()
        if len(sent) == 1:
            raise errors.ServiceUnavailableError('Glance is busy')

    keeper = upload.ClaimKeeper(patch, 'me.1', 'host-a', interval=0.01, wall=lambda: 1234.5).start()
    assert ticks.acquire(timeout=5) and ticks.acquire(timeout=5)
    keeper.stop()
    count = len(sent)
    time.sleep(0.05)
    assert len(sent) == count  # stopped means stopped
    assert sent[1] == [dict(op='add', path='/' + upload.CLAIM_PROPERTY, value='me.1@host-a:1234')]
    assert keeper.last_error == 'Glance is busy' and keeper.refreshed >= 1


def test_claim_keeper_ends_when_the_image_is_gone():
    sent = []

    def patch(ops):
        sent.append(ops)
        raise errors.NotFoundError('gone', status_code=404)

    keeper = upload.ClaimKeeper(patch, 'me.1', 'h', interval=0.01).start()
    keeper._thread.join(5)
    assert not keeper._thread.is_alive() and len(sent) == 1
    keeper.stop()


def test_the_claim_is_no_property_of_the_image():
    image = {'id': 'x', 'name': 'golden', 'purpose': 'a', upload.CLAIM_PROPERTY: 'other.7@b:1'}
    assert upload.user_properties(image, CORE) == {'purpose': 'a'}
    assert upload.metadata_patch(image, {}, {'purpose': 'a'}, True, CORE) == []


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
