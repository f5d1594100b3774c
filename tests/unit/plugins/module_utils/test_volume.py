# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Destinations of image_fetch. A regular file stands in for a block device
(the writer only needs pwrite and fdatasync); the image_fetch integration
target writes real loop devices."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer
from ansible_collections.osimage.glance.plugins.module_utils import _verify
from ansible_collections.osimage.glance.plugins.module_utils import _volume

SIZE = 12 * 1024 * 1024
DATA = os.urandom(9 * 1024 * 1024 + 777)


@pytest.fixture
def device(tmp_path):
    path = tmp_path / 'device'
    path.write_bytes(b'\xaa' * SIZE)
    return path


def pieces(data, size):
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


@pytest.mark.parametrize('direct', [True, False])
@pytest.mark.parametrize('start', [0, 4096, 1000])
def test_writer_puts_odd_sized_chunks_in_place_from_any_start(device, direct, start):
    writer = _volume.DeviceWriter(str(device), SIZE, start=start, direct=direct, sync_every=3 * 1024 * 1024)
    for chunk in pieces(DATA, 1024 * 1024 + 13):
        writer.write(chunk)
    writer.flush()
    writer.close()
    content = device.read_bytes()
    assert content[:start] == b'\xaa' * start
    assert content[start:start + len(DATA)] == DATA
    assert content[start + len(DATA):] == b'\xaa' * (SIZE - start - len(DATA))


def test_writer_refuses_data_beyond_the_end_of_the_device(device):
    writer = _volume.DeviceWriter(str(device), SIZE)
    writer.write(bytes(SIZE - 10))
    with pytest.raises(errors.DestinationError) as failure:
        writer.write(bytes(11))
    assert 'The data is larger than block device %s, which has %d bytes' % (device, SIZE) in failure.value.msg
    writer.close()


@pytest.mark.parametrize('direct', [True, False])
def test_zeroing_covers_everything_written_from_offset_zero(device, direct):
    writer = _volume.DeviceWriter(str(device), SIZE, start=8192, direct=direct)
    for chunk in pieces(DATA, 1024 * 1024):
        writer.write(chunk)
    # Whatever direct I/O still holds in its buffer never reached the device.
    zeroed = writer.zero_written()
    writer.close()
    content = device.read_bytes()
    assert zeroed == (8192 + 8 * 1024 * 1024 if direct else 8192 + len(DATA))
    assert content[:zeroed] == bytes(zeroed)
    assert DATA[:4096] not in content


def test_device_target_abandoned_before_writing_says_nothing_was_written(device):
    target = _volume.DeviceTarget(str(device), SIZE)
    assert target.abandon() == 'Nothing was written to %s.' % device
    assert device.read_bytes() == b'\xaa' * SIZE


def test_check_fits_names_both_sizes(device):
    assert _volume.check_fits(str(device), SIZE, 'Writing x') == SIZE
    with pytest.raises(errors.DestinationError) as failure:
        _volume.check_fits(str(device), SIZE + 1, 'Writing x')
    assert failure.value.msg == ('Writing x: the image has %d bytes but block device %s has only %d bytes. Nothing was '
                                 'written to it; use a device of at least %d bytes.' % (SIZE + 1, device, SIZE, SIZE + 1))


def test_read_prefix_hashes_only_the_image_extent(device):
    device.write_bytes(DATA + b'\xaa' * (SIZE - len(DATA)))
    rpass = _volume.read_prefix(str(device), _verify.ReadPass(['sha256'], None), len(DATA))
    digests = transfer.Digests(['sha256'])
    digests.update(DATA)
    assert rpass.size == len(DATA) and rpass.hexdigests() == digests.hexdigests()


def test_head_check_passes_raw_data_through_unchanged():
    head = _volume.HeadCheck('image x', '/dev/x')
    chunks = pieces(DATA, 100000)
    assert list(head.chunks(iter(chunks))) == chunks
    # Decided long before the data ended.
    assert head.head_bytes < 1024 * 1024


def test_head_check_decides_at_the_end_of_short_data():
    head = _volume.HeadCheck('image x', '/dev/x')
    assert b''.join(head.chunks(iter([b'tiny']))) == b'tiny'


needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')


