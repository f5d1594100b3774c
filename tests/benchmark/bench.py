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
OS_CLIENT_CONFIG_FILE and ANSIBLE_COLLECTIONS_PATH). ``--only fetch,verify``
runs some parts (fetch, upload, convert, verify, volume, info); convert and verify
need no cloud.

verify: image_verify on a random raw file of --size MiB with every check -
sha512 and md5 expected, an RSA-PSS signature (certificate in a PEM file)
and the format check (inspector and qemu-img) - against the slower of
``sha512sum`` and ``md5sum`` on the same file. The module is run directly
(as Ansible runs it on the target, without the controller's start-up) with
a SHA-512 signature, whose digest is shared with the multihash, and with a
SHA-256 one, which is a third digest; an ad-hoc ``ansible`` run is shown too.

fetch: a random image of --size MiB downloaded by image_fetch (an ad-hoc
``ansible`` run, so Ansible's own start-up is included; the module's own
transfer time is shown too), by ``curl -o`` with a token obtained
beforehand, by ``curl -o`` followed by ``sha512sum`` (what it takes to verify
the download as image_fetch does), by ``curl -o`` followed by ``sync FILE``
(image_fetch fsyncs before the rename: the same durability), and by
``openstack image save``.

upload: a random raw file of --size MiB uploaded by image_upload (an ad-hoc
``ansible`` run that hashes the file while sending it; the digest cache is
cleared first so the hash is really computed; the module's own upload time is
shown too), by ``curl -T`` (a PUT to ``/v2/images/{id}/file`` of an image
created beforehand, with a token obtained beforehand) and by ``openstack
image create --file``; then image_upload's no-op re-run on the same file
(content-idempotent: the cached digest matches Glance's, nothing is sent).
Every image the benchmark creates is deleted again.

convert: a qcow2 image of --size MiB virtual size (three quarters random
data, one quarter never written) converted to raw by image_convert (an
ad-hoc ``ansible`` run; the module's own qemu-img time is shown too) and by
plain ``qemu-img convert -f qcow2 -O raw`` (cinder's command), into a file
and onto a block device (a loop device with direct I/O to its backing file;
needs root). For the device cinder adds ``-t none`` (direct I/O), so that is
the plain command there. ``--sweep`` adds qemu-img option variants, the
measurements image_convert's options were chosen by.

volume: the role image_to_volume (playbooks/image_to_volume.yml run by
``ansible-playbook``, so Ansible's start-up is included) writing an image of
--size MiB of random data onto a loop device (needs root): a raw image against
``curl | dd iflag=fullblock oflag=direct`` (a raw image streams straight onto
the device), then the same disk as a qcow2 image against ``curl -o FILE &&
qemu-img convert -f qcow2 -O raw -t none FILE DEVICE`` (cinder's way), and the
role's no-op re-run of the raw image (it hashes the device). Every write starts
with the device's first MiB zeroed (so the role's content check finds a
difference and really writes), its buffer cache dropped and the previous
writeback settled. A thread samples the bytes allocated by files under the
role's temporary directory (and the peer's) every 20 ms and reports the peak.

info: image_info listing every image of the project after the benchmark has
created --list-count (1,000) empty images, against openstack.cloud's
image_info (from the PyPI ``ansible`` package, in the venv given by
--peer-ansible) and ``openstack image list --long``; each is an ad-hoc run
or a command, so every row pays its own start-up (image_info run directly as
the module shows the module alone). Every run must return every image.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024
SETTLE_SECONDS = 1


def make_random_file(path, size):
    with open(path, 'wb') as fileobj:
        left = size
        while left:
            chunk = min(left, 16 * MIB)
            fileobj.write(os.urandom(chunk))
            left -= chunk


def make_sparse_random_file(path, size):
    """Random data, except every fourth 16 MiB stretch, which is a hole."""
    stretch = 16 * MIB
    with open(path, 'wb') as fileobj:
        for index in range((size + stretch - 1) // stretch):
            length = min(stretch, size - index * stretch)
            if index % 4 == 3:
                fileobj.seek(length, os.SEEK_CUR)
            else:
                fileobj.write(os.urandom(length))
        fileobj.truncate(size)


def upload_image(conn, name, path, disk_format='raw'):
    image = conn.image.post('/images', json={'name': name, 'disk_format': disk_format, 'container_format': 'bare'},
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
FETCH_DURABLE = 'curl -o && sync FILE'


def module_result(output):
    """The module's result from ad-hoc ``ansible`` output."""
    return json.loads(output[output.index('=>') + 2:])


def module_transfer_seconds(output):
    """The module's own ``transfer.seconds`` from ad-hoc ``ansible`` output."""
    return module_result(output)['transfer']['seconds']


def ansible_module(name, module_args):
    """An ad-hoc ``ansible`` run of one module of the collection on localhost."""
    bindir = os.path.dirname(sys.executable)
    return [os.path.join(bindir, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
            '-e', 'ansible_python_interpreter=%s' % sys.executable,
            '-m', 'osimage.glance.%s' % name, '-a', json.dumps(module_args)]


def direct_module_env(workdir):
    """The environment for ``direct_module`` commands: the repository as the
    osimage.glance collection on PYTHONPATH."""
    collections = os.path.join(workdir, 'collections')
    if not os.path.isdir(collections):
        os.makedirs(os.path.join(collections, 'ansible_collections', 'osimage'))
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        os.symlink(repo, os.path.join(collections, 'ansible_collections', 'osimage', 'glance'))
    return dict(os.environ, PYTHONPATH=collections)


def direct_module(workdir, name, module_args, label):
    """A module of the collection run directly, as Ansible runs it on the
    target (python + the module + its arguments), without the controller's
    start-up; run it with ``direct_module_env``."""
    args_path = os.path.join(workdir, '%s.json' % label)
    with open(args_path, 'w', encoding='utf-8') as fileobj:
        json.dump({'ANSIBLE_MODULE_ARGS': module_args}, fileobj)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, os.path.join(repo, 'plugins', 'modules', '%s.py' % name), args_path]


def fetch_commands(args, image, token, endpoint, dest):
    curl = ['curl', '-sS', '-f', '-H', 'X-Auth-Token: %s' % token, '-o', dest,
            '%s/v2/images/%s/file' % (endpoint.rstrip('/'), image['id'])]
    bindir = os.path.dirname(sys.executable)
    return {
        'image_fetch': ansible_module('image_fetch', {'cloud': args.cloud, 'image': image['id'], 'dest': dest,
                                                      'force': True}),
        'curl -o': curl,
        'curl -o && sha512sum': ['sh', '-c', '"$0" "$@" && sha512sum "%s" >/dev/null' % dest] + curl,
        # image_fetch fsyncs before renaming into place; curl leaves the data in the page cache.
        FETCH_DURABLE: synced(curl, dest),
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
                settle()
                elapsed, output = timed(argv)
                if os.path.getsize(dest) != size:
                    raise RuntimeError('%s wrote %d bytes, expected %d' % (name, os.path.getsize(dest), size))
                times[name].append(elapsed)
                if name == 'image_fetch':
                    times[MODULE_ONLY].append(module_transfer_seconds(output))
        return size, dict((name, statistics.median(values)) for name, values in times.items())
    finally:
        conn.image.delete('/images/%s' % image['id'])


UPLOAD = 'image_upload (hash + upload)'
UPLOAD_MODULE_ONLY = 'image_upload, upload inside the module'
UPLOAD_NOOP = 'image_upload no-op re-run (same file)'
UPLOAD_NOOP_DIRECT = 'image_upload no-op re-run, module run directly (no Ansible start-up)'
ANSIBLE_PING = 'ansible -m ping (the start-up of any ad-hoc run)'
CURL_PUT = 'curl -T (PUT to an image created beforehand)'
OSC_CREATE = 'openstack image create --file'
UPLOAD_PREFIX = 'osimage-bench-upload'


def forget_digests(path):
    """Remove image_upload's cached digests of ``path`` (extended
    attributes ``user.osimage.*``), so the next upload hashes the file."""
    for attr in os.listxattr(path):
        if attr.startswith('user.osimage.'):
            os.removexattr(path, attr)


def delete_images(conn, images):
    for image_id in images:
        conn.image.delete('/images/%s' % image_id)


def bench_images(conn, prefix):
    """Ids of the images this run of the benchmark created (by name prefix)."""
    found = conn.image.get('/images', params={'limit': 1000, 'owner': conn.current_project_id},
                           raise_exc=True).json()['images']
    return [image['id'] for image in found if (image.get('name') or '').startswith(prefix)]


def create_empty_image(conn, name):
    return conn.image.post('/images', json={'name': name, 'disk_format': 'raw', 'container_format': 'bare'},
                           raise_exc=True).json()


def upload_command(args, name, path):
    return ansible_module('image_upload', {'cloud': args.cloud, 'name': name, 'filename': path,
                                           'disk_format': 'raw', 'container_format': 'bare'})


def check_uploaded(conn, image_id, size, sha512):
    image = conn.image.get('/images/%s' % image_id, raise_exc=True).json()
    if image.get('status') != 'active' or image.get('size') != size or image.get('os_hash_value') != sha512:
        raise RuntimeError('image %s is %s with %s bytes and sha512 %s; expected active, %d bytes, %s'
                           % (image_id, image.get('status'), image.get('size'), image.get('os_hash_value'), size,
                              sha512))


def run_upload(args, conn, workdir):
    """Median seconds of image_upload (first run and no-op re-run), curl -T
    and openstack image create on the same file, interleaved by round."""
    # pylint: disable=import-outside-toplevel
    import hashlib
    size = args.size * MIB
    source = os.path.join(workdir, 'upload.raw')
    make_random_file(source, size)
    digest = hashlib.sha512()
    with open(source, 'rb') as fileobj:
        for chunk in iter(lambda: fileobj.read(4 * MIB), b''):
            digest.update(chunk)
    sha512 = digest.hexdigest()
    token = conn.session.get_token()
    endpoint = conn.endpoint_for('image').rstrip('/')
    bindir = os.path.dirname(sys.executable)
    prefix = '%s-%d-' % (UPLOAD_PREFIX, os.getpid())
    env = direct_module_env(workdir)
    ping = [os.path.join(bindir, 'ansible'), 'localhost', '-c', 'local', '-i', 'localhost,',
            '-e', 'ansible_python_interpreter=%s' % sys.executable, '-m', 'ping']
    times = dict((name, []) for name in (UPLOAD, UPLOAD_NOOP, UPLOAD_NOOP_DIRECT, ANSIBLE_PING, CURL_PUT, OSC_CREATE,
                                         UPLOAD_MODULE_ONLY))
    try:
        for round_number in range(args.rounds):
            # image_upload: a new image, the file hashed while it is sent.
            name = '%sansible-%d' % (prefix, round_number)
            forget_digests(source)
            settle()
            elapsed, output = timed(upload_command(args, name, source))
            result = module_result(output)
            if not result.get('changed') or result.get('sha512') != sha512:
                raise RuntimeError('image_upload did not upload %s: %s' % (source, result))
            check_uploaded(conn, result['id'], size, sha512)
            times[UPLOAD].append(elapsed)
            times[UPLOAD_MODULE_ONLY].append(result['transfer']['seconds'])
            # The same task again: the cached digest matches, nothing is sent.
            settle()
            elapsed, output = timed(upload_command(args, name, source))
            result = module_result(output)
            if result.get('changed') or 'transfer' in result:
                raise RuntimeError('image_upload re-run was not a no-op: %s' % result)
            times[UPLOAD_NOOP].append(elapsed)
            module_args = {'cloud': args.cloud, 'name': name, 'filename': source, 'disk_format': 'raw',
                           'container_format': 'bare'}
            elapsed, output = timed(direct_module(workdir, 'image_upload', module_args, 'upload-noop'), env=env)
            result = json.loads(output[output.index('{'):])
            if result.get('failed') or result.get('changed') or 'transfer' in result:
                raise RuntimeError('image_upload re-run (module run directly) was not a no-op: %s' % result)
            times[UPLOAD_NOOP_DIRECT].append(elapsed)
            elapsed, output = timed(ping)
            times[ANSIBLE_PING].append(elapsed)
            delete_images(conn, [result['id']])

            image = create_empty_image(conn, '%scurl-%d' % (prefix, round_number))
            settle()
            elapsed, output = timed(['curl', '-sS', '-f', '-X', 'PUT', '-H', 'X-Auth-Token: %s' % token,
                                     '-H', 'Content-Type: application/octet-stream', '-T', source,
                                     # No "Expect: 100-continue" wait before the body (up to 1 s).
                                     '-H', 'Expect:',
                                     '%s/v2/images/%s/file' % (endpoint, image['id'])])
            check_uploaded(conn, image['id'], size, sha512)
            times[CURL_PUT].append(elapsed)
            delete_images(conn, [image['id']])

            name = '%sosc-%d' % (prefix, round_number)
            settle()
            elapsed, output = timed([os.path.join(bindir, 'openstack'), '--os-cloud', args.cloud, 'image', 'create',
                                     '--disk-format', 'raw', '--container-format', 'bare', '--file', source,
                                     '-f', 'value', '-c', 'id', name])
            image_id = output.strip().splitlines()[-1]
            check_uploaded(conn, image_id, size, sha512)
            times[OSC_CREATE].append(elapsed)
            delete_images(conn, [image_id])
    finally:
        delete_images(conn, bench_images(conn, prefix))
        os.unlink(source)
    return size, dict((name, statistics.median(values)) for name, values in times.items())


def settle():
    """Let the previous run's writeback and the deletion of its image (and
    the discards of its file) finish, so that they do not slow this run."""
    os.sync()
    time.sleep(SETTLE_SECONDS)


def upload_section(args, workdir):
    if not shutil.which('curl'):
        raise SystemExit('bench.py: curl is needed for the upload part')
    import openstack  # pylint: disable=import-outside-toplevel  # only the cloud parts need the SDK
    conn = openstack.connect(cloud=args.cloud)
    size, medians = run_upload(args, conn, workdir)
    targets = [
        ('%s <= 1.15x %s' % (UPLOAD, CURL_PUT), medians[UPLOAD] <= 1.15 * medians[CURL_PUT]),
        ('%s <= 0.2x %s' % (UPLOAD_NOOP, UPLOAD), medians[UPLOAD_NOOP] <= 0.2 * medians[UPLOAD]),
    ]
    return table('Upload: local file -> Glance', size, medians, CURL_PUT, targets,
                 moves_no_data=(UPLOAD_NOOP, UPLOAD_NOOP_DIRECT, ANSIBLE_PING))


CONVERT_MODULE_ONLY = 'image_convert, qemu-img inside the module'
PLAIN_FILE = 'qemu-img convert -f qcow2 -O raw'
# qemu-img's default cache mode for the output is "unsafe": it never flushes,
# so the plain command returns with the data still in the page cache.
# image_convert fsyncs before renaming into place; this is the same work.
DURABLE_FILE = 'qemu-img convert -f qcow2 -O raw && sync FILE'
PLAIN_DEVICE = 'qemu-img convert -f qcow2 -O raw -t none'
# qemu-img option variants measured with --sweep (added to the plain command;
# for a file followed by "sync FILE" too).
SWEEP = {
    'file': [['-W'], ['-m', '16', '-W'], ['-C'], ['-C', '-W'], ['-T', 'none', '-W'], ['-t', 'none', '-W'],
             ['-t', 'writeback', '-W']],
    'device': [['-W'], ['-m', '16', '-W'], ['-C', '-W'], ['-T', 'none', '-W']],
}


class LoopDevice(object):
    """A loop device over a file of ``size`` bytes, with direct I/O to the
    file so that, like a disk, it has no page cache of its own beneath."""

    def __init__(self, backing, size):
        with open(backing, 'wb') as fileobj:
            os.posix_fallocate(fileobj.fileno(), 0, size)
        self.backing = backing
        self.path = subprocess.run(['losetup', '-f', '--show', '--direct-io=on', backing], check=True,
                                   stdout=subprocess.PIPE).stdout.decode().strip()

    def detach(self):
        subprocess.run(['losetup', '-d', self.path], check=False)


def drop_caches():
    """Start every run with a cold page cache (root only)."""
    subprocess.run(['sync'], check=True)
    with open('/proc/sys/vm/drop_caches', 'w', encoding='ascii') as fileobj:
        fileobj.write('3\n')


def convert_commands(args, source, dest, kind):
    plain = ['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw']
    if kind == 'device':
        plain += ['-t', 'none']
    commands = {
        'image_convert': ansible_module('image_convert', {'src': source, 'src_format': 'qcow2', 'dest': dest,
                                                          'format': 'raw', 'force': True}),
        PLAIN_DEVICE if kind == 'device' else PLAIN_FILE: plain + [source, dest],
    }
    if kind == 'file':
        commands[DURABLE_FILE] = synced(plain + [source, dest], dest)
    if args.sweep:
        for extra in SWEEP[kind]:
            name = ' '.join(plain + extra)
            if kind == 'file':
                commands[name + ' && sync FILE'] = synced(plain + extra + [source, dest], dest)
            else:
                commands[name] = plain + extra + [source, dest]
    return commands


def synced(argv, path):
    """``argv`` followed by an fsync of ``path`` (coreutils ``sync FILE``)."""
    return ['sh', '-c', '"$0" "$@" && sync "%s"' % path] + argv


def run_convert(args, workdir, kind):
    """Median seconds of each command converting the qcow2 to a raw file or
    onto a loop device."""
    size = args.size * MIB
    raw = os.path.join(workdir, 'source.raw')
    source = os.path.join(workdir, 'source.qcow2')
    make_sparse_random_file(raw, size)
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, source], check=True)
    os.unlink(raw)
    device = None
    if kind == 'device':
        device = LoopDevice(os.path.join(workdir, 'device.img'), size + 64 * MIB)
        dest = device.path
    else:
        dest = os.path.join(workdir, 'dest.raw')
    try:
        commands = convert_commands(args, source, dest, kind)
        times = dict((name, []) for name in commands)
        times[CONVERT_MODULE_ONLY] = []
        for _round in range(args.rounds):
            for name, argv in commands.items():
                if device is None and os.path.exists(dest):
                    os.unlink(dest)
                settle()
                if args.cold:
                    drop_caches()
                elapsed, output = timed(argv)
                times[name].append(elapsed)
                if name == 'image_convert':
                    times[CONVERT_MODULE_ONLY].append(module_result(output)['timing']['seconds'])
        identical = subprocess.run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'raw', source, dest],
                                   stdout=subprocess.DEVNULL, check=False).returncode == 0
        if kind == 'device' and not identical:
            # The device is larger than the image: compare the image's extent only.
            spec = 'json:' + json.dumps({'driver': 'raw', 'size': size, 'file': {'filename': dest}})
            identical = subprocess.run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'raw', source, spec],
                                       stdout=subprocess.DEVNULL, check=False).returncode == 0
        if not identical:
            raise RuntimeError('the converted image differs from the source')
        return size, dict((name, statistics.median(values)) for name, values in times.items())
    finally:
        if device is not None:
            device.detach()


def convert_targets(medians, plain, durable=None):
    targets = [('image_convert, qemu-img inside the module <= %s' % plain,
                medians[CONVERT_MODULE_ONLY] <= medians[plain])]
    if durable:
        targets.append(('image_convert, qemu-img inside the module <= %s (the same durability)' % durable,
                        medians[CONVERT_MODULE_ONLY] <= medians[durable]))
    targets.append(('image_convert (with Ansible start-up and the safety checks) <= %s + 2 s' % (durable or plain),
                    medians['image_convert'] <= medians[durable or plain] + 2.0))
    return targets


def cell(text):
    """``text`` for a Markdown table cell (a shell pipe is not a column)."""
    return text.replace('|', '\\|')


def table(title, size, medians, reference, targets, moves_no_data=()):
    """A Markdown table of the medians; rows named in ``moves_no_data`` (a
    no-op, Ansible's start-up) get no MB/s."""
    lines = ['### %s (%d MiB, median of the rounds)' % (title, size // MIB), '',
             '| tool | seconds | MB/s | ratio to %s |' % cell(reference), '|---|---:|---:|---:|']
    for name, seconds in medians.items():
        rate = '-' if name in moves_no_data else '%.0f' % (size / seconds / 1e6)
        lines.append('| %s | %.2f | %s | %.2f |' % (cell(name), seconds, rate, seconds / medians[reference]))
    lines.append('')
    for text, ok in targets:
        lines.append('- target: %s: %s' % (text, 'met' if ok else 'NOT MET'))
    return '\n'.join(lines)


def fetch_section(args, workdir):
    if not shutil.which('curl'):
        raise SystemExit('bench.py: curl is needed for the fetch part')
    import openstack  # pylint: disable=import-outside-toplevel  # only the fetch part needs the cloud
    conn = openstack.connect(cloud=args.cloud)
    size, medians = run_fetch(args, conn, workdir)
    fetch_targets = [
        ('image_fetch <= 1.3x curl', medians['image_fetch'] <= 1.3 * medians['curl -o']),
        ('image_fetch <= 1.3x curl && sha512sum (the same verification)',
         medians['image_fetch'] <= 1.3 * medians['curl -o && sha512sum']),
        ('image_fetch <= 1.3x %s (the same durability)' % FETCH_DURABLE,
         medians['image_fetch'] <= 1.3 * medians[FETCH_DURABLE]),
        ('image_fetch >= 4x faster than openstack image save',
         medians['openstack image save'] >= 4 * medians['image_fetch']),
    ]
    return table('Fetch: Glance -> local file', size, medians, 'curl -o', fetch_targets)


def convert_sections(args, workdir):
    if not shutil.which('qemu-img'):
        raise SystemExit('bench.py: qemu-img is needed for the convert part (package qemu-utils or qemu-img)')
    sections = []
    size, medians = run_convert(args, workdir, 'file')
    sections.append(table('Convert: qcow2 -> raw file', size, medians, PLAIN_FILE,
                          convert_targets(medians, PLAIN_FILE, DURABLE_FILE)))
    if os.geteuid() == 0 and shutil.which('losetup'):
        size, medians = run_convert(args, workdir, 'device')
        sections.append(table('Convert: qcow2 -> raw on a block device (loop device)', size, medians,
                              PLAIN_DEVICE, convert_targets(medians, PLAIN_DEVICE)))
    else:
        sections.append('### Convert: qcow2 -> raw on a block device\n\nSkipped: needs root and losetup.')
    return sections


VERIFY_MODULE_ONLY = 'image_verify, module run directly (no Ansible start-up)'


def signed_properties(path, workdir, hash_method):
    """Sign ``path`` (RSA-PSS, a self-made certificate in a PEM file) as a
    Glance image signature; returns the image_verify options for it."""
    # pylint: disable=import-outside-toplevel  # only the verify part signs
    import base64
    import datetime
    import hashlib
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'osimage bench signer')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path = os.path.join(workdir, 'signer-%s.pem' % hash_method)
    with open(cert_path, 'wb') as fileobj:
        fileobj.write(cert.public_bytes(serialization.Encoding.PEM))
    algorithm = {'SHA-256': hashes.SHA256, 'SHA-512': hashes.SHA512}[hash_method]()
    digest = hashlib.new(algorithm.name)
    with open(path, 'rb') as fileobj:
        for chunk in iter(lambda: fileobj.read(4 * MIB), b''):
            digest.update(chunk)
    signature = key.sign(digest.digest(), padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH),
                         utils.Prehashed(algorithm))
    return {'img_signature': base64.b64encode(signature).decode('ascii'), 'img_signature_hash_method': hash_method,
            'img_signature_key_type': 'RSA-PSS', 'certificate_path': cert_path}


