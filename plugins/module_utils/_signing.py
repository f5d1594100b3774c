# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Signing image data the way Glance verifies it (cursive), without a TTY.

The signature is made over a digest taken in the same read pass as the
content hash (``Signer.algo`` joins the digests), then handed to the private
key as a pre-hashed value. The names of the hash methods and key types are
cursive's: ``SHA-224`` .. ``SHA-512``; ``RSA-PSS`` (PSS padding, MGF1 with the
same hash, maximum salt length), ``ECC_<CURVE>`` (ECDSA, DER signature) and
``DSA``.

Private to the collection; not a public API.
"""

from __future__ import annotations

import base64
import hashlib

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _crypto
from ansible_collections.osimage.glance.plugins.module_utils._crypto import asym_utils, dsa, ec, hashes, padding, rsa, serialization, x509

HASH_METHODS = ('SHA-224', 'SHA-256', 'SHA-384', 'SHA-512')
KEY_TYPES = ('RSA-PSS', 'ECC', 'DSA')
# The curves cursive verifies (it names them ECC_ + the curve name in capitals).
ECC_CURVES = ('secp384r1', 'secp521r1', 'sect409k1', 'sect409r1', 'sect571k1', 'sect571r1')


def _hash_object(method):
    return {'SHA-224': hashes.SHA224, 'SHA-256': hashes.SHA256,
            'SHA-384': hashes.SHA384, 'SHA-512': hashes.SHA512}[method]()


def hashlib_name(method):
    """The hashlib name of a cursive hash method (``SHA-256`` -> ``sha256``)."""
    return method.replace('-', '').lower()


def require_cryptography():
    """Import cryptography's modules now, or raise MissingLibraryError."""
    error = _crypto.load()
    if error is not None:
        raise errors.MissingLibraryError(
            'Signing needs the Python library cryptography on the host that runs the module: '
            'pip install cryptography.', exception=error)


def _read(path, what):
    try:
        with open(path, 'rb') as fileobj:
            return fileobj.read()
    except OSError as exc:
        raise errors.SignatureError('Cannot read the %s %s: %s' % (what, path, exc.strerror or exc))


def load_private_key(path, passphrase):
    """A private key from a PEM (or DER) file, never asking on a TTY."""
    require_cryptography()
    data = _read(path, 'signing private key')
    password = passphrase.encode('utf-8') if passphrase else None
    loaders = (serialization.load_pem_private_key, serialization.load_der_private_key)
    problem = None
    for load in loaders:
        try:
            return load(data, password=password)
        except TypeError as exc:
            # Encrypted without a passphrase, or a passphrase for a plain key.
            problem = str(exc)
            break
        except ValueError as exc:
            problem = str(exc)
    if passphrase and problem and 'password' in problem.lower():
        raise errors.SignatureError('The signing private key %s cannot be decrypted: %s. Check signing.passphrase.'
                                    % (path, problem))
    raise errors.SignatureError(
        'The signing private key %s cannot be loaded: %s%s.'
        % (path, problem, '' if passphrase else ' (if it is encrypted, give signing.passphrase)'))


def key_type_name(key, requested):
    """cursive's key type name for ``key``; ``requested`` (RSA-PSS, ECC, an
    ECC_<CURVE> name or DSA) must fit the key."""
    if isinstance(key, rsa.RSAPrivateKey):
        name = 'RSA-PSS'
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ECC_CURVES:
            raise errors.SignatureError(
                'The signing key is on the curve %s, which Glance (cursive) does not verify; use one of %s.'
                % (key.curve.name, ', '.join(ECC_CURVES)))
        name = 'ECC_' + key.curve.name.upper()
    elif isinstance(key, dsa.DSAPrivateKey):
        name = 'DSA'
    else:
        raise errors.SignatureError('The signing key is a %s key; Glance verifies RSA, ECC and DSA keys only.'
                                    % type(key).__name__)
    if requested and requested != name and not (requested == 'ECC' and name.startswith('ECC_')):
        raise errors.SignatureError('signing.key_type is %s but the private key is a %s key.' % (requested, name))
    return name


def load_certificate(path):
    """``(pem_bytes, certificate)`` of a PEM certificate file."""
    require_cryptography()
    data = _read(path, 'signing certificate')
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise errors.SignatureError('The signing certificate %s is not a PEM X.509 certificate: %s' % (path, exc))
    return data, cert


def check_key_matches(key, cert, cert_source):
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise errors.SignatureError(
            'The signing private key does not belong to the certificate %s (their public keys differ), so '
            'Glance would refuse the signature.' % cert_source)


def certificate_fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


class Signer(object):
    """Signs the digest ``algo`` of the image data."""

    def __init__(self, key, key_type, hash_method):
        if hash_method not in HASH_METHODS:
            raise errors.SignatureError('signing.hash_method must be one of %s, not %s.'
                                        % (', '.join(HASH_METHODS), hash_method))
        self.key = key
        self.key_type = key_type
        self.hash_method = hash_method
        self.algo = hashlib_name(hash_method)

    def sign(self, hexdigest):
        """The base64 signature (as Glance's ``img_signature``) over data whose
        ``algo`` digest is ``hexdigest``."""
        digest = bytes.fromhex(hexdigest)
        prehashed = asym_utils.Prehashed(_hash_object(self.hash_method))
        if self.key_type == 'RSA-PSS':
            signature = self.key.sign(
                digest, padding.PSS(mgf=padding.MGF1(_hash_object(self.hash_method)),
                                    salt_length=padding.PSS.MAX_LENGTH), prehashed)
        elif self.key_type == 'DSA':
            signature = self.key.sign(digest, prehashed)
        else:
            signature = self.key.sign(digest, ec.ECDSA(prehashed))
        return base64.b64encode(signature).decode('ascii')

    def properties(self, hexdigest, certificate_uuid):
        """The four ``img_signature*`` properties."""
        return {
            'img_signature': self.sign(hexdigest),
            'img_signature_hash_method': self.hash_method,
            'img_signature_key_type': self.key_type,
            'img_signature_certificate_uuid': certificate_uuid,
        }


def digest_of(data, hash_method):
    """Test helper: the hex digest of ``data`` for a hash method name."""
    return hashlib.new(hashlib_name(hash_method), data).hexdigest()
