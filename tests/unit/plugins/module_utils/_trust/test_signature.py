# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Image signatures with real keys and certificates made by the tests;
only Barbican is faked (as a dict of secret payloads)."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust

DATA = os.urandom(300 * 1024)
CERT_UUID = '0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5'
CA_UUID = '11111111-2222-3333-4444-555555555555'


def digest_of(data, check):
    return hashlib.new(check.digest_algo, data).digest()


def barbican(secrets):
    fetched = []

    def fetch(uuid):
        fetched.append(uuid)
        if uuid not in secrets:
            raise errors.NotFoundError('Fetching certificate %s from Barbican: found no such resource (HTTP 404)'
                                       % uuid)
        return secrets[uuid]
    fetch.fetched = fetched
    return trust.CertificateStore(fetch)


@pytest.mark.parametrize('kind', ['rsa', 'ecc384', 'ecc521', 'dsa'])
@pytest.mark.parametrize('hash_method', ['SHA-224', 'SHA-256', 'SHA-384', 'SHA-512'])
def test_every_key_type_and_hash_method_verifies(pki, kind, hash_method):
    signer = pki.signer(kind) if kind != 'dsa' else _dsa_signer(pki)
    store = barbican({CERT_UUID: signer.pem})
    check = trust.prepare(signer.properties(DATA, CERT_UUID, hash_method), 'img', store)
    assert check.digest_algo == hash_method.replace('-', '').lower()
    result = check.verify(digest_of(DATA, check))
    assert result['verified'] is True and result['key_type'] == signer.key_type
    assert result['certificate']['subject'] == 'CN=osimage test signer %s' % kind
    assert result['certificate']['source'] == 'Barbican secret %s' % CERT_UUID


_DSA = []


def _dsa_signer(pki):
    if not _DSA:  # DSA key generation is slow: one for all hash methods
        _DSA.append(pki.signer('dsa'))
    return _DSA[0]


def test_signature_over_other_bytes_names_the_certificate_and_the_digest(pki, rsa_signer):
    store = barbican({CERT_UUID: rsa_signer.pem})
    check = trust.prepare(rsa_signer.properties(b'other bytes', CERT_UUID), 'img.raw', store)
    with pytest.raises(errors.SignatureError) as failure:
        check.verify(digest_of(DATA, check))
    msg = failure.value.msg
    assert msg.startswith('signature check failed for img.raw: the signature does not match the data')
    assert 'CN=osimage test signer rsa' in msg and hashlib.sha256(DATA).hexdigest() in msg


def test_unsigned_image_passes_unless_a_signature_is_required():
    store = barbican({})
    assert trust.prepare({'name': 'x'}, 'img', store) is None
    with pytest.raises(errors.SignatureError, match=r'is not signed .* \(require_signature=true\)'):
        trust.prepare({}, 'img', store, require=True)
    with pytest.raises(errors.SignatureError, match='trusted_certificates are given'):
        trust.prepare({}, 'img', store, trusted_certificates=[CA_UUID])


def test_partial_signature_metadata_is_refused_and_says_what_is_missing(rsa_signer):
    props = rsa_signer.properties(DATA, CERT_UUID)
    del props['img_signature_key_type'], props['img_signature_certificate_uuid']
    with pytest.raises(errors.SignatureError) as failure:
        trust.prepare(props, 'img', barbican({}))
    assert 'incomplete signature metadata: img_signature, img_signature_hash_method are set but ' \
           'img_signature_key_type, img_signature_certificate_uuid are missing' in failure.value.msg
    assert failure.value.details['missing'] == ['img_signature_key_type', 'img_signature_certificate_uuid']


def test_local_certificate_file_stands_in_for_barbican(rsa_signer, write_pem):
    props = rsa_signer.properties(DATA, None)
    del props['img_signature_certificate_uuid']
    store = barbican({})
    path = write_pem(rsa_signer.cert, 'signer.pem')
    check = trust.prepare(props, 'img', store, certificate_path=path)
    assert check.verify(digest_of(DATA, check))['certificate']['source'] == 'file %s' % path
    assert store._fetch_secret.fetched == []


def test_der_certificate_from_barbican_is_accepted(rsa_signer):
    from cryptography.hazmat.primitives import serialization
    der = rsa_signer.cert.public_bytes(serialization.Encoding.DER)
    check = trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', barbican({CERT_UUID: der}))
    assert check.verify(digest_of(DATA, check))['verified']


def test_missing_barbican_secret_is_reported_as_such(rsa_signer):
    with pytest.raises(errors.NotFoundError, match='Fetching certificate %s from Barbican' % CERT_UUID):
        trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', barbican({}))


def test_not_a_certificate_is_named():
    with pytest.raises(errors.SignatureError, match='Barbican secret %s is not an X.509 certificate' % CERT_UUID):
        trust.prepare(dict(_props(), img_signature_certificate_uuid=CERT_UUID), 'img',
                      barbican({CERT_UUID: b'-----BEGIN nonsense'}))


def _props():
    return {'img_signature': 'c2ln', 'img_signature_hash_method': 'SHA-256', 'img_signature_key_type': 'RSA-PSS'}