def run_verify(args, workdir):
    """image_verify (checksum + signature + format) against the slower of
    sha512sum and md5sum on the same file."""
    # pylint: disable=import-outside-toplevel
    import hashlib
    size = args.size * MIB
    path = os.path.join(workdir, 'verify.raw')
    make_random_file(path, size)
    digests = {'sha512': hashlib.sha512(), 'md5': hashlib.md5()}
    with open(path, 'rb') as fileobj:
        for chunk in iter(lambda: fileobj.read(4 * MIB), b''):
            for digest in digests.values():
                digest.update(chunk)
    env = direct_module_env(workdir)
    commands = {}
    for hash_method in ('SHA-512', 'SHA-256'):
        module_args = dict(signed_properties(path, workdir, hash_method), path=path, hash_algo='sha512',
                           hash_value=digests['sha512'].hexdigest(), checksum=digests['md5'].hexdigest(),
                           disk_format='raw')
        label = (VERIFY_MODULE_ONLY if hash_method == 'SHA-512'
                 else 'image_verify, module run directly, SHA-256 signature (a third digest)')
        commands[label] = direct_module(workdir, 'image_verify', module_args, 'verify-%s' % hash_method)
        if hash_method == 'SHA-512':
            commands['image_verify (ad-hoc ansible run)'] = ansible_module('image_verify', module_args)
    commands['sha512sum'] = ['sha512sum', path]
    commands['md5sum'] = ['md5sum', path]
    times = dict((name, []) for name in commands)
    for dummy in range(args.rounds):
        for name, argv in commands.items():
            elapsed, output = timed(argv, env=env)
            if name.startswith('image_verify'):
                result = json.loads(output[output.index('{'):] if '=>' not in output else output[output.index('=>') + 2:])
                if result.get('failed') or not result['signature']['verified']:
                    raise RuntimeError('%s did not verify: %s' % (name, result.get('msg')))
            times[name].append(elapsed)
    os.unlink(path)
    return size, dict((name, statistics.median(values)) for name, values in times.items())


