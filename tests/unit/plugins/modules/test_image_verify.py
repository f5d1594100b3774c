# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_verify on real files, keys and certificates, with Glance and
Barbican faked at their boundary (GlanceAPI: the shared fake of conftest)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance as _glance
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.modules import image_verify

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')

IMAGE_ID = '11111111-2222-3333-4444-555555555555'
CERT_UUID = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'


@pytest.fixture
def glance(fake_glance):
    return fake_glance


@pytest.fixture
def qcow2(tmp_path):
    path = tmp_path / 'disk.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '32M'], check=True)
    return path


def glance_image(path, **extra):
    data = path.read_bytes()
    image = {'id': IMAGE_ID, 'name': 'cirros', 'status': 'active', 'disk_format': 'qcow2',
             'container_format': 'bare', 'size': len(data), 'os_hash_algo': 'sha512',
             'os_hash_value': hashlib.sha512(data).hexdigest(), 'checksum': hashlib.md5(data).hexdigest()}
    image.update(extra)
    return image


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_verify.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def test_signed_glance_image_passes_every_check_in_one_read(glance, qcow2, rsa_signer, capsys, monkeypatch):
    data = qcow2.read_bytes()
    glance.image = glance_image(qcow2, **rsa_signer.properties(data, CERT_UUID, 'SHA-512'))
    glance.secrets[CERT_UUID] = rsa_signer.pem
    reads = []
    original = stream.read_chunks
    monkeypatch.setattr(stream, 'read_chunks', lambda fileobj, *a: reads.append(1) or original(fileobj, *a))
    result = run_module({'image': 'cirros', 'path': str(qcow2)}, capsys)
    assert result['rc'] == 0 and result['changed'] is False
    assert reads == [1]
    assert result['checks'] == ['checksum', 'signature', 'format']
    assert sorted(result['verified_digests']) == ['md5', 'sha512']
    assert set(result['digests']) == {'md5', 'sha512'}  # the signature shares the sha512 digest
    assert result['size'] == len(data)
    assert result['detected_format'] == 'qcow2' and result['virtual_size'] == 32 * 1024 * 1024
    signature = result['signature']
    assert signature['signed'] and signature['verified'] and not signature['trusted']
    assert signature['certificate']['subject'] == 'CN=osimage test signer rsa'
    assert signature['certificate']['issuer'] == 'CN=osimage test CA'
    assert signature['certificate']['serial'] == format(rsa_signer.cert.serial_number, 'x')
    assert len(signature['certificate']['fingerprint_sha256']) == 64
    assert result['image']['id'] == IMAGE_ID


def test_check_mode_verifies_the_same_way(glance, qcow2, capsys):
    glance.image = glance_image(qcow2)
    result = run_module({'image': 'cirros', 'path': str(qcow2), '_ansible_check_mode': True}, capsys)
    assert result['rc'] == 0 and result['changed'] is False
    assert result['checks'] == ['checksum', 'signature', 'format']
    assert result['signature'] == {'signed': False, 'verified': False, 'trusted': False}


def test_explicit_expectations_need_no_cloud(qcow2, capsys, monkeypatch):
    def no_cloud(cls, params):
        return _glance.GlanceAPI(connect=pytest.fail)
    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', classmethod(no_cloud))
    data = qcow2.read_bytes()
    result = run_module({'path': str(qcow2), 'hash_algo': 'sha256', 'hash_value': hashlib.sha256(data).hexdigest(),
                         'checksum': hashlib.md5(data).hexdigest(), 'disk_format': 'qcow2'}, capsys)
    assert result['rc'] == 0, result['msg']
    assert result['checks'] == ['checksum', 'format']
    assert sorted(result['verified_digests']) == ['md5', 'sha256']
    assert result['signature'] is None and result['image'] is None


def test_checksum_mismatch_names_the_check_and_both_values(glance, qcow2, capsys):
    glance.image = glance_image(qcow2)
    with open(qcow2, 'r+b') as fileobj:
        fileobj.seek(100000)
        fileobj.write(b'tampered')
    actual = hashlib.sha512(qcow2.read_bytes()).hexdigest()
    result = run_module({'image': 'cirros', 'path': str(qcow2), 'checks': ['checksum']}, capsys)
    assert result['failed'] is True
    expected = ('checksum check failed for %s (image %s): sha512 expected %s (Glance image %s), found %s; md5 expected'
                % (qcow2, IMAGE_ID, glance.image['os_hash_value'], IMAGE_ID, actual))
    assert result['msg'].startswith(expected)
    assert result['failures'] == [{'check': 'checksum', 'msg': result['msg']}]


def test_several_failures_are_each_reported(glance, qcow2, rsa_signer, capsys):
    glance.image = glance_image(qcow2, disk_format='raw', **rsa_signer.properties(b'other', CERT_UUID))
    glance.secrets[CERT_UUID] = rsa_signer.pem
    result = run_module({'image': 'cirros', 'path': str(qcow2)}, capsys)
    assert [failure['check'] for failure in result['failures']] == ['signature', 'format']
    assert 'signature check failed for' in result['msg'] and 'declared as raw but the content is qcow2' in result['msg']
    assert result['verified_digests'] == ['sha512', 'md5']


def test_partial_signature_metadata_fails_before_reading(glance, qcow2, capsys, monkeypatch):
    glance.image = glance_image(qcow2, img_signature='c2ln', img_signature_hash_method='SHA-256')
    monkeypatch.setattr(stream, 'read_pass', pytest.fail)
    result = run_module({'image': 'cirros', 'path': str(qcow2)}, capsys)
    assert 'incomplete signature metadata' in result['msg']


