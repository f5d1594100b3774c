#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Make and remove an image whose Glance signature does not match its data.

Glance verifies a signature that is present at upload, so the image is
uploaded unsigned and the signature properties (a real certificate in
Barbican, a signature over other data) are added afterwards. Its hash is
right; only the signature check over the data can catch it.

  bad_signature_fixture.py create --cloud demo --name NAME --file PATH --disk-format FORMAT
  bad_signature_fixture.py delete --cloud demo --name NAME
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', '..',
                                'tests', 'integration', 'targets', 'setup_glance_fixture', 'files'))
import signing_fixture  # noqa: E402 pylint: disable=wrong-import-position

PATCH_TYPE = 'application/openstack-images-v2.1-json-patch'


def create(cloud, args):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = signing_fixture.make_certificate(args.name, key)
    secret = cloud.store_certificate(args.name, certificate)
    image, refusal = cloud.upload(args.name, args.file, args.disk_format, {})
    if refusal:
        cloud.delete_image(image['id'])
        cloud.delete_secret(secret)
        raise SystemExit('Glance refused the data: %s' % refusal)
    properties = dict(signing_fixture.sign(key, b'not the data of this image'), img_signature_certificate_uuid=secret)
    patch = [{'op': 'add', 'path': '/' + prop, 'value': value} for prop, value in sorted(properties.items())]
    cloud.conn.image.patch('/images/%s' % image['id'], json=patch, headers={'Content-Type': PATCH_TYPE},
                           raise_exc=True)
    return {'id': image['id'], 'certificate': secret}


def delete(cloud, args):
    images = cloud.conn.image.get('/images', params={'name': args.name}, raise_exc=True).json()['images']
    for image in images:
        cloud.delete_image(image['id'])
        if image.get('img_signature_certificate_uuid'):
            cloud.delete_secret(image['img_signature_certificate_uuid'])
    return {'deleted': sorted(image['id'] for image in images)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=['create', 'delete'])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--name', required=True)
    parser.add_argument('--file')
    parser.add_argument('--disk-format', default='raw')
    args = parser.parse_args(argv)
    cloud = signing_fixture.Cloud(args.cloud)
    json.dump({'create': create, 'delete': delete}[args.action](cloud, args), sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
