# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Shared fixtures: a small PKI (a signing CA and certificates it issues,
good and bad) and a signer that makes Glance image signatures."""

from __future__ import annotations

import base64
import datetime

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu

HASHES = {'SHA-224': hashes.SHA224, 'SHA-256': hashes.SHA256, 'SHA-384': hashes.SHA384, 'SHA-512': hashes.SHA512}


@pytest.fixture(autouse=True)
def process_module():
    """Children start only through an AnsibleModule's run_command (see
    ``_disk.qemu``): a real one, without options, for the tests that run
    qemu-img below a module; a module under test binds its own."""
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    qemu.bind(module)
    yield module
    qemu.bind(None)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Pki(object):
    """A CA and the certificates a test asks it for."""

    def __init__(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.now = now
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.ca = self.certificate('osimage test CA', self.ca_key.public_key(), ca=True)

    def certificate(self, common_name, public_key, ca=False, self_signed_key=None, days=(-1, 30),
                    digital_signature=True):
        """A certificate issued by the CA (by itself for the CA, or by
        ``self_signed_key``), valid from/to ``days`` around now."""
        if ca:
            issuer_name, issuer_key = _name(common_name), self.ca_key
        elif self_signed_key is not None:
            issuer_name, issuer_key = _name(common_name), self_signed_key
        else:
            issuer_name, issuer_key = self.ca.subject, self.ca_key
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(common_name))
                   .issuer_name(issuer_name)
                   .public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(self.now + datetime.timedelta(days=days[0]))
                   .not_valid_after(self.now + datetime.timedelta(days=days[1]))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=digital_signature, content_commitment=False, key_encipherment=not ca,
                       data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                       crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
        return builder.sign(issuer_key, hashes.SHA256())

    def signer(self, kind='rsa', self_signed=False, name=None, **options):
        """A key and a certificate for it, issued by the CA unless
        ``self_signed``."""
        key = {'rsa': lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
               'ecc384': lambda: ec.generate_private_key(ec.SECP384R1()),
               'ecc521': lambda: ec.generate_private_key(ec.SECP521R1()),
               'dsa': lambda: dsa.generate_private_key(key_size=2048)}[kind]()
        name = name or 'osimage test signer %s' % kind
        cert = self.certificate(name, key.public_key(), self_signed_key=key if self_signed else None, **options)
        return Signer(key, cert)


class Signer(object):
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, data, hash_method='SHA-256'):
        """The base64 ``img_signature`` of ``data``, as Glance expects it."""
        algorithm = HASHES[hash_method]()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(data, padding.PSS(mgf=padding.MGF1(algorithm),
                                                        salt_length=padding.PSS.MAX_LENGTH), algorithm)
        elif isinstance(self.key, ec.EllipticCurvePrivateKey):
            signature = self.key.sign(data, ec.ECDSA(algorithm))
        else:
            signature = self.key.sign(data, algorithm)
        return base64.b64encode(signature).decode('ascii')

    @property
    def key_type(self):
        if isinstance(self.key, rsa.RSAPrivateKey):
            return 'RSA-PSS'
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return 'ECC_' + self.key.curve.name.upper()
        return 'DSA'

    def properties(self, data, cert_uuid, hash_method='SHA-256'):
        return {'img_signature': self.sign(data, hash_method), 'img_signature_hash_method': hash_method,
                'img_signature_key_type': self.key_type, 'img_signature_certificate_uuid': cert_uuid}


@pytest.fixture(scope='session')
def pki():
    return Pki()


@pytest.fixture(scope='session')
def rsa_signer(pki):
    return pki.signer('rsa')


@pytest.fixture
def write_pem(tmp_path):
    def write(cert, name):
        path = tmp_path / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)
    return write