def test_untrusted_signer_is_refused_by_name(glance, qcow2, pki, tmp_path, capsys):
    rogue = pki.signer('ecc384', self_signed=True, name='rogue')
    glance.image = glance_image(qcow2, **rogue.properties(qcow2.read_bytes(), CERT_UUID))
    glance.secrets[CERT_UUID] = rogue.pem
    ca = tmp_path / 'ca.pem'
    ca.write_bytes(_pem(pki.ca))
    result = run_module({'image': 'cirros', 'path': str(qcow2), 'trusted_certificates': [str(ca)]}, capsys)
    assert 'the signing certificate "CN=rogue" (Barbican secret %s), issued by "CN=rogue", does not chain' \
        % CERT_UUID in result['msg']


def _pem(cert):
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def test_trusted_chain_passes_and_is_reported(glance, qcow2, pki, rsa_signer, tmp_path, capsys):
    glance.image = glance_image(qcow2, **rsa_signer.properties(qcow2.read_bytes(), CERT_UUID))
    glance.secrets[CERT_UUID] = rsa_signer.pem
    ca = tmp_path / 'ca.pem'
    ca.write_bytes(_pem(pki.ca))
    result = run_module({'image': 'cirros', 'path': str(qcow2), 'trusted_certificates': [str(ca)]}, capsys)
    assert result['rc'] == 0, result['msg']
    assert result['signature']['trusted'] is True
    assert sorted(result['digests']) == ['md5', 'sha256', 'sha512']


def test_required_signature_on_an_unsigned_file(qcow2, capsys, glance):
    result = run_module({'path': str(qcow2), 'require_signature': True}, capsys)
    assert 'the image is not signed' in result['msg'] and 'require_signature=true' in result['msg']


def test_local_certificate_with_explicit_signature(qcow2, rsa_signer, tmp_path, capsys, glance):
    cert = tmp_path / 'signer.pem'
    cert.write_bytes(rsa_signer.pem)
    props = rsa_signer.properties(qcow2.read_bytes(), None, 'SHA-384')
    del props['img_signature_certificate_uuid']
    result = run_module(dict(props, path=str(qcow2), certificate_path=str(cert), checks=['signature']), capsys)
    assert result['rc'] == 0, result['msg']
    assert result['checks'] == ['signature'] and result['detected_format'] is None
    assert result['signature']['certificate']['source'] == 'file %s' % cert


def test_checksum_asked_for_without_expectations_is_an_error(qcow2, capsys, glance):
    result = run_module({'path': str(qcow2), 'checks': ['checksum']}, capsys)
    assert result['msg'].startswith('checks includes checksum, but there is no expected digest')


def test_image_and_explicit_expectations_are_exclusive(qcow2, capsys, glance):
    result = run_module({'path': str(qcow2), 'image': 'cirros', 'disk_format': 'raw'}, capsys)
    assert 'mutually exclusive' in result['msg']


def test_disallowed_declared_format_fails_before_reading(glance, qcow2, capsys, monkeypatch):
    glance.image = glance_image(qcow2)
    monkeypatch.setattr(stream, 'read_pass', pytest.fail)
    result = run_module({'image': 'cirros', 'path': str(qcow2), 'allowed_formats': ['raw']}, capsys)
    assert 'the format qcow2 is not in allowed_formats (raw)' in result['msg']


def test_queued_image_has_nothing_to_verify_against(glance, qcow2, capsys):
    glance.image = glance_image(qcow2, status='queued')
    result = run_module({'image': 'cirros', 'path': str(qcow2)}, capsys)
    assert 'is queued: it has no data' in result['msg']


def test_missing_path_is_named(tmp_path, capsys, glance):
    result = run_module({'path': str(tmp_path / 'nope'), 'checks': ['format']}, capsys)
    assert result['msg'] == 'Cannot verify %s: No such file or directory.' % (tmp_path / 'nope')


def test_directory_is_refused(tmp_path, capsys, glance):
    result = run_module({'path': str(tmp_path), 'checks': ['format']}, capsys)
    assert 'neither a regular file nor a block device' in result['msg']


def test_block_device_reads_only_the_image_size(tmp_path):
    chunks = list(stream.read_chunks(io.BytesIO(b'a' * 10 + b'b' * 10 + b'c' * 10), 10, 15))
    assert b''.join(chunks) == b'a' * 10 + b'b' * 5


def test_checks_naming_signature_refuses_an_unsigned_file(qcow2, capsys, glance):
    result = run_module({'path': str(qcow2), 'checks': ['signature', 'format']}, capsys)
    assert result['rc'] == 1
    assert 'the image is not signed' in result['msg']
    assert 'give require_signature=false to accept an unsigned image' in result['msg']


def test_checks_naming_signature_accepts_an_unsigned_file_when_allowed(qcow2, capsys, glance):
    result = run_module({'path': str(qcow2), 'checks': ['signature', 'format'], 'require_signature': False}, capsys)
    assert result['rc'] == 0, result['msg']
    assert result['signature']['signed'] is False


def test_default_checks_accept_an_unsigned_glance_image(glance, qcow2, capsys):
    glance.image = glance_image(qcow2)
    result = run_module({'image': 'cirros', 'path': str(qcow2)}, capsys)
    assert result['rc'] == 0, result['msg']
    assert result['checks'] == ['checksum', 'signature', 'format'] and result['signature']['signed'] is False


def test_negative_max_virtual_size_is_refused_before_reading(glance, qcow2, capsys):
    result = run_module({'path': str(qcow2), 'checks': ['format'], 'max_virtual_size': -1}, capsys)
    assert result['failed'] is True
    assert result['msg'] == 'max_virtual_size is -1 but must be 0 or more (bytes). Nothing was done.'
