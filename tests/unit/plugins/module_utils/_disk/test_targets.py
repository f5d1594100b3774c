# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Temporary files beside dest: their names, and which of them a later run
removes. Real files in a temporary directory, real processes in /proc.

Destinations of image_fetch. A regular file stands in for a block device
(the writer only needs pwrite and fdatasync); the image_fetch integration
target writes real loop devices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._trust import verification
from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets


@pytest.fixture
def me():
    owner = targets.this_process()
    assert owner is not None, 'this host has a /proc of its own pid namespace'
    return owner


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and was reaped."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def name_for(dest, owner):
    return targets.temp_name(str(dest), owner)


def like(owner, **changes):
    fields = dict(host=owner.host, boot=owner.boot, pidns=owner.pidns, pid=owner.pid, start=owner.start)
    fields.update(changes)
    return targets.Owner(**fields)


def test_this_process_is_named_by_host_boot_namespace_pid_and_start(me):
    assert me.pid == os.getpid()
    assert me.pidns == os.stat('/proc/self/ns/pid').st_ino
    assert me.start == targets.start_time(os.getpid())
    assert len(me.boot) == 8 and len(me.host) <= targets.HOST_MAX


def test_a_name_parses_back_to_its_owner_even_with_dashes_in_names(tmp_path, me):
    owner = like(me, host='web-01.example.org')
    dest = tmp_path / 'my-disk.osimage-x.qcow2'
    name = name_for(dest, owner)
    assert name.startswith('.my-disk.osimage-x.qcow2.osimage-web-01.example.org-') and name.endswith('.part')
    assert targets.owner_of(name, str(dest)) == owner


@pytest.mark.parametrize('name', [
    '.disk.raw.abc123.part',                                    # the old mkstemp names: not judged
    '.disk.raw.osimage-host-0123abcd-1-2-3.part',               # a field missing
    '.disk.raw.osimage-host-0123abcd-1-2-3-0123abcd.tmp',       # another suffix
    '.disk.raw.osimage-host-0123ABCD-1-2-3-0123abcd.part',      # not our hex
    '.disk.raw.osimage-host-0123abcd-x-2-3-0123abcd.part',      # not a number
    '.other.raw.osimage-host-0123abcd-1-2-3-0123abcd.part',     # another dest
    'disk.raw',
])
def test_foreign_names_have_no_owner(tmp_path, name):
    assert targets.owner_of(name, str(tmp_path / 'disk.raw')) is None


def test_start_time_of_a_live_and_a_gone_process(dead_pid):
    assert targets.start_time(os.getpid()) > 0
    assert targets.start_time(dead_pid) is None


def test_a_dead_owner_here_is_provably_dead(me, dead_pid):
    assert targets.provably_dead(like(me, pid=dead_pid), me)


def test_a_reused_pid_is_dead_but_a_live_process_is_not(me):
    parent = os.getppid()
    assert not targets.provably_dead(like(me, pid=parent, start=targets.start_time(parent)), me)
    assert targets.provably_dead(like(me, pid=parent, start=targets.start_time(parent) + 1), me)
    assert not targets.provably_dead(me, me)


@pytest.mark.parametrize('change', [dict(host='elsewhere'), dict(boot='00000000'), dict(pidns=1)])
def test_another_host_boot_or_namespace_is_never_judged(me, dead_pid, change):
    if change.get('boot') == me.boot:
        change['boot'] = 'ffffffff'
    assert not targets.provably_dead(like(me, pid=dead_pid, **change), me)


