#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Make and remove real images in the local test cloud with openstacksdk.

Used by the integration targets and the demo playbook to prepare Glance
independently of the modules under test. Prints the image as Glance shows it
(JSON) on stdout.

  glance_fixture.py create --cloud demo --name NAME --size BYTES [--seed N] [--no-data]
                    [--tag TAG]... [--property KEY=VALUE]... [--hidden] [--visibility V]
  glance_fixture.py delete --cloud demo --name NAME
  glance_fixture.py token --cloud demo
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import openstack


def pseudo_random_bytes(size, seed, chunk=64 * 1024 * 1024):
    """Reproducible incompressible data (in chunks: randbytes takes at most
    2**31 bits at once; up to ``chunk`` bytes it is one call, as before)."""
    rng = random.Random(seed)
    return b''.join(rng.randbytes(min(chunk, size - offset)) for offset in range(0, size, chunk)) if size else b''


def create(conn, args):
    body = {'name': args.name, 'disk_format': args.disk_format, 'container_format': 'bare',
            'visibility': args.visibility, 'tags': args.tag, 'os_hidden': args.hidden}
    body.update(prop.split('=', 1) for prop in args.property)
    image = conn.image.post('/images', json=body, raise_exc=True).json()
    if not args.no_data:
        data = pseudo_random_bytes(args.size, args.seed)
        conn.image.put('/images/%s/file' % image['id'], data=data, raise_exc=True,
                       headers={'Content-Type': 'application/octet-stream'})
    return conn.image.get('/images/%s' % image['id'], raise_exc=True).json()


def delete(conn, args):
    # Hidden images are listed only on their own.
    images = [image for hidden in ('false', 'true')
              for image in conn.image.get('/images', params={'name': args.name, 'os_hidden': hidden},
                                          raise_exc=True).json()['images']]
    for image in images:
        conn.image.delete('/images/%s' % image['id'], raise_exc=True)
    return {'deleted': sorted(image['id'] for image in images)}


def token(conn, args):
    del args
    return {'token': conn.session.get_token(), 'image_endpoint': conn.endpoint_for('image')}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('action', choices=['create', 'delete', 'token'])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--name')
    parser.add_argument('--size', type=int, default=1024 * 1024)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--disk-format', default='raw')
    parser.add_argument('--no-data', action='store_true')
    parser.add_argument('--tag', action='append', default=[])
    parser.add_argument('--property', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--hidden', action='store_true')
    parser.add_argument('--visibility', default='private')
    args = parser.parse_args(argv)
    conn = openstack.connect(cloud=args.cloud)
    action = {'create': create, 'delete': delete, 'token': token}[args.action]
    json.dump(action(conn, args), sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