def verify_section(args, workdir):
    if not shutil.which('qemu-img'):
        raise SystemExit('bench.py: qemu-img is needed for the verify part (package qemu-utils or qemu-img)')
    size, medians = run_verify(args, workdir)
    slower = max(('sha512sum', 'md5sum'), key=medians.get)
    targets = [('%s <= 1.15x %s (the slower of sha512sum and md5sum)' % (VERIFY_MODULE_ONLY, slower),
                medians[VERIFY_MODULE_ONLY] <= 1.15 * medians[slower])]
    return table('Verify: local raw file, sha512 + md5 + RSA-PSS signature + format check', size, medians, slower,
                 targets)


VOLUME_RAW = 'image_to_volume, raw image (streamed onto the device)'
VOLUME_NOOP = 'image_to_volume no-op re-run, raw image (hashes the device)'
VOLUME_FETCH_DIRECT = 'image_fetch onto the device, module run directly (the role\'s data path, no Ansible)'
VOLUME_FETCH_TRANSFER = 'image_fetch onto the device, transfer inside the module (after hashing the old content)'
VOLUME_CURL_DD = 'curl | dd of=DEVICE bs=4M iflag=fullblock oflag=direct'
VOLUME_QCOW2 = 'image_to_volume, qcow2 image (download, verify, convert)'
VOLUME_CURL_CONVERT = 'curl -o FILE && qemu-img convert -f qcow2 -O raw -t none FILE DEVICE'
PLAYBOOK_START = 'ansible-playbook, an empty play (the start-up of any playbook run)'
# The role's closing debug message says what it did.
ROLE_OUTCOME = re.compile(r'by (stream|convert):\s*(changed|already there, unchanged)')


