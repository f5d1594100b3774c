# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Format safety on real images made with qemu-img or by hand, with the real
inspector and the real qemu-img (a recording stand-in only where the test is
about when qemu-img is called).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream


pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')

MiB = 1024 * 1024


def qemu_img(*args):
    subprocess.run(['qemu-img'] + list(args), check=True, capture_output=True)


def inspected(path, declared=None, **limits):
    inspection = inspect.Inspection(str(path), declared)
    with open(path, 'rb') as fileobj:
        stream.pump(inspection.wrap(stream.read_chunks(fileobj, 64 * 1024)), [lambda chunk: None])
    return inspect.evaluate(inspection, str(path), **limits)


class RecordingQemuImg(qemu.InspectQemuImg):
    def __init__(self):
        super().__init__()
        self.calls = []

    def run(self, args, what):
        self.calls.append(args)
        return super().run(args, what)


def gpt_disk(path, size=4 * MiB):
    """A raw disk whose first sector is a protective MBR (a GPT disk)."""
    mbr = bytearray(512)
    mbr[446:462] = struct.pack('<B3BB3BII', 0, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 1, size // 512 - 1)
    mbr[510:512] = b'\x55\xaa'
    with open(path, 'wb') as fileobj:
        fileobj.write(bytes(mbr))
        fileobj.truncate(size)
    return path


@pytest.fixture
def qcow2(tmp_path):
    path = tmp_path / 'good.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', str(path), '64M')
    return path


def test_good_qcow2_passes_with_qemu_img_s_virtual_size(qcow2):
    found = inspected(qcow2, 'qcow2')
    assert found == {'detected_format': 'qcow2', 'declared_format': 'qcow2', 'virtual_size': 64 * MiB,
                     'qemu_img_format': 'qcow2'}


def test_qemu_img_is_always_told_the_detected_format(qcow2):
    recorder = RecordingQemuImg()
    inspection = inspect.Inspection(str(qcow2), 'qcow2')
    with open(qcow2, 'rb') as fileobj:
        stream.pump(inspection.wrap(stream.read_chunks(fileobj)), [lambda chunk: None])
    inspect.evaluate(inspection, str(qcow2), qemu_img=recorder)
    assert [call[:4] for call in recorder.calls] == [['info', '-U', '-f', 'qcow2'], ['check', '-U', '-f', 'qcow2']]
    assert all(os.path.isabs(call[-1]) for call in recorder.calls)


def test_backing_file_is_refused_before_qemu_img_runs(tmp_path, qcow2):
    backed = tmp_path / 'backed.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', '-b', str(qcow2), '-F', 'qcow2', str(backed))
    recorder = RecordingQemuImg()
    with pytest.raises(errors.FormatError) as failure:
        inspected(backed, 'qcow2', qemu_img=recorder)
    assert 'the content is qcow2 and fails its safety check: backing_file ("Image has a backing file")' \
        in failure.value.msg
    assert recorder.calls == []


def test_external_data_file_is_refused(tmp_path):
    path = tmp_path / 'datafile.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', '-o', 'data_file=%s' % (tmp_path / 'host.raw'), str(path), '16M')
    with pytest.raises(errors.FormatError, match=r'data_file \("Image has data_file set"\): it keeps its data'):
        inspected(path, 'qcow2')


def test_vmdk_whose_extent_is_another_file_is_refused(tmp_path):
    path = tmp_path / 'flat.vmdk'
    qemu_img('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', str(path), '16M')
    with pytest.raises(errors.FormatError, match=r'vmdk and fails its safety check: descriptor'):
        inspected(path, 'vmdk')


def test_self_contained_vmdk_passes(tmp_path):
    path = tmp_path / 'sparse.vmdk'
    qemu_img('create', '-q', '-f', 'vmdk', '-o', 'subformat=streamOptimized', str(path), '16M')
    assert inspected(path, 'vmdk')['virtual_size'] == 16 * MiB


def test_qcow2_inside_an_image_declared_raw_is_refused(qcow2):
    with pytest.raises(errors.FormatError) as failure:
        inspected(qcow2, 'raw')
    assert failure.value.msg == ('format check failed for %s: disk_format is declared as raw but the content '
                                 'is qcow2.' % qcow2)
    assert failure.value.details['detected_format'] == 'qcow2'


def test_random_bytes_declared_qcow2_are_refused(tmp_path):
    path = tmp_path / 'random.qcow2'
    path.write_bytes(os.urandom(MiB))
    with pytest.raises(errors.FormatError, match='declared as qcow2 but the content is raw'):
        inspected(path, 'qcow2')