@needs_qemu_img
def test_head_check_refuses_a_qcow2_before_yielding_anything(tmp_path):
    path = tmp_path / 'x.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '1G'], check=True)
    head = _volume.HeadCheck('image x', '/dev/x')
    yielded = []
    with pytest.raises(errors.FormatError) as failure:
        for chunk in head.chunks(iter(pieces(path.read_bytes(), 512))):
            yielded.append(chunk)
    assert yielded == []
    assert 'format check failed for image x: disk_format is declared as raw but the content is qcow2' \
        in failure.value.msg


def test_head_check_refuses_data_it_cannot_decide_on_within_its_limit(monkeypatch):
    head = _volume.HeadCheck('image x', '/dev/x', limit=1024)
    with pytest.raises(errors.FormatError) as failure:
        list(head.chunks(iter(pieces(DATA, 512))))
    assert 'could not tell from the first 1024 bytes whether the data is raw' in failure.value.msg


@needs_qemu_img
def test_qemu_img_sees_only_the_extent_rounded_to_sectors(device):
    info = _volume.ExtentQemuImg(1000).info(str(device), 'raw', 'image x')
    assert info['format'] == 'raw' and info['virtual-size'] == 1024


class Recorder(object):
    def __init__(self):
        self.data = b''
        self.committed = False

    def write(self, chunk):
        self.data += chunk


def comparing(dest, whole_file=True, check_mode=False):
    opened = []

    def open_target(offset):
        opened.append((offset, Recorder()))
        return opened[-1][1]
    return _volume.ComparingTarget(str(dest), None if check_mode else open_target, whole_file), opened


def feed(target, data, size=1000):
    for chunk in pieces(data, size):
        target.write(chunk)
    target.finish()


def test_equal_content_is_not_written(tmp_path):
    dest = tmp_path / 'dest'
    dest.write_bytes(DATA[:10000])
    target, opened = comparing(dest)
    feed(target, DATA[:10000])
    assert not target.changed and opened == [] and target.has_data and target.check_path == str(dest)
    assert target.abandon() == 'Nothing was changed at %s.' % dest


def test_writing_starts_at_the_chunk_that_differs(tmp_path):
    dest = tmp_path / 'dest'
    dest.write_bytes(DATA[:5500] + b'!' + DATA[5501:10000])
    target, opened = comparing(dest)
    feed(target, DATA[:10000])
    assert target.changed and target.differs_at == 5000
    assert [(offset, recorder.data) for offset, recorder in opened] == [(5000, DATA[5000:10000])]


@pytest.mark.parametrize('whole_file, changed', [(True, True), (False, False)])
def test_a_longer_file_differs_but_a_larger_device_does_not(tmp_path, whole_file, changed):
    dest = tmp_path / 'dest'
    dest.write_bytes(DATA[:10000] + b'more')
    target, opened = comparing(dest, whole_file=whole_file)
    feed(target, DATA[:10000])
    assert target.changed is changed
    assert [offset for offset, recorder in opened] == ([10000] if changed else [])


def test_absent_dest_is_written_from_the_start_and_check_mode_only_notes_it(tmp_path):
    target, opened = comparing(tmp_path / 'absent')
    feed(target, DATA[:3000])
    assert target.changed and opened[0][0] == 0 and opened[0][1].data == DATA[:3000]
    predicted, none = comparing(tmp_path / 'absent', check_mode=True)
    feed(predicted, DATA[:3000])
    assert predicted.changed and none == [] and not predicted.has_data


def test_file_target_copies_the_equal_beginning_and_replaces_dest_atomically(tmp_path):
    dest = tmp_path / 'dest'
    dest.write_bytes(DATA[:4000] + b'old tail')
    target = _volume.FileTarget(str(dest), os.replace, copy_prefix=4000)
    target.write(DATA[4000:9000])
    target.flush()
    assert dest.read_bytes() == DATA[:4000] + b'old tail'
    target.commit()
    assert dest.read_bytes() == DATA[:9000] and os.listdir(tmp_path) == ['dest']


def test_file_target_abandoned_leaves_dest_and_no_temporary_file(tmp_path):
    dest = tmp_path / 'dest'
    dest.write_bytes(b'old')
    target = _volume.FileTarget(str(dest), os.replace, preallocate=1000)
    target.write(b'new')
    assert target.abandon() == 'Nothing was changed at %s.' % dest
    assert dest.read_bytes() == b'old' and os.listdir(tmp_path) == ['dest']
