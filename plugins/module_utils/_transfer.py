# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Integrity and streaming: digests, atomic destinations, and a pump that
overlaps reading with hashing and writing.

Every byte of an image is read once: the same pass feeds the digests and the
destination. A destination is written through a temporary file beside it that
is fsynced and renamed into place only when everything checked out, so a
failure never leaves it partial; the temporary file is removed on any error,
Ctrl-C included.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import signal
import threading
import time

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _stale

# 4 MiB: large enough that hashlib and os.write release the GIL for most of
# the time and per-chunk overhead vanishes, small enough to bound memory.
CHUNK_SIZE = 4 * 1024 * 1024
# Chunks queued between the reader and each hasher/writer (memory bound).
QUEUE_DEPTH = 8
# Bytes written between two fdatasync calls (block devices, see _volume).
SYNC_EVERY = 64 * 1024 * 1024
# Bytes an AtomicFile writes before it starts their writeback to disk.
WRITEBACK_EVERY = 16 * 1024 * 1024


def new_digest(algo):
    """A hashlib object for a Glance hash algorithm name (sha512, md5, ...)."""
    try:
        if algo == 'md5':
            # md5 is only an integrity check here (Glance's legacy checksum).
            return hashlib.md5(usedforsecurity=False)
        return hashlib.new(algo)
    except (ValueError, TypeError):
        raise errors.IntegrityError(
            'Hash algorithm %r is not supported by this Python (%s). Available: %s.'
            % (algo, hashlib.__name__, ', '.join(sorted(hashlib.algorithms_available))))


def expected_digest(image):
    """What an image's data must hash to: Glance's multihash when it has one,
    else the md5 ``checksum``; ``(None, None)`` when it has neither."""
    algo, value = image.get('os_hash_algo'), image.get('os_hash_value')
    if algo and value:
        return algo, value.lower()
    if image.get('checksum'):
        return 'md5', image['checksum'].lower()
    return None, None


class Digests(object):
    """Several digests fed from the same chunks."""

    def __init__(self, algos):
        self._digests = dict((algo, new_digest(algo)) for algo in algos)
        self.size = 0

    def update(self, chunk):
        self.size += len(chunk)
        for digest in self._digests.values():
            digest.update(chunk)

    def _count(self, chunk):
        self.size += len(chunk)

    def consumers(self):
        """One consumer per digest (plus the size count), for ``pump`` to run
        in parallel: the same as ``update`` but spread over the cores."""
        return [self._count] + [digest.update for digest in self._digests.values()]

    def hexdigests(self):
        return dict((algo, digest.hexdigest()) for algo, digest in self._digests.items())


def read_chunks(fileobj, chunk_size=CHUNK_SIZE):
    """Chunks of a file object until EOF."""
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        yield chunk


def hash_file(path, algos, chunk_size=CHUNK_SIZE):
    """``(size, {algo: hexdigest})`` of a file or block device, in one read."""
    digests = Digests(algos)
    try:
        with open(path, 'rb') as fileobj:
            pump(read_chunks(fileobj, chunk_size), digests.consumers())
    except OSError as exc:
        raise errors.DestinationError('Cannot read %s: %s' % (path, exc.strerror or exc))
    return digests.size, digests.hexdigests()


def tee(chunks, consumers, depth=QUEUE_DEPTH):
    """Yield every chunk of ``chunks`` after handing it to each consumer.

    Each consumer (a digest, a file's write) runs in a thread of its own, so
    producing the next chunk (from the network or a disk), the caller's use of
    it (sending it, say) and the consumers all overlap: hashlib and file
    writes release the GIL on large buffers, so a sha512 and a disk write
    proceed on separate cores. Chunks are shared, not copied; each consumer's
    queue holds at most ``depth`` of them. A consumer's exception stops the
    iteration and is raised to the caller.
    """
    failure = []
    queues = [queue.Queue(maxsize=depth) for consume in consumers]

    def work(consume, pending):
        while True:
            chunk = pending.get()
            if chunk is None:
                return
            if failure:
                continue  # keep draining so the producer never blocks
            try:
                consume(chunk)
            except BaseException as exc:  # pylint: disable=broad-except
                failure.append(exc)

    workers = [threading.Thread(target=work, args=(consume, pending), name='osimage-pump', daemon=True)
               for consume, pending in zip(consumers, queues)]
    for worker in workers:
        worker.start()
    try:
        for chunk in chunks:
            if failure:
                raise failure[0]
            for pending in queues:
                pending.put(chunk)
            yield chunk
    finally:
        for pending in queues:
            pending.put(None)
        for worker in workers:
            worker.join()
    if failure:
        raise failure[0]


