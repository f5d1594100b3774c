# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Where image_fetch puts the data: a regular file (through a temporary
file beside it), a block device (in place, raw only), or either of them
compared first and written only from the first difference on.

Every target is a ``stream.pump`` consumer (``write``) with the same
life cycle: ``flush()`` makes the data readable at ``check_path`` for the
checks that read it back, ``commit()`` makes it final, and ``abandon()``
undoes what can be undone and returns the sentence that tells the operator
what state the destination is left in.

A block device cannot be replaced atomically, so the rules differ there:
nothing is written before the format inspector has judged the head of the
data to be raw (``HeadCheck``), the data is written from offset 0 and
flushed, and when anything fails after the first write the written range is
zeroed, so that no unverified image data stays usable on the device.

Also the temporary files beside a destination (``AtomicFile``, ``TempBeside``):
their names that say which process
owns them, and the removal of those whose owner is provably dead.

A run killed with SIGKILL cannot remove its temporary file, so the next run
does it, under one rule: a file is removed only when it is a temporary file
of this very dest, made on this host during this boot in this pid namespace
(so that its pid means the same process here), and that pid is gone or is
now another process (its start time differs). A file of another host,
another boot (a host name is not proof that two machines are one), another
container, a live run, or with any other name, is never touched.

The name: ``.<dest name>.osimage-<host>-<boot>-<pidns>-<pid>-<start>-<random>.part``
with the host name (at most 32 characters), the first 8 hex digits of the
kernel's boot id, the inode of the pid namespace, the pid, the process's
start time in clock ticks after boot (``/proc/<pid>/stat``), and 8 random
hex digits.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import stat
from typing import Callable, List, Optional, Tuple, Union

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream


# os.replace, or the module's atomic_move: moves a finished temporary file over dest.
Rename = Callable[[str, str], None]

MARK = '.osimage-'


SUFFIX = '.part'


HOST_MAX = 32


_FIELDS = re.compile(r'^(?P<host>.+)-(?P<boot>[0-9a-f]{8})-(?P<pidns>[0-9]+)-(?P<pid>[0-9]+)-(?P<start>[0-9]+)'
                     r'-(?P<random>[0-9a-f]{8})$')


_UNSAFE_HOST = re.compile(r'[^A-Za-z0-9_.-]')


class Owner(object):
    """The process a temporary file belongs to."""

    def __init__(self, host: str, boot: str, pidns: Union[int, str], pid: Union[int, str], start: Union[int, str]) -> None:
        self.host = host
        self.boot = boot
        self.pidns = int(pidns)
        self.pid = int(pid)
        self.start = int(start)

    def same_place(self, other: Owner) -> bool:
        """Same host, boot and pid namespace: pids mean the same processes."""
        return (self.host, self.boot, self.pidns) == (other.host, other.boot, other.pidns)

    def tag(self) -> str:
        return '%s-%s-%d-%d-%d' % (self.host, self.boot, self.pidns, self.pid, self.start)

    def __eq__(self, other):
        return isinstance(other, Owner) and self.tag() == other.tag()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.tag())

    def __repr__(self):
        return 'Owner(%s)' % self.tag()


def start_time(pid: int, proc: str = '/proc') -> Optional[int]:
    """The start time of ``pid`` in clock ticks after boot, or None when
    there is no such process."""
    try:
        with open(os.path.join(proc, str(pid), 'stat'), 'rb') as fileobj:
            text = fileobj.read().decode('ascii', 'replace')
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold anything;
    # field 22, the start time, is the 20th after its closing parenthesis.
    return int(text[text.rindex(')') + 2:].split()[19])


def _boot_id():
    with open('/proc/sys/kernel/random/boot_id', encoding='ascii') as fileobj:
        return fileobj.read().strip().replace('-', '')[:8].lower()


