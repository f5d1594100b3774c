#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Benchmark osimage.glance against its peers on the local cloud, in one run.

Not a test: it prints a table of times and ratios measured side by side on
this machine, and can write it to a Markdown file. Run it through
``tests/run.sh bench`` (which starts the local cloud and sets
OS_CLIENT_CONFIG_FILE and ANSIBLE_COLLECTIONS_PATH).

fetch: a random image of --size MiB downloaded by image_fetch (an ad-hoc
``ansible`` run, so Ansible's own start-up is included; the module's own
transfer time is shown too), by ``curl -o`` with a token obtained
beforehand, by ``curl -o`` followed by ``sha512sum`` (what it takes to verify
the download as image_fetch does), and by ``openstack image save``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import openstack

MIB = 1024 * 1024


def make_random_file(path, size):
    with open(path, 'wb') as fileobj:
        left = size
        while left:
            chunk = min(left, 16 * MIB)
            fileobj.write(os.urandom(chunk))
            left -= chunk


def upload_image(conn, name, path):
    image = conn.image.post('/images', json={'name': name, 'disk_format': 'raw', 'container_format': 'bare'},
                            raise_exc=True).json()
    with open(path, 'rb') as fileobj:
        conn.image.put('/images/%s/file' % image['id'], data=fileobj, raise_exc=True,
                       headers={'Content-Type': 'application/octet-stream'})
    return conn.image.get('/images/%s' % image['id'], raise_exc=True).json()


def timed(argv, env=None):
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError('%s failed (%d):\n%s' % (argv[0], proc.returncode, proc.stdout.decode()[-3000:]))
    return elapsed, proc.stdout.decode()


MODULE_ONLY = 'image_fetch, transfer inside the module'


def module_transfer_seconds(output):
    """The module's own ``transfer.seconds`` from ad-hoc ``ansible`` output."""
    return json.loads(output[output.index('=>') + 2:])['transfer']['seconds']


def fetch_commands(args, image, token, endpoint, dest):
    bindir = os.path.dirname(sys.executable)
    curl = ['curl', '-sS', '-f', '-H', 'X-Auth-Token: %s' % token, '-o', dest,
            '%s/v2/images/%s/file' % (endpoint.rstrip('/'), image['id'])]
    module_args = json.dumps({'cloud': args.cloud, 'image': image['id'], 'dest': dest, 'force': True})
    return {
        'image_fetch': [os.path.join(bindir, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
                        '-e', 'ansible_python_interpreter=%s' % sys.executable,
                        '-m', 'osimage.glance.image_fetch', '-a', module_args],
        'curl -o': curl,
        'curl -o && sha512sum': ['sh', '-c', '"$0" "$@" && sha512sum "%s" >/dev/null' % dest] + curl,
        'openstack image save': [os.path.join(bindir, 'openstack'), '--os-cloud', args.cloud, 'image', 'save',
                                 '--file', dest, image['id']],
    }


def run_fetch(args, conn, workdir):
    size = args.size * MIB
    source = os.path.join(workdir, 'source.raw')
    make_random_file(source, size)
    image = upload_image(conn, 'osimage-bench-%d' % os.getpid(), source)
    os.unlink(source)
    try:
        token = conn.session.get_token()
        endpoint = conn.endpoint_for('image')
        dest = os.path.join(workdir, 'dest.raw')
        commands = fetch_commands(args, image, token, endpoint, dest)
        times = dict((name, []) for name in commands)
        times[MODULE_ONLY] = []
        for round_number in range(args.rounds):
            # Interleaved rounds so that a slow moment hits every tool alike.
            for name, argv in commands.items():
                if os.path.exists(dest):
                    os.unlink(dest)
                elapsed, output = timed(argv)
                if os.path.getsize(dest) != size:
                    raise RuntimeError('%s wrote %d bytes, expected %d' % (name, os.path.getsize(dest), size))
                times[name].append(elapsed)
                if name == 'image_fetch':
                    times[MODULE_ONLY].append(module_transfer_seconds(output))
        return size, dict((name, statistics.median(values)) for name, values in times.items())
    finally:
        conn.image.delete('/images/%s' % image['id'])


def table(title, size, medians, reference, targets):
    lines = ['### %s (%d MiB, median of the rounds)' % (title, size // MIB), '',
             '| tool | seconds | MB/s | ratio to %s |' % reference, '|---|---:|---:|---:|']
    for name, seconds in medians.items():
        row = (name, seconds, size / seconds / 1e6, seconds / medians[reference])
        lines.append('| %s | %.2f | %.0f | %.2f |' % row)
    lines.append('')
    for text, ok in targets:
        lines.append('- target: %s: %s' % (text, 'met' if ok else 'NOT MET'))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--size', type=int, default=1024, help='image size in MiB (default 1024)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--workdir', default=os.environ.get('TMPDIR', '/var/tmp'))
    parser.add_argument('--write', help='also write the report to this Markdown file')
    args = parser.parse_args(argv)

    if not shutil.which('curl'):
        parser.error('curl is needed')
    conn = openstack.connect(cloud=args.cloud)
    workdir = tempfile.mkdtemp(prefix='osimage-bench.', dir=args.workdir)
    try:
        size, medians = run_fetch(args, conn, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    fetch_targets = [
        ('image_fetch <= 1.3x curl', medians['image_fetch'] <= 1.3 * medians['curl -o']),
        ('image_fetch <= 1.3x curl && sha512sum (the same verification)',
         medians['image_fetch'] <= 1.3 * medians['curl -o && sha512sum']),
        ('image_fetch >= 4x faster than openstack image save',
         medians['openstack image save'] >= 4 * medians['image_fetch']),
    ]
    report = '\n'.join([
        '# osimage.glance benchmark', '',
        'Command: `tests/run.sh bench` (runs `tests/benchmark/bench.py --size %d --rounds %d`)' % (
            args.size, args.rounds),
        'Machine: %d cores, Python %s; %s.' % (os.cpu_count(), sys.version.split()[0],
                                               time.strftime('%Y-%m-%d')),
        '', table('Fetch: Glance -> local file', size, medians, 'curl -o', fetch_targets), ''])
    print(report)
    if args.write:
        with open(args.write, 'w', encoding='utf-8') as fileobj:
            fileobj.write(report)
    return 0


if __name__ == '__main__':
    sys.exit(main())
