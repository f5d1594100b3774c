# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Streaming gzip decompression of images stored with container_format
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

import zlib

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer

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


def name_compressor(head):
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

    def __init__(self, what, chunk_size=transfer.CHUNK_SIZE):
        self.what = what
        self.chunk_size = chunk_size
        self.size = 0
        self.compressed_size = 0
        self.members = 0
        self.error = None
        self._inflater = None
        self._started = False
        self._pending = b''

    def chunks(self, compressed):
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

    def check(self):
        """Raise what went wrong while decompressing, if anything did."""
        if self.error is not None:
            raise self.error
