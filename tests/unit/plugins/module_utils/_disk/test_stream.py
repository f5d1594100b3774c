# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import signal

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets


def test_digests_compute_several_algorithms_in_one_pass():
    digests = stream.Digests(['sha512', 'md5'])
    for chunk in (b'abc', b'', b'def' * 1000):
        digests.update(chunk)
    data = b'abc' + b'def' * 1000
    assert digests.size == len(data)
    assert digests.hexdigests() == {'sha512': hashlib.sha512(data).hexdigest(),
                                    'md5': hashlib.md5(data).hexdigest()}


def test_digest_consumers_run_by_pump_match_a_sequential_update():
    data = [os.urandom(1000) for i in range(20)]
    parallel, sequential = stream.Digests(['sha256', 'md5']), stream.Digests(['sha256', 'md5'])
    stream.pump(iter(data), parallel.consumers())
    for chunk in data:
        sequential.update(chunk)
    assert parallel.size == sequential.size == 20000
    assert parallel.hexdigests() == sequential.hexdigests()


def test_atomic_file_starts_writeback_as_it_writes(tmp_path, monkeypatch):
    advised = []
    monkeypatch.setattr(targets.os, 'posix_fadvise', lambda fd, offset, length, advice: advised.append(
        (offset, length, advice, len(os.pread(fd, 100, 0)))), raising=False)
    with targets.AtomicFile(str(tmp_path / 'dest'), writeback_every=10) as target:
        for chunk in (b'12345', b'678901', b'2', b'345678901'):
            target.write(chunk)
        # After 11 and after 10 more bytes, each range once it is in the file.
        assert advised == [(0, 11, os.POSIX_FADV_DONTNEED, 11), (11, 10, os.POSIX_FADV_DONTNEED, 21)]
        target.commit()
    assert (tmp_path / 'dest').read_bytes() == b'123456789012345678901'


def test_atomic_file_writes_without_posix_fadvise(tmp_path, monkeypatch):
    monkeypatch.delattr(targets.os, 'posix_fadvise', raising=False)
    with targets.AtomicFile(str(tmp_path / 'dest'), writeback_every=4) as target:
        for chunk in (b'12345', b'678901'):
            target.write(chunk)
        target.commit()
    assert (tmp_path / 'dest').read_bytes() == b'12345678901'


def test_unknown_hash_algorithm_is_a_clear_error():
    with pytest.raises(errors.IntegrityError, match="'nohash' is not supported"):
        stream.new_digest('nohash')


@pytest.mark.parametrize('image, expected', [
    ({'os_hash_algo': 'sha512', 'os_hash_value': 'AB', 'checksum': 'cd'}, ('sha512', 'ab')),
    ({'os_hash_algo': None, 'os_hash_value': None, 'checksum': 'CD'}, ('md5', 'cd')),
    ({'checksum': None}, (None, None)),
])
def test_expected_digest_prefers_multihash_then_md5(image, expected):
    assert stream.expected_digest(image) == expected


def test_hash_file_matches_hashlib(tmp_path):
    path = tmp_path / 'data'
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    size, digests = stream.hash_file(str(path), ['sha256'], chunk_size=1024 * 1024)
    assert size == len(data)
    assert digests['sha256'] == hashlib.sha256(data).hexdigest()


def test_pump_feeds_every_consumer_in_order():
    seen_a, seen_b = [], []
    chunks = [bytes([i]) * 10 for i in range(50)]
    total = stream.pump(iter(chunks), [seen_a.append, seen_b.append], depth=2)
    assert total == 500
    assert seen_a == chunks and seen_b == chunks


def test_pump_raises_a_consumer_failure_and_stops_reading():
    read = []

    def source():
        for i in range(1000):
            read.append(i)
            yield b'x'

    def failing(chunk):
        raise errors.DestinationError('disk on fire')

    with pytest.raises(errors.DestinationError, match='disk on fire'):
        stream.pump(source(), [failing], depth=1)
    # The reader noticed the failure long before the end of the source.
    assert len(read) < 1000


def test_pump_raises_a_source_failure():
    def source():
        yield b'a'
        raise ConnectionResetError('peer reset')

    with pytest.raises(ConnectionResetError):
        stream.pump(source(), [lambda chunk: None])


