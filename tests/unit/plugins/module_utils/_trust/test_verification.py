# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The shared one-pass verification (_trust.verification) on real files, keys and
certificates: what is checked before the data, what one read pass feeds,
and how the results become one failure."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust
from ansible_collections.osimage.glance.plugins.module_utils._trust import verification as one_pass

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')

CERT_UUID = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'


@pytest.fixture
def qcow2(tmp_path):
    path = tmp_path / 'disk.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '16M'], check=True)
    return path


def expectations(data, disk_format='qcow2', **props):
    exp = one_pass.Expectations()
    exp.digests = {'sha512': hashlib.sha512(data).hexdigest(), 'md5': hashlib.md5(data).hexdigest()}
    exp.size = len(data)
    exp.disk_format = disk_format
    exp.signature_props = dict((name, props.get(name)) for name in trust.SIGNATURE_PROPERTIES)
    return exp


def store_with(pem):
    return trust.CertificateStore(fetch_secret={CERT_UUID: pem}.__getitem__)


def test_one_pass_feeds_every_check_and_each_runs_in_its_own_consumer(qcow2, rsa_signer):
    data = qcow2.read_bytes()
    exp = expectations(data, **rsa_signer.properties(data, CERT_UUID, 'SHA-384'))
    verification = one_pass.Verification.prepare('disk', exp, list(one_pass.CHECK_ORDER), store_with(rsa_signer.pem))
    rpass = verification.start(extra_algos=['sha256'])
    # size count + md5 + sha256 + sha384 + sha512 + the inspector
    assert len(rpass.consumers()) == 6
    stream.read_pass(str(qcow2), rpass)
    result = verification.evaluate(rpass, str(qcow2))
    assert result['checks'] == ['checksum', 'signature', 'format']
    assert sorted(result['verified_digests']) == ['md5', 'sha512']
    assert result['signature']['verified'] and result['signature']['hash_method'] == 'SHA-384'
    assert result['detected_format'] == 'qcow2' and result['virtual_size'] == 16 * 1024 * 1024
    assert rpass.hexdigests()['sha256'] == hashlib.sha256(data).hexdigest()


def test_every_failed_check_is_one_sentence_and_one_entry(qcow2, rsa_signer):
    data = qcow2.read_bytes()
    exp = expectations(data + b'x', disk_format='raw', **rsa_signer.properties(b'other', CERT_UUID))
    verification = one_pass.Verification.prepare('disk', exp, list(one_pass.CHECK_ORDER), store_with(rsa_signer.pem))
    rpass = stream.read_pass(str(qcow2), verification.start())
    with pytest.raises(errors.VerificationError) as failed:
        verification.evaluate(rpass, str(qcow2))
    checks = [failure['check'] for failure in failed.value.details['failures']]
    assert checks == ['checksum', 'signature', 'format']
    assert failed.value.msg == ' '.join(failure['msg'] for failure in failed.value.details['failures'])
    assert 'declared as raw but the content is qcow2' in failed.value.msg


def test_what_needs_no_data_fails_in_prepare(qcow2, rsa_signer):
    data = qcow2.read_bytes()
    partial = expectations(data, img_signature='c2ln')
    with pytest.raises(errors.SignatureError, match='incomplete signature metadata'):
        one_pass.Verification.prepare('disk', partial, ['signature'], store_with(rsa_signer.pem))
    with pytest.raises(errors.SignatureError, match='the image is not signed'):
        one_pass.Verification.prepare('disk', expectations(data), ['signature'], store_with(rsa_signer.pem),
                                      require_signature=True)
    with pytest.raises(errors.FormatError, match=r'the format qcow2 is not in allowed_formats \(raw\)'):
        one_pass.Verification.prepare('disk', expectations(data), ['format'], store_with(rsa_signer.pem),
                                      allowed_formats=['raw'])
    weird = expectations(data)
    weird.digests['nosuchhash'] = '00'
    with pytest.raises(errors.IntegrityError, match='not supported'):
        one_pass.Verification.prepare('disk', weird, ['checksum'], store_with(rsa_signer.pem))


def test_unsigned_image_passes_when_no_signature_is_required(qcow2):
    data = qcow2.read_bytes()
    verification = one_pass.Verification.prepare('disk', expectations(data), ['signature'], one_pass.certificate_store(None))
    assert not verification.signed
    rpass = stream.read_pass(str(qcow2), verification.start())
    assert rpass.consumers() and rpass.inspection is None
    unsigned = {'signed': False, 'verified': False, 'trusted': False}
    assert verification.evaluate(rpass, str(qcow2))['signature'] == unsigned


def test_barbican_certificates_are_fetched_through_the_api():
    fetched = []

    class Barbican(object):
        def get_secret_payload(self, uuid, what):
            fetched.append((uuid, what))
            raise errors.NotFoundError('%s: gone' % what)

    class Api(object):
        barbican = Barbican()

    with pytest.raises(errors.NotFoundError, match='Fetching certificate %s from Barbican: gone' % CERT_UUID):
        one_pass.certificate_store(Api()).get(CERT_UUID)
    assert fetched == [(CERT_UUID, 'Fetching certificate %s from Barbican' % CERT_UUID)]


@pytest.mark.parametrize('chunk_size', [509, 4096, 1024 * 1024])
def test_the_inspector_as_a_consumer_decides_like_the_stream_wrapper(qcow2, tmp_path, chunk_size):
    backed = tmp_path / 'backed.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', str(qcow2), '-F', 'qcow2', str(backed)],
                   check=True)
    data = backed.read_bytes()
    chunks = [data[offset:offset + chunk_size] for offset in range(0, len(data), chunk_size)]
    pushed = inspect.Inspection('pushed', 'qcow2')
    stream.pump(iter(chunks), [pushed.consumer()])
    pushed.finish()
    pulled = inspect.Inspection('pulled', 'qcow2')
    for dummy in pulled.wrap(iter(chunks)):
        pass
    assert pushed.detected() == pulled.detected() == 'qcow2'
    with pytest.raises(errors.FormatError, match='backing_file'):
        pushed.safety_check()


def test_an_inspector_fed_nothing_cannot_decide():
    inspection = inspect.Inspection('empty')
    inspection.consumer()
    inspection.finish()
    assert inspection.detected() == 'raw'


def test_read_pass_names_what_it_cannot_read(tmp_path):
    rpass = one_pass.ReadPass([], None)
    with pytest.raises(errors.OsimageError, match='Cannot verify .*: No such file or directory.'):
        stream.read_pass(str(tmp_path / 'nope'), rpass)
    with pytest.raises(errors.OsimageError, match='neither a regular file nor a block device'):
        stream.read_pass(str(tmp_path), rpass)


def test_the_reader_stops_at_the_limit():
    assert b''.join(stream.read_chunks(io.BytesIO(b'a' * 10 + b'b' * 10 + b'c' * 10), 10, 15)) == b'a' * 10 + b'b' * 5
    assert list(stream.read_chunks(io.BytesIO(b'a'), 10, 0)) == []


def test_atomic_file_flush_makes_the_data_readable_before_commit(tmp_path):
    dest = tmp_path / 'dest'
    with targets.AtomicFile(str(dest)) as target:
        target.preallocate(1024 * 1024)
        target.write(b'hello')
        target.flush()
        with open(target.tmp_path, 'rb') as fileobj:
            assert fileobj.read() == b'hello'
        target.commit()
    assert dest.read_bytes() == b'hello'
