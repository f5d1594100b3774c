# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_upload with Glance faked at its boundary (GlanceAPI): the in-memory
Glance of conftest, which stores what is PUT and hashes it as Glance does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import claims
from ansible_collections.osimage.glance.plugins.module_utils._jobs import upload as upload_job
from ansible_collections.osimage.glance.plugins.modules import image_upload


@pytest.fixture
def glance(fake_glance, monkeypatch, tmp_path):
    fake = fake_glance
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setattr(upload_job.time, 'sleep', lambda seconds: None)
    return fake


def make_file(tmp_path, name='disk.raw', data=None, old=True):
    data = os.urandom(1024 * 1024 + 7) if data is None else data
    path = tmp_path / name
    path.write_bytes(data)
    if old:  # old enough for the digest cache
        past = time.time() - 60
        os.utime(path, (past, past))
    return str(path), data


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_upload.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def base(path, **more):
    args = {'name': 'golden', 'filename': path, 'disk_format': 'raw'}
    args.update(more)
    return args


def test_create_uploads_once_and_then_is_idempotent(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    check = run_module(dict(base(path), _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check['changed'] is True and check['diff']['before'] == {'state': 'absent'}
    assert not glance.images
    created = run_module(base(path, properties={'purpose': 'test'}), capsys)
    assert created['changed'] is True, created
    assert created['image']['status'] == 'active' and created['image']['purpose'] == 'test'
    assert created['sha512'] == hashlib.sha512(data).hexdigest()
    assert created['transfer']['bytes'] == len(data)
    assert glance.data[created['id']] == data
    assert len(glance.uploads()) == 1
    again_check = run_module(dict(base(path, properties={'purpose': 'test'}), _ansible_check_mode=True), capsys)
    again = run_module(base(path, properties={'purpose': 'test'}), capsys)
    assert again_check['changed'] is False and again['changed'] is False
    assert again['id'] == created['id'] and 'transfer' not in again
    assert len(glance.uploads()) == 1
    assert len(glance.images) == 1


def test_noop_rerun_uses_the_digest_cache_instead_of_reading(glance, tmp_path, capsys, monkeypatch):
    path, data = make_file(tmp_path)
    run_module(base(path), capsys)

    def no_read(*args, **kwargs):
        raise AssertionError('the file was hashed again')

    monkeypatch.setattr(upload_job.stream, 'hash_file', no_read)
    assert run_module(base(path), capsys)['changed'] is False


def test_metadata_change_is_a_patch_with_a_diff(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    run_module(base(path, properties={'a': '1', 'b': '2'}), capsys)
    args = base(path, min_ram=512, tags=['x'], properties={'a': '9'}, purge_properties=True)
    check = run_module(dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check['changed'] is True
    assert check['diff']['before']['properties'] == {'a': '1', 'b': '2'}
    assert check['diff']['after']['properties'] == {'a': '9'}
    assert check['diff']['after']['min_ram'] == 512
    changed = run_module(args, capsys)
    assert changed['changed'] is True and 'transfer' not in changed
    assert changed['image']['a'] == '9' and 'b' not in changed['image']
    assert run_module(args, capsys)['changed'] is False
    assert len(glance.uploads()) == 1


def test_content_change_fails_by_default_with_both_hashes(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    first = run_module(base(path), capsys)
    other, other_data = make_file(tmp_path, 'other.raw')
    result = run_module(base(other), capsys)
    assert result['failed'] is True
    assert first['sha512'] in result['msg']
    assert hashlib.sha512(other_data).hexdigest() in result['msg']
    assert len(glance.images) == 1


def test_content_change_new_and_replace(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    first = run_module(base(path), capsys)
    second_path, second_data = make_file(tmp_path, 'b.raw')
    second = run_module(base(second_path, on_content_change='new'), capsys)
    assert second['changed'] and second['id'] != first['id'] and len(glance.images) == 2
    glance.images[second['id']]['protected'] = True
    third_path, third_data = make_file(tmp_path, 'c.raw', data=os.urandom(2000))
    check = run_module(base(third_path, on_content_change='replace', _ansible_check_mode=True), capsys)
    assert check['changed'] and check['deleted'] == [first['id']]
    third = run_module(base(third_path, on_content_change='replace'), capsys)
    assert third['deleted'] == [first['id']]
    assert third['kept_protected'] == [second['id']]
    assert sorted(glance.images) == sorted([second['id'], third['id']])


def test_same_content_under_replace_is_found_not_uploaded(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    first = run_module(base(path), capsys)
    again = run_module(base(path, on_content_change='replace'), capsys)
    assert again['changed'] is False and again['id'] == first['id'] and again['deleted'] == []


class Clocks(object):
    """Wall and monotonic time that move only when the module sleeps."""

    def __init__(self):
        self.now = time.time()
        self.mono = 0.0
        self.on_sleep = []

    def wall(self):
        return self.now

    def monotonic(self):
        return self.mono

    def sleep(self, seconds):
        self.now += seconds
        self.mono += seconds
        for hook in self.on_sleep:
            hook()


@pytest.fixture
def clocks(glance, monkeypatch):
    fake = Clocks()
    monkeypatch.setattr(upload_job.Uploader, 'clock', staticmethod(fake.monotonic))
    monkeypatch.setattr(upload_job.Uploader, 'wall', staticmethod(fake.wall))
    monkeypatch.setattr(upload_job.time, 'sleep', fake.sleep)
    return fake


def claim_of(run_id, when):
    return {claims.CLAIM_PROPERTY: claims.claim_value(run_id, 'host-b', when)}


def test_failed_run_gives_its_claim_up_and_the_next_run_replaces_the_image(glance, clocks, tmp_path, capsys):
    path, data = make_file(tmp_path)
    glance.fail_upload = errors.ServiceUnavailableError('Glance went away')
    failed = run_module(base(path), capsys)
    assert failed['failed'] is True
    [left] = glance.images.values()
    assert left['status'] == 'queued' and left[claims.CLAIM_PROPERTY].endswith(':0')
    glance.fail_upload = None
    again = run_module(base(path), capsys)
    assert again['changed'] is True and again['deleted'] == [left['id']]
    assert list(glance.images) == [again['id']] and glance.data[again['id']] == data
    assert clocks.mono >= claims.CLAIM_WATCH  # judged by the watch, not by the age alone


def test_queued_image_given_by_id_is_resumed(glance, clocks, tmp_path, capsys):
    path, data = make_file(tmp_path)
    unclaimed = glance.add(name='golden')
    resumed = run_module(base(path, id=unclaimed['id']), capsys)
    assert resumed['changed'] is True and resumed['id'] == unclaimed['id'] and resumed['deleted'] == []
    stale = glance.add(name='other', **claim_of('gone.9', clocks.now - 3600))
    resumed = run_module(base(path, name='other', id=stale['id']), capsys)
    assert resumed['changed'] is True and resumed['id'] == stale['id'] and resumed['deleted'] == []
    assert glance.data[stale['id']] == data and claims.CLAIM_PROPERTY not in glance.images[stale['id']]


def test_stale_image_of_a_dead_run_is_deleted_after_the_watch(glance, clocks, tmp_path, capsys):
    path, data = make_file(tmp_path)
    stuck = glance.add(name='golden', status='saving', **claim_of('gone.9', clocks.now - 400))
    check = run_module(base(path, _ansible_check_mode=True), capsys)
    assert check['changed'] is True and check['deleted'] == [stuck['id']] and stuck['id'] in glance.images
    result = run_module(base(path), capsys)
    assert result['changed'] is True and result['deleted'] == [stuck['id']]
    assert list(glance.images) == [result['id']]
    assert clocks.mono >= claims.CLAIM_WATCH


def test_live_upload_of_another_run_is_waited_for_then_converged_on(glance, clocks, tmp_path, capsys):
    """The other run refreshes its claim and finishes after a while: this run
    deletes nothing, uploads nothing and reports no change."""
    path, data = make_file(tmp_path)
    other = glance.add(name='golden', status='saving', **claim_of('other.7', clocks.now))

    def other_run():
        if other['status'] != 'saving':
            return
        other.update(claim_of('other.7', clocks.now))
        if clocks.mono > 120:
            glance.store(other, data, 'fast')
            other.pop(claims.CLAIM_PROPERTY)

    clocks.on_sleep.append(other_run)
    result = run_module(base(path, stale_after=30), capsys)
    assert result['changed'] is False and result['id'] == other['id'] and result['deleted'] == []
    assert not glance.uploads() and list(glance.images) == [other['id']]


def test_a_run_that_outlives_the_timeout_is_named_and_not_deleted(glance, clocks, tmp_path, capsys):
    path, data = make_file(tmp_path)
    other = glance.add(name='golden', status='saving', **claim_of('other.7', clocks.now))
    clocks.on_sleep.append(lambda: other.update(claim_of('other.7', clocks.now)))
    result = run_module(base(path, timeout=100, stale_after=30), capsys)
    assert result['failed'] is True
    assert 'Waited 100 seconds (timeout) for another run to finish image %s (saving, claimed by run other.7 on ' \
        'host host-b, refreshed 0 seconds ago)' % other['id'] in result['msg']
    assert 'was not deleted' in result['msg']
    assert list(glance.images) == [other['id']]


def test_an_image_without_a_claim_is_never_deleted(glance, clocks, tmp_path, capsys):
    path, data = make_file(tmp_path)
    foreign = glance.add(name='golden', status='saving')
    result = run_module(base(path, stale_after=60), capsys)
    assert result['failed'] is True
    assert 'has no osimage_glance_claim property' in result['msg']
    assert 'this module never deletes an image it did not make' in result['msg']
    assert list(glance.images) == [foreign['id']] and not glance.uploads()


def test_the_claim_is_set_while_uploading_and_gone_afterwards(glance, clocks, tmp_path, capsys, monkeypatch):
    path, data = make_file(tmp_path)
    seen = []
    original = glance.request

    def watching(method, path_, *args, **kwargs):
        if method == 'PUT':
            image = glance.images[path_.split('/')[2]]
            seen.append(claims.parse_claim(image.get(claims.CLAIM_PROPERTY)))
        return original(method, path_, *args, **kwargs)

    monkeypatch.setattr(glance, 'request', watching)
    created = run_module(dict(base(path, properties={'a': '1'}, purge_properties=True), _ansible_diff=True), capsys)
    [claim] = seen
    assert claim is not None and claim.host and abs(claim.when - clocks.now) < 5
    assert claims.CLAIM_PROPERTY not in created['image']
    assert claims.CLAIM_PROPERTY not in created['diff']['after']['properties']
    # A claim left on an active image is no difference.
    glance.images[created['id']].update(claim_of('old.1', 5))
    again = run_module(base(path, properties={'a': '1'}, purge_properties=True), capsys)
    assert again['changed'] is False


@pytest.mark.parametrize('args, text', [
    ({'stale_after': -1}, 'stale_after is -1'),
    ({'properties': {claims.CLAIM_PROPERTY: 'x'}}, 'properties.osimage_glance_claim is the mark'),
])
def test_claim_options_are_checked_first(glance, tmp_path, capsys, args, text):
    path, data = make_file(tmp_path)
    result = run_module(base(path, **args), capsys)
    assert result['failed'] is True and text in result['msg']
    assert not glance.images


def test_a_500_before_glance_took_any_data_is_sent_again(glance, tmp_path, capsys, monkeypatch):
    path, data = make_file(tmp_path)
    original = glance.request
    refused = []

    def busy_once(method, path_, *args, **kwargs):
        if method == 'PUT' and not refused:
            refused.append(path_)
            raise errors.OsimageError('Glance failed (HTTP 500): database is locked', status_code=500)
        return original(method, path_, *args, **kwargs)

    monkeypatch.setattr(glance, 'request', busy_once)
    result = run_module(base(path), capsys)
    assert result['changed'] is True and glance.data[result['id']] == data and refused


def test_refused_upload_deletes_the_image_it_created(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    glance.fail_upload = errors.OverQuotaError('Glance: over quota (HTTP 413): quota exceeded', status_code=413)
    result = run_module(base(path), capsys)
    assert 'quota or size limit of this project would be exceeded (HTTP 413)' in result['msg']
    assert 'created by this run, was deleted' in result['msg']
    assert not glance.images


@pytest.mark.parametrize('error, text', [
    (errors.NotAuthorizedError('forbidden', status_code=403), 'property protection rule'),
    (errors.ConflictError('conflict', status_code=409), "conflicts with the image's current state (HTTP 409)"),
])
def test_glance_refusals_have_one_clear_message(glance, tmp_path, capsys, monkeypatch, error, text):
    path, data = make_file(tmp_path)
    run_module(base(path), capsys)
    original = glance.request

    def refuse_patch(method, *args, **kwargs):
        if method == 'PATCH':
            raise error
        return original(method, *args, **kwargs)

    monkeypatch.setattr(glance, 'request', refuse_patch)
    result = run_module(base(path, min_ram=1), capsys)
    assert text in result['msg']


def test_concurrent_create_elsewhere_leaves_one_image(glance, tmp_path, capsys, monkeypatch):
    """Another host created the same image between our lookup and our create:
    the older one wins, ours is deleted, and the run adopts the winner."""
    path, data = make_file(tmp_path)
    original = glance.request
    state = {}

    def racing(method, path_, *args, **kwargs):
        if method == 'POST' and path_ == '/images' and 'rival' not in state:
            rival = glance.add(name='golden', created_at='2000-01-01T00:00:00Z')
            glance.store(rival, data, 'fast')
            state['rival'] = rival['id']
        return original(method, path_, *args, **kwargs)

    monkeypatch.setattr(glance, 'request', racing)
    result = run_module(base(path), capsys)
    assert result['changed'] is False
    assert result['id'] == state['rival']
    assert list(glance.images) == [state['rival']]


def test_validation_happens_before_any_request_that_changes_anything(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    for args, text in [
        (base(path, disk_format='floppy'), "disk_format 'floppy' is not accepted"),
        (base(path, disk_format='aki'), 'both must be the same'),
        (base(path, name='n' * 256), 'name is 256 characters long'),
        (base(str(tmp_path / 'missing')), 'does not exist'),
        (base(path, disk_format='qcow2'), 'declared as qcow2 but the content is raw'),
    ]:
        result = run_module(args, capsys)
        assert result['failed'] is True and text in result['msg'], result['msg']
    assert all(method == 'GET' for method, dummy in glance.calls)


def test_absent_refuses_protected_unless_unprotected(glance, tmp_path, capsys):
    image = glance.add(name='golden', status='active', protected=True)
    refused = run_module({'name': 'golden', 'state': 'absent'}, capsys)
    assert 'protected=false' in refused['msg'] and glance.images
    check = run_module({'name': 'golden', 'state': 'absent', 'protected': False, '_ansible_check_mode': True},
                       capsys)
    assert check['changed'] is True and glance.images
    deleted = run_module({'name': 'golden', 'state': 'absent', 'protected': False}, capsys)
    assert deleted['changed'] is True and deleted['deleted'] == [image['id']] and not glance.images
    assert run_module({'name': 'golden', 'state': 'absent'}, capsys)['changed'] is False


def test_glance_direct_to_a_store(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    result = run_module(base(path, import_method='glance-direct', stores=['slow']), capsys)
    assert result['changed'] is True and result['image']['stores'] == 'slow'
    assert ('PUT', '/images/%s/stage' % result['id']) in glance.calls


def test_direct_upload_goes_to_one_store(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    assert run_module(base(path, stores=['slow']), capsys)['image']['stores'] == 'slow'
    refused = run_module(base(path, name='other', stores=['fast', 'slow']), capsys)
    assert 'use import_method=glance-direct' in refused['msg']


def test_copy_image_to_all_stores_is_idempotent(glance, tmp_path, capsys):
    image = glance.add(name='golden', status='active', stores='fast', os_hash_value='x', size=1)
    args = {'id': image['id'], 'import_method': 'copy-image', 'all_stores': True}
    check = run_module(dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check['changed'] is True and check['diff']['after']['stores'] == ['fast', 'slow']
    copied = run_module(args, capsys)
    assert copied['changed'] is True and copied['image']['stores'] == 'fast,slow'
    assert run_module(args, capsys)['changed'] is False


# Long enough never to turn up inside a base64 signature: the module masks the
# passphrase (a secret) wherever it appears in its output.
PASSPHRASE = 'unit-test-signing-passphrase-5d1c'


def test_signed_upload_sets_the_signature_before_the_data(glance, tmp_path, capsys):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    import datetime

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, 'test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_path = tmp_path / 'key.pem'
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    cert_path = tmp_path / 'cert.pem'
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path, data = make_file(tmp_path)
    signing = {'private_key': str(key_path), 'passphrase': PASSPHRASE, 'certificate': str(cert_path),
               'hash_method': 'SHA-384', 'key_type': 'RSA-PSS'}
    result = run_module(base(path, signing=signing), capsys)
    assert result['changed'] is True, result
    image = result['image']
    assert image['img_signature_hash_method'] == 'SHA-384'
    assert image['img_signature_key_type'] == 'RSA-PSS'
    assert image['img_signature_certificate_uuid'] == list(glance.barbican.secrets)[0]
    # What cursive does: PSS, MGF1 with the same hash, maximum salt length.
    key.public_key().verify(base64.b64decode(image['img_signature']), data,
                            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.MAX_LENGTH),
                            hashes.SHA384())
    # The signature went in with a PATCH before the upload.
    patch_at = max(i for i, call in enumerate(glance.calls) if call[0] == 'PATCH' and i < glance.calls.index(
        ('PUT', '/images/%s/file' % result['id'])))
    assert patch_at >= 0
    wrong = run_module(base(path, name='other', signing=dict(signing, passphrase='bad')), capsys)
    assert 'cannot be decrypted' in wrong['msg'] or 'cannot be loaded' in wrong['msg']
    calls = len(changes(glance))
    both = run_module(base(path, name='other', signing=signing, properties={'img_signature': 'AAAA'}), capsys)
    assert both['failed'] is True
    assert both['msg'] == ('properties has img_signature, which signing sets from the data; give either signing or '
                           'the img_signature* properties, not both. Nothing was created or changed.')
    assert len(changes(glance)) == calls


# -- properties against Glance's image schema -----------------------------------------
def changes(glance):
    return [call for call in glance.calls if call[0] != 'GET']


@pytest.mark.parametrize('properties, text', [
    ({'id': '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'}, 'id: use the option id instead'),
    ({'os_hash_value': 'f' * 128, 'os_hash_algo': 'sha512'}, 'os_hash_value: computed by Glance from the uploaded data'),
    ({'status': 'active'}, "status: the image's state, set by Glance"),
    ({'size': 5}, 'size: computed by Glance'),
    ({'os_glance_import_task': 'x'}, "os_glance_import_task: reserved for Glance's own use"),
    ({'disk_format': 'qcow2'}, 'disk_format: use the option disk_format instead'),
    ({'os_hidden': 'perhaps'}, "os_hidden: Glance's schema wants a boolean (true or false), not 'perhaps'"),
    ({'hw_qemu_guest_agent': {'enabled': True}}, "hw_qemu_guest_agent: Glance's schema wants a string, not a dict"),
])
def test_bad_properties_are_refused_before_anything_is_created(glance, tmp_path, capsys, properties, text):
    path, data = make_file(tmp_path)
    for check_mode in (True, False, False):  # a re-run fails the same way and leaves nothing either
        result = run_module(base(path, properties=properties, _ansible_check_mode=check_mode), capsys)
        assert result['failed'] is True and text in result['msg'], result['msg']
        assert 'nothing was created or changed' in result['msg']
    assert changes(glance) == [] and glance.images == {}


def test_bad_properties_do_not_touch_an_existing_image(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    created = run_module(base(path), capsys)
    before = dict(glance.images[created['id']])
    calls = len(changes(glance))
    result = run_module(base(path, properties={'checksum': '0' * 32, 'purpose': 'x'}), capsys)
    assert result['failed'] is True and result['bad_properties'] == ['checksum']
    assert len(changes(glance)) == calls and glance.images[created['id']] == before


def test_os_hidden_from_text_is_a_boolean_and_idempotent(glance, tmp_path, capsys):
    """Ansible hands templated values over as text: "true" must reach
    Glance as the boolean its schema wants (the fake validates like Glance)."""
    path, data = make_file(tmp_path)
    args = base(path, properties={'os_hidden': 'true', 'os_version': 12, 'secure': True})
    check = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert check['changed'] is True and check['image']['os_hidden'] is True
    created = run_module(args, capsys)
    assert created['changed'] is True, created
    image = glance.images[created['id']]
    assert image['os_hidden'] is True and image['os_version'] == '12' and image['secure'] == 'true'
    assert run_module(dict(args, _ansible_check_mode=True), capsys)['changed'] is False
    assert run_module(args, capsys)['changed'] is False
    shown = run_module(base(path, properties={'os_hidden': False}, _ansible_diff=True), capsys)
    assert shown['changed'] is True and glance.images[created['id']]['os_hidden'] is False
    assert shown['diff']['before']['os_hidden'] is True and shown['diff']['after']['os_hidden'] is False
    assert len(glance.uploads()) == 1


@pytest.mark.parametrize('option, value, text', [
    ('timeout', -1, 'timeout is -1 but must be 0 or more (0 means no limit)'),
    ('min_ram', -512, 'min_ram is -512 but must be 0 or more (MiB)'),
    ('min_disk', -1, 'min_disk is -1 but must be 0 or more (GB)'),
])
def test_negative_numbers_are_refused_before_any_request(glance, tmp_path, capsys, option, value, text):
    path, data = make_file(tmp_path)
    result = run_module(base(path, **{option: value}), capsys)
    assert result['failed'] is True and text in result['msg']
    assert glance.calls == []


def test_kernel_and_ramdisk_must_be_existing_aki_and_ari_images(glance, tmp_path, capsys):
    path, data = make_file(tmp_path)
    kernel = glance.add(name='vmlinuz', status='active', disk_format='aki', container_format='aki')
    ramdisk = glance.add(name='initrd', status='active', disk_format='ari', container_format='ari')
    disk = glance.add(name='disk', status='active', disk_format='qcow2')
    missing = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'
    known = dict(glance.images)
    for properties, texts in [
        ({'kernel_id': missing}, ['kernel_id %s is not the id of an image this project can see' % missing,
                                  'existing kernel image with disk_format aki and container_format aki']),
        ({'kernel_id': 'vmlinuz'}, ['kernel_id vmlinuz is not the id of an image', 'give the id (not the name)']),
        ({'ramdisk_id': disk['id']}, ["ramdisk_id %s is image 'disk' with disk_format qcow2, not a ramdisk image; "
                                      "give the id of an image with disk_format ari" % disk['id']]),
        ({'kernel_id': ramdisk['id'], 'ramdisk_id': kernel['id']}, ['kernel_id %s is image' % ramdisk['id'],
                                                                    'ramdisk_id %s is image' % kernel['id']]),
    ]:
        result = run_module(base(path, properties=properties), capsys)
        assert result['failed'] is True, result
        assert all(text in result['msg'] for text in texts), result['msg']
        assert result['msg'].endswith('Nothing was created or changed.')
    assert changes(glance) == [] and glance.images == known
    good = run_module(base(path, properties={'kernel_id': kernel['id'], 'ramdisk_id': ramdisk['id']}), capsys)
    assert good['changed'] is True and good['image']['kernel_id'] == kernel['id']
    assert run_module(base(path, properties={'kernel_id': kernel['id'], 'ramdisk_id': ramdisk['id']}),
                      capsys)['changed'] is False


# -- disk_format detected from the content -------------------------------------------------
def make_qcow2(tmp_path, name='disk.qcow2'):
    path = tmp_path / name
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '8M'], check=True)
    past = time.time() - 60
    os.utime(path, (past, past))
    return str(path)


def test_disk_format_is_detected_when_not_given(glance, tmp_path, capsys):
    raw, data = make_file(tmp_path)
    qcow2 = make_qcow2(tmp_path)
    for path, fmt, name in ((raw, 'raw', 'golden'), (qcow2, 'qcow2', 'golden-qcow2')):
        args = {'name': name, 'filename': path}
        check = run_module(dict(args, _ansible_check_mode=True), capsys)
        assert check['changed'] is True and check['detected_disk_format'] == fmt
        assert check['image']['disk_format'] == fmt
        created = run_module(args, capsys)
        assert created['changed'] is True and created['detected_disk_format'] == fmt
        assert glance.images[created['id']]['disk_format'] == fmt
        again = run_module(args, capsys)
        assert again['changed'] is False and again['id'] == created['id'] and again['detected_disk_format'] == fmt
        # The same image with the format given: the same verdict, nothing to change.
        given = run_module(dict(args, disk_format=fmt), capsys)
        assert given['changed'] is False and given['detected_disk_format'] == fmt
    assert len(glance.uploads()) == 2


def test_a_given_disk_format_is_still_cross_checked(glance, tmp_path, capsys):
    qcow2 = make_qcow2(tmp_path)
    result = run_module({'name': 'golden', 'filename': qcow2, 'disk_format': 'raw'}, capsys)
    assert result['failed'] is True and 'declared as raw but the content is qcow2' in result['msg']
    assert changes(glance) == []


def test_detected_format_this_glance_does_not_accept_is_refused(glance, tmp_path, capsys, monkeypatch):
    qcow2 = make_qcow2(tmp_path)
    schema = json.loads(json.dumps(glance.get_image_schema()))
    schema['properties']['disk_format']['enum'] = [None, 'raw', 'aki', 'ari', 'ami']
    monkeypatch.setattr(glance, 'get_image_schema', lambda: schema)
    result = run_module({'name': 'golden', 'filename': qcow2}, capsys)
    assert result['failed'] is True
    assert result['msg'] == ('disk_format is not given and the content of filename %s is qcow2, which is not a '
                             'disk_format this Glance accepts (raw, aki, ari, ami). Convert the image '
                             '(osimage.glance.image_convert) or give disk_format.' % qcow2)
    assert changes(glance) == []


def test_web_download_needs_disk_format(glance, capsys):
    result = run_module({'name': 'golden', 'import_method': 'web-download', 'uri': 'http://example.test/x'}, capsys)
    assert result['failed'] is True
    assert 'disk_format is required with import_method=web-download' in result['msg']
    assert changes(glance) == []


def test_deactivated_in_four_steps_then_present_needs_reactivate(glance, tmp_path, capsys):
    path, _data = make_file(tmp_path)
    image_id = run_module(base(path), capsys)['id']
    args = {'name': 'golden', 'state': 'deactivated'}
    check = run_module(dict(args, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check['changed'] is True and glance.images[image_id]['status'] == 'active'
    assert (check['diff']['before']['status'], check['diff']['after']['status']) == ('active', 'deactivated')
    real = run_module(args, capsys)
    assert real['changed'] is True and glance.images[image_id]['status'] == 'deactivated'
    assert run_module(dict(args, _ansible_check_mode=True), capsys)['changed'] is False
    assert run_module(args, capsys)['changed'] is False
    # present on the deactivated image: a clear failure, nothing changed
    refused = run_module(base(path), capsys)
    assert refused['rc'] == 1 and 'is deactivated' in refused['msg'] and 'reactivate=true' in refused['msg']
    assert glance.images[image_id]['status'] == 'deactivated' and len(glance.images) == 1
    check = run_module(base(path, reactivate=True, _ansible_check_mode=True, _ansible_diff=True), capsys)
    assert check['changed'] is True and check['diff']['after']['status'] == 'active'
    assert glance.images[image_id]['status'] == 'deactivated'
    back = run_module(base(path, reactivate=True), capsys)
    assert back['changed'] is True and back['image']['status'] == 'active'
    assert glance.images[image_id]['status'] == 'active' and len(glance.uploads()) == 1
    assert run_module(base(path, reactivate=True), capsys)['changed'] is False


def test_deactivated_needs_an_image_with_data(glance, capsys):
    missing = run_module({'name': 'nothing', 'state': 'deactivated'}, capsys)
    assert missing['rc'] == 1 and 'No image' in missing['msg'] and 'to deactivate' in missing['msg']
    queued = glance.add(name='half')
    result = run_module({'name': 'half', 'state': 'deactivated'}, capsys)
    assert result['rc'] == 1 and 'is queued' in result['msg'] and glance.images[queued['id']]['status'] == 'queued'


def test_hidden_sets_os_hidden_and_the_image_is_still_found(glance, tmp_path, capsys):
    path, _data = make_file(tmp_path)
    created = run_module(base(path, hidden=True), capsys)
    assert created['changed'] is True and glance.images[created['id']]['os_hidden'] is True
    # a hidden image is still "the image golden": no second upload
    again = run_module(base(path, hidden=True), capsys)
    assert again['changed'] is False and again['id'] == created['id'] and len(glance.images) == 1
    shown = run_module(base(path, hidden=False, _ansible_diff=True), capsys)
    assert shown['changed'] is True and glance.images[created['id']]['os_hidden'] is False
    assert (shown['diff']['before']['os_hidden'], shown['diff']['after']['os_hidden']) == (True, False)
    both = run_module(base(path, hidden=True, properties={'os_hidden': True}), capsys)
    assert both['rc'] == 1 and 'Give hidden or properties.os_hidden, not both' in both['msg']