def test_only_this_dest_s_files_of_dead_owners_are_removed(tmp_path, me, dead_pid):
    dest = tmp_path / 'disk.raw'
    dead = like(me, pid=dead_pid)
    stale = tmp_path / name_for(dest, dead)
    keep = [
        tmp_path / name_for(dest, me),                                   # this live run's own
        tmp_path / name_for(dest, like(me, pid=os.getppid(), start=targets.start_time(os.getppid()))),
        tmp_path / name_for(dest, like(dead, host='elsewhere')),         # another host
        tmp_path / name_for(dest, like(dead, pidns=me.pidns + 1)),       # another container
        tmp_path / name_for(tmp_path / 'other.raw', dead),               # another dest
        tmp_path / '.disk.raw.k2j3h4.part',                              # not this scheme
        tmp_path / 'disk.raw',
    ]
    for path in [stale] + keep:
        path.write_bytes(b'x')
    # A directory and a link with a stale name are not regular files: left alone.
    odd_dir = tmp_path / name_for(dest, dead)
    odd_dir.mkdir()
    odd_link = tmp_path / name_for(dest, dead)
    odd_link.symlink_to(tmp_path / 'disk.raw')

    assert targets.remove_stale(str(dest), check_mode=True) == [str(stale)]
    assert stale.exists()
    assert targets.remove_stale(str(dest)) == [str(stale)]
    assert not stale.exists()
    assert all(path.exists() for path in keep) and odd_dir.is_dir() and odd_link.is_symlink()
    assert targets.remove_stale(str(dest)) == []


def test_atomic_files_carry_their_owner(tmp_path, me):
    dest = tmp_path / 'disk.raw'
    with targets.AtomicFile(str(dest)) as target:
        name = os.path.basename(target.tmp_path)
        assert targets.owner_of(name, str(dest)) == me
        assert oct(os.stat(target.tmp_path).st_mode & 0o777) == oct(0o600)
        # A live run's file is not stale to another run of this host.
        assert targets.remove_stale(str(dest)) == []
    assert os.listdir(tmp_path) == []


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
    writer = targets.DeviceWriter(str(device), SIZE, start=start, direct=direct, sync_every=3 * 1024 * 1024)
    for chunk in pieces(DATA, 1024 * 1024 + 13):
        writer.write(chunk)
    writer.flush()
    writer.close()
    content = device.read_bytes()
    assert content[:start] == b'\xaa' * start
    assert content[start:start + len(DATA)] == DATA
    assert content[start + len(DATA):] == b'\xaa' * (SIZE - start - len(DATA))


def test_writer_refuses_data_beyond_the_end_of_the_device(device):
    writer = targets.DeviceWriter(str(device), SIZE)
    writer.write(bytes(SIZE - 10))
    with pytest.raises(errors.DestinationError) as failure:
        writer.write(bytes(11))
    assert 'The data is larger than block device %s, which has %d bytes' % (device, SIZE) in failure.value.msg
    writer.close()


@pytest.mark.parametrize('direct', [True, False])
def test_zeroing_covers_everything_written_from_offset_zero(device, direct):
    writer = targets.DeviceWriter(str(device), SIZE, start=8192, direct=direct)
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
    target = targets.DeviceTarget(str(device), SIZE)
    assert target.abandon() == 'Nothing was written to %s.' % device
    assert device.read_bytes() == b'\xaa' * SIZE


def test_check_fits_names_both_sizes(device):
    assert targets.check_fits(str(device), SIZE, 'Writing x') == SIZE
    with pytest.raises(errors.DestinationError) as failure:
        targets.check_fits(str(device), SIZE + 1, 'Writing x')
    assert failure.value.msg == ('Writing x: the image has %d bytes but block device %s has only %d bytes. Nothing was '
                                 'written to it; use a device of at least %d bytes.' % (SIZE + 1, device, SIZE, SIZE + 1))


def test_read_prefix_hashes_only_the_image_extent(device):
    device.write_bytes(DATA + b'\xaa' * (SIZE - len(DATA)))
    rpass = stream.read_prefix(str(device), verification.ReadPass(['sha256'], None), len(DATA))
    digests = stream.Digests(['sha256'])
    digests.update(DATA)
    assert rpass.size == len(DATA) and rpass.hexdigests() == digests.hexdigests()


def test_head_check_passes_raw_data_through_unchanged():
    head = inspect.HeadCheck('image x', '/dev/x')
    chunks = pieces(DATA, 100000)
    assert list(head.chunks(iter(chunks))) == chunks
    # Decided long before the data ended.
    assert head.head_bytes < 1024 * 1024


def test_head_check_decides_at_the_end_of_short_data():
    head = inspect.HeadCheck('image x', '/dev/x')
    assert b''.join(head.chunks(iter([b'tiny']))) == b'tiny'


needs_qemu_img = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')


