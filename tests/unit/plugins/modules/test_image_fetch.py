# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_fetch with the Glance API faked at its boundary (conftest's fake_glance): what
ends up on disk, what is reported, and what is left behind on failure."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.modules import image_fetch

DATA = os.urandom(5 * 1024 * 1024 + 3)
IMAGE = {
    'id': '11111111-2222-3333-4444-555555555555', 'name': 'cirros', 'status': 'active',
    'disk_format': 'raw', 'container_format': 'bare', 'size': len(DATA), 'virtual_size': None,
    'os_hash_algo': 'sha512', 'os_hash_value': hashlib.sha512(DATA).hexdigest(),
    'checksum': hashlib.md5(DATA).hexdigest(),
}


@pytest.fixture
def glance(fake_glance):
    fake_glance.image = dict(IMAGE)
    fake_glance.serve(DATA)
    return fake_glance


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_fetch.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def test_fetch_writes_verified_data_and_reports_the_transfer(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['rc'] == 0 and result['changed'] is True
    assert dest.read_bytes() == DATA
    assert result['transfer']['bytes'] == len(DATA)
    assert result['verified_with'] == 'sha512'
    assert glance.stream.closed
    assert os.listdir(tmp_path) == ['cirros.raw']


def test_check_mode_predicts_a_download_and_writes_nothing(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest), '_ansible_check_mode': True,
                         '_ansible_diff': True}, capsys)
    assert result['changed'] is True
    assert result['diff']['before'] == {'state': 'absent'}
    assert result['diff']['after']['sha512'] == IMAGE['os_hash_value']
    assert glance.downloads == 0
    assert not dest.exists()


def test_the_full_image_record_and_dest_type_are_returned_in_check_mode_too(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, min_disk=2, min_ram=512, tags=['golden'], visibility='shared', hw_disk_bus='scsi')
    for check_mode in (True, False):
        result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x'), '_ansible_check_mode': check_mode},
                            capsys)
        assert result['rc'] == 0
        assert result['image'] == glance.image
        assert result['dest_type'] == 'file'


def test_up_to_date_dest_is_not_downloaded_again(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    dest.write_bytes(DATA)
    result = run_module({'image': IMAGE['id'], 'dest': str(dest)}, capsys)
    assert result['changed'] is False
    assert 'transfer' not in result
    assert glance.downloads == 0


def test_hash_mismatch_fails_and_keeps_the_old_dest(glance, tmp_path, capsys):
    glance.serve(DATA[:-1] + b'\0')
    dest = tmp_path / 'cirros.raw'
    dest.write_bytes(b'old content')
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['rc'] == 1 and result['failed'] is True
    assert 'the data does not match the image: sha512 expected %s' % IMAGE['os_hash_value'] in result['msg']
    assert dest.read_bytes() == b'old content'
    assert os.listdir(tmp_path) == ['cirros.raw']


def test_short_download_is_reported_with_both_sizes(glance, tmp_path, capsys):
    glance.serve(DATA[:1000])
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert 'received 1000 bytes but Glance says the image has %d' % len(DATA) in result['msg']
    assert os.listdir(tmp_path) == []


def test_connection_lost_mid_stream_leaves_nothing(glance, tmp_path, capsys):
    glance.serve(DATA, break_after=4 * 1024 * 1024)
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert result['failed'] is True
    assert 'broke off after 4194304 bytes' in result['msg']
    assert os.listdir(tmp_path) == []


def test_image_without_any_hash_needs_allow_unverified(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, os_hash_algo=None, os_hash_value=None, checksum=None)
    refused = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert 'cannot be verified. Set allow_unverified=true' in refused['msg']
    allowed = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x'), 'allow_unverified': True}, capsys)
    assert allowed['changed'] is True and allowed['verified_with'] is None
    assert (tmp_path / 'x').read_bytes() == DATA


def test_md5_checksum_is_the_fallback_for_old_images(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, os_hash_algo=None, os_hash_value=None)
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert result['verified_with'] == 'md5'
    assert result['changed'] is True


def test_dest_that_is_a_directory_is_refused(glance, tmp_path, capsys):
    result = run_module({'image': 'cirros', 'dest': str(tmp_path)}, capsys)
    assert 'is neither a regular file nor a block device' in result['msg']


def test_cloud_dict_with_region_beside_it_is_one_clear_error(tmp_path, capsys):
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x'), 'cloud': {'auth': {}},
                         'region_name': 'RegionOne'}, capsys)
    assert result['failed'] is True
    assert result['msg'] == 'cloud is given as a dict, so region_name must go inside that dict instead of being module options.'


