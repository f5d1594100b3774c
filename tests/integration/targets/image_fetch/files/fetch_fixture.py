#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later


"""Fixtures for the signature and format cases of the image_fetch target.

  fetch_fixture.py setup --cloud demo --dir DIR --prefix NAME
      A signing CA, a certificate it issued and a self-signed one, stored in
      Barbican; Glance images: a qcow2 signed with the good certificate, the
      same signed with the self-signed one, a raw image with qcow2 inside and
      a truncated qcow2 (Glance accepts both; the format check must not).
      Prints what it made as JSON and keeps it in DIR/state.json.
  fetch_fixture.py teardown --cloud demo --dir DIR
      Deletes the images and secrets listed in DIR/state.json.
  fetch_fixture.py compressed --cloud demo --dir DIR --prefix NAME --size BYTES
      A raw disk (random at the start, zeros after) kept as DIR/NAME.raw and
      uploaded gzip-compressed (container_format compressed) as image NAME.
      Prints the image as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'setup_glance_fixture', 'files'))
from signing_fixture import Cloud, make_certificate, pem, qemu_img, sign, write  # noqa: E402 pylint: disable=wrong-import-position


def setup(cloud, args):
    directory = args.dir
    state = {'images': [], 'secrets': []}

    def save():
        with open(os.path.join(directory, 'state.json'), 'w', encoding='utf-8') as fileobj:
            json.dump(state, fileobj)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = make_certificate('osimage fetch CA', ca_key, ca=True)
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = make_certificate('osimage fetch signer', signer_key, ca, ca_key)
    rogue_key = ec.generate_private_key(ec.SECP384R1())
    rogue = make_certificate('osimage fetch rogue', rogue_key)
    secrets = {}
    for label, cert in (('ca', ca), ('good', signer), ('rogue', rogue)):
        secrets[label] = cloud.store_certificate('%s-%s' % (args.prefix, label), cert)
        state['secrets'].append(secrets[label])
        save()
    certs = {'ca': write(os.path.join(directory, 'ca.pem'), pem(ca))}

    good = os.path.join(directory, 'good.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', good, '16M')
    with open(good, 'rb') as fileobj:
        data = fileobj.read()
    hidden = write(os.path.join(directory, 'hidden.raw'), data)
    truncated = write(os.path.join(directory, 'truncated.qcow2'), data[:100000])
    uploads = {
        'signed': (good, 'qcow2', dict(sign(signer_key, data), img_signature_certificate_uuid=secrets['good'])),
        'rogue': (good, 'qcow2', dict(sign(rogue_key, data), img_signature_certificate_uuid=secrets['rogue'])),
        'hidden': (hidden, 'raw', {}),
        'truncated': (truncated, 'qcow2', {}),
    }
    images = {}
    for label, (path, disk_format, properties) in uploads.items():
        image, refusal = cloud.upload('%s-%s' % (args.prefix, label), path, disk_format, properties)
        state['images'].append(image['id'])
        save()
        images[label] = dict(image, refusal=refusal)
    return dict(certs=certs, secrets=secrets, images=images)


def teardown(cloud, args):
    state_path = os.path.join(args.dir, 'state.json')
    if not os.path.exists(state_path):
        return {'deleted': []}
    with open(state_path, encoding='utf-8') as fileobj:
        state = json.load(fileobj)
    for image_id in state['images']:
        cloud.delete_image(image_id)
    for uuid in state['secrets']:
        cloud.delete_secret(uuid)
    return {'deleted': state['images'] + state['secrets']}


def compressed(cloud, args):
    plain = os.urandom(min(args.size, 1024 * 1024))
    plain += bytes(args.size - len(plain))
    write(os.path.join(args.dir, args.prefix + '.raw'), plain)
    body = dict(name=args.prefix, disk_format='raw', container_format='compressed', visibility='private')
    image = cloud.conn.image.post('/images', json=body, raise_exc=True).json()
    cloud.conn.image.put('/images/%s/file' % image['id'], data=gzip.compress(plain), raise_exc=True,
                         headers={'Content-Type': 'application/octet-stream'})
    return cloud.conn.image.get('/images/%s' % image['id'], raise_exc=True).json()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=['setup', 'teardown', 'compressed'])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--dir', required=True)
    parser.add_argument('--prefix', default='osimage-fetch')
    parser.add_argument('--size', type=int, default=6 * 1024 * 1024)
    args = parser.parse_args(argv)
    cloud = Cloud(args.cloud)
    result = {'setup': setup, 'teardown': teardown, 'compressed': compressed}[args.action](cloud, args)
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
