# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Where image_fetch puts the data: a regular file (through a temporary
file beside it), a block device (in place, raw only), or either of them
compared first and written only from the first difference on.

Every target is a ``_transfer.pump`` consumer (``write``) with the same
life cycle: ``flush()`` makes the data readable at ``check_path`` for the
checks that read it back, ``commit()`` makes it final, and ``abandon()``
undoes what can be undone and returns the sentence that tells the operator
what state the destination is left in.

A block device cannot be replaced atomically, so the rules differ there:
nothing is written before the format inspector has judged the head of the
data to be raw (``HeadCheck``), the data is written from offset 0 and
flushed, and when anything fails after the first write the written range is
zeroed, so that no unverified image data stays usable on the device.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _format
from ansible_collections.osimage.glance.plugins.module_utils import _qemu
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer
from ansible_collections.osimage.glance.plugins.module_utils._verify import limited

# The most of the data held back for the format inspector before a block
# device is written. Every inspector has decided on raw data after 256 KiB.
HEAD_BYTES = 8 * 1024 * 1024
# Direct I/O needs buffers, offsets and lengths aligned to the logical block
# size; 4 KiB is a multiple of every common one (512 and 4096).
ALIGNMENT = 4096


def is_block_device(path):
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def device_size(path):
    """Size in bytes of the block device at ``path`` (qemu-img's core
    measures it by seeking to its end, which works for every kind of block
    device, unlike the size ioctls)."""
    try:
        return _qemu.device_size(path)
    except OSError as exc:
        raise errors.DestinationError('Cannot open block device %s: %s' % (path, exc.strerror or exc))


def check_fits(path, needed, what):
    """The device's size; refuses, naming both sizes, a device smaller than
    ``needed`` bytes."""
    size = device_size(path)
    if needed is not None and size < needed:
        raise errors.DestinationError(
            '%s: the image has %d bytes but block device %s has only %d bytes. Nothing was written to it; use a '
            'device of at least %d bytes.' % (what, needed, path, size, needed), needed_bytes=needed, device_bytes=size)
    return size


def read_prefix(path, rpass, size):
    """One read of the first ``size`` bytes of ``path`` (the image's extent
    of a device) that feeds ``rpass``; returns ``rpass``."""
    try:
        with open(path, 'rb') as fileobj:
            transfer.pump(limited(transfer.read_chunks(fileobj), size), rpass.consumers())
    except OSError as exc:
        raise errors.DestinationError('Cannot read %s after %d bytes: %s' % (path, rpass.size, exc.strerror or exc))
    rpass.finish()
    return rpass


class HeadInspection(_format.Inspection):
    """An Inspection fed by hand that can tell, before the data ends,
    whether the inspector has decided."""

    def __init__(self, what, declared):
        super(HeadInspection, self).__init__(what, declared)
        self.feed = self.consumer()

    def decided(self):
        return self._wrapper.formats is not None


class HeadCheck(object):
    """Holds the first chunks of the data back until the format inspector
    has judged them raw (the image's declared format on a block device);
    only then are they passed on, followed by the rest. A refusal therefore
    comes before the destination has seen a byte."""

    def __init__(self, what, dest, limit=HEAD_BYTES):
        self.what = what
        self.dest = dest
        self.limit = limit
        self.inspection = HeadInspection(what, 'raw')
        self.head_bytes = 0

    def chunks(self, chunks):
        chunks = iter(chunks)
        head = []
        for chunk in chunks:
            head.append(chunk)
            self.head_bytes += len(chunk)
            self.inspection.feed(chunk)
            if self.inspection.decided() or self.head_bytes >= self.limit:
                break
        else:
            self.inspection.finish()
        self.judge()
        yield from head
        yield from chunks

    def judge(self):
        if not self.inspection.decided():
            raise errors.FormatError(
                'format check failed for %s: the format inspector could not tell from the first %d bytes whether '
                'the data is raw, and only raw data is written to block device %s.'
                % (self.what, self.head_bytes, self.dest), check='format')
        detected = self.inspection.detected()
        self.inspection.safety_check()
        _format.check_declared(detected, 'raw', self.what)


class ExtentQemuImg(_format.QemuImg):
    """qemu-img that sees only the first ``size`` bytes of a block device
    (the image, on a device that is usually larger), rounded up to the 512
    bytes qemu-img counts in; the same as it reports for a raw file."""

    def __init__(self, size, **kwargs):
        super(ExtentQemuImg, self).__init__(**kwargs)
        self.size = -(-int(size) // 512) * 512

    def info(self, path, fmt, what):
        filename, driver = _qemu.json_filename(path, fmt, size=self.size)
        return super(ExtentQemuImg, self).info(filename, driver, what)


def _write_all(fd, data, offset):
    """pwrite all of ``data`` at ``offset``."""
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, offset)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]
            offset += written
    finally:
        view.release()