# Signature and format checks, on real qcow2 images, keys and certificates.

needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')
CERT_UUID = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'


def qcow2_bytes(tmp_path, size='32M', backing=None):
    path = tmp_path / 'made.qcow2'
    args = ['qemu-img', 'create', '-q', '-f', 'qcow2']
    if backing:
        args += ['-b', backing, '-F', 'raw']
    subprocess.run(args + [str(path), size], check=True)
    data = path.read_bytes()
    path.unlink()
    return data


def image_of(data, **extra):
    image = dict(IMAGE, disk_format='qcow2', size=len(data), os_hash_value=hashlib.sha512(data).hexdigest(),
                 checksum=hashlib.md5(data).hexdigest())
    image.update(extra)
    return image


@pytest.fixture
def workdir(tmp_path):
    """An empty directory for dest, apart from where the images are made."""
    path = tmp_path / 'dest'
    path.mkdir()
    return path


@pytest.fixture
def signed(fake_glance, tmp_path, rsa_signer):
    """A signed qcow2 image in a Glance whose Barbican holds the signer's
    certificate."""
    data = qcow2_bytes(tmp_path)
    fake = fake_glance
    fake.image = image_of(data, **rsa_signer.properties(data, CERT_UUID))
    fake.serve(data)
    fake.secrets[CERT_UUID] = rsa_signer.pem
    return fake


@pytest.fixture
def qemu_calls(monkeypatch):
    """Every qemu-img run, with what dest and the directory held at the time."""
    calls = []
    original = qemu.InspectQemuImg.run

    def run(self, args, what):
        calls.append(dict(args=list(args), listing=sorted(os.listdir(os.path.dirname(args[-1])))))
        return original(self, args, what)
    monkeypatch.setattr(qemu.InspectQemuImg, 'run', run)
    return calls


def write_pem(path, cert):
    from cryptography.hazmat.primitives import serialization
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@needs_qemu_img
def test_signed_image_is_verified_in_the_download_pass_and_reported(signed, workdir, pki, tmp_path, capsys,
                                                                    qemu_calls, monkeypatch):
    pumps = []
    original = stream.pump
    monkeypatch.setattr(stream, 'pump', lambda chunks, consumers, *a: pumps.append(len(consumers))
                        or original(chunks, consumers, *a))
    dest = workdir / 'signed.qcow2'
    ca = write_pem(tmp_path / 'ca.pem', pki.ca)
    result = run_module({'image': 'cirros', 'dest': str(dest), 'trusted_certificates': [ca],
                         'allowed_formats': ['qcow2'], 'max_virtual_size': 32 * 1024 * 1024}, capsys)
    assert result['rc'] == 0, result['msg']
    assert dest.read_bytes() == signed.stream.data and os.listdir(workdir) == ['signed.qcow2']
    assert signed.downloads == 1
    # One pass: count, sha512, the signature's sha256, the inspector and the writer, each a thread.
    assert pumps == [5]
    assert result['checks'] == ['signature', 'format']
    signature = result['signature']
    assert signature['signed'] and signature['verified'] and signature['trusted']
    assert signature['certificate']['subject'] == 'CN=osimage test signer rsa'
    assert signature['certificate']['issuer'] == 'CN=osimage test CA'
    assert signature['certificate']['source'] == 'Barbican secret %s' % CERT_UUID
    assert len(signature['certificate']['fingerprint_sha256']) == 64 and signature['certificate']['serial']
    assert result['format'] == {'detected_format': 'qcow2', 'declared_format': 'qcow2',
                                'virtual_size': 32 * 1024 * 1024, 'qemu_img_format': 'qcow2'}
    # qemu-img read the temporary file, complete, while dest did not exist yet.
    assert [call['args'][0] for call in qemu_calls] == ['info', 'check']
    for call in qemu_calls:
        assert os.path.basename(call['args'][-1]).startswith('.signed.qcow2.')
        assert call['args'][-1].endswith('.part') and 'signed.qcow2' not in call['listing']


