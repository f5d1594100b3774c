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

Streaming gzip decompression of images stored with container_format
``compressed`` (the only compression cinder and nova accept there).

The compressed bytes are what Glance hashes and signs; they keep flowing to
the digests while the decompressed bytes go on to the format inspector and
the destination. A damaged or truncated stream is remembered rather than
raised at once, so the read pass still hashes every compressed byte: the
caller compares the hash first (a mismatch is the real cause) and only then
asks ``check()`` about the decompression.

Private to the collection; not a public API.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import stat
import threading
import time
import zlib
from typing import Any, BinaryIO, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors


# 4 MiB: large enough that hashlib and os.write release the GIL for most of
# the time and per-chunk overhead vanishes, small enough to bound memory.
CHUNK_SIZE = 4 * 1024 * 1024


# Chunks queued between the reader and each hasher/writer (memory bound).
QUEUE_DEPTH = 8


def new_digest(algo: str) -> Any:
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


def expected_digest(image: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
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

    def __init__(self, algos: Iterable[str]) -> None:
        self._digests = dict((algo, new_digest(algo)) for algo in algos)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for digest in self._digests.values():
            digest.update(chunk)

    def _count(self, chunk):
        self.size += len(chunk)

    def consumers(self) -> List[Callable[[bytes], Any]]:
        """One consumer per digest (plus the size count), for ``pump`` to run
        in parallel: the same as ``update`` but spread over the cores."""
        return [self._count] + [digest.update for digest in self._digests.values()]

    def hexdigests(self) -> Dict[str, str]:
        return dict((algo, digest.hexdigest()) for algo, digest in self._digests.items())


def read_chunks(fileobj: BinaryIO, chunk_size: int = CHUNK_SIZE, limit: Optional[int] = None) -> Iterator[bytes]:
    """The one reader: chunks of a file object until EOF or, with ``limit``,
    until ``limit`` bytes (never reading past them: on a device the image
    ends before the device does)."""
    left = limit
    while left is None or left > 0:
        chunk = fileobj.read(chunk_size if left is None else min(chunk_size, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def read_file(path: str, limit: Optional[int] = None, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The chunks of the file at ``path`` (``read_chunks``), at most ``limit``
    bytes; the file is open only while they are read."""
    with open(path, 'rb') as fileobj:
        yield from read_chunks(fileobj, chunk_size, limit)


def neither_file_nor_device(path: str) -> str:
    """The one sentence for a path that is neither a regular file nor a block
    device, which every module refuses in these words."""
    return '%s is neither a regular file nor a block device.' % path


def open_source(path: str) -> Tuple[BinaryIO, bool]:
    """The file or block device at ``path``, opened for reading; and whether
    it is a block device."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise errors.OsimageError('Cannot verify %s: %s.' % (path, exc.strerror or exc))
    is_block = stat.S_ISBLK(st.st_mode)
    if not (stat.S_ISREG(st.st_mode) or is_block):
        raise errors.OsimageError('Cannot verify: %s' % neither_file_nor_device(path))
    try:
        return open(path, 'rb'), is_block
    except OSError as exc:
        raise errors.OsimageError('Cannot read %s: %s.' % (path, exc.strerror or exc))


def read_pass(path: str, rpass: Any, block_limit: Optional[int] = None) -> Any:
    """One read of ``path`` that feeds ``rpass`` (every digest and the
    format inspector, each in its own thread); returns ``rpass``. From a
    block device at most ``block_limit`` bytes are read (the image on a
    larger volume)."""
    fileobj, is_block = open_source(path)
    with fileobj:
        chunks = read_chunks(fileobj, CHUNK_SIZE, block_limit if is_block else None)
        try:
            pump(chunks, rpass.consumers())
        except OSError as exc:
            raise errors.OsimageError('Cannot read %s after %d bytes: %s.' % (path, rpass.size, exc.strerror or exc))
    rpass.finish()
    return rpass


def read_prefix(path: str, rpass: Any, size: int) -> Any:
    """One read of the first ``size`` bytes of ``path`` (the image's extent
    of a device) that feeds ``rpass``; returns ``rpass``."""
    try:
        with open(path, 'rb') as fileobj:
            pump(read_chunks(fileobj, CHUNK_SIZE, size), rpass.consumers())
    except OSError as exc:
        raise errors.DestinationError('Cannot read %s after %d bytes: %s' % (path, rpass.size, exc.strerror or exc))
    rpass.finish()
    return rpass


def hash_file(path: str, algos: Iterable[str], chunk_size: int = CHUNK_SIZE) -> Tuple[int, Dict[str, str]]:
    """``(size, {algo: hexdigest})`` of a file or block device, in one read."""
    digests = Digests(algos)
    try:
        with open(path, 'rb') as fileobj:
            pump(read_chunks(fileobj, chunk_size), digests.consumers())
    except OSError as exc:
        raise errors.DestinationError('Cannot read %s: %s' % (path, exc.strerror or exc))
    return digests.size, digests.hexdigests()


def tee(chunks: Iterable[bytes], consumers: Sequence[Callable[[bytes], Any]], depth: int = QUEUE_DEPTH) -> Iterator[bytes]:
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


def pump(chunks: Iterable[bytes], consumers: Sequence[Callable[[bytes], Any]], depth: int = QUEUE_DEPTH) -> int:
    """Feed every chunk of ``chunks`` to each consumer (see ``tee``); returns
    the number of bytes pumped."""
    total = 0
    for chunk in tee(chunks, consumers, depth):
        total += len(chunk)
    return total


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

    def __init__(self, seconds: Optional[float], what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds = seconds
        self.what = what
        self.start = clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def check(self) -> None:
        if self.seconds and self.elapsed() > self.seconds:
            raise errors.TransferError(
                '%s did not finish within the timeout of %s seconds. Raise timeout for large images '
                'or slow links.' % (self.what, self.seconds))

    def guard(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass chunks through, failing once the deadline has passed."""
        for chunk in chunks:
            self.check()
            yield chunk


def transfer_stats(size: int, seconds: float) -> Dict[str, Any]:
    """The ``transfer`` return value: bytes, seconds and MB/s (10^6 bytes)."""
    seconds = max(seconds, 1e-9)
    return dict(bytes=size, seconds=round(seconds, 3), mb_per_second=round(size / seconds / 1e6, 1))


GZIP_MAGIC = b'\x1f\x8b'


# Leading bytes of the compressors an operator might have used instead, to name them.
OTHER_COMPRESSORS = (
    (b'\x28\xb5\x2f\xfd', 'zstd'),
    (b'\xfd7zXZ\x00', 'xz'),
    (b'BZh', 'bzip2'),
    (b'\x04\x22\x4d\x18', 'lz4'),
    (b'PK\x03\x04', 'zip'),
)


# Enough leading bytes to recognise any of them.
MAGIC_BYTES = 6


# zlib's window bits for a gzip header and trailer (not zlib or raw deflate).
GZIP_WBITS = 16 + zlib.MAX_WBITS


def name_compressor(head: bytes) -> Optional[str]:
    """The compressor whose magic ``head`` starts with, or None."""
    for magic, name in OTHER_COMPRESSORS:
        if head.startswith(magic):
            return name
    return None


class Gunzip(object):
    """Decompresses gzip data chunk by chunk; ``chunks()`` turns compressed
    chunks into decompressed ones of at most ``chunk_size`` bytes each (a
    small chunk that inflates a thousandfold never becomes one huge buffer).
    Concatenated gzip members are one stream, as for gzip(1)."""

    def __init__(self, what: str, chunk_size: int = CHUNK_SIZE) -> None:
        self.what = what
        self.chunk_size = chunk_size
        self.size = 0
        self.compressed_size = 0
        self.members = 0
        self.error = None
        self._inflater = None
        self._started = False
        self._pending = b''

    def chunks(self, compressed: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in compressed:
            self.compressed_size += len(chunk)
            if self.error is not None:
                continue  # keep reading so that every byte is still hashed
            try:
                for plain in self._feed(chunk):
                    self.size += len(plain)
                    yield plain
            except errors.OsimageError as exc:
                self.error = exc
        if self.error is None:
            try:
                for plain in self._feed(b'', end=True):
                    self.size += len(plain)
                    yield plain
            except errors.OsimageError as exc:
                self.error = exc

    def _feed(self, data, end=False):
        data = self._pending + data
        self._pending = b''
        if not self._started and data:
            if len(data) < MAGIC_BYTES and not end:
                self._pending = data  # judge the magic on enough bytes
                return
            self._check_magic(data)
            self._started = True
        while data:
            if self._inflater is None:
                if len(data) < len(GZIP_MAGIC) and not end:
                    self._pending = data  # a member header split between two chunks
                    return
                if not data.startswith(GZIP_MAGIC):
                    raise errors.IntegrityError(
                        '%s: the compressed data has %d bytes after the end of its gzip stream that are not '
                        'gzip; it is damaged.' % (self.what, len(data)), check='decompress')
                self._inflater = zlib.decompressobj(GZIP_WBITS)
            yield from self._inflate(data)
            if self._inflater.eof:
                data = self._inflater.unused_data
                self._inflater = None
                self.members += 1
            else:
                data = b''
        if end and (self._inflater is not None or not self.members):
            raise errors.IntegrityError(
                '%s: the gzip data ends early, after %d compressed bytes (%d decompressed); it is truncated.'
                % (self.what, self.compressed_size, self.size), check='decompress')

    def _check_magic(self, head):
        if head.startswith(GZIP_MAGIC):
            return
        other = name_compressor(head)
        raise errors.FormatError(
            '%s: the image is stored compressed (container_format compressed), but its data is %s, not gzip; '
            'only gzip can be decompressed. Fetch it with decompress=false and decompress it yourself.'
            % (self.what, other + ' data' if other else 'not in any compression format known here'),
            check='decompress', compression=other)

    def _inflate(self, data):
        inflater = self._inflater
        while True:
            try:
                plain = inflater.decompress(data, self.chunk_size)
            except zlib.error as exc:
                raise errors.IntegrityError(
                    '%s: the gzip data is damaged (%s) within its first %d compressed bytes.'
                    % (self.what, exc, self.compressed_size), check='decompress')
            data = inflater.unconsumed_tail
            if plain:
                yield plain
            if inflater.eof or (not data and not plain):
                return

    def check(self) -> None:
        """Raise what went wrong while decompressing, if anything did."""
        if self.error is not None:
            raise self.error
