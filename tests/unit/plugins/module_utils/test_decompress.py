# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

import gzip
import os

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _decompress
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors

PLAIN = os.urandom(300000) + bytes(3 * 1024 * 1024)


def pieces(data, size):
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


def gunzip_all(compressed, chunk_size=64 * 1024):
    gunzip = _decompress.Gunzip('image x', chunk_size=chunk_size)
    out = list(gunzip.chunks(iter(compressed)))
    return gunzip, out


@pytest.mark.parametrize('piece', [1, 5, 4096, 10 ** 7])
def test_any_chunking_of_concatenated_members_gives_the_data_back(piece):
    packed = gzip.compress(PLAIN[:100000]) + gzip.compress(PLAIN[100000:])
    gunzip, out = gunzip_all(pieces(packed, piece))
    gunzip.check()
    assert b''.join(out) == PLAIN
    assert gunzip.members == 2 and gunzip.size == len(PLAIN) and gunzip.compressed_size == len(packed)


def test_output_chunks_are_bounded_however_well_the_input_compresses():
    packed = gzip.compress(bytes(20 * 1024 * 1024))
    gunzip, out = gunzip_all([packed], chunk_size=1024 * 1024)
    gunzip.check()
    assert max(len(chunk) for chunk in out) <= 1024 * 1024 and sum(map(len, out)) == 20 * 1024 * 1024


def test_truncated_data_is_reported_after_the_stream_not_during_it():
    packed = gzip.compress(PLAIN)
    gunzip, out = gunzip_all(pieces(packed[:len(packed) // 2], 4096))
    with pytest.raises(errors.IntegrityError) as failure:
        gunzip.check()
    assert 'the gzip data ends early, after %d compressed bytes' % (len(packed) // 2) in failure.value.msg
    assert out


def test_damaged_data_is_remembered_while_the_rest_is_still_read():
    packed = bytearray(gzip.compress(PLAIN))
    packed[1000:5096] = bytes(4096)
    seen = []
    gunzip = _decompress.Gunzip('image x')
    list(gunzip.chunks(chunk for chunk in pieces(bytes(packed), 4096) if not seen.append(chunk)))
    assert sum(map(len, seen)) == len(packed)  # every compressed byte went by, for the hash
    with pytest.raises(errors.IntegrityError) as failure:
        gunzip.check()
    assert 'image x: the gzip data is damaged' in failure.value.msg


@pytest.mark.parametrize('data, named', [
    (b'\x28\xb5\x2f\xfd' + bytes(100), 'is zstd data, not gzip'),
    (b'\xfd7zXZ\x00' + bytes(100), 'is xz data, not gzip'),
    (b'BZh91AY&SY' + bytes(100), 'is bzip2 data, not gzip'),
    (b'QFI\xfb' + bytes(100), 'is not in any compression format known here, not gzip'),
])
def test_data_that_is_not_gzip_is_named(data, named):
    gunzip, out = gunzip_all([data])
    with pytest.raises(errors.FormatError) as failure:
        gunzip.check()
    assert named in failure.value.msg and 'only gzip can be decompressed' in failure.value.msg
    assert out == []


def test_trailing_bytes_after_the_gzip_stream_are_damage():
    gunzip, out = gunzip_all([gzip.compress(b'disk') + b'\0\0\0'])
    with pytest.raises(errors.IntegrityError) as failure:
        gunzip.check()
    assert 'has 3 bytes after the end of its gzip stream that are not gzip' in failure.value.msg
    assert out == [b'disk']


def test_empty_data_is_truncated_gzip():
    gunzip, out = gunzip_all([])
    with pytest.raises(errors.IntegrityError):
        gunzip.check()
    assert out == []