def pump(chunks, consumers, depth=QUEUE_DEPTH):
    """Feed every chunk of ``chunks`` to each consumer (see ``tee``); returns
    the number of bytes pumped."""
    total = 0
    for chunk in tee(chunks, consumers, depth):
        total += len(chunk)
    return total


def free_bytes(directory):
    """Bytes an unprivileged writer can still use in ``directory``'s filesystem."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check_free_space(directory, needed, what):
    """Refuse early, with both numbers, when ``needed`` bytes will not fit."""
    if needed is None:
        return
    available = free_bytes(directory)
    if available < needed:
        raise errors.DestinationError(
            '%s needs %d bytes in %s but only %d bytes are free there. Free some space or choose '
            'another destination.' % (what, needed, directory, available),
            needed_bytes=needed, free_bytes=available)


def create_beside(dest, attempts=100):
    """Create a new temporary file beside ``dest`` (mode 0600, exclusive),
    named by ``_stale.temp_name``; returns ``(fd, path)``."""
    directory = os.path.dirname(os.path.abspath(dest))
    owner = _stale.this_process()
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    for _attempt in range(attempts):
        path = os.path.join(directory, _stale.temp_name(dest, owner))
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
    says which process owns it (``_stale``), so that a later run can remove
    it if this one is killed.
    """

    def __init__(self, dest):
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

    def discard(self):
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


class AtomicFile(TempBeside):
    """A temporary file beside ``dest``, written here, that replaces ``dest``
    only on ``commit()`` (see ``TempBeside``)."""

    def __init__(self, dest, writeback_every=WRITEBACK_EVERY):
        super(AtomicFile, self).__init__(dest)
        self.writeback_every = writeback_every
        self._written = 0
        self._unsynced = 0
        self._file = os.fdopen(self.fd, 'wb')

    def preallocate(self, size):
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

    def write(self, chunk):
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

    def flush(self):
        """Make what was written so far readable through ``tmp_path`` (for a
        check that reads the file before ``commit``), without what
        ``preallocate()`` reserved beyond it."""
        try:
            self._file.flush()
            self._file.truncate()
        except OSError as exc:
            raise self._write_error(exc)

    def commit(self, rename=os.replace):
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

    def discard(self):
        if not self._file.closed:
            self._file.close()
        super(AtomicFile, self).discard()


def start_writeback(fd, offset, length):
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


def fsync_directory(directory):
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


class terminate_as_interrupt(object):  # pylint: disable=invalid-name
    """Within the block, SIGTERM (how AWX and systemd cancel a job) raises
    KeyboardInterrupt like Ctrl-C does, so that cleanup code runs and no
    temporary file is left behind. Restores the previous handler after."""

    def __init__(self):
        self._previous = None

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt('terminated by signal %d' % signum)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread: leave signals alone
            self._previous = None
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


class Deadline(object):
    """A wall-clock limit for a transfer, checked between chunks."""

    def __init__(self, seconds, what, clock=time.monotonic):
        self._clock = clock
        self.seconds = seconds
        self.what = what
        self.start = clock()

    def elapsed(self):
        return self._clock() - self.start

    def check(self):
        if self.seconds and self.elapsed() > self.seconds:
            raise errors.TransferError(
                '%s did not finish within the timeout of %s seconds. Raise timeout for large images '
                'or slow links.' % (self.what, self.seconds))

    def guard(self, chunks):
        """Pass chunks through, failing once the deadline has passed."""
        for chunk in chunks:
            self.check()
            yield chunk


def transfer_stats(size, seconds):
    """The ``transfer`` return value: bytes, seconds and MB/s (10^6 bytes)."""
    seconds = max(seconds, 1e-9)
    return dict(bytes=size, seconds=round(seconds, 3), mb_per_second=round(size / seconds / 1e6, 1))
