#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_fetch
short_description: Download a Glance image to a local file, verified and atomically
version_added: 0.1.0
description:
  - Downloads the data of an OpenStack Glance image to a local file in one streaming pass that
    downloads, hashes and writes at the same time.
  - The data must match the image's Glance multihash (C(os_hash_algo)/C(os_hash_value)) or, for
    images without one, its md5 C(checksum). An image with neither is refused unless
    I(allow_unverified=true).
  - The file is written to a temporary file beside I(dest), fsynced and renamed into place only
    when the hash matched. On any failure (hash mismatch, lost connection, no space, timeout,
    interruption) the temporary file is removed and an existing I(dest) is left untouched.
  - Idempotent. An existing I(dest) with the image's size and hash is left alone without downloading.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Looks the image up and hashes an existing I(dest) to predict the result; writes nothing.
  diff_mode:
    support: full
    details: Shows I(dest) before (absent, or its size and hash) and after.
  platform:
    platforms: posix
options:
  image:
    description:
      - Name or id of the image.
      - A name that more than one visible image has is an error that lists their ids.
    type: str
    required: true
  dest:
    description:
      - Path of the local file to write. Its directory must exist.
      - An existing I(dest) must be a regular file; it is replaced only when its content differs.
    type: path
    required: true
  force:
    description:
      - Download and replace I(dest) even when it already holds the image's data.
    type: bool
    default: false
  allow_unverified:
    description:
      - Accept an image that has neither a multihash nor a checksum in Glance, so its data cannot be
        verified. Such an image is downloaded on every run because an existing I(dest) cannot be
        proven to match it.
    type: bool
    default: false
  timeout:
    description:
      - Seconds the whole download may take before it is abandoned (and the temporary file removed).
      - C(0) means no limit. Single API calls are bounded by I(api_timeout).
    type: int
    default: 3600
seealso:
  - module: openstack.cloud.image_info
'''

EXAMPLES = r'''
- name: Fetch an image by name into /var/lib/images
  osimage.glance.image_fetch:
    cloud: mycloud
    image: debian-12-genericcloud
    dest: /var/lib/images/debian-12.qcow2
    mode: '0640'

- name: Fetch by id with explicit credentials, no matter what is already there
  osimage.glance.image_fetch:
    auth:
      auth_url: https://keystone.example.com:5000/v3
      username: ops
      password: "{{ vault_ops_password }}"
      project_name: images
      user_domain_name: Default
      project_domain_name: Default
    image: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
    dest: /srv/golden.raw
    force: true

- name: Share cloud settings between tasks with the action group
  module_defaults:
    group/osimage.glance.glance:
      cloud: mycloud
  block:
    - name: Fetch two images
      osimage.glance.image_fetch:
        image: "{{ item }}"
        dest: "/var/lib/images/{{ item }}.img"
      loop: [cirros, ubuntu-24.04]
'''

RETURN = r'''
dest:
  description: Path of the local file.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.qcow2
id:
  description: Id of the image.
  returned: always
  type: str
  sample: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
name:
  description: Name of the image.
  returned: always
  type: str
  sample: debian-12-genericcloud
disk_format:
  description: Disk format Glance records for the image.
  returned: always
  type: str
  sample: qcow2
container_format:
  description: Container format Glance records for the image.
  returned: always
  type: str
  sample: bare
size:
  description: Size of the image data in bytes.
  returned: always
  type: int
  sample: 471269376
virtual_size:
  description: Virtual size of the disk in bytes, when Glance knows it.
  returned: always
  type: int
  sample: 2147483648
os_hash_algo:
  description: Glance's multihash algorithm for the image, if any.
  returned: always
  type: str
  sample: sha512
os_hash_value:
  description: Glance's multihash of the image data, if any.
  returned: always
  type: str
checksum:
  description: Glance's md5 checksum of the image data, if any.
  returned: always
  type: str
verified_with:
  description: The hash algorithm I(dest) was verified with, or C(null) for an unverified image.
  returned: always
  type: str
  sample: sha512
transfer:
  description: What the download moved; absent when nothing was downloaded.
  returned: when the image was downloaded
  type: dict
  contains:
    bytes:
      description: Bytes downloaded.
      type: int
    seconds:
      description: Seconds the download took.
      type: float
    mb_per_second:
      description: Throughput in megabytes (10^6 bytes) per second.
      type: float
