# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""A local file as the source of an upload: the readability check, the digest
cache and the body that hashes while it is sent."""

from __future__ import annotations

import errno
import hashlib
import os
import time

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import sources


def test_check_readable(tmp_path):
    with pytest.raises(errors.DestinationError) as info:
        sources.check_readable(str(tmp_path / 'missing'))
    assert 'does not exist' in info.value.msg
    with pytest.raises(errors.DestinationError) as info:
        sources.check_readable(str(tmp_path))
    assert 'not a regular file' in info.value.msg
    path = tmp_path / 'f'
    path.write_bytes(b'x')
    assert sources.check_readable(str(path)).st_size == 1


def old_file(tmp_path, data=b'data'):
    path = tmp_path / 'f'
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))
    return str(path), os.stat(path)


def test_digest_cache_round_trip_in_xattr_or_fallback(tmp_path):
    path, st = old_file(tmp_path)
    cache = sources.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.get(path, st, 'sha512') is None
    where = cache.put(path, st, 'sha512', 'abc')
    assert where in ('xattr', 'file')
    assert cache.get(path, st, 'sha512') == 'abc'
    # A changed file (other mtime or size) is not served from the cache.
    with open(path, 'ab') as fileobj:
        fileobj.write(b'more')
    assert cache.get(path, os.stat(path), 'sha512') is None


def test_digest_cache_falls_back_when_xattrs_are_unsupported(tmp_path, monkeypatch):
    def no_xattr(*args):
        raise OSError(errno.ENOTSUP, 'Operation not supported')

    monkeypatch.setattr(os, 'setxattr', no_xattr)
    monkeypatch.setattr(os, 'getxattr', no_xattr)
    path, st = old_file(tmp_path)
    cache = sources.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.put(path, st, 'sha512', 'abc') == 'file'
    assert cache.get(path, st, 'sha512') == 'abc'
    assert oct(os.stat(tmp_path / 'cache').st_mode & 0o777) == '0o700'


def test_digest_cache_ignores_a_recently_modified_file(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(b'data')
    cache = sources.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    assert cache.put(str(path), os.stat(path), 'sha512', 'abc') is None
    assert cache.get(str(path), os.stat(path), 'sha512') is None


def test_digest_cache_ignores_damaged_records(tmp_path):
    path, st = old_file(tmp_path)
    cache = sources.DigestCache(fallback_dir=str(tmp_path / 'cache'))
    os.makedirs(cache.fallback_dir)
    with open(cache._fallback_path(path, 'sha512'), 'w') as fileobj:
        fileobj.write('garbage')
    assert cache.get(path, st, 'sha512') is None


def test_hashing_body_sends_and_hashes_in_one_pass(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / 'f'
    path.write_bytes(data)
    body = sources.HashingBody(str(path), len(data), ['sha512'], chunk_size=1024 * 1024)
    assert len(body) == len(data)
    assert b''.join(body) == data
    assert body.hexdigests() == {'sha512': hashlib.sha512(data).hexdigest()}
    # A retried request iterates again: a fresh pass with fresh digests.
    assert b''.join(body) == data
    assert body.hexdigests()['sha512'] == hashlib.sha512(data).hexdigest()
    assert body.sent == len(data)


def test_hashing_body_abandoned_half_way_has_no_digest(tmp_path):
    data = os.urandom(2 * 1024 * 1024)
    path = tmp_path / 'f'
    path.write_bytes(data)
    body = sources.HashingBody(str(path), len(data), ['sha512'], chunk_size=1024 * 1024)
    chunks = iter(body)
    next(chunks)
    chunks.close()
    assert body.hexdigests() == {}
