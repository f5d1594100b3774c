#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Signing fixtures shared by the integration targets: certificates (a CA and
the certificates it issues), Glance image signatures, and Barbican and
Glance through openstacksdk. Imported by the targets' fixture scripts
(``sys.path`` gets this directory); not run on its own.
"""

from __future__ import annotations

import base64
import datetime
import subprocess

import openstack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

MiB = 1024 * 1024


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(common_name, key, issuer=None, issuer_key=None, ca=False, days=(-1, 30),
                     digital_signature=True):
    """A certificate for ``key``, issued by ``issuer`` (self-signed when
    None), valid ``days`` around now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                          key_encipherment=not ca, data_encipherment=False, key_agreement=False,
                          key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    builder = (x509.CertificateBuilder()
               .subject_name(name(common_name))
               .issuer_name(issuer.subject if issuer is not None else name(common_name))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=days[0]))
               .not_valid_after(now + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(usage, critical=True))
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def sign(key, data, hash_method='SHA-256'):
    """Glance's four signature properties for ``data`` signed by ``key``."""
    algorithm = {'SHA-256': hashes.SHA256, 'SHA-384': hashes.SHA384, 'SHA-512': hashes.SHA512}[hash_method]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH),
                             algorithm)
        key_type = 'RSA-PSS'
    else:
        signature = key.sign(data, ec.ECDSA(algorithm))
        key_type = 'ECC_' + key.curve.name.upper()
    return {'img_signature': base64.b64encode(signature).decode('ascii'),
            'img_signature_hash_method': hash_method, 'img_signature_key_type': key_type}


class Cloud(object):
    """Barbican and Glance through one openstacksdk connection."""

    def __init__(self, cloud):
        self.conn = openstack.connect(cloud=cloud)
        self.barbican = self.conn.endpoint_for('key-manager').rstrip('/')

    def store_certificate(self, label, cert):
        """Store a certificate the way Glance's key manager reads it."""
        body = {'name': label, 'secret_type': 'certificate', 'payload': base64.b64encode(pem(cert)).decode('ascii'),
                'payload_content_type': 'application/octet-stream', 'payload_content_encoding': 'base64'}
        response = self.conn.session.post(self.barbican + '/v1/secrets', json=body, raise_exc=True)
        return response.json()['secret_ref'].rstrip('/').rsplit('/', 1)[-1]

    def delete_secret(self, uuid):
        self.conn.session.delete('%s/v1/secrets/%s' % (self.barbican, uuid), raise_exc=False)

    def upload(self, image_name, path, disk_format, properties):
        """Create and upload an image; returns (image, None) or, when Glance
        refuses the data, (image, {'status': ..., 'reason': ...})."""
        body = dict(properties, name=image_name, disk_format=disk_format, container_format='bare',
                    visibility='private')
        image = self.conn.image.post('/images', json=body, raise_exc=True).json()
        with open(path, 'rb') as fileobj:
            response = self.conn.image.put('/images/%s/file' % image['id'], data=fileobj.read(), raise_exc=False,
                                           headers={'Content-Type': 'application/octet-stream'})
        refusal = None
        if response.status_code >= 300:
            refusal = {'status': response.status_code, 'reason': response.text[:500]}
        return self.conn.image.get('/images/%s' % image['id'], raise_exc=True).json(), refusal

    def delete_image(self, image_id):
        self.conn.image.delete('/images/%s' % image_id, raise_exc=False)


def qemu_img(*args):
    subprocess.run(['qemu-img'] + list(args), check=True, capture_output=True)


def write(path, data):
    with open(path, 'wb') as fileobj:
        fileobj.write(data)
    return path
