#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Fixtures of the secrets target: real Keystone users whose passwords are a
marker, the files the modules work on, and a syslog listener.

    setup SECRET_DIR DATA_DIR   make the marker, two users (one in demo, one in alt) with passwords made
                                of it, an encrypted signing key and a disk; SECRET_DIR gets the marker,
                                the variables for the playbook and what teardown needs
    teardown SECRET_DIR         delete the users, their Barbican secrets and the test images
    listen SOCKET LOG           a syslog server on a unix datagram socket: every message a line of LOG

The marker is only ever written to SECRET_DIR (mode 0700), which the target
does not search; nothing this script prints holds it.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
import signal
import socket
import sys

import openstack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DOMAIN = 'default'


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)


def _certificate(subject, key, issuer, issuer_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=not ca,
                          data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                          encipher_only=False, decipher_only=False)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(issuer_key, hashes.SHA256()))


def signing_files(data_dir, passphrase):
    """A CA certificate, and an RSA key encrypted with ``passphrase`` with a
    certificate the CA issued; returns their paths and the certificate's
    name in Barbican (as image_upload names it)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _certificate('osimage secrets test CA', ca_key, 'osimage secrets test CA', ca_key, True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate('osimage secrets test signer', key, 'osimage secrets test CA', ca_key, False)
    paths = dict((name, os.path.join(data_dir, name)) for name in ('signer.key', 'signer.crt', 'ca.crt'))
    with open(paths['signer.key'], 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(passphrase.encode())))
    with open(paths['signer.crt'], 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths['ca.crt'], 'wb') as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    barbican_name = 'osimage-signing-cert-%s' % cert.fingerprint(hashes.SHA256()).hex()[:32]
    return paths, barbican_name


def cloud_dict(auth_url, username, password, project):
    return {'auth': {'auth_url': auth_url, 'username': username, 'password': password, 'project_name': project,
                     'user_domain_name': 'Default', 'project_domain_name': 'Default'},
            'region_name': 'RegionOne'}


def setup(secret_dir, data_dir):
    os.makedirs(secret_dir, mode=0o700, exist_ok=True)
    os.makedirs(data_dir, exist_ok=True)
    marker = 'osimage-marker-' + secrets.token_hex(8)
    write_private(os.path.join(secret_dir, 'marker'), marker)
    admin = openstack.connect(cloud='admin')
    auth_url = admin.config.get_auth_args()['auth_url']
    suffix = secrets.token_hex(3)
    state = {'auth_url': auth_url, 'users': [], 'image_name': 'osimage-secrets-' + suffix}
    users = {}
    # The owner in demo and a member in alt, with the roles demo and alt have.
    for role, project_name in (('owner', 'demo'), ('member', 'alt')):
        project = admin.identity.find_project(project_name, domain_id=DOMAIN, ignore_missing=False)
        name = 'osimage-secrets-%s-%s' % (role, suffix)
        password = marker + '-' + role
        user = admin.identity.create_user(name=name, password=password, domain_id=DOMAIN,
                                          default_project_id=project.id)
        state['users'].append({'id': user.id, 'name': name, 'project': project_name})
        for role_name in ('member', 'creator', 'reader'):
            admin.identity.assign_project_role_to_user(
                project, user, admin.identity.find_role(role_name, ignore_missing=False))
        users[role] = (name, password, project)
    state['alt_id'] = users['member'][2].id
    paths, state['certificate_name'] = signing_files(data_dir, marker + '-signing')
    disk = os.path.join(data_dir, 'disk.raw')
    with open(disk, 'wb') as handle:
        handle.write(os.urandom(1024 * 1024))
    owner, member = users['owner'], users['member']
    playbook_vars = {
        'marker_cloud': cloud_dict(auth_url, owner[0], owner[1], 'demo'),
        'member_cloud': cloud_dict(auth_url, member[0], member[1], 'alt'),
        # A real user with a wrong password.
        'wrong_cloud': cloud_dict(auth_url, 'demo', marker + '-wrong', 'demo'),
        'signing_passphrase': marker + '-signing',
        'luks_passphrase': marker + '-luks',
    }
    write_private(os.path.join(secret_dir, 'vars.json'), json.dumps(playbook_vars))
    write_private(os.path.join(secret_dir, 'state.json'), json.dumps(state))
    # Only what is no secret: the playbook's other variables.
    public = {'auth_url': auth_url, 'owner_name': owner[0], 'member_name': member[0], 'alt_id': state['alt_id'],
              'image_name': state['image_name'], 'signing_key': paths['signer.key'],
              'signing_cert': paths['signer.crt'], 'ca_cert': paths['ca.crt'],
              'disk': disk, 'data_dir': data_dir}
    json.dump(public, sys.stdout)
    sys.stdout.write('\n')


def teardown(secret_dir):
    with open(os.path.join(secret_dir, 'state.json')) as handle:
        state = json.load(handle)
    with open(os.path.join(secret_dir, 'vars.json')) as handle:
        playbook_vars = json.load(handle)
    admin = openstack.connect(cloud='admin')
    deleted = {'images': [], 'secrets': [], 'users': []}
    try:
        # The certificate image_upload stored in Barbican, as its owner.
        conn = openstack.connect(**playbook_vars['marker_cloud'])
        for secret in conn.key_manager.secrets(name=state['certificate_name']):
            conn.key_manager.delete_secret(secret)
            deleted['secrets'].append(secret.id)
    except openstack.exceptions.SDKException as exc:
        print('could not clean Barbican: %s' % type(exc).__name__, file=sys.stderr)
    for image in admin.image.images(name=state['image_name']):
        if image.is_protected:
            admin.image.update_image(image, is_protected=False)
        admin.image.delete_image(image)
        deleted['images'].append(image.id)
    for user in state['users']:
        admin.identity.delete_user(user['id'], ignore_missing=True)
        deleted['users'].append(user['name'])
    json.dump(deleted, sys.stdout)
    sys.stdout.write('\n')


def listen(path, log_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    with open(log_path, 'a') as log:
        while True:
            message = sock.recv(65536)
            log.write(message.decode('utf-8', 'replace').rstrip('\0\n') + '\n')
            log.flush()


def main(argv):
    action = argv[0]
    if action == 'setup':
        setup(argv[1], argv[2])
    elif action == 'teardown':
        teardown(argv[1])
    elif action == 'listen':
        listen(argv[1], argv[2])
    else:
        sys.exit(__doc__)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