def this_process() -> Optional[Owner]:
    """The Owner of files this process makes; None where /proc cannot tell
    (then files get plain random names and nothing is ever judged stale)."""
    try:
        if os.readlink('/proc/self') != str(os.getpid()):
            return None  # a /proc of another pid namespace
        host = _UNSAFE_HOST.sub('_', socket.gethostname() or 'localhost')[:HOST_MAX]
        return Owner(host, _boot_id(), os.stat('/proc/self/ns/pid').st_ino, os.getpid(), start_time(os.getpid()))
    except (OSError, ValueError, IndexError, TypeError):
        return None


def prefix(dest: str) -> str:
    """What every temporary file of ``dest`` is named with first."""
    return '.%s%s' % (os.path.basename(dest), MARK)


def temp_name(dest: str, owner: Optional[Owner]) -> str:
    """A new temporary name beside ``dest`` (basename only)."""
    tag = owner.tag() if owner is not None else 'unknown'
    return '%s%s-%s%s' % (prefix(dest), tag, secrets.token_hex(4), SUFFIX)


def owner_of(name: str, dest: str) -> Optional[Owner]:
    """The Owner named in ``name`` when it is a temporary file of ``dest``
    made by this scheme, else None."""
    start = prefix(dest)
    if not (name.startswith(start) and name.endswith(SUFFIX)):
        return None
    match = _FIELDS.match(name[len(start):-len(SUFFIX)])
    if not match:
        return None
    return Owner(match.group('host'), match.group('boot'), match.group('pidns'), match.group('pid'),
                 match.group('start'))


def provably_dead(owner: Owner, me: Optional[Owner], proc: str = '/proc') -> bool:
    """Whether the process ``owner`` is certainly gone, seen from ``me``
    (this process): only an owner of the same host, boot and pid namespace
    can be judged, and it is dead when its pid is gone or now belongs to a
    process that started at another time."""
    if owner is None or me is None or not owner.same_place(me):
        return False
    if owner.pid == me.pid and owner.start == me.start:
        return False
    return start_time(owner.pid, proc) != owner.start