class TempPeak(object):
    """The peak of the bytes allocated by the files under ``path``, sampled
    by a thread every ``interval`` seconds while the ``with`` block runs."""

    def __init__(self, path, interval=0.02):
        self.path = path
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _allocated(self):
        total = 0
        for top, dirs, files in os.walk(self.path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(top, name)).st_blocks * 512
                except FileNotFoundError:
                    pass  # removed between listing and looking
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._allocated())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._allocated())


def wipe_device(device):
    """Zero the device's first MiB (so it no longer holds the image and a
    content check stops at once) and drop its buffer cache (so a hashing read
    comes from the device, not from memory)."""
    subprocess.run(['dd', 'if=/dev/zero', 'of=%s' % device, 'bs=1M', 'count=1', 'oflag=direct', 'conv=fsync',
                    'status=none'], check=True)
    drop_device_cache(device)


def drop_device_cache(device):
    subprocess.run(['blockdev', '--flushbufs', device], check=True)


def device_sha512(device, size):
    # pylint: disable=import-outside-toplevel
    import hashlib
    digest = hashlib.sha512()
    with open(device, 'rb') as fileobj:
        left = size
        while left:
            chunk = fileobj.read(min(left, 4 * MIB))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    drop_device_cache(device)
    return digest.hexdigest()