'''

import os
import stat

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer
from ansible_collections.osimage.glance.plugins.module_utils._cloud import stream_read_errors
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule


def image_facts(image, dest):
    return dict(
        dest=dest,
        id=image['id'],
        name=image.get('name'),
        disk_format=image.get('disk_format'),
        container_format=image.get('container_format'),
        size=image.get('size'),
        virtual_size=image.get('virtual_size'),
        os_hash_algo=image.get('os_hash_algo'),
        os_hash_value=image.get('os_hash_value'),
        checksum=image.get('checksum'),
    )


def inspect_dest(dest, image_size, algo):
    """What is at ``dest`` now: None when absent, else its size and, when the
    size could match the image, its digest (the only way to prove equality)."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise errors.DestinationError(
            'dest %s exists and is not a regular file. Give the path of a file to create or replace.' % dest)
    found = dict(state='file', size=st.st_size)
    if algo and st.st_size == image_size:
        found[algo] = transfer.hash_file(dest, [algo])[1][algo]
    return found


def check_parent(dest):
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise errors.DestinationError(
            'The directory of dest, %s, does not exist. Create it first (for example with '
            'ansible.builtin.file state=directory).' % parent)
    return parent


def download(module, api, image, dest, algo, expected):
    """Stream the image into a temporary file beside ``dest``, hashing as it
    goes; rename into place only when size and hash are right."""
    what = 'Downloading image %s' % image['id']
    deadline = transfer.Deadline(module.params['timeout'], what)
    with transfer.terminate_as_interrupt(), transfer.AtomicFile(dest) as target:
        target.preallocate(image.get('size'))
        digests = transfer.Digests([algo] if algo else [])
        response = api.open_image_data(image, what)
        try:
            chunks = deadline.guard(response.iter_content(transfer.CHUNK_SIZE))
            transfer.pump(chunks, digests.consumers() + [target.write])
        except stream_read_errors() as exc:
            raise errors.TransferError(
                '%s from %s broke off after %d bytes: %s. Nothing was changed at %s; run again.'
                % (what, api.endpoint, digests.size, exc, dest))
        finally:
            response.close()
        size = image.get('size')
        if size is not None and digests.size != size:
            raise errors.IntegrityError(
                '%s: received %d bytes but Glance says the image has %d. Nothing was changed at %s.'
                % (what, digests.size, size, dest), expected_size=size, received_size=digests.size)
        if algo:
            actual = digests.hexdigests()[algo]
            if actual != expected:
                raise errors.IntegrityError(
                    '%s: the data does not match the image: %s expected %s, got %s. Nothing was '
                    'changed at %s.' % (what, algo, expected, actual, dest),
                    hash_algo=algo, expected=expected, actual=actual)
        target.commit(rename=module.ansible.atomic_move)
    return transfer.transfer_stats(digests.size, deadline.elapsed())


def ensure_fetched(module, api):
    """Make ``dest`` hold the image's data; returns ``(changed, result)``."""
    params = module.params
    dest = params['dest']
    image = api.find_image(params['image'])
    result = image_facts(image, dest)
    if image.get('status') != 'active':
        raise errors.ImageStateError(
            'Image %s (%s) is %s, not active: it has no data to fetch yet.'
            % (image['id'], image.get('name'), image.get('status')), status=image.get('status'))
    algo, expected = transfer.expected_digest(image)
    if algo is None and not params['allow_unverified']:
        raise errors.IntegrityError(
            'Image %s (%s) has neither a multihash (os_hash_value) nor a checksum in Glance, so its '
            'data cannot be verified. Set allow_unverified=true to fetch it anyway.'
            % (image['id'], image.get('name')))
    result['verified_with'] = algo

    parent = check_parent(dest)
    before = inspect_dest(dest, image.get('size'), algo)
    up_to_date = (before is not None and algo is not None and not params['force']
                  and before.get(algo) == expected)
    after = dict(state='file', size=image.get('size'))
    if algo:
        after[algo] = expected
    diff = dict(before=before or dict(state='absent'), after=after)

    if up_to_date:
        changed = False
    else:
        changed = True
        if not module.check_mode:
            # An existing dest stays until the rename, so the full size must fit.
            transfer.check_free_space(parent, image.get('size'), 'Downloading image %s' % image['id'])
            result['transfer'] = download(module, api, image, dest, algo, expected)

    file_args = module.ansible.load_file_common_arguments(module.params, path=dest)
    if os.path.exists(dest):
        changed = module.ansible.set_fs_attributes_if_different(file_args, changed, diff=diff)
    result['diff'] = diff
    return changed, result


def run(module, api):
    changed, result = ensure_fetched(module, api)
    result['changed'] = changed
    return result


def main():
    module = GlanceModule(
        argument_spec=dict(
            image=dict(type='str', required=True),
            dest=dict(type='path', required=True),
            force=dict(type='bool', default=False),
            allow_unverified=dict(type='bool', default=False),
            timeout=dict(type='int', default=3600),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.run(run)


if __name__ == '__main__':
    main()