@needs_qemu_img
def test_head_check_refuses_a_qcow2_before_yielding_anything(tmp_path):
    path = tmp_path / 'x.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(path), '1G'], check=True)
    head = inspect.HeadCheck('image x', '/dev/x')
    yielded = []
    with pytest.raises(errors.FormatError) as failure:
        for chunk in head.chunks(iter(pieces(path.read_bytes(), 512))):
            yielded.append(chunk)
    assert yielded == []
    assert 'format check failed for image x: disk_format is declared as raw but the content is qcow2' \
        in failure.value.msg


def test_head_check_refuses_data_it_cannot_decide_on_within_its_limit(monkeypatch):
    head = inspect.HeadCheck('image x', '/dev/x', limit=1024)
    with pytest.raises(errors.FormatError) as failure:
        list(head.chunks(iter(pieces(DATA, 512))))
    assert 'could not tell from the first 1024 bytes whether the data is raw' in failure.value.msg


@needs_qemu_img
def test_qemu_img_sees_only_the_extent_rounded_to_sectors(device):
    info = inspect.ExtentQemuImg(1000).info(str(device), 'raw', 'image x')
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
    return targets.ComparingTarget(str(dest), None if check_mode else open_target, whole_file), opened


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
    target = targets.FileTarget(str(dest), os.replace, copy_prefix=4000)
    target.write(DATA[4000:9000])
    target.flush()
    assert dest.read_bytes() == DATA[:4000] + b'old tail'
    target.commit()
    assert dest.read_bytes() == DATA[:9000] and os.listdir(tmp_path) == ['dest']


def test_file_target_abandoned_leaves_dest_and_no_temporary_file(tmp_path):
    dest = tmp_path / 'dest'
    dest.write_bytes(b'old')
    target = targets.FileTarget(str(dest), os.replace, preallocate=1000)
    target.write(b'new')
    assert target.abandon() == 'Nothing was changed at %s.' % dest
    assert dest.read_bytes() == b'old' and os.listdir(tmp_path) == ['dest']


def test_output_file_replaces_dest_only_on_commit(tmp_path):
    dest = tmp_path / 'image.raw'
    dest.write_bytes(b'old')
    with targets.OutputFile(str(dest)) as out:
        assert os.path.dirname(out.path) == str(tmp_path)
        with open(out.path, 'wb') as fileobj:
            fileobj.write(b'new')
        out.commit()
    assert dest.read_bytes() == b'new'
    assert os.listdir(tmp_path) == ['image.raw']


@pytest.mark.parametrize('exception', [RuntimeError, KeyboardInterrupt])
def test_output_file_is_removed_when_the_block_fails(tmp_path, exception):
    dest = tmp_path / 'image.raw'
    dest.write_bytes(b'old')
    with pytest.raises(exception):
        with targets.OutputFile(str(dest)) as out:
            with open(out.path, 'wb') as fileobj:
                fileobj.write(b'half')
            raise exception()
    assert dest.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['image.raw']


def test_output_file_in_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(errors.DestinationError) as info:
        targets.OutputFile(str(tmp_path / 'nope' / 'image.raw'))
    assert 'Cannot create a temporary file' in info.value.msg


def test_dest_kind_names_files_and_absence_and_refuses_anything_else(tmp_path):
    (tmp_path / 'file').write_bytes(b'x')
    assert targets.dest_kind(str(tmp_path / 'file')) == 'file'
    assert targets.dest_kind(str(tmp_path / 'nothing')) == 'absent'
    with pytest.raises(errors.DestinationError, match='is neither a regular file nor a block device'):
        targets.dest_kind(str(tmp_path))


def test_stat_dest_names_what_is_there_with_its_size_and_refuses_nothing(tmp_path):
    (tmp_path / 'file').write_bytes(b'xyz')
    assert targets.stat_dest(str(tmp_path / 'file')) == ('file', 3)
    assert targets.stat_dest(str(tmp_path / 'nothing')) == ('absent', 0)
    assert targets.stat_dest(str(tmp_path))[0] == 'other'
    assert targets.not_file_or_device(str(tmp_path)).msg == (
        'dest %s is neither a regular file nor a block device. Give the path of a file to create or replace, or of '
        'a block device.' % tmp_path)