class DeviceWriter(object):
    """Writes a block device in place, sequentially from ``start``.

    Opened exclusively (O_EXCL): a device that is mounted or held by the
    kernel (LVM, device-mapper, md, swap) is refused with EBUSY. Writes go
    through direct I/O when the device allows it - on a loop device it
    measured faster than buffered writes with periodic fdatasync (about
    1 GB/s against 0.3 to 0.9) and it does not fill the page cache; chunks
    are copied into an aligned buffer for that, and the unaligned edges are
    written through a second, buffered descriptor. Data is fdatasynced every
    ``sync_every`` bytes and at ``flush()``.
    """

    def __init__(self, path, size, start=0, direct=True, sync_every=transfer.SYNC_EVERY):
        self.path = path
        self.size = size
        self.offset = start
        self.end = 0  # end of the furthest byte written
        self.sync_every = sync_every
        self._unsynced = 0
        self._fd = None
        self._direct_fd = None
        self._stage = None
        self._staged = 0
        self._stage_offset = 0
        try:
            # The exclusive claim first, then plain opens beside it.
            self._fd = os.open(path, os.O_WRONLY | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise errors.DestinationError(
                    'Block device %s is in use (mounted, or held by LVM, device-mapper, md or swap); it was not '
                    'written. Unmount or release it first.' % path, errno=exc.errno)
            raise errors.DestinationError('Cannot open block device %s for writing: %s'
                                          % (path, exc.strerror or exc), errno=exc.errno)
        if direct and getattr(os, 'O_DIRECT', None):
            try:
                self._direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | getattr(os, 'O_CLOEXEC', 0))
                self._stage = mmap.mmap(-1, transfer.CHUNK_SIZE)  # page-aligned
            except OSError:
                self._direct_fd = None  # not supported here: buffered writes only

    @property
    def direct(self):
        return self._direct_fd is not None

    def _error(self, exc):
        if exc.errno in (errno.ENOSPC, errno.EFBIG):
            return errors.DestinationError(
                'Block device %s ended while writing at byte %d: %s.' % (self.path, self.offset, exc.strerror),
                errno=exc.errno)
        return errors.DestinationError('Cannot write block device %s at byte %d: %s'
                                       % (self.path, self.offset, exc.strerror or exc), errno=exc.errno)

    def _pwrite(self, fd, data, offset):
        try:
            _write_all(fd, data, offset)
        except OSError as exc:
            raise self._error(exc)
        self.end = max(self.end, offset + len(data))
        self._unsynced += len(data)
        if self.sync_every and self._unsynced >= self.sync_every:
            self._sync()

    def _sync(self):
        try:
            os.fdatasync(self._fd)
        except OSError as exc:
            raise self._error(exc)
        self._unsynced = 0

    def write(self, chunk):
        if self.offset + len(chunk) > self.size:
            raise errors.DestinationError(
                'The data is larger than block device %s, which has %d bytes; it does not fit.'
                % (self.path, self.size), device_bytes=self.size)
        if not self.direct:
            self._pwrite(self._fd, chunk, self.offset)
            self.offset += len(chunk)
            return
        view = memoryview(chunk)
        try:
            while view:
                if not self._staged and self.offset % ALIGNMENT:
                    # An unaligned start: buffered up to the next boundary.
                    part = view[:ALIGNMENT - self.offset % ALIGNMENT]
                    self._pwrite(self._fd, part, self.offset)
                else:
                    if not self._staged:
                        self._stage_offset = self.offset
                    part = view[:len(self._stage) - self._staged]
                    self._stage[self._staged:self._staged + len(part)] = part
                    self._staged += len(part)
                    if self._staged == len(self._stage):
                        self._write_stage()
                self.offset += len(part)
                view = view[len(part):]
        finally:
            view.release()

    def _write_stage(self):
        """The staged bytes: their aligned part directly, the rest (only at
        the very end) buffered."""
        aligned = self._staged - self._staged % ALIGNMENT
        with memoryview(self._stage) as stage:
            if aligned:
                self._pwrite(self._direct_fd, stage[:aligned], self._stage_offset)
            if aligned < self._staged:
                self._pwrite(self._fd, stage[aligned:self._staged], self._stage_offset + aligned)
        self._staged = 0

    def flush(self):
        """Everything written so far on the device, durably."""
        if self._staged:
            self._write_stage()
        self._sync()

    def zero_written(self):
        """Zero the device from offset 0 to the end of what was written
        (what was there before is gone anyway) and flush; returns the number
        of bytes zeroed."""
        self._staged = 0
        end = self.end
        zeros = bytes(min(transfer.CHUNK_SIZE, end))
        offset = 0
        try:
            while offset < end:
                count = min(len(zeros), end - offset)
                _write_all(self._fd, zeros[:count] if count < len(zeros) else zeros, offset)
                offset += count
            os.fdatasync(self._fd)
        except OSError as exc:
            raise errors.DestinationError(
                'Block device %s holds unverified image data, and zeroing it failed at byte %d: %s. Do not use the '
                'device before it was overwritten.' % (self.path, offset, exc.strerror or exc), errno=exc.errno)
        return end

    def close(self):
        for fd in (self._direct_fd, self._fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._direct_fd = None
        if self._stage is not None:
            self._stage.close()
            self._stage = None


class FileTarget(object):
    """A regular file dest, written through a temporary file beside it that
    replaces dest on ``commit()`` (``_transfer.AtomicFile``). With
    ``copy_prefix`` the first bytes are copied from the current dest (they
    were found equal to the data)."""

    def __init__(self, dest, rename, preallocate=None, copy_prefix=0):
        self.dest = dest
        self._rename = rename
        self._file = transfer.AtomicFile(dest)
        try:
            self._file.preallocate(preallocate)
            if copy_prefix:
                self._copy_prefix(copy_prefix)
        except BaseException:
            self._file.discard()
            raise

    def _copy_prefix(self, size):
        try:
            with open(self.dest, 'rb') as fileobj:
                for chunk in limited(transfer.read_chunks(fileobj), size):
                    self._file.write(chunk)
        except OSError as exc:
            raise errors.DestinationError('Cannot read %s: %s' % (self.dest, exc.strerror or exc))

    changed = True
    has_data = True

    @property
    def check_path(self):
        return self._file.tmp_path

    def finish(self):
        pass

    def write(self, chunk):
        self._file.write(chunk)

    def flush(self):
        self._file.flush()

    def commit(self):
        self._file.commit(rename=self._rename)

    def abandon(self):
        self._file.discard()
        return 'Nothing was changed at %s.' % self.dest


class DeviceTarget(object):
    """A block device written in place (see ``DeviceWriter``); ``abandon()``
    zeroes what was written."""

    def __init__(self, dest, size, start=0, direct=True):
        self.dest = dest
        self.writer = DeviceWriter(dest, size, start=start, direct=direct)

    changed = True
    has_data = True

    @property
    def check_path(self):
        return self.dest

    def finish(self):
        pass

    def write(self, chunk):
        self.writer.write(chunk)

    def flush(self):
        self.writer.flush()

    def commit(self):
        self.writer.flush()
        self.writer.close()

    def abandon(self):
        try:
            zeroed = self.writer.zero_written()
        finally:
            self.writer.close()
        if not zeroed:
            return 'Nothing was written to %s.' % self.dest
        return ('The %d bytes written to %s were zeroed, so no unverified image data stays on it; its previous '
                'content there is gone.' % (zeroed, self.dest))


class ComparingTarget(object):
    """Compares the data with what ``dest`` holds and writes nothing while
    they are equal; from the first chunk that differs on, the target made by
    ``open_target(offset)`` is written (None in check mode: then only the
    difference is noted). A file dest that is longer than the data differs
    too; a block device is compared over the data's length only."""

    def __init__(self, dest, open_target, whole_file):
        self.dest = dest
        self._open_target = open_target
        self._whole_file = whole_file
        self.offset = 0
        self.differs_at = None
        self.target = None
        try:
            self._reader = open(dest, 'rb')
        except FileNotFoundError:
            self._reader = None
            self.differs_at = 0
        except OSError as exc:
            raise errors.DestinationError('Cannot read %s: %s' % (dest, exc.strerror or exc))

    @property
    def changed(self):
        return self.differs_at is not None

    def _close_reader(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def write(self, chunk):
        if self.target is None:
            if self.differs_at is None:
                if self._reader.read(len(chunk)) == chunk:
                    self.offset += len(chunk)
                    return
                self.differs_at = self.offset
            if self._open_target is None:  # check mode: the difference is all there is to know
                self.offset += len(chunk)
                return
            self._close_reader()
            self.target = self._open_target(self.offset)
        self.target.write(chunk)
        self.offset += len(chunk)

    def finish(self):
        """After the last chunk: a file dest longer than the data differs."""
        if self.differs_at is None and self._whole_file and self._reader.read(1):
            self.differs_at = self.offset
        self._close_reader()
        if self.differs_at is not None and self.target is None and self._open_target is not None:
            self.target = self._open_target(self.offset)

    @property
    def has_data(self):
        """Whether the data is somewhere to be checked: written, or equal to dest."""
        return self.target is not None or not self.changed

    @property
    def check_path(self):
        return self.target.check_path if self.target is not None else self.dest

    def flush(self):
        if self.target is not None:
            self.target.flush()

    def commit(self):
        if self.target is not None:
            self.target.commit()

    def abandon(self):
        self._close_reader()
        if self.target is not None:
            return self.target.abandon()
        return 'Nothing was changed at %s.' % self.dest
