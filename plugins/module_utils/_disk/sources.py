# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""A local file as the source of an upload: checked to be readable, its
digests cached, and its data as a request body hashed while it is sent.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import time
from typing import Iterable, Iterator

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream


def check_readable(path: str) -> os.stat_result:
    """``os.stat`` of a readable regular file (or block device), or one clear error."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.DestinationError('filename %s does not exist.' % path)
    except OSError as exc:
        raise errors.DestinationError('Cannot access filename %s: %s' % (path, exc.strerror or exc))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise errors.DestinationError('filename %s is not a regular file.' % path)
    if not os.access(path, os.R_OK):
        raise errors.DestinationError('filename %s is not readable by this user.' % path)
    return st


# -- the digest cache --------------------------------------------------------

XATTR_PREFIX = 'user.osimage.'
# A file changed within this many seconds of being hashed may change again
# within the same mtime tick unnoticed: its digest is not cached.
RACY_SECONDS = 2


def _cache_record(st, digest):
    return 'v1 %d %d %d %d %s' % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest)


def _parse_record(record, st):
    parts = (record or '').split()
    if len(parts) != 6 or parts[0] != 'v1':
        return None
    if parts[1:5] != [str(st.st_dev), str(st.st_ino), str(st.st_size), str(st.st_mtime_ns)]:
        return None
    return parts[5]


class DigestCache(object):
    """Digests of local files, keyed by (path, device, inode, size, mtime).

    Kept in an extended attribute of the file itself (``user.osimage.<algo>``),
    which follows the file and vanishes with it. Where the filesystem or the
    permissions do not allow xattrs, a small per-user cache directory holds
    one record per path instead (mode 0700, files written atomically). A
    record whose key does not match the file's current stat is ignored, so
    the worst a stale or damaged cache can cause is a re-hash.
    """

    def __init__(self, fallback_dir: str | None = None) -> None:
        if fallback_dir is None:
            base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
            fallback_dir = os.path.join(base, 'osimage.glance', 'digests')
        self.fallback_dir = fallback_dir

    def _fallback_path(self, path, algo):
        key = hashlib.sha256(os.path.realpath(path).encode('utf-8', 'surrogateescape')).hexdigest()
        return os.path.join(self.fallback_dir, '%s.%s' % (key, algo))

    def get(self, path: str, st: os.stat_result, algo: str) -> str | None:
        """The cached digest of ``path`` (whose stat is ``st``), or None."""
        getxattr = getattr(os, 'getxattr', None)
        if getxattr is not None:
            try:
                found = _parse_record(getxattr(path, XATTR_PREFIX + algo).decode('ascii', 'replace'), st)
                if found:
                    return found
            except OSError:
                pass
        try:
            with open(self._fallback_path(path, algo)) as fileobj:
                record = fileobj.read(1024).strip()
        except OSError:
            return None
        # The fallback is keyed by path too: the record names the inode.
        return _parse_record(record, st)

    def put(self, path: str, st: os.stat_result, algo: str, digest: str, now: float | None = None) -> str | None:
        """Remember ``digest``; returns where (``xattr``, ``file`` or None)."""
        now = time.time() if now is None else now
        if now - st.st_mtime_ns / 1e9 < RACY_SECONDS:
            return None
        try:
            current = os.stat(path)
        except OSError:
            return None
        if _cache_record(current, digest) != _cache_record(st, digest):
            return None  # changed while it was read: the digest is not its content
        record = _cache_record(st, digest)
        setxattr = getattr(os, 'setxattr', None)
        if setxattr is not None:
            try:
                setxattr(path, XATTR_PREFIX + algo, record.encode('ascii'))
                return 'xattr'
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES,
                                     errno.EROFS, errno.ENOSPC, errno.E2BIG):
                    return None
        try:
            os.makedirs(self.fallback_dir, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.fallback_dir, prefix='.record.')
            with os.fdopen(fd, 'w') as fileobj:
                fileobj.write(record + '\n')
            os.replace(tmp, self._fallback_path(path, algo))
            return 'file'
        except OSError:
            return None


# -- the upload body ---------------------------------------------------------------

class HashingBody(object):
    """The data of a local file as a request body that is hashed as it is sent.

    Iterating reads the file in chunks; each chunk goes to the network and, in
    parallel, to one thread per digest, so a file is read once for upload and
    hash. ``len()`` gives the size so the request carries Content-Length.
    Iterating again (a retried request) starts a new pass with fresh digests.
    """

    def __init__(self, path: str, size: int, algos: Iterable[str], chunk_size: int = stream.CHUNK_SIZE,
                 deadline: stream.Deadline | None = None, depth: int = stream.QUEUE_DEPTH) -> None:
        self.path = path
        self.size = size
        self.algos = list(algos)
        self.chunk_size = chunk_size
        self.deadline = deadline
        self.depth = depth
        self.digests = stream.Digests(self.algos)
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        self.digests = stream.Digests(self.algos)
        self.sent = 0
        return self._chunks()

    def _chunks(self):
        with open(self.path, 'rb') as fileobj:
            chunks = stream.read_chunks(fileobj, self.chunk_size)
            if self.deadline is not None:
                chunks = self.deadline.guard(chunks)
            for chunk in stream.tee(chunks, self.digests.consumers(), self.depth):
                self.sent += len(chunk)
                yield chunk

    def hexdigests(self) -> dict:
        """The digests of the last complete pass."""
        if self.digests.size != self.size:
            return {}
        return self.digests.hexdigests()