@pytest.mark.parametrize('change, message', [
    ({'img_signature_hash_method': 'MD5'}, "img_signature_hash_method is 'MD5'; supported: SHA-224"),
    ({'img_signature_key_type': 'RSA-PKCS1'}, "img_signature_key_type is 'RSA-PKCS1'; supported: "),
    ({'img_signature': '***'}, 'img_signature is not a base64 signature'),
    ({'img_signature_key_type': 'ECC_SECP384R1'}, 'holds a RSA key but img_signature_key_type is ECC_SECP384R1'),
])
def test_bad_metadata_is_refused_before_reading(rsa_signer, change, message):
    props = dict(rsa_signer.properties(DATA, CERT_UUID), **change)
    with pytest.raises(errors.SignatureError, match=message.replace('(', r'\(').replace('*', r'\*')):
        trust.prepare(props, 'img', barbican({CERT_UUID: rsa_signer.pem}))


def test_ecc_curve_must_be_the_declared_one(pki):
    signer = pki.signer('ecc521')
    props = dict(signer.properties(DATA, CERT_UUID), img_signature_key_type='ECC_SECP384R1')
    with pytest.raises(errors.SignatureError, match='key on curve secp521r1 but img_signature_key_type is '
                                                    'ECC_SECP384R1'):
        trust.prepare(props, 'img', barbican({CERT_UUID: signer.pem}))


# -- trust ---------------------------------------------------------------------


def test_certificate_issued_by_a_trusted_ca_passes(pki, rsa_signer, write_pem):
    store = barbican({CERT_UUID: rsa_signer.pem})
    ca_path = write_pem(pki.ca, 'ca.pem')
    check = trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', store, trusted_certificates=[ca_path])
    assert check.verify(digest_of(DATA, check))['verified']


def test_trusted_ca_from_barbican(pki, rsa_signer, write_pem):
    from cryptography.hazmat.primitives import serialization
    store = barbican({CERT_UUID: rsa_signer.pem, CA_UUID: pki.ca.public_bytes(serialization.Encoding.PEM)})
    trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', store, trusted_certificates=[CA_UUID])
    assert store._fetch_secret.fetched == [CERT_UUID, CA_UUID]


def test_self_signed_certificate_is_not_trusted(pki, write_pem):
    rogue = pki.signer('rsa', self_signed=True, name='rogue')
    store = barbican({CERT_UUID: rogue.pem})
    ca_path = write_pem(pki.ca, 'ca.pem')
    with pytest.raises(errors.SignatureError) as failure:
        trust.prepare(rogue.properties(DATA, CERT_UUID), 'img', store, trusted_certificates=[ca_path])
    msg = failure.value.msg
    assert 'the signing certificate "CN=rogue" (Barbican secret %s), issued by "CN=rogue", does not chain to ' \
           'any trusted certificate ("CN=osimage test CA" (file %s))' % (CERT_UUID, ca_path) in msg


def test_expired_signing_certificate_is_refused_by_name(pki, write_pem):
    old = pki.signer('ecc384', name='old signer', days=(-60, -1))
    store = barbican({CERT_UUID: old.pem})
    with pytest.raises(errors.SignatureError, match='the signing certificate "CN=old signer" .* expired on'):
        trust.prepare(old.properties(DATA, CERT_UUID), 'img', store,
                      trusted_certificates=[write_pem(pki.ca, 'ca.pem')])


def test_expired_certificate_passes_without_trusted_certificates(pki):
    old = pki.signer('ecc384', name='old signer', days=(-60, -1))
    check = trust.prepare(old.properties(DATA, CERT_UUID), 'img', barbican({CERT_UUID: old.pem}))
    assert check.verify(digest_of(DATA, check))['verified']


def test_certificate_without_digital_signature_usage_is_refused(pki, write_pem):
    wrong = pki.signer('ecc384', name='encryption only', digital_signature=False)
    store = barbican({CERT_UUID: wrong.pem})
    with pytest.raises(errors.SignatureError, match='"CN=encryption only" .* is not allowed to sign data'):
        trust.prepare(wrong.properties(DATA, CERT_UUID), 'img', store,
                      trusted_certificates=[write_pem(pki.ca, 'ca.pem')])


def test_unusable_trusted_certificates_are_explained(pki, rsa_signer, write_pem):
    leaf_path = write_pem(rsa_signer.cert, 'leaf.pem')
    store = barbican({CERT_UUID: rsa_signer.pem})
    with pytest.raises(errors.SignatureError, match=r'\(unusable: not a CA'):
        trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', store, trusted_certificates=[leaf_path])


def test_unreadable_trusted_certificate_file_is_named(rsa_signer, tmp_path):
    store = barbican({CERT_UUID: rsa_signer.pem})
    missing = str(tmp_path / 'nope.pem')
    with pytest.raises(errors.SignatureError, match='cannot read the certificate file %s' % missing):
        trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', store, trusted_certificates=[missing])


def test_barbican_reference_needs_a_connection(rsa_signer):
    store = trust.CertificateStore()
    with pytest.raises(errors.SignatureError, match='no cloud connection'):
        trust.prepare(rsa_signer.properties(DATA, CERT_UUID), 'img', store)