def stale_temp_files(dest: str, me: Optional[Owner] = None, proc: str = '/proc') -> List[str]:
    """Paths of the temporary files of ``dest`` whose owner is provably dead."""
    me = me if me is not None else this_process()
    directory = os.path.dirname(os.path.abspath(dest))
    if me is None:
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        owner = owner_of(name, dest)
        if owner is None or not provably_dead(owner, me, proc):
            continue
        path = os.path.join(directory, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue  # only regular files: never a link, a directory or a device
        except OSError:
            continue
        found.append(path)
    return found


def remove_stale(dest: str, check_mode: bool = False, me: Optional[Owner] = None, proc: str = '/proc') -> List[str]:
    """Remove (not in check mode) the temporary files of ``dest`` left by
    dead runs; returns their paths."""
    removed = []
    for path in stale_temp_files(dest, me, proc):
        if not check_mode:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue  # another run removed it first
            except OSError:
                continue  # not ours to remove after all (permissions): left alone
        removed.append(path)
    return removed


# Bytes written between two fdatasync calls (block devices, see DeviceWriter).
SYNC_EVERY = 64 * 1024 * 1024


# Bytes an AtomicFile writes before it starts their writeback to disk.
WRITEBACK_EVERY = 16 * 1024 * 1024


def free_bytes(directory: str) -> int:
    """Bytes an unprivileged writer can still use in ``directory``'s filesystem."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check_free_space(directory: str, needed: Optional[int], what: str) -> None:
    """Refuse early, with both numbers, when ``needed`` bytes will not fit."""
    if needed is None:
        return
    available = free_bytes(directory)
    if available < needed:
        raise errors.DestinationError(
            '%s needs %d bytes in %s but only %d bytes are free there. Free some space or choose '
            'another destination.' % (what, needed, directory, available),
            needed_bytes=needed, free_bytes=available)


def create_beside(dest: str, attempts: int = 100) -> Tuple[int, str]:
    """Create a new temporary file beside ``dest`` (mode 0600, exclusive),
    named by ``temp_name``; returns ``(fd, path)``."""
    directory = os.path.dirname(os.path.abspath(dest))
    owner = this_process()
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    for _attempt in range(attempts):
        path = os.path.join(directory, temp_name(dest, owner))
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, 'no unused temporary name after %d attempts' % attempts)


class TempBeside(object):
    """A temporary path beside ``dest`` (same filesystem, so the final rename
    is atomic) that replaces ``dest`` only when published.

    Use as a context manager: leaving the block unpublished (any exception,
    KeyboardInterrupt included) removes the temporary file and leaves
    ``dest`` as it was. The name is reserved with mode 0600; ``fd`` is its
    open descriptor, for the subclass to write through or close. The name
    says which process owns it (``temp_name``), so that a later run can remove
    it if this one is killed.
    """

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.directory = os.path.dirname(os.path.abspath(dest))
        try:
            self.fd, self.tmp_path = create_beside(dest)
        except OSError as exc:
            raise errors.DestinationError(
                'Cannot create a temporary file in %s for %s: %s'
                % (self.directory, dest, exc.strerror or exc))
        self.committed = False

    def _publish(self, rename):
        """Move the (already fsynced) file over ``dest`` and make that durable."""
        rename(self.tmp_path, self.dest)
        self.committed = True
        fsync_directory(self.directory)

    def discard(self) -> None:
        if not self.committed:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.discard()
        return False


class OutputFile(TempBeside):
    """A temporary path beside ``dest`` for qemu-img to write, moved over
    ``dest`` only on ``commit()`` (see ``TempBeside``).

    Unlike ``AtomicFile`` the writer is another process: the name
    is reserved here (mode 0600) and qemu-img recreates the file.
    """

    def __init__(self, dest: str) -> None:
        super(OutputFile, self).__init__(dest)
        os.close(self.fd)

    @property
    def path(self) -> str:
        return self.tmp_path

    def commit(self, rename: Rename = os.replace) -> None:
        """fsync what qemu-img wrote, move it over ``dest``, fsync the directory."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._publish(rename)


class AtomicFile(TempBeside):
    """A temporary file beside ``dest``, written here, that replaces ``dest``
    only on ``commit()`` (see ``TempBeside``)."""

    def __init__(self, dest: str, writeback_every: int = WRITEBACK_EVERY) -> None:
        super(AtomicFile, self).__init__(dest)
        self.writeback_every = writeback_every
        self._written = 0
        self._unsynced = 0
        self._file = os.fdopen(self.fd, 'wb')

    def preallocate(self, size: Optional[int]) -> None:
        """Reserve ``size`` bytes up front: block allocation is then not done
        chunk by chunk (about 3x cheaper writes on ext4) and a full disk shows
        up before the first byte is downloaded. Best effort where the
        filesystem cannot do it."""
        if not size:
            return
        try:
            os.posix_fallocate(self._file.fileno(), 0, size)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._write_error(exc)
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise self._write_error(exc)

    def write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
            self._written += len(chunk)
            self._unsynced += len(chunk)
            if self.writeback_every and self._unsynced >= self.writeback_every:
                self._file.flush()
                start_writeback(self._file.fileno(), self._written - self._unsynced, self._unsynced)
                self._unsynced = 0
        except OSError as exc:
            raise self._write_error(exc)

    def _write_error(self, exc):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return errors.DestinationError(
                'No space left while writing %s (temporary file for %s): %s. Nothing was changed; '
                'free some space or choose another destination.'
                % (self.tmp_path, self.dest, exc.strerror), errno=exc.errno)
        return errors.DestinationError(
            'Cannot write %s (temporary file for %s): %s' % (self.tmp_path, self.dest, exc.strerror or exc),
            errno=exc.errno)

    def flush(self) -> None:
        """Make what was written so far readable through ``tmp_path`` (for a
        check that reads the file before ``commit``), without what
        ``preallocate()`` reserved beyond it."""
        try:
            self._file.flush()
            self._file.truncate()
        except OSError as exc:
            raise self._write_error(exc)

    def commit(self, rename: Rename = os.replace) -> None:
        """fsync the data, move it over ``dest`` and fsync the directory."""
        try:
            self._file.flush()
            # Drop what preallocate() reserved beyond the data written.
            self._file.truncate()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise self._write_error(exc)
        self._publish(rename)

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        super(AtomicFile, self).discard()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing ``length`` bytes at ``offset`` of the
    file to disk, without waiting for it.

    Data then goes to disk while the download goes on, so the final fsync has
    little left to do and a large image does not fill the page cache of a
    busy host with dirty pages. Waiting instead (an fdatasync every so many
    bytes, as this did before) stalls the writer, and with it the whole
    pipeline, for each flush (measured on ext4 on a busy 2-core host: 1 GiB
    from Glance written in 4.4-4.9 s that way, 2.7-4.1 s this way).
    ``POSIX_FADV_DONTNEED`` starts the writeback of the dirty pages in the
    range (and drops those that are already clean); where there is no
    posix_fadvise this does nothing and the final fsync writes everything.
    """
    fadvise = getattr(os, 'posix_fadvise', None)
    if fadvise is None:
        return
    try:
        fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # advice only


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort on odd filesystems)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Direct I/O needs buffers, offsets and lengths aligned to the logical block
# size; 4 KiB is a multiple of every common one (512 and 4096).
ALIGNMENT = 4096


def stat_dest(dest: str) -> Tuple[str, int]:
    """What is at ``dest``, from one stat: 'absent', 'file', 'block' or
    'other' (a directory, a fifo: see ``not_file_or_device``), and its
    st_size (0 when absent)."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return 'absent', 0
    if stat.S_ISREG(st.st_mode):
        return 'file', st.st_size
    if stat.S_ISBLK(st.st_mode):
        return 'block', st.st_size
    return 'other', st.st_size


def check_parent(dest: str) -> str:
    """The directory of ``dest``; refused when it does not exist (a module
    writes into it but never creates it)."""
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise errors.DestinationError(
            'The directory of dest, %s, does not exist. Create it first (for example with '
            'ansible.builtin.file state=directory).' % parent)
    return parent


def not_file_or_device(dest: str) -> errors.DestinationError:
    """The refusal of a dest that is neither, the one way every module says so."""
    return errors.DestinationError(
        'dest %s Give the path of a file to create or replace, or of a block device.'
        % stream.neither_file_nor_device(dest))


def dest_kind(dest: str, allow_block: bool = True) -> str:
    """What is at ``dest``: 'absent', 'file' or 'block' (not with
    ``allow_block=False``); anything else (a directory, a fifo) is refused."""
    kind = stat_dest(dest)[0]
    if kind == 'other' or (kind == 'block' and not allow_block):
        raise not_file_or_device(dest)
    return kind


def seek_size(path: str) -> int:
    """Size in bytes of a block device (or file) by seeking to its end."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def device_size(path: str) -> int:
    """Size in bytes of the block device at ``path`` (qemu-img's core
    measures it by seeking to its end, which works for every kind of block
    device, unlike the size ioctls)."""
    try:
        return seek_size(path)
    except OSError as exc:
        raise errors.DestinationError('Cannot open block device %s: %s' % (path, exc.strerror or exc))


def check_fits(path: str, needed: Optional[int], what: str) -> int:
    """The device's size; refuses, naming both sizes, a device smaller than
    ``needed`` bytes."""
    size = device_size(path)
    if needed is not None and size < needed:
        raise errors.DestinationError(
            '%s: the image has %d bytes but block device %s has only %d bytes. Nothing was written to it; use a '
            'device of at least %d bytes.' % (what, needed, path, size, needed), needed_bytes=needed, device_bytes=size)
    return size


def supports_direct_io(path: str) -> bool:
    """Whether ``path`` (a block device) can be opened with O_DIRECT, so
    qemu-img can write it with ``-t none`` (cinder does the same: the data is
    then on the device, not in the page cache, when qemu-img returns)."""
    flag = getattr(os, 'O_DIRECT', None)
    if flag is None:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | flag)
    except OSError:
        return False
    os.close(fd)
    return True


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

    def __init__(self, path: str, size: Optional[int], start: int = 0, direct: bool = True, sync_every: int = SYNC_EVERY) -> None:
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
                import mmap  # only block devices need it: not on every module's start-up path
                self._stage = mmap.mmap(-1, stream.CHUNK_SIZE)  # page-aligned
            except OSError:
                self._direct_fd = None  # not supported here: buffered writes only

    @property
    def direct(self) -> bool:
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

    def write(self, chunk: bytes) -> None:
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

    def flush(self) -> None:
        """Everything written so far on the device, durably."""
        if self._staged:
            self._write_stage()
        self._sync()

    def zero_written(self) -> int:
        """Zero the device from offset 0 to the end of what was written
        (what was there before is gone anyway) and flush; returns the number
        of bytes zeroed."""
        self._staged = 0
        end = self.end
        zeros = bytes(min(stream.CHUNK_SIZE, end))
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

    def close(self) -> None:
        for fd in (self._direct_fd, self._fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._direct_fd = None
        if self._stage is not None:
            self._stage.close()
            self._stage = None


class _WritingTarget(object):
    """What FileTarget and DeviceTarget share: every chunk goes on to
    ``sink`` (an AtomicFile or a DeviceWriter) as it comes, nothing is held
    back for ``finish()``."""

    changed = True
    has_data = True
    sink = None

    def finish(self) -> None:
        pass

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)

    def flush(self) -> None:
        self.sink.flush()


class FileTarget(_WritingTarget):
    """A regular file dest, written through a temporary file beside it that
    replaces dest on ``commit()`` (``AtomicFile``). With
    ``copy_prefix`` the first bytes are copied from the current dest (they
    were found equal to the data)."""

    def __init__(self, dest: str, rename: Rename, preallocate: Optional[int] = None, copy_prefix: int = 0) -> None:
        self.dest = dest
        self._rename = rename
        self._file = self.sink = AtomicFile(dest)
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
                for chunk in stream.read_chunks(fileobj, stream.CHUNK_SIZE, size):
                    self._file.write(chunk)
        except OSError as exc:
            raise errors.DestinationError('Cannot read %s: %s' % (self.dest, exc.strerror or exc))

    @property
    def check_path(self) -> str:
        return self._file.tmp_path

    def commit(self) -> None:
        self._file.commit(rename=self._rename)

    def abandon(self) -> str:
        self._file.discard()
        return 'Nothing was changed at %s.' % self.dest


class DeviceTarget(_WritingTarget):
    """A block device written in place (see ``DeviceWriter``); ``abandon()``
    zeroes what was written."""

    def __init__(self, dest: str, size: Optional[int], start: int = 0, direct: bool = True) -> None:
        self.dest = dest
        self.writer = self.sink = DeviceWriter(dest, size, start=start, direct=direct)

    @property
    def check_path(self) -> str:
        return self.dest

    def commit(self) -> None:
        self.writer.flush()
        self.writer.close()

    def abandon(self) -> str:
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

    def __init__(self, dest: str, open_target: Callable[[int], Optional[Union[FileTarget, DeviceTarget]]], whole_file: bool) -> None:
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
    def changed(self) -> bool:
        return self.differs_at is not None

    def _close_reader(self):
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def write(self, chunk: bytes) -> None:
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

    def finish(self) -> None:
        """After the last chunk: a file dest longer than the data differs."""
        if self.differs_at is None and self._whole_file and self._reader.read(1):
            self.differs_at = self.offset
        self._close_reader()
        if self.differs_at is not None and self.target is None and self._open_target is not None:
            self.target = self._open_target(self.offset)

    @property
    def has_data(self) -> bool:
        """Whether the data is somewhere to be checked: written, or equal to dest."""
        return self.target is not None or not self.changed

    @property
    def check_path(self) -> Optional[str]:
        return self.target.check_path if self.target is not None else self.dest

    def flush(self) -> None:
        if self.target is not None:
            self.target.flush()

    def commit(self) -> None:
        if self.target is not None:
            self.target.commit()

    def abandon(self) -> str:
        self._close_reader()
        if self.target is not None:
            return self.target.abandon()
        return 'Nothing was changed at %s.' % self.dest