@needs_qemu_img
def test_up_to_date_signed_dest_is_verified_in_the_hashing_read(signed, workdir, capsys, monkeypatch, qemu_calls):
    dest = workdir / 'signed.qcow2'
    dest.write_bytes(signed.stream.data)
    monkeypatch.setattr(stream, 'hash_file', pytest.fail)
    for check_mode in (True, False):
        result = run_module({'image': 'cirros', 'dest': str(dest), '_ansible_check_mode': check_mode}, capsys)
        assert result['rc'] == 0 and result['changed'] is False
        assert signed.downloads == 0
        assert result['signature']['verified'] and result['format']['detected_format'] == 'qcow2'
    assert qemu_calls[0]['args'][-1] == str(dest)


@needs_qemu_img
def test_signature_over_other_bytes_keeps_the_old_dest_and_no_temp(signed, workdir, rsa_signer, capsys):
    signed.image.update(rsa_signer.properties(b'other bytes', CERT_UUID))
    dest = workdir / 'signed.qcow2'
    dest.write_bytes(b'old content')
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['failed'] is True and signed.downloads == 1
    assert result['msg'].startswith('Downloading image %s: the data was refused: signature check failed for image %s: '
                                    'the signature does not match the data' % (IMAGE['id'], IMAGE['id']))
    assert result['msg'].endswith('Nothing was changed at %s.' % dest)
    assert [failure['check'] for failure in result['failures']] == ['signature']
    assert dest.read_bytes() == b'old content' and os.listdir(workdir) == ['signed.qcow2']


@needs_qemu_img
def test_up_to_date_dest_that_fails_verification_is_left_and_named(signed, workdir, rsa_signer, capsys):
    signed.image.update(rsa_signer.properties(b'other bytes', CERT_UUID))
    dest = workdir / 'signed.qcow2'
    dest.write_bytes(signed.stream.data)
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['failed'] is True and signed.downloads == 0
    assert result['msg'].startswith('dest %s holds the data of image %s, but it fails verification: signature check'
                                    % (dest, IMAGE['id']))
    assert dest.read_bytes() == signed.stream.data


@needs_qemu_img
def test_untrusted_signer_is_refused_before_downloading(signed, workdir, pki, tmp_path, capsys):
    rogue = pki.signer('ecc384', self_signed=True, name='rogue')
    signed.image.update(rogue.properties(signed.stream.data, CERT_UUID))
    signed.secrets[CERT_UUID] = rogue.pem
    ca = write_pem(tmp_path / 'ca.pem', pki.ca)
    for check_mode in (True, False):
        result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'trusted_certificates': [ca],
                             '_ansible_check_mode': check_mode}, capsys)
        assert 'the signing certificate "CN=rogue" (Barbican secret %s), issued by "CN=rogue", does not chain' \
            % CERT_UUID in result['msg']
    assert signed.downloads == 0 and os.listdir(workdir) == []


def test_required_signature_on_an_unsigned_image_is_refused_before_downloading(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'verify_signature': True}, capsys)
    assert 'the image is not signed' in result['msg'] and '(verify_signature=true)' in result['msg']
    assert glance.downloads == 0 and os.listdir(workdir) == []


