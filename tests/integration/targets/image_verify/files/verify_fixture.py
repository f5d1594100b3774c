#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Fixtures for the image_verify target, made fresh in the local cloud.

  verify_fixture.py setup --cloud demo --dir DIR --prefix NAME
      A signing CA and certificates (good, self-signed, expired, wrong key
      usage) stored in Barbican as Glance expects them; good and hostile
      images in DIR; a signed image uploaded to Glance (which verifies the
      signature itself) and an upload with a bad signature (which Glance must
      refuse). Prints what it made as JSON and keeps it in DIR/state.json.
  verify_fixture.py teardown --cloud demo --dir DIR
      Deletes the images and secrets listed in DIR/state.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys

from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'setup_glance_fixture', 'files'))
from signing_fixture import MiB, Cloud, make_certificate, pem, qemu_img, sign, write  # noqa: E402 pylint: disable=wrong-import-position


def make_images(directory):
    """Good and hostile images, by qemu-img or by hand."""
    paths = {}
    good = paths['good_qcow2'] = os.path.join(directory, 'good.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', good, '64M')
    paths['good_raw'] = write(os.path.join(directory, 'good.raw'), random.Random(3).randbytes(2 * MiB))
    backed = paths['backing_file'] = os.path.join(directory, 'backed.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', '-b', good, '-F', 'qcow2', backed)
    data_file = paths['data_file'] = os.path.join(directory, 'datafile.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', '-o', 'data_file=%s' % os.path.join(directory, 'host.raw'), data_file,
             '16M')
    flat = paths['vmdk_extent'] = os.path.join(directory, 'flat.vmdk')
    qemu_img('create', '-q', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', flat, '16M')
    with open(good, 'rb') as fileobj:
        qcow2_bytes = fileobj.read()
    paths['qcow2_as_raw'] = write(os.path.join(directory, 'hidden.raw'), qcow2_bytes)
    paths['truncated_qcow2'] = write(os.path.join(directory, 'truncated.qcow2'), qcow2_bytes[:100000])
    paths['random_as_qcow2'] = write(os.path.join(directory, 'random.qcow2'), random.Random(5).randbytes(MiB))
    return paths


def setup(cloud, args):
    directory = args.dir
    state = {'images': [], 'secrets': []}
    state_path = os.path.join(directory, 'state.json')

    def save():
        with open(state_path, 'w', encoding='utf-8') as fileobj:
            json.dump(state, fileobj)

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = make_certificate('osimage verify CA', ca_key, ca=True)
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = {
        'good': (signer_key, make_certificate('osimage verify signer', signer_key, ca, ca_key)),
    }
    rogue_key = ec.generate_private_key(ec.SECP384R1())
    keys['self_signed'] = (rogue_key, make_certificate('osimage rogue signer', rogue_key))
    old_key = ec.generate_private_key(ec.SECP521R1())
    keys['expired'] = (old_key, make_certificate('osimage expired signer', old_key, ca, ca_key, days=(-60, -1)))
    usage_key = ec.generate_private_key(ec.SECP384R1())
    keys['wrong_usage'] = (usage_key, make_certificate('osimage encryption-only', usage_key, ca, ca_key,
                                                       digital_signature=False))

    certs = {'ca': write(os.path.join(directory, 'ca.pem'), pem(ca))}
    secrets = {}
    secrets['ca'] = cloud.store_certificate(args.prefix + '-ca', ca)
    state['secrets'].append(secrets['ca'])
    for label, (dummy, cert) in keys.items():
        certs[label] = write(os.path.join(directory, label + '.pem'), pem(cert))
        secrets[label] = cloud.store_certificate('%s-%s' % (args.prefix, label), cert)
        state['secrets'].append(secrets[label])
        save()

    paths = make_images(directory)
    with open(paths['good_qcow2'], 'rb') as fileobj:
        data = fileobj.read()
    signatures = {}
    for label, (key, dummy) in keys.items():
        signatures[label] = dict(sign(key, data), img_signature_certificate_uuid=secrets[label])
    signatures['other_bytes'] = dict(sign(signer_key, data + b'tampered'), img_signature_certificate_uuid=secrets['good'])
    signatures['sha512'] = dict(sign(signer_key, data, 'SHA-512'), img_signature_certificate_uuid=secrets['good'])

    signed, refusal = cloud.upload(args.prefix + '-signed', paths['good_qcow2'], 'qcow2', signatures['good'])
    state['images'].append(signed['id'])
    save()
    bad, bad_refusal = cloud.upload(args.prefix + '-badsig', paths['good_qcow2'], 'qcow2', signatures['other_bytes'])
    state['images'].append(bad['id'])
    save()
    unsigned, dummy = cloud.upload(args.prefix + '-unsigned', paths['good_raw'], 'raw', {})
    state['images'].append(unsigned['id'])
    save()
    partial, dummy = cloud.upload(args.prefix + '-partial', paths['good_raw'], 'raw',
                                  {'img_signature_hash_method': 'SHA-256', 'img_signature_key_type': 'RSA-PSS'})
    state['images'].append(partial['id'])
    save()

    return dict(certs=certs, secrets=secrets, paths=paths, signatures=signatures,
                sha512=hashlib.sha512(data).hexdigest(), md5=hashlib.md5(data).hexdigest(),
                glance=dict(signed=signed, signed_refusal=refusal, bad_signature=bad, bad_signature_refusal=bad_refusal,
                            unsigned=unsigned, partial=partial))


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=['setup', 'teardown'])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--dir', required=True)
    parser.add_argument('--prefix', default='osimage-verify')
    args = parser.parse_args(argv)
    cloud = Cloud(args.cloud)
    result = {'setup': setup, 'teardown': teardown}[args.action](cloud, args)
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
