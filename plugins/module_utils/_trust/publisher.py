# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""What the publisher of an image says its file is: a digest given as
``ALGO:HEX``, or the entry for the file in a checksum file as distributions
publish them - GNU style (``HEX  name`` or ``HEX *name``, Debian's and
Ubuntu's SHA256SUMS/SHA512SUMS) and BSD style (``SHA256 (name) = HEX``,
Fedora's and CentOS's CHECKSUM, also inside a PGP-signed message). Glance
never checks a publisher's digest; image_upload does, with this.

Private to the collection; not a public API.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Optional, Tuple
from urllib.parse import urlsplit, unquote

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream

# Algorithm names and the length of their hex digests.
ALGOS = {'md5': 32, 'sha1': 40, 'sha224': 56, 'sha256': 64, 'sha384': 96, 'sha512': 128}
PUBLISHED_ALGOS = ('sha256', 'sha512', 'md5')
_BSD_LINE = re.compile(r'^(?P<algo>[A-Za-z0-9-]+)\s*\((?P<name>.+)\)\s*=\s*(?P<hex>[0-9a-fA-F]+)\s*$')
_GNU_LINE = re.compile(r'^(?P<hex>[0-9a-fA-F]{32,128})\s+[ *]?(?P<name>.+?)\s*$')
# What a checksum file may be: a few KiB; more is not a checksum file.
MAX_CHECKSUM_FILE = 1024 * 1024


class Digest(object):
    """One digest of the image file: ``algo`` and lower-case ``hex``."""

    def __init__(self, algo: str, hexdigest: str, source: str) -> None:
        self.algo = algo
        self.hex = hexdigest.lower()
        self.source = source

    def __str__(self) -> str:
        return '%s:%s' % (self.algo, self.hex)

    def new_hash(self) -> Any:
        return stream.new_digest(self.algo)


def _algo_name(text: str) -> str:
    return text.strip().lower().replace('-', '')


def parse_digest(text: str, option: str = 'checksum') -> Digest:
    """``ALGO:HEX`` (sha256, sha512 or md5) as a Digest."""
    algo, sep, hexdigest = (text or '').strip().partition(':')
    algo = _algo_name(algo)
    if not sep or algo not in PUBLISHED_ALGOS:
        raise errors.InvalidOptionsError(
            '%s must be ALGO:HEX with ALGO one of %s (for example sha256:9f86d0...), not %r.'
            % (option, ', '.join(PUBLISHED_ALGOS), text))
    hexdigest = hexdigest.strip()
    if len(hexdigest) != ALGOS[algo] or not re.match(r'^[0-9a-fA-F]+$', hexdigest):
        raise errors.InvalidOptionsError(
            '%s: a %s digest is %d hex digits; %r is not one.' % (option, algo, ALGOS[algo], hexdigest))
    return Digest(algo, hexdigest, option)


def file_name(uri: str) -> str:
    """The name a checksum file lists for the file at ``uri``: its last path segment."""
    return posixpath.basename(unquote(urlsplit(uri).path))


def parse_checksum_file(text: str, name: str, source: str) -> Digest:
    """The digest a checksum file gives for ``name``; the strongest when it
    gives several (a CHECKSUM file may list SHA-256 and SHA-512)."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        bsd = _BSD_LINE.match(line)
        if bsd:
            algo, listed, hexdigest = _algo_name(bsd.group('algo')), bsd.group('name'), bsd.group('hex')
        else:
            gnu = _GNU_LINE.match(line)
            if not gnu:
                continue  # comments, PGP armour, blank lines
            hexdigest, listed = gnu.group('hex'), gnu.group('name')
            algo = next((a for a, length in ALGOS.items() if length == len(hexdigest)), None)
        if algo in ALGOS and len(hexdigest) == ALGOS[algo] and posixpath.basename(listed.lstrip('*')) == name:
            found[algo] = hexdigest
    for algo in ('sha512', 'sha384', 'sha256', 'sha224', 'sha1', 'md5'):
        if algo in found:
            return Digest(algo, found[algo], source)
    raise errors.IntegrityError(
        'The checksum file %s lists no digest for %s. Check checksum_url and checksum_name (the file name as '
        'the checksum file lists it).' % (source, name))


def fetch_checksum_file(url: str, timeout: int, validate_certs: bool = True) -> str:
    """The text of the checksum file at ``url`` (at most MAX_CHECKSUM_FILE bytes)."""
    from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel  # only URL imports
    try:
        response = open_url(url, timeout=timeout, validate_certs=validate_certs)
        data = response.read(MAX_CHECKSUM_FILE + 1)
    except Exception as exc:  # pylint: disable=broad-except  # urllib, socket and SSL errors alike
        raise errors.TransferError('Cannot read the checksum file %s: %s. Check checksum_url.' % (url, exc))
    if len(data) > MAX_CHECKSUM_FILE:
        raise errors.IntegrityError('%s is larger than %d bytes; that is not a checksum file.'
                                    % (url, MAX_CHECKSUM_FILE))
    return data.decode('utf-8', errors='replace')


def published_digest(params: dict, timeout: int) -> Optional[Digest]:
    """The publisher's digest the options give (``checksum``, else the entry
    of ``checksum_url``), or None; both given must agree."""
    given = parse_digest(params['checksum']) if params.get('checksum') else None
    listed = None
    if params.get('checksum_url'):
        name = params.get('checksum_name') or file_name(params['uri'] or '')
        listed = parse_checksum_file(fetch_checksum_file(params['checksum_url'], timeout), name,
                                     params['checksum_url'])
    if given and listed and given.algo == listed.algo and given.hex != listed.hex:
        raise errors.IntegrityError(
            'checksum %s and the entry of checksum_url %s (%s) disagree; give the right one.'
            % (given, params['checksum_url'], listed), checksum=str(given), listed=str(listed))
    return given or listed


def compare(expected: Digest, actual_hex: str, what: str) -> Tuple[bool, str]:
    """Whether ``actual_hex`` (of ``expected.algo``) is the publisher's digest, and the sentence to say so."""
    if actual_hex.lower() == expected.hex:
        return True, '%s matches the %s digest from %s' % (what, expected.algo, expected.source)
    return False, ('%s has %s %s, but %s says %s' % (what, expected.algo, actual_hex.lower(), expected.source,
                                                     expected.hex))