def test_partial_signature_metadata_is_refused_unless_signatures_are_skipped(glance, workdir, capsys):
    glance.image = dict(IMAGE, img_signature='c2ln', img_signature_hash_method='SHA-256')
    refused = run_module({'image': 'cirros', 'dest': str(workdir / 'x')}, capsys)
    assert 'incomplete signature metadata' in refused['msg'] and glance.downloads == 0
    skipped = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'verify_signature': 'false',
                          'verify_format': False}, capsys)
    assert skipped['changed'] is True and skipped['signature'] is None and skipped['checks'] == []


def test_trusted_certificates_without_signature_check_is_an_error(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'verify_signature': False,
                         'trusted_certificates': ['/etc/ca.pem']}, capsys)
    assert result['msg'].startswith('trusted_certificates need a signature to check, but verify_signature is false')


@needs_qemu_img
def test_unsigned_raw_image_reports_what_was_checked(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x')}, capsys)
    assert result['rc'] == 0
    assert result['checks'] == ['signature', 'format']
    assert result['signature'] == {'signed': False, 'verified': False, 'trusted': False}
    assert result['format']['detected_format'] == 'raw' and result['format']['virtual_size'] >= len(DATA)


@needs_qemu_img
def test_check_mode_predicting_a_download_reports_nothing_verified(signed, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), '_ansible_check_mode': True}, capsys)
    assert result['changed'] is True and signed.downloads == 0
    assert result['checks'] == [] and result['signature'] is None and result['format'] is None


@needs_qemu_img
def test_backing_file_is_refused_by_the_inspector_before_qemu_img(fake_glance, tmp_path, workdir, capsys, qemu_calls):
    data = qcow2_bytes(tmp_path, backing='/etc/hostname')
    fake = fake_glance
    fake.image = image_of(data)
    fake.serve(data)
    dest = workdir / 'backed.qcow2'
    dest.write_bytes(b'old content')
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert 'format check failed for image %s: the content is qcow2 and fails its safety check: backing_file' \
        % IMAGE['id'] in result['msg']
    assert qemu_calls == []
    assert dest.read_bytes() == b'old content' and os.listdir(workdir) == ['backed.qcow2']


@needs_qemu_img
def test_declared_format_outside_allowed_formats_is_refused_before_downloading(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'allowed_formats': ['qcow2']}, capsys)
    assert 'the format raw is not in allowed_formats (qcow2)' in result['msg']
    assert glance.downloads == 0 and os.listdir(workdir) == []


@needs_qemu_img
def test_virtual_size_over_the_limit_is_refused(signed, workdir, capsys):
    after = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'max_virtual_size': 1024 * 1024}, capsys)
    assert 'the virtual size is 33554432 bytes, more than max_virtual_size 1048576' in after['msg']
    assert signed.downloads == 1 and os.listdir(workdir) == []
    signed.image['virtual_size'] = 32 * 1024 * 1024
    before = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'max_virtual_size': 1024 * 1024}, capsys)
    assert 'the virtual size is 33554432 bytes, more than max_virtual_size 1048576' in before['msg']
    assert signed.downloads == 1


def test_format_limits_need_the_format_check(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'verify_format': False,
                         'max_virtual_size': 1}, capsys)
    assert result['msg'].startswith('allowed_formats and max_virtual_size are checked by the format check')


# Block devices (a regular file stands in for one here; the integration
# target writes real loop devices) and gzip-compressed images.

DEVICE_SIZE = 8 * 1024 * 1024


@pytest.fixture
def device(tmp_path, monkeypatch):
    """A file of DEVICE_SIZE bytes of 0xAA that image_fetch takes for a block device."""
    path = tmp_path / 'device'
    path.write_bytes(b'\xaa' * DEVICE_SIZE)
    real_stat_dest = targets.stat_dest
    monkeypatch.setattr(targets, 'stat_dest', lambda dest: ('block', 0) if dest == str(path) else real_stat_dest(dest))
    return path