def test_atomic_file_replaces_dest_only_on_commit(tmp_path):
    dest = tmp_path / 'image.raw'
    dest.write_bytes(b'old')
    with targets.AtomicFile(str(dest)) as target:
        target.write(b'new data')
        assert dest.read_bytes() == b'old'
        target.commit()
    assert dest.read_bytes() == b'new data'
    assert os.listdir(tmp_path) == ['image.raw']


def test_atomic_file_leaves_dest_and_no_temp_on_error(tmp_path):
    dest = tmp_path / 'image.raw'
    dest.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with targets.AtomicFile(str(dest)) as target:
            target.write(b'partial')
            raise KeyboardInterrupt()
    assert dest.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['image.raw']


def test_atomic_file_turns_enospc_into_a_clear_message(tmp_path):
    class FullDisk(object):
        closed = False

        def write(self, chunk):
            raise OSError(errno.ENOSPC, 'No space left on device')

        def close(self):
            self.closed = True

    target = targets.AtomicFile(str(tmp_path / 'dest'))
    target._file.close()
    target._file = FullDisk()
    with pytest.raises(errors.DestinationError, match='No space left while writing .*Nothing was changed'):
        target.write(b'x')
    target.discard()
    assert os.listdir(tmp_path) == []


def test_atomic_file_in_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(errors.DestinationError, match='Cannot create a temporary file'):
        targets.AtomicFile(str(tmp_path / 'missing' / 'dest'))


def test_check_free_space_names_need_and_free(tmp_path):
    free = targets.free_bytes(str(tmp_path))
    targets.check_free_space(str(tmp_path), 1, 'Small')
    with pytest.raises(errors.DestinationError) as info:
        targets.check_free_space(str(tmp_path), free * 2 + 1, 'Huge download')
    assert 'needs %d bytes' % (free * 2 + 1) in info.value.msg
    assert info.value.details['needed_bytes'] == free * 2 + 1


def test_deadline_stops_a_slow_transfer():
    now = [0.0]
    deadline = stream.Deadline(10, 'Downloading x', clock=lambda: now[0])

    def slow():
        for step in range(5):
            now[0] += 4
            yield b'x'

    with pytest.raises(errors.TransferError, match='within the timeout of 10 seconds'):
        list(deadline.guard(slow()))


def test_deadline_zero_means_no_limit():
    now = [0.0]
    deadline = stream.Deadline(0, 'x', clock=lambda: now[0])
    now[0] = 1e9
    deadline.check()


def test_transfer_stats_reports_megabytes_per_second():
    assert stream.transfer_stats(10 * 10 ** 6, 2.0) == {'bytes': 10 ** 7, 'seconds': 2.0, 'mb_per_second': 5.0}


def test_preallocated_file_keeps_only_the_bytes_written(tmp_path):
    dest = tmp_path / 'image.raw'
    with targets.AtomicFile(str(dest)) as target:
        target.preallocate(10 * 1024 * 1024)
        assert os.path.getsize(target.tmp_path) == 10 * 1024 * 1024
        target.write(b'only this')
        target.commit()
    assert dest.read_bytes() == b'only this'


def test_sigterm_during_a_transfer_cleans_up_like_ctrl_c(tmp_path):
    dest = tmp_path / 'image.raw'
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match='terminated by signal'):
        with stream.terminate_as_interrupt(), targets.AtomicFile(str(dest)) as target:
            target.write(b'partial')
            os.kill(os.getpid(), signal.SIGTERM)
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == handler_before


PLAIN = os.urandom(300000) + bytes(3 * 1024 * 1024)


def pieces(data, size):
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


def gunzip_all(compressed, chunk_size=64 * 1024):
    gunzip = stream.Gunzip('image x', chunk_size=chunk_size)
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
    gunzip = stream.Gunzip('image x')
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


def test_the_one_reader_stops_at_its_limit_without_reading_past_it(tmp_path):
    path = tmp_path / 'data'
    path.write_bytes(b'a' * 10 + b'b' * 10)
    with open(str(path), 'rb') as fileobj:
        assert b''.join(stream.read_chunks(fileobj, 4, 15)) == b'a' * 10 + b'b' * 5
        assert fileobj.tell() == 15
    assert b''.join(stream.read_file(str(path))) == b'a' * 10 + b'b' * 10
    assert b''.join(stream.read_file(str(path), 0)) == b''