def test_truncated_qcow2_is_found_by_qemu_img_check(tmp_path, qcow2):
    with open(qcow2, 'r+b') as fileobj:
        fileobj.truncate(100000)
    with pytest.raises(errors.FormatError, match=r'qemu-img check finds the qcow2 image damaged \(\d+ '
                                                 r'corruption\(s\).*truncated or corrupt'):
        inspected(qcow2, 'qcow2')


def test_qed_is_never_allowed(tmp_path):
    path = tmp_path / 'old.qed'
    qemu_img('create', '-q', '-f', 'qed', str(path), '16M')
    with pytest.raises(errors.FormatError, match=r'fails its safety check: banned .*never allowed'):
        inspected(path, 'qed')


def test_raw_declared_covers_a_gpt_disk(tmp_path):
    found = inspected(gpt_disk(tmp_path / 'disk.raw'), 'raw', allowed_formats=['raw'])
    assert found['detected_format'] == 'gpt' and found['qemu_img_format'] == 'raw'


def test_invalid_mbr_is_refused(tmp_path):
    path = gpt_disk(tmp_path / 'disk.raw')
    with open(path, 'r+b') as fileobj:
        fileobj.seek(446)
        fileobj.write(b'\x42')  # boot flag that is neither 0x00 nor 0x80
    with pytest.raises(errors.FormatError, match=r'gpt and fails its safety check: mbr .*partition table'):
        inspected(path, 'raw')


@pytest.mark.parametrize('declared', ['ami', 'aki', 'ari'])
def test_ami_family_is_not_held_to_a_format(qcow2, declared):
    assert inspected(qcow2, declared)['detected_format'] == 'qcow2'


def test_ami_family_still_gets_the_safety_checks(tmp_path, qcow2):
    backed = tmp_path / 'backed.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', '-b', str(qcow2), '-F', 'qcow2', str(backed))
    with pytest.raises(errors.FormatError, match='backing_file'):
        inspected(backed, 'ami')


def test_vhd_is_vpc_to_qemu_img(tmp_path):
    path = tmp_path / 'disk.vhd'
    qemu_img('create', '-q', '-f', 'vpc', str(path), '16M')
    found = inspected(path, 'vhd')
    assert found['detected_format'] == 'vhd' and found['qemu_img_format'] == 'vpc'


def test_no_declared_format_still_runs_the_safety_checks(tmp_path, qcow2):
    assert inspected(qcow2)['detected_format'] == 'qcow2'
    backed = tmp_path / 'backed.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', '-b', str(qcow2), '-F', 'qcow2', str(backed))
    with pytest.raises(errors.FormatError, match='backing_file'):
        inspected(backed)


def test_allowed_formats_and_max_virtual_size(qcow2):
    with pytest.raises(errors.FormatError, match=r'the format qcow2 is not in allowed_formats \(raw, vmdk\)'):
        inspected(qcow2, 'qcow2', allowed_formats=['raw', 'vmdk'])
    with pytest.raises(errors.FormatError, match='virtual size is 67108864 bytes, more than max_virtual_size 1000'):
        inspected(qcow2, 'qcow2', max_virtual_size=1000)
    assert inspected(qcow2, 'qcow2', allowed_formats=['qcow2'], max_virtual_size=64 * MiB)['virtual_size'] == 64 * MiB


def test_format_hidden_inside_another_is_refused(tmp_path):
    # A qcow2 header whose first sector also carries an MBR signature.
    path = gpt_disk(tmp_path / 'two.img')
    qcow2 = tmp_path / 'inner.qcow2'
    qemu_img('create', '-q', '-f', 'qcow2', str(qcow2), '16M')
    data = bytearray(qcow2.read_bytes())
    data[446:512] = path.read_bytes()[446:512]
    qcow2.write_bytes(bytes(data))
    with pytest.raises(errors.FormatError, match=r'matches several disk formats at once \(gpt, qcow2\)'):
        inspected(qcow2, 'qcow2')


def test_missing_qemu_img_is_named(qcow2):
    with pytest.raises(errors.FormatError, match='qemu-img is not installed'):
        inspected(qcow2, 'qcow2', qemu_img=qemu.InspectQemuImg(binary='/nonexistent/qemu-img'))


def test_qemu_img_disagreeing_with_the_inspector_is_refused(qcow2):
    class Liar(qemu.InspectQemuImg):
        def info(self, path, fmt, what):
            return {'format': 'raw', 'virtual-size': 1}
    with pytest.raises(errors.FormatError, match='the inspector found qcow2 but qemu-img reads it as raw'):
        inspected(qcow2, 'qcow2', qemu_img=Liar())


def test_name_maps():
    assert inspect.qemu_format('vhd') == 'vpc' and inspect.qemu_format('iso') == 'raw'
    assert inspect.qemu_format('ploop') == 'parallels' and inspect.glance_format('parallels') == 'ploop'
    assert inspect.glance_format('vpc') == 'vhd' and inspect.qemu_format('qcow2') == 'qcow2'