def test_raw_image_onto_a_device_in_four_steps(glance, device, capsys):
    args = {'image': 'cirros', 'dest': str(device), '_ansible_diff': True}
    check = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert check['rc'] == 0 and check['changed'] is True and check['dest_type'] == 'block_device'
    assert check['diff']['before']['device_size'] == DEVICE_SIZE
    assert check['diff']['before']['sha512'] != IMAGE['os_hash_value']
    assert check['diff']['after']['sha512'] == IMAGE['os_hash_value']
    assert device.read_bytes() == b'\xaa' * DEVICE_SIZE and glance.downloads == 0
    real = run_module(args, capsys)
    assert real['rc'] == 0 and real['changed'] is True, real.get('msg')
    assert real['transfer']['bytes'] == len(DATA)
    assert real['format']['detected_format'] == 'raw'
    # qemu-img saw only the image's extent of the device (rounded up to 512 bytes).
    assert real['format']['virtual_size'] == -(-len(DATA) // 512) * 512
    content = device.read_bytes()
    assert content[:len(DATA)] == DATA and content[len(DATA):] == b'\xaa' * (DEVICE_SIZE - len(DATA))
    for check_mode in (True, False):
        again = run_module(dict(args, _ansible_check_mode=check_mode), capsys)
        assert again['rc'] == 0 and again['changed'] is False and 'transfer' not in again
        assert again['format']['detected_format'] == 'raw'
    assert glance.downloads == 1


def test_device_smaller_than_the_image_is_refused_untouched(glance, device, capsys):
    device.write_bytes(b'\xaa' * (1024 * 1024))
    for check_mode in (True, False):
        result = run_module({'image': 'cirros', 'dest': str(device), '_ansible_check_mode': check_mode}, capsys)
        assert result['failed'] is True
        assert ('the image has %d bytes but block device %s has only 1048576 bytes. Nothing was written to it'
                % (len(DATA), device)) in result['msg']
    assert device.read_bytes() == b'\xaa' * (1024 * 1024) and glance.downloads == 0


def test_non_raw_image_onto_a_device_points_to_image_convert(glance, device, capsys):
    glance.image = dict(IMAGE, disk_format='qcow2')
    result = run_module({'image': 'cirros', 'dest': str(device)}, capsys)
    assert 'has disk_format qcow2, and only raw data is written to a block device' in result['msg']
    assert 'osimage.glance.image_convert' in result['msg'] and 'osimage.glance.image_to_volume' in result['msg']
    assert glance.downloads == 0 and device.read_bytes() == b'\xaa' * DEVICE_SIZE


def test_file_attributes_and_skipped_format_check_are_refused_for_a_device(glance, device, capsys):
    mode = run_module({'image': 'cirros', 'dest': str(device), 'mode': '0600', 'owner': 'root'}, capsys)
    assert mode['msg'] == 'dest %s is a block device; mode, owner apply to files only. Leave them out.' % device
    unchecked = run_module({'image': 'cirros', 'dest': str(device), 'verify_format': False}, capsys)
    assert 'verify_format=false cannot be used with dest %s, a block device' % device in unchecked['msg']
    assert glance.downloads == 0


@needs_qemu_img
def test_qcow2_content_declared_raw_is_refused_before_the_first_byte_reaches_the_device(
        fake_glance, tmp_path, device, capsys):
    data = qcow2_bytes(tmp_path)
    fake = fake_glance
    fake.image = image_of(data, disk_format='raw')
    fake.serve(data)
    result = run_module({'image': 'cirros', 'dest': str(device)}, capsys)
    assert result['failed'] is True
    assert 'disk_format is declared as raw but the content is qcow2' in result['msg']
    assert result['msg'].endswith('Nothing was written to %s.' % device)
    assert device.read_bytes() == b'\xaa' * DEVICE_SIZE


def test_tampered_data_on_a_device_is_zeroed_and_said_so(glance, device, capsys):
    glance.serve(DATA[:-1] + b'\0')
    result = run_module({'image': 'cirros', 'dest': str(device)}, capsys)
    assert result['failed'] is True
    assert 'the data does not match the image: sha512 expected %s' % IMAGE['os_hash_value'] in result['msg']
    # With direct I/O the last, partial buffer was never written; what was written is zeroed, from offset 0.
    zeroed = int(re.search(r'The (\d+) bytes written to (\S+) were zeroed, so no unverified image data stays on it; '
                           r'its previous content there is gone\.$', result['msg']).group(1))
    assert zeroed in (4 * 1024 * 1024, len(DATA))
    content = device.read_bytes()
    assert content[:zeroed] == bytes(zeroed) and content[zeroed:] == b'\xaa' * (DEVICE_SIZE - zeroed)


def test_connection_lost_while_writing_a_device_zeroes_what_was_written(glance, device, capsys):
    glance.serve(DATA, break_after=4 * 1024 * 1024)
    result = run_module({'image': 'cirros', 'dest': str(device)}, capsys)
    assert 'broke off after 4194304 bytes' in result['msg'] and 'were zeroed' in result['msg']
    assert device.read_bytes()[:4 * 1024 * 1024] == bytes(4 * 1024 * 1024)


def gzip_image(data, **extra):
    packed = gzip.compress(data, compresslevel=1)
    image = dict(IMAGE, container_format='compressed', size=len(packed),
                 os_hash_value=hashlib.sha512(packed).hexdigest(), checksum=hashlib.md5(packed).hexdigest())
    image.update(extra)
    return image, packed


@pytest.fixture
def gzipped(fake_glance):
    image, packed = gzip_image(DATA)
    fake = fake_glance
    fake.image = image
    fake.serve(packed)
    return fake


@needs_qemu_img
def test_gzip_image_decompressed_into_a_file_in_four_steps(gzipped, workdir, capsys):
    dest = workdir / 'image.raw'
    args = {'image': 'cirros', 'dest': str(dest), 'decompress': True, '_ansible_diff': True}
    check = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert check['rc'] == 0 and check['changed'] is True and not dest.exists()
    assert check['diff']['before'] == {'state': 'absent'}
    assert check['diff']['after'] == {'state': 'file', 'size': len(DATA)}
    assert check['decompressed'] == {'format': 'gzip', 'size': len(DATA), 'compressed_size': gzipped.image['size']}
    real = run_module(args, capsys)
    assert real['rc'] == 0 and real['changed'] is True, real.get('msg')
    assert dest.read_bytes() == DATA and os.listdir(workdir) == ['image.raw']
    assert real['format']['detected_format'] == 'raw' and real['verified_with'] == 'sha512'
    stat_before = dest.stat()
    for check_mode in (True, False):
        again = run_module(dict(args, _ansible_check_mode=check_mode), capsys)
        assert again['rc'] == 0 and again['changed'] is False, again.get('msg')
        assert again['format']['detected_format'] == 'raw'
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (stat_before.st_ino, stat_before.st_mtime_ns)


@pytest.mark.parametrize('damage', ['middle', 'longer', 'shorter'])
def test_decompressed_file_that_differs_is_rewritten(gzipped, workdir, capsys, damage):
    dest = workdir / 'image.raw'
    old = {'middle': DATA[:5000000] + b'\0' + DATA[5000001:], 'longer': DATA + b'tail',
           'shorter': DATA[:-10]}[damage]
    dest.write_bytes(old)
    result = run_module({'image': 'cirros', 'dest': str(dest), 'decompress': True, 'verify_format': False}, capsys)
    assert result['rc'] == 0 and result['changed'] is True, result.get('msg')
    assert dest.read_bytes() == DATA and os.listdir(workdir) == ['image.raw']


@needs_qemu_img
def test_gzip_image_decompressed_onto_a_device(gzipped, device, capsys):
    args = {'image': 'cirros', 'dest': str(device), 'decompress': True}
    check = run_module(dict(args, _ansible_check_mode=True), capsys)
    assert check['changed'] is True and device.read_bytes() == b'\xaa' * DEVICE_SIZE
    real = run_module(args, capsys)
    assert real['rc'] == 0 and real['changed'] is True, real.get('msg')
    assert device.read_bytes()[:len(DATA)] == DATA
    for check_mode in (True, False):
        assert run_module(dict(args, _ansible_check_mode=check_mode), capsys)['changed'] is False


def test_decompressed_image_larger_than_the_device_is_zeroed(fake_glance, device, capsys):
    image, packed = gzip_image(bytes(DEVICE_SIZE + 4096))
    fake = fake_glance
    fake.image = image
    fake.serve(packed)
    check = run_module({'image': 'cirros', 'dest': str(device), 'decompress': True, '_ansible_check_mode': True},
                       capsys)
    assert 'the decompressed image has %d bytes but block device' % (DEVICE_SIZE + 4096) in check['msg']
    real = run_module({'image': 'cirros', 'dest': str(device), 'decompress': True, 'verify_signature': 'false'},
                      capsys)
    assert 'The data is larger than block device %s, which has %d bytes' % (device, DEVICE_SIZE) in real['msg']
    assert 'were zeroed' in real['msg']


def test_compressed_image_without_decompress_needs_verify_format_false(gzipped, workdir, capsys):
    dest = workdir / 'image.gz'
    refused = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert 'is stored gzip-compressed (container_format compressed), so its disk format can only be checked' \
        in refused['msg']
    as_is = run_module({'image': 'cirros', 'dest': str(dest), 'verify_format': False}, capsys)
    assert as_is['changed'] is True and gzip.decompress(dest.read_bytes()) == DATA


@needs_qemu_img
def test_decompress_on_an_uncompressed_image_fetches_it_as_it_is(glance, workdir, capsys):
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'decompress': True}, capsys)
    assert result['rc'] == 0 and 'decompressed' not in result
    assert (workdir / 'x').read_bytes() == DATA


