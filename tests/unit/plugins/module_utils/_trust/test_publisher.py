# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._trust import publisher

SHA256 = hashlib.sha256(b'disk').hexdigest()
SHA512 = hashlib.sha512(b'disk').hexdigest()
MD5 = hashlib.md5(b'disk').hexdigest()

DEBIAN_SHA512SUMS = '''%s  debian-12-genericcloud-amd64.json
%s  debian-12-genericcloud-amd64.qcow2
%s  debian-12-genericcloud-amd64.raw
''' % (hashlib.sha512(b'json').hexdigest(), SHA512, hashlib.sha512(b'raw').hexdigest())

UBUNTU_SHA256SUMS = '''%s *noble-server-cloudimg-amd64.img
%s *noble-server-cloudimg-arm64.img
''' % (SHA256, hashlib.sha256(b'arm').hexdigest())

FEDORA_CHECKSUM = '''-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491126784 bytes
SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = %s
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEEFSlQEK4C
-----END PGP SIGNATURE-----
''' % SHA256

CENTOS_CHECKSUM = '''# CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2: 1234 bytes
SHA256 (CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2) = %s
SHA512 (CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2) = %s
''' % (SHA256, SHA512)


@pytest.mark.parametrize('text,name,algo,hexdigest', [
    (DEBIAN_SHA512SUMS, 'debian-12-genericcloud-amd64.qcow2', 'sha512', SHA512),
    (UBUNTU_SHA256SUMS, 'noble-server-cloudimg-amd64.img', 'sha256', SHA256),
    (FEDORA_CHECKSUM, 'Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2', 'sha256', SHA256),
    (CENTOS_CHECKSUM, 'CentOS-Stream-GenericCloud-9-latest.x86_64.qcow2', 'sha512', SHA512),  # the strongest
    ('%s  ./images/disk.img\n' % MD5, 'disk.img', 'md5', MD5),
])
def test_checksum_files_as_distributions_publish_them(text, name, algo, hexdigest):
    digest = publisher.parse_checksum_file(text, name, 'SUMS')
    assert (digest.algo, digest.hex) == (algo, hexdigest)


def test_a_checksum_file_without_the_entry_names_what_is_missing():
    with pytest.raises(errors.IntegrityError, match='lists no digest for debian-13.qcow2'):
        publisher.parse_checksum_file(DEBIAN_SHA512SUMS, 'debian-13.qcow2', 'https://x/SHA512SUMS')
    # a file name that only ends like the wanted one is another file
    with pytest.raises(errors.IntegrityError):
        publisher.parse_checksum_file(UBUNTU_SHA256SUMS, 'amd64.img', 'SUMS')


@pytest.mark.parametrize('text,algo', [('sha256:' + SHA256.upper(), 'sha256'), ('SHA-512:' + SHA512, 'sha512'),
                                       ('md5:' + MD5, 'md5')])
def test_digests_as_algo_colon_hex(text, algo):
    digest = publisher.parse_digest(text)
    assert digest.algo == algo and str(digest) == '%s:%s' % (algo, text.split(':')[1].lower())


@pytest.mark.parametrize('text,match', [(SHA256, 'must be ALGO:HEX'), ('sha1:' + 'a' * 40, 'must be ALGO:HEX'),
                                        ('sha256:abc', 'a sha256 digest is 64 hex digits'),
                                        ('sha256:' + 'z' * 64, 'a sha256 digest is 64 hex digits')])
def test_bad_digests_are_refused(text, match):
    with pytest.raises(errors.InvalidOptionsError, match=match):
        publisher.parse_digest(text)


def test_the_file_name_is_the_last_segment_of_the_uri():
    assert publisher.file_name('https://cloud.test/a/b/disk%201.qcow2?x=1') == 'disk 1.qcow2'


def test_compare_says_both_digests_on_a_mismatch():
    expected = publisher.parse_digest('sha256:' + SHA256)
    assert publisher.compare(expected, SHA256.upper(), 'data')[0] is True
    ok, sentence = publisher.compare(expected, 'f' * 64, 'data')
    assert not ok and ('f' * 64) in sentence and SHA256 in sentence