def role_command(args, image_id, device, temp_dir):
    """ansible-playbook of the collection's playbook for the role."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    extra = {'image_to_volume_image': image_id, 'image_to_volume_volume': device,
             'image_to_volume_cloud': args.cloud, 'image_to_volume_temp_dir': temp_dir}
    return [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
            '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', json.dumps(extra),
            os.path.join(repo, 'playbooks', 'image_to_volume.yml')]


def role_outcome(output):
    """``(method, changed)`` from the role's closing message."""
    match = ROLE_OUTCOME.search(output)
    if not match:
        raise RuntimeError('image_to_volume said nothing about what it did:\n%s' % output[-3000:])
    return match.group(1), match.group(2) == 'changed'


def run_volume(args, conn, workdir):
    """Median seconds of the role and its peers writing the same disk (raw
    and qcow2 images) onto one loop device, interleaved by round; peak temp
    bytes of each case."""
    # pylint: disable=import-outside-toplevel
    import hashlib
    size = args.size * MIB
    raw = os.path.join(workdir, 'volume-source.raw')
    qcow2 = os.path.join(workdir, 'volume-source.qcow2')
    make_random_file(raw, size)
    digest = hashlib.sha512()
    with open(raw, 'rb') as fileobj:
        for chunk in iter(lambda: fileobj.read(4 * MIB), b''):
            digest.update(chunk)
    sha512 = digest.hexdigest()
    subprocess.run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2], check=True)
    prefix = 'osimage-bench-volume-%d-' % os.getpid()
    role_temp = os.path.join(workdir, 'role-temp')
    peer_temp = os.path.join(workdir, 'peer-temp')
    os.mkdir(role_temp)
    os.mkdir(peer_temp)
    empty_play = os.path.join(workdir, 'empty-play.yml')
    with open(empty_play, 'w', encoding='utf-8') as fileobj:
        fileobj.write('- hosts: localhost\n  gather_facts: false\n  tasks: []\n')
    bindir = os.path.dirname(sys.executable)
    env = direct_module_env(workdir)
    device = None
    try:
        images = {'raw': upload_image(conn, prefix + 'raw', raw),
                  'qcow2': upload_image(conn, prefix + 'qcow2', qcow2, disk_format='qcow2')}
        os.unlink(raw)
        os.unlink(qcow2)
        device = LoopDevice(os.path.join(workdir, 'volume.img'), size + 64 * MIB)
        token = conn.session.get_token()
        endpoint = conn.endpoint_for('image').rstrip('/')
        urls = dict((kind, '%s/v2/images/%s/file' % (endpoint, image['id'])) for kind, image in images.items())
        peer_file = os.path.join(peer_temp, 'image.qcow2')
        commands = {
            VOLUME_RAW: role_command(args, images['raw']['id'], device.path, role_temp),
            VOLUME_NOOP: role_command(args, images['raw']['id'], device.path, role_temp),
            VOLUME_FETCH_DIRECT: direct_module(workdir, 'image_fetch', {'cloud': args.cloud, 'image': images['raw']['id'],
                                                                        'dest': device.path}, 'volume-fetch'),
            # iflag=fullblock: a pipe returns short reads, and GNU dd gives up
            # O_DIRECT at the first write that is not a whole block.
            VOLUME_CURL_DD: ['bash', '-o', 'pipefail', '-c',
                             'curl -sS -f -H "X-Auth-Token: $0" "$1" | dd of="$2" bs=4M iflag=fullblock oflag=direct '
                             'status=none', token, urls['raw'], device.path],
            VOLUME_QCOW2: role_command(args, images['qcow2']['id'], device.path, role_temp),
            # cinder removes its temporary copy too.
            VOLUME_CURL_CONVERT: ['bash', '-c',
                                  'curl -sS -f -H "X-Auth-Token: $0" -o "$2" "$1" && '
                                  'qemu-img convert -f qcow2 -O raw -t none "$2" "$3" && rm -f "$2"',
                                  token, urls['qcow2'], peer_file, device.path],
            PLAYBOOK_START: [os.path.join(bindir, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                             '-e', 'ansible_python_interpreter=%s' % sys.executable, empty_play],
        }
        expected = {VOLUME_RAW: ('stream', True), VOLUME_NOOP: ('stream', False), VOLUME_QCOW2: ('convert', True)}
        times = dict((name, []) for name in commands)
        times[VOLUME_FETCH_TRANSFER] = []
        peaks = dict((name, 0) for name in (VOLUME_RAW, VOLUME_NOOP, VOLUME_QCOW2, VOLUME_CURL_CONVERT))
        for round_number in range(args.rounds):
            for name, argv in commands.items():
                if name == VOLUME_NOOP:
                    # Right after VOLUME_RAW: the device holds the image.
                    drop_device_cache(device.path)
                elif name != PLAYBOOK_START:
                    wipe_device(device.path)
                settle()
                with TempPeak(peer_temp if name == VOLUME_CURL_CONVERT else role_temp) as peak:
                    elapsed, output = timed(argv, env=env if name == VOLUME_FETCH_DIRECT else None)
                times[name].append(elapsed)
                if name == VOLUME_FETCH_DIRECT:
                    result = json.loads(output[output.index('{'):])
                    if result.get('failed') or not result.get('changed'):
                        raise RuntimeError('%s did not write the device: %s' % (name, result.get('msg')))
                    times[VOLUME_FETCH_TRANSFER].append(result['transfer']['seconds'])
                if name in peaks:
                    peaks[name] = max(peaks[name], peak.peak)
                if name in expected and role_outcome(output) != expected[name]:
                    raise RuntimeError('%s: expected (method, changed) %s, got %s'
                                       % (name, expected[name], role_outcome(output)))
                if round_number == 0 and name in (VOLUME_RAW, VOLUME_FETCH_DIRECT, VOLUME_CURL_DD, VOLUME_QCOW2,
                                                  VOLUME_CURL_CONVERT):
                    if device_sha512(device.path, size) != sha512:
                        raise RuntimeError('after %s the device does not hold the image' % name)
        leftovers = os.listdir(role_temp) + os.listdir(peer_temp)
        if leftovers:
            raise RuntimeError('temporary files left behind: %s' % leftovers)
        return size, dict((name, statistics.median(values)) for name, values in times.items()), peaks
    finally:
        if device is not None:
            device.detach()
        delete_images(conn, bench_images(conn, prefix))
        for path in (raw, qcow2):
            if os.path.exists(path):
                os.unlink(path)


def volume_sections(args, workdir):
    missing = [tool for tool in ('curl', 'qemu-img', 'losetup', 'blockdev', 'dd') if not shutil.which(tool)]
    if os.geteuid() != 0 or missing:
        return ['### Image to volume\n\nSkipped: needs root and %s.' % ', '.join(missing or ['losetup'])]
    import openstack  # pylint: disable=import-outside-toplevel  # only the cloud parts need the SDK
    conn = openstack.connect(cloud=args.cloud)
    size, medians, peaks = run_volume(args, conn, workdir)
    raw_names = (VOLUME_RAW, VOLUME_NOOP, VOLUME_FETCH_DIRECT, VOLUME_FETCH_TRANSFER, VOLUME_CURL_DD, PLAYBOOK_START)
    raw_rows = dict((name, medians[name]) for name in raw_names)
    raw_targets = [
        ('%s <= 1.3x %s' % (VOLUME_RAW, VOLUME_CURL_DD), medians[VOLUME_RAW] <= 1.3 * medians[VOLUME_CURL_DD]),
        ('no temporary bytes for a raw image (peak %d)' % peaks[VOLUME_RAW], peaks[VOLUME_RAW] == 0),
    ]
    qcow2_rows = dict((name, medians[name]) for name in (VOLUME_QCOW2, VOLUME_CURL_CONVERT))
    temp_lines = [
        '', 'Peak temporary bytes (allocated by files under the temporary directory, sampled every 20 ms):', '',
        '| run | peak temp bytes |', '|---|---:|']
    temp_lines += ['| %s | %d |' % (cell(name), peaks[name]) for name in peaks]
    return [
        table('Image to volume: raw image -> block device (loop device)', size, raw_rows, VOLUME_CURL_DD,
              raw_targets, moves_no_data=(VOLUME_NOOP, PLAYBOOK_START)),
        table('Image to volume: qcow2 image -> raw on a block device (loop device)', size, qcow2_rows,
              VOLUME_CURL_CONVERT, [], moves_no_data=()) + '\n'.join(temp_lines),
    ]


INFO = 'image_info'
INFO_DIRECT = 'image_info, module run directly (no Ansible start-up)'
PEER_INFO = 'openstack.cloud.image_info'
OSC_LIST = 'openstack image list --long'
LIST_PREFIX = 'osimage-bench-list'


def create_listed_images(conn, prefix, count):
    """``count`` empty images (no data: listing does not read it), made by
    eight requests at a time."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda n: create_empty_image(conn, '%s-%05d' % (prefix, n))['id'], range(count)))


def delete_listed_images(conn, ids):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda image_id: conn.image.delete('/images/%s' % image_id), ids))


def listed_count(name, output, prefix):
    """How many of the benchmark's images a run listed."""
    if name == OSC_LIST:
        names = [row['Name'] for row in json.loads(output[output.index('['):])]
    elif name == INFO_DIRECT:
        names = [image['name'] for image in json.loads(output[output.index('{'):])['images']]
    else:
        names = [image['name'] for image in module_result(output)['images']]
    return sum(1 for found in names if (found or '').startswith(prefix))


def run_info(args, workdir, prefix):
    bindir = os.path.dirname(sys.executable)
    env = direct_module_env(workdir)
    peer = [args.peer_ansible, 'localhost', '-c', 'local', '-i', 'localhost,',
            '-e', 'ansible_python_interpreter=%s' % os.path.join(os.path.dirname(args.peer_ansible), 'python'),
            '-m', 'openstack.cloud.image_info', '-a', json.dumps({'cloud': args.cloud})]
    commands = [
        (INFO, ansible_module('image_info', {'cloud': args.cloud}), None),
        (INFO_DIRECT, direct_module(workdir, 'image_info', {'cloud': args.cloud}, 'info'), env),
        (PEER_INFO, peer, None),
        (OSC_LIST, [os.path.join(bindir, 'openstack'), '--os-cloud', args.cloud, 'image', 'list', '--long',
                    '-f', 'json'], None),
    ]
    times = dict((name, []) for name, _argv, _env in commands)
    for _round in range(args.rounds):
        for name, argv, command_env in commands:
            elapsed, output = timed(argv, env=command_env)
            found = listed_count(name, output, prefix)
            if found != args.list_count:
                raise RuntimeError('%s listed %d of the %d images' % (name, found, args.list_count))
            times[name].append(elapsed)
    return dict((name, statistics.median(values)) for name, values in times.items())


def info_section(args, workdir):
    if not args.peer_ansible:
        raise SystemExit('bench.py: the info part needs --peer-ansible (the ansible of a venv with the PyPI '
                         'ansible package, which ships openstack.cloud)')
    import openstack  # pylint: disable=import-outside-toplevel  # only the cloud parts need the SDK
    conn = openstack.connect(cloud=args.cloud)
    prefix = '%s-%d' % (LIST_PREFIX, os.getpid())
    ids = create_listed_images(conn, prefix, args.list_count)
    try:
        medians = run_info(args, workdir, prefix)
    finally:
        delete_listed_images(conn, ids)
    lines = ['### Listing: every image of the project, %d of them made by the benchmark (median of the rounds)'
             % args.list_count, '', '| tool | seconds | ratio to %s |' % PEER_INFO, '|---|---:|---:|']
    for name, seconds in medians.items():
        lines.append('| %s | %.2f | %.2f |' % (cell(name), seconds, seconds / medians[PEER_INFO]))
    lines.append('')
    for text, ok in [('%s <= 0.5x %s' % (INFO, PEER_INFO), medians[INFO] <= 0.5 * medians[PEER_INFO]),
                     ('%s no slower than %s' % (INFO, OSC_LIST), medians[INFO] <= medians[OSC_LIST])]:
        lines.append('- target: %s: %s' % (text, 'met' if ok else 'NOT MET'))
    return '\n'.join(lines)


SECTIONS = ('fetch', 'upload', 'convert', 'verify', 'volume', 'info')


def sections_option(value):
    """``--only fetch,verify``: the parts to run."""
    names = [name.strip() for name in value.split(',') if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError('choose from %s, comma-separated' % ', '.join(SECTIONS))
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cloud', default='demo')
    parser.add_argument('--size', type=int, default=1024, help='image size in MiB (default 1024)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--workdir', default=os.environ.get('TMPDIR', '/var/tmp'))
    parser.add_argument('--write', help='also write the report to this Markdown file')
    parser.add_argument('--only', type=sections_option, default=list(SECTIONS),
                        help='the parts to run, comma-separated: %s (convert and verify need no cloud)'
                        % ','.join(SECTIONS))
    parser.add_argument('--list-count', type=int, default=1000, help='info: images to create and list (default 1000)')
    parser.add_argument('--peer-ansible', help='info: the ansible command of a venv with the PyPI ansible package')
    parser.add_argument('--sweep', action='store_true', help='convert: also time qemu-img option variants')
    parser.add_argument('--cold', action='store_true', help='convert: drop the page cache before each run (root)')
    args = parser.parse_args(argv)
    if args.cold and os.geteuid() != 0:
        parser.error('--cold needs root')

    sections = []
    workdir = tempfile.mkdtemp(prefix='osimage-bench.', dir=args.workdir)
    try:
        if 'fetch' in args.only:
            sections.append(fetch_section(args, workdir))
        if 'upload' in args.only:
            sections.append(upload_section(args, workdir))
        if 'convert' in args.only:
            sections.extend(convert_sections(args, workdir))
        if 'verify' in args.only:
            sections.append(verify_section(args, workdir))
        if 'volume' in args.only:
            sections.extend(volume_sections(args, workdir))
        if 'info' in args.only:
            sections.append(info_section(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    options = ['--size %d' % args.size, '--rounds %d' % args.rounds]
    options += ['--only %s' % ','.join(args.only)] if list(args.only) != list(SECTIONS) else []
    options += ['--sweep'] if args.sweep else []
    options += ['--cold'] if args.cold else []
    report = '\n'.join([
        '# osimage.glance benchmark', '',
        'Command: `tests/run.sh bench` (runs `tests/benchmark/bench.py %s`)' % ' '.join(options),
        'Machine: %d cores, Python %s, qemu-img %s; %s.' % (
            os.cpu_count(), sys.version.split()[0], qemu_version(), time.strftime('%Y-%m-%d')),
        ''] + ['%s\n' % section for section in sections])
    print(report)
    if args.write:
        with open(args.write, 'w', encoding='utf-8') as fileobj:
            fileobj.write(report)
    return 0


def qemu_version():
    try:
        out = subprocess.run(['qemu-img', '--version'], stdout=subprocess.PIPE, check=False).stdout.decode()
    except OSError:
        return 'none'
    return out.split()[2] if out.startswith('qemu-img version') else 'unknown'


if __name__ == '__main__':
    sys.exit(main())