def test_compressed_image_that_is_not_gzip_is_named(fake_glance, workdir, capsys):
    packed = b'\x28\xb5\x2f\xfd' + os.urandom(1000)
    image = dict(IMAGE, container_format='compressed', size=len(packed),
                 os_hash_value=hashlib.sha512(packed).hexdigest(), checksum=hashlib.md5(packed).hexdigest())
    fake = fake_glance
    fake.image = image
    fake.serve(packed)
    result = run_module({'image': 'cirros', 'dest': str(workdir / 'x'), 'decompress': True}, capsys)
    assert 'but its data is zstd data, not gzip; only gzip can be decompressed' in result['msg']
    assert os.listdir(workdir) == []


def test_tampered_gzip_image_fails_on_its_hash_first(gzipped, workdir, capsys):
    packed = bytearray(gzipped.stream.data)
    packed[2000:6096] = bytes(4096)
    gzipped.serve(bytes(packed))
    dest = workdir / 'image.raw'
    dest.write_bytes(b'old')
    result = run_module({'image': 'cirros', 'dest': str(dest), 'decompress': True}, capsys)
    assert 'the data does not match the image' in result['msg']
    assert dest.read_bytes() == b'old' and os.listdir(workdir) == ['image.raw']


def test_negative_timeout_and_max_virtual_size_are_refused_before_anything(glance, tmp_path, capsys):
    dest = tmp_path / 'x.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest), 'timeout': -1, 'max_virtual_size': -2}, capsys)
    assert result['failed'] is True
    assert result['msg'] == ('max_virtual_size is -2 but must be 0 or more (bytes); timeout is -1 but must be 0 or '
                             'more (0 means no limit). Nothing was done.')
    assert glance.downloads == 0 and not dest.exists()


def test_a_deactivated_image_is_named_as_such_and_not_downloaded(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, status='deactivated')
    dest = tmp_path / 'cirros.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['rc'] == 1 and result['status'] == 'deactivated'
    assert 'is deactivated by its owner' in result['msg'] and 'reactivate=true' in result['msg']
    assert glance.downloads == 0 and not dest.exists()
