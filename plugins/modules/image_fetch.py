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
short_description: Download a Glance image to a local file or a block device, verified
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
  - The same pass also checks the image's Glance signature (see I(verify_signature)) and its disk format (see
    I(verify_format)), with the same checks as M(osimage.glance.image_verify). The format inspector looks at the
    bytes while they stream by, in a thread of its own beside the hashing and the writing, so the image is still
    read only once. After the download, and only once the inspector has passed the data, C(qemu-img info) and
    C(qemu-img check) read the temporary file, never I(dest). Only data that passed every check is renamed into
    place; a failed check removes the temporary file and leaves I(dest) untouched.
  - An I(dest) that already holds the image's data is verified too, in the same read that proves its hash (the
    signature and the inspector ride along that read; qemu-img then reads I(dest), which it only reads). If it
    fails a check the module fails and says so, but leaves I(dest) as it is, since downloading again would bring
    the same data.
  - Whatever can be checked without the data is checked before anything is downloaded or hashed, in check mode
    too - incomplete signature metadata, the signing certificate (from Barbican or a file) and its trust, a
    declared C(disk_format) outside I(allowed_formats), a Glance C(virtual_size) above I(max_virtual_size).
  - I(dest) may be an existing block device (a raw fast path, as cinder has for raw images). Only raw data is
    written to a device - an image whose C(disk_format) is C(raw), whose first bytes (up to 8 MiB are held back
    for it) the format inspector has passed as raw before the first byte is written. The device must be at least
    the image's size (else nothing is written). The data is written in place from offset 0, with direct I/O where
    the device allows it, and flushed (fdatasync) as it goes and at the end. Bytes beyond the image are left as
    they are. Since a device cannot be replaced atomically, a failure after the first write (hash, signature or
    format check, lost connection, timeout, interruption) zeroes the written range from offset 0, so that no
    unverified image data stays usable on the device, and the message says so. A device that is mounted or
    held by the kernel (LVM, device-mapper, md, swap) is refused; it is opened exclusively.
  - With I(decompress=true) an image stored gzip-compressed (C(container_format=compressed)) is decompressed on
    the way, into a file or onto a block device. Its hash and signature are checked over the compressed bytes
    (what Glance stores); the format inspector and I(dest) see the decompressed ones.
  - Every child process (qemu-img) starts under C(setpriv --pdeathsig KILL) from util-linux, so it dies with the
    module, even when the module is killed with SIGKILL; a wall-clock limit is a timer in the module.
  - A temporary file beside I(dest) is named after the run that made it (host, boot, pid namespace, pid and
    start time). A run killed with SIGKILL cannot remove its own, so each run first removes the temporary files
    of the same I(dest) whose run is provably dead - made on this host, during this boot, in this pid namespace,
    by a process that is gone - and lists them in RV(removed_stale_temp). Temporary files of other hosts,
    containers or live runs, and any other file, are never touched.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Looks the image up and hashes an existing I(dest) (the image's extent of a block device) to predict
      the result; writes nothing. An I(dest) that is up to date is verified as in a real run. When a download is
      predicted, only the checks that need no data run (signature metadata and certificates, the declared format,
      Glance's virtual size); the signature over the data and the format of the data can only be checked by
      downloading it. With I(decompress=true) on a compressed image the image is downloaded in check mode too -
      only the decompressed data can show whether I(dest) holds it - and compared with I(dest), still writing
      nothing.
  diff_mode:
    support: full
    details: Shows I(dest) before (absent, or its size and hash; for a block device its size and the hash of the
      image's extent) and after.
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
      - Path of the local file to write, or of an existing block device to write the image onto. The directory
        of a file must exist.
      - An existing I(dest) must be a regular file or a block device. A file is replaced only when its content
        differs, through a temporary file beside it.
      - A block device receives only raw data (see the description) and is written in place. It is up to date
        when its first C(size) bytes hash to the image's hash; then nothing is downloaded.
      - The file options (I(mode), I(owner), I(group), I(attributes) and the SELinux ones) apply to files only;
        giving any of them with a block device is an error. I(verify_format=false) is an error with a block
        device too.
    type: path
    required: true
  decompress:
    description:
      - Decompress an image that Glance stores gzip-compressed (C(container_format=compressed)) on the way to
        I(dest). Only gzip is supported; other compressed data is refused and named.
      - The hash and signature are checked over the compressed bytes as Glance stores them; the format
        inspector (the image's C(disk_format)), the qemu-img checks and I(dest) get the decompressed bytes.
      - Idempotent by content - the decompressed size and hash are not in Glance, so the image is downloaded
        every run (in check mode too) and compared with I(dest) as it streams by; an I(dest) that holds the same
        data is not written (C(changed=false)). A file I(dest) that differs is replaced atomically as usual,
        its equal beginning copied from the old file; a block device is written from the first difference on.
      - On an image that is not compressed V(true) has no effect - the data is fetched as it is, so a task can
        set it for every image.
      - Without V(true), a compressed image is fetched as it is stored (still compressed) only with
        I(verify_format=false) (the format can only be checked decompressed), and never onto a block device.
    type: bool
    default: false
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
      - C(0) means no limit; a negative value is refused. Single API calls are bounded by I(api_timeout).
    type: int
    default: 3600
  verify_signature:
    description:
      - Whether to check the image's Glance signature (the properties C(img_signature),
        C(img_signature_hash_method), C(img_signature_key_type) and C(img_signature_certificate_uuid)) against
        the data, as nova does before booting it. The signing certificate is fetched from Barbican with the same
        credentials.
      - V(auto) checks it when the image is signed and accepts an unsigned image; an image with only some of the
        four properties is refused as incomplete either way.
      - V(true) refuses an unsigned image.
      - V(false) does not look at signatures at all.
      - Giving I(trusted_certificates) requires a signature (as in nova), so with V(auto) an unsigned image is
        refused then too.
    type: str
    choices: [auto, 'true', 'false']
    default: auto
  trusted_certificates:
    description:
      - Certificates (Barbican secret ids or local PEM file paths) the signing certificate must chain to, as
        nova's C(trusted_image_certificates). The signing certificate must then also be inside its validity dates
        and, when it has a key usage extension, allowed to make digital signatures.
      - Requires a signature; not allowed with I(verify_signature=false).
    type: list
    elements: str
  verify_format:
    description:
      - Check the disk format of the data, as M(osimage.glance.image_verify) does - oslo.utils' format inspector
        must recognise one format that passes its safety checks (no qcow2 backing file, external data file or
        unknown features, no vmdk extents in other files, a valid MBR/GPT, no LUKS, never qed) and that is the
        image's C(disk_format) (C(raw) covers a disk with a GPT partition table; C(ami)/C(aki)/C(ari) are not
        compared); then C(qemu-img info)/C(qemu-img check), always with C(-f) and the detected format, must agree
        and find no backing file, data file, foreign extent or corruption.
      - Needs oslo.utils and qemu-img on the host that runs the module. V(false) skips the check, including
        I(allowed_formats) and I(max_virtual_size).
    type: bool
    default: true
  allowed_formats:
    description:
      - Disk formats (Glance names) the image may have. A disk with a GPT partition table counts as V(raw).
      - Checked against the image's C(disk_format) before anything is downloaded; the format check then makes
        sure the content really is that format.
    type: list
    elements: str
  max_virtual_size:
    description:
      - Largest virtual disk size in bytes the image may have. Checked before downloading against the
        C(virtual_size) Glance records, if any, and after it against what qemu-img reports for the data.
      - A negative value is refused before anything is done.
    type: int
requirements:
  - cursive (for signed images, unless I(verify_signature=false))
  - oslo.utils and qemu-img (unless I(verify_format=false))
  - util-linux (C(setpriv) and C(prlimit), which qemu-img runs under) unless I(verify_format=false)
seealso:
  - module: openstack.cloud.image_info
  - module: osimage.glance.image_verify
  - module: osimage.glance.image_convert
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

- name: Fetch only an image signed by a certificate that chains to our image-signing CA, and at most 100 GiB qcow2
  osimage.glance.image_fetch:
    cloud: mycloud
    image: debian-12-genericcloud
    dest: /var/lib/images/debian-12.qcow2
    verify_signature: true
    trusted_certificates:
      - 5b1c1c1e-9a35-4a0e-8b6a-6c8f1d9c0a11   # Barbican secret holding the CA
    allowed_formats: [qcow2]
    max_virtual_size: 107374182400
  register: fetched

- name: Show who signed it
  ansible.builtin.debug:
    msg: "{{ fetched.signature.certificate.subject }} ({{ fetched.format.detected_format }})"

- name: Write a raw image onto a block device (for a qcow2 image use the role osimage.glance.image_to_volume)
  osimage.glance.image_fetch:
    cloud: mycloud
    image: debian-12-raw
    dest: /dev/disk/by-id/virtio-data-volume
  register: written

- name: Look an image up without fetching it (check mode returns the image record too)
  osimage.glance.image_fetch:
    cloud: mycloud
    image: debian-12-raw
    dest: /var/lib/images/debian-12.raw
  check_mode: true
  register: looked_up

- name: Show its minimum disk size
  ansible.builtin.debug:
    msg: "{{ looked_up.image.min_disk }} GB, properties: {{ looked_up.image | dict2items | map(attribute='key') }}"

- name: Decompress a gzip-compressed raw image (container_format compressed) onto a device
  osimage.glance.image_fetch:
    cloud: mycloud
    image: debian-12-raw-gz
    dest: /dev/vdb
    decompress: true

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
removed_stale_temp:
  description:
    - Temporary files beside I(dest) that earlier runs, killed before they could clean up, had left and that
      this run removed (in check mode, that it would remove). Only files whose run is provably dead are removed
      (see the description).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/images/.debian-12.qcow2.osimage-host1-1a2b3c4d-4026531836-41235-9876543-5f0e1d2c.part]
dest:
  description: Path of the local file or block device.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.qcow2
dest_type:
  description: What I(dest) is - V(file) (a regular file, existing or to be created) or V(block_device).
  returned: always
  type: str
  sample: file
image:
  description:
    - The image record as Glance shows it (Glance API v2), also in check mode, so that the module can look an image
      up without fetching it. Custom properties are top-level keys, as in Glance.
    - Its C(size) and hashes are those of the data as Glance stores it (compressed, for a compressed image).
  returned: always
  type: dict
  sample: {"id": "0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5", "name": "debian-12-genericcloud", "status": "active",
           "disk_format": "qcow2", "container_format": "bare", "size": 471269376, "virtual_size": 2147483648,
           "min_disk": 2, "min_ram": 512, "visibility": "public", "protected": false, "tags": ["debian"],
           "owner": "8d1f9b1a6c2f4ab3a5b2f1e0c9d8e7f6", "os_hash_algo": "sha512", "os_hash_value": "8a9f...",
           "checksum": "1c9e...", "hw_disk_bus": "scsi", "created_at": "2026-01-05T10:00:00Z",
           "updated_at": "2026-01-05T10:02:11Z"}
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
checks:
  description: The checks beyond the hash that passed for the data now at I(dest) - V(signature) (also for an
    unsigned image that I(verify_signature=auto) accepted, see RV(signature)) and V(format). Empty in check mode
    when a download is predicted.
  returned: always
  type: list
  elements: str
  sample: [signature, format]
signature:
  description: The signature check's result for the data at I(dest); null when it did not run (I(verify_signature=false),
    or check mode predicting a download).
  returned: always
  type: dict
  contains:
    signed:
      description: Whether the image carries a signature.
      type: bool
    verified:
      description: Whether the signature verified against the data.
      type: bool
    hash_method:
      description: The signature's hash method.
      type: str
      returned: when signed
    key_type:
      description: The signature's key type.
      type: str
      returned: when signed
    trusted:
      description: Whether the signing certificate was checked against I(trusted_certificates) (and passed).
      type: bool
    certificate:
      description: The signing certificate.
      type: dict
      returned: when signed
      contains:
        subject:
          description: Subject, RFC 4514.
          type: str
        issuer:
          description: Issuer, RFC 4514.
          type: str
        serial:
          description: Serial number, hex.
          type: str
        fingerprint_sha256:
          description: SHA-256 fingerprint of the DER certificate, hex.
          type: str
        not_valid_before:
          description: Start of validity, ISO 8601 UTC.
          type: str
        not_valid_after:
          description: End of validity, ISO 8601 UTC.
          type: str
        source:
          description: Where it came from (C(Barbican secret <id>)).
          type: str
  sample: {"signed": true, "verified": true, "trusted": true, "hash_method": "SHA-256", "key_type": "RSA-PSS",
           "certificate": {"subject": "CN=image signer", "issuer": "CN=image signing CA", "serial": "5f1e",
                           "fingerprint_sha256": "9a3c...", "source": "Barbican secret 5b1c1c1e-..."}}
format:
  description: What the format check found in the data at I(dest); null when it did not run (I(verify_format=false),
    or check mode predicting a download).
  returned: always
  type: dict
  contains:
    detected_format:
      description: Format found by the inspector (C(gpt) for a raw disk with a GPT partition table).
      type: str
    declared_format:
      description: The image's C(disk_format).
      type: str
    virtual_size:
      description: Virtual size in bytes, as qemu-img reports it for the data.
      type: int
    qemu_img_format:
      description: The format qemu-img read it as (qemu-img's names, for example C(vpc) for vhd).
      type: str
  sample: {"detected_format": "qcow2", "declared_format": "qcow2", "virtual_size": 2147483648,
           "qemu_img_format": "qcow2"}
failures:
  description: When verification failed, one entry per failed check with its message.
  returned: failure
  type: list
  elements: dict
decompressed:
  description: What decompression produced (also in check mode, which downloads to compare).
  returned: when a compressed image was decompressed (I(decompress=true))
  type: dict
  contains:
    format:
      description: The compression, V(gzip).
      type: str
    size:
      description: Bytes of decompressed data (what I(dest) holds, or the image's extent of a block device).
      type: int
    compressed_size:
      description: Bytes of compressed data downloaded.
      type: int
  sample: {"format": "gzip", "size": 2147483648, "compressed_size": 471269376}
transfer:
  description: What the download moved; absent when nothing was downloaded. With I(decompress=true) the image is
    always downloaded, so it is present even when nothing changed.
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

from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import stream_read_errors
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._verify import (
    Expectations, Verification, certificate_store)

# The file options (ansible.builtin.files) that make no sense for a block device.
FILE_ATTRIBUTES = ('mode', 'owner', 'group', 'seuser', 'serole', 'selevel', 'setype', 'attributes')


def image_facts(image, dest, dest_type):
    return dict(
        dest=dest,
        dest_type=dest_type,
        image=image,
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


def destination_type(dest):
    """``block_device`` for an existing block device, else ``file``."""
    return 'block_device' if targets.is_block_device(dest) else 'file'


def check_request(params, image, dest_type):
    """Refuse what the image and the options cannot do together, before
    anything is read; returns whether the data is to be decompressed."""
    what = 'Image %s (%s)' % (image['id'], image.get('name'))
    dest = params['dest']
    compressed = image.get('container_format') == 'compressed'
    decompressing = params['decompress'] and compressed
    if dest_type == 'block_device':
        given = [name for name in FILE_ATTRIBUTES if params.get(name) is not None]
        if given:
            raise errors.InvalidOptionsError(
                'dest %s is a block device; %s %s to files only. Leave %s out.'
                % (dest, ', '.join(given), 'applies' if len(given) == 1 else 'apply', 'it' if len(given) == 1 else 'them'))
        if image.get('disk_format') != 'raw':
            raise errors.FormatError(
                '%s has disk_format %s, and only raw data is written to a block device such as %s. Fetch it to a '
                'file and convert it onto the device with osimage.glance.image_convert, or use the role '
                'osimage.glance.image_to_volume, which does both.' % (what, image.get('disk_format'), dest),
                disk_format=image.get('disk_format'))
        if compressed and not decompressing:
            raise errors.InvalidOptionsError(
                '%s is stored gzip-compressed (container_format compressed), and a block device only receives '
                'raw disk data. Set decompress=true.' % what)
        if not params['verify_format']:
            raise errors.InvalidOptionsError(
                'Only data the format inspector passed as raw is written to a block device, so verify_format=false '
                'cannot be used with dest %s, a block device. Leave verify_format at true.' % dest)
    elif compressed and not decompressing and params['verify_format']:
        raise errors.InvalidOptionsError(
            '%s is stored gzip-compressed (container_format compressed), so its disk format can only be checked '
            'once decompressed. Set decompress=true to fetch it decompressed, or verify_format=false to fetch the '
            'compressed data as it is (checked by its hash and signature only).' % what)
    return decompressing


def prepare_verification(params, api, image):
    """The signature and format checks for the image's data, with
    everything that needs no data already checked."""
    what = 'image %s' % image['id']
    mode = params['verify_signature']
    trusted = params['trusted_certificates']
    if mode == 'false' and trusted:
        raise errors.InvalidOptionsError(
            'trusted_certificates need a signature to check, but verify_signature is false. Set '
            'verify_signature to auto or true, or leave trusted_certificates out.')
    checks = []
    if mode != 'false':
        checks.append('signature')
    if params['verify_format']:
        checks.append('format')
        if params['max_virtual_size'] is not None and image.get('virtual_size'):
            # Glance measured it on upload; the data is measured again after the download.
            inspect.check_limits(image.get('disk_format'), image['virtual_size'], what,
                                 max_virtual_size=params['max_virtual_size'])
    elif params['allowed_formats'] or params['max_virtual_size'] is not None:
        raise errors.InvalidOptionsError(
            'allowed_formats and max_virtual_size are checked by the format check, but verify_format is false. '
            'Set verify_format to true, or leave them out.')
    exp = Expectations.from_image(image, states=('active',))
    return Verification.prepare(
        what, exp, checks, certificate_store(api), trusted_certificates=trusted, require_signature='verify_signature=true' if mode == 'true' else False,
        allowed_formats=params['allowed_formats'], max_virtual_size=params['max_virtual_size'])


def verified(found):
    """The return values that describe what passed."""
    return dict(checks=[check for check in found['checks'] if check != 'checksum'], signature=found['signature'],
                format=found['format'])


def not_verified():
    return dict(checks=[], signature=None, format=None)


def file_state(dest):
    """A file dest as the diff shows it: absent, or a regular file of some size."""
    if targets.dest_kind(dest, allow_block=False) == 'absent':
        return dict(state='absent')
    return dict(state='file', size=os.stat(dest).st_size)


def inspect_dest(dest, image_size, algo, verification=None):
    """What is at ``dest`` now: None when absent, else its size and, when the
    size could match the image, its digest (the only way to prove equality).
    With a ``verification`` the same read also feeds the signature's digest
    and the format inspector; the finished ReadPass is returned beside it
    (None when dest was not read)."""
    found = file_state(dest)
    if found['state'] == 'absent':
        return None, None
    rpass = None
    if algo and found['size'] == image_size:
        if verification is not None and verification.checks:
            rpass = stream.read_pass(dest, verification.start(extra_algos=[algo]))
            found[algo] = rpass.hexdigests()[algo]
        else:
            found[algo] = stream.hash_file(dest, [algo])[1][algo]
    return found, rpass


def verify_existing(verification, rpass, dest, image, qemu_img=None):
    """The checks over an up-to-date dest (its data is the image's). A
    failure leaves dest alone: downloading again would bring the same
    data."""
    try:
        return verified(verification.evaluate(rpass, dest, qemu_img=qemu_img))
    except errors.VerificationError as exc:
        raise errors.VerificationError(
            'dest %s holds the data of image %s, but it fails verification: %s dest was left as it is; remove it '
            'yourself if it must not stay.' % (dest, image['id'], exc.msg), **exc.details)


class Fetch(object):
    """One image's data, its expected digest and its checks, and the read
    pass that brings it from Glance into a target (see ``_disk.targets``)."""

    def __init__(self, module, api, image, algo, expected, verification):
        self.module = module
        self.api = api
        self.image = image
        self.algo = algo
        self.expected = expected
        self.verification = verification
        self.dest = module.params['dest']
        self.what = 'Downloading image %s' % image['id']

    def stream(self, rpass, target, gunzip=None, head=None):
        """Stream the image's data into ``target`` while ``rpass`` hashes,
        checks the signature's digest and inspects the format as it goes;
        returns the transfer statistics."""
        deadline = stream.Deadline(self.module.params['timeout'], self.what)
        broken_stream = stream_read_errors()
        response = self.api.open_image_data(self.image, self.what)
        try:
            chunks = deadline.guard(response.iter_content(stream.CHUNK_SIZE))
            if gunzip is None:
                consumers = rpass.consumers()
            else:
                # Glance hashes and signs the compressed bytes; the inspector
                # (a fresh consumer of its own) and dest see them decompressed.
                chunks = gunzip.chunks(stream.tee(chunks, rpass.digests.consumers()))
                consumers = [rpass.inspection.consumer()] if rpass.inspection is not None else []
            if head is not None:
                chunks = head.chunks(chunks)
            stream.pump(chunks, consumers + [target.write])
        except broken_stream as exc:  # pylint: disable=catching-non-exception  # a tuple of the SDK's classes
            raise errors.TransferError('%s from %s broke off after %d bytes: %s.'
                                       % (self.what, self.api.endpoint, rpass.size, exc))
        finally:
            response.close()
        rpass.finish()
        return stream.transfer_stats(rpass.size, deadline.elapsed())

    def check_received(self, rpass):
        size = self.image.get('size')
        if size is not None and rpass.size != size:
            raise errors.IntegrityError(
                '%s: received %d bytes but Glance says the image has %d.' % (self.what, rpass.size, size),
                expected_size=size, received_size=rpass.size)
        if self.algo:
            actual = rpass.hexdigests()[self.algo]
            if actual != self.expected:
                raise errors.IntegrityError(
                    '%s: the data does not match the image: %s expected %s, got %s.'
                    % (self.what, self.algo, self.expected, actual),
                    hash_algo=self.algo, expected=self.expected, actual=actual)

    def run(self, target, gunzip=None, head=None, extent=None):
        """One pass into ``target``, then every check, then commit. Any
        failure abandons the target and says what that left at dest. With
        ``extent`` (a block device) qemu-img sees only the data's first
        ``extent()`` bytes. Returns the transfer statistics and what was
        verified (None when nothing holds the data to check: check mode)."""
        rpass = self.verification.start(extra_algos=[self.algo] if self.algo else [])
        try:
            with stream.terminate_as_interrupt():
                stats = self.stream(rpass, target, gunzip=gunzip, head=head)
                self.check_received(rpass)
                if gunzip is not None:
                    gunzip.check()
                target.finish()
                found = None
                if target.has_data:
                    # qemu-img reads the complete data where it now is: the
                    # temporary file, the device, or dest when it was equal.
                    target.flush()
                    qemu_img = inspect.ExtentQemuImg(extent()) if extent is not None else None
                    try:
                        found = verified(self.verification.evaluate(rpass, target.check_path, qemu_img=qemu_img))
                    except errors.VerificationError as exc:
                        raise errors.VerificationError('%s: the data was refused: %s' % (self.what, exc.msg),
                                                       **exc.details)
                target.commit()
        except errors.OsimageError as exc:
            raise type(exc)('%s %s' % (exc.msg, target.abandon()), **exc.details)
        except BaseException:
            target.abandon()
            raise
        return stats, found


def ensure_file(job, result):
    """A regular file dest, its data as Glance stores it."""
    module, image, dest = job.module, job.image, job.dest
    params = module.params
    algo, expected = job.algo, job.expected
    parent = check_parent(dest)
    # With force the old data is replaced anyway: hash it only when the diff shows it.
    before_algo = algo if (not params['force'] or module.diff_mode) else None
    before, rpass = inspect_dest(dest, image.get('size'), before_algo, None if params['force'] else job.verification)
    up_to_date = (before is not None and algo is not None and not params['force']
                  and before.get(algo) == expected)
    after = dict(state='file', size=image.get('size'))
    if algo:
        after[algo] = expected
    diff = dict(before=before or dict(state='absent'), after=after)
    if up_to_date:
        if rpass is not None:
            result.update(verify_existing(job.verification, rpass, dest, image))
        return False, diff
    if not module.check_mode:
        # An existing dest stays until the rename, so the full size must fit.
        targets.check_free_space(parent, image.get('size'), job.what)
        target = targets.FileTarget(dest, module.atomic_move, preallocate=image.get('size'))
        result['transfer'], found = job.run(target)
        result.update(found)
    return True, diff


def ensure_on_device(job, result):
    """A block device dest, raw data as Glance stores it: up to date when its
    first ``size`` bytes hash to the image's hash; else written in place."""
    module, image, dest = job.module, job.image, job.dest
    algo, expected = job.algo, job.expected
    size = image.get('size')
    device_size = targets.check_fits(dest, size, 'Writing image %s to %s' % (image['id'], dest))
    before = dict(state='block_device', device_size=device_size)
    after = dict(state='block_device', device_size=device_size, size=size)
    if algo:
        after[algo] = expected
    diff = dict(before=before, after=after)
    if algo and size is not None and not module.params['force']:
        # The format check is always on for a device, so the hashing read verifies too.
        rpass = stream.read_prefix(dest, job.verification.start(extra_algos=[algo]), size)
        before.update(size=size)
        before[algo] = rpass.hexdigests()[algo]
        if before[algo] == expected:
            result.update(verify_existing(job.verification, rpass, dest, image,
                                          qemu_img=inspect.ExtentQemuImg(size)))
            return False, diff
    if not module.check_mode:
        target = targets.DeviceTarget(dest, device_size)
        result['transfer'], found = job.run(target, head=inspect.HeadCheck('image %s' % image['id'], dest), extent=lambda: size)
        result.update(found)
    return True, diff


def ensure_decompressed(job, result, dest_type):
    """A gzip-compressed image, decompressed into a file or onto a block
    device. Only the download can tell what the decompressed data is, so it
    is downloaded (in check mode too) and compared with dest as it streams
    by; dest is written only from the first difference on."""
    module, image, dest = job.module, job.image, job.dest
    params = module.params
    on_device = dest_type == 'block_device'
    gunzip = stream.Gunzip(job.what)
    head = extent = None
    if on_device:
        device_size = targets.device_size(dest)
        before = dict(state='block_device', device_size=device_size)

        def open_target(offset):
            return targets.DeviceTarget(dest, device_size, start=offset)
        head = inspect.HeadCheck('image %s' % image['id'], dest)

        def extent():
            return gunzip.size
    else:
        parent = check_parent(dest)
        before = file_state(dest)

        def open_target(offset):
            return targets.FileTarget(dest, module.atomic_move, copy_prefix=offset)
        if not module.check_mode:
            # The compressed size is the least the decompressed data needs.
            targets.check_free_space(parent, image.get('size'), job.what)
    diff = dict(before=before, after=dict(before, state=dest_type))
    if params['force'] and module.check_mode:
        return True, diff
    if params['force']:
        target = open_target(0)
    else:
        target = targets.ComparingTarget(dest, None if module.check_mode else open_target, whole_file=not on_device)
    result['transfer'], found = job.run(target, gunzip=gunzip, head=head, extent=extent)
    if found is not None:
        result.update(found)
    if on_device and gunzip.size > device_size:
        raise errors.DestinationError(
            '%s: the decompressed image has %d bytes but block device %s has only %d bytes. Nothing was written '
            'to it; use a device of at least %d bytes.' % (job.what, gunzip.size, dest, device_size, gunzip.size),
            needed_bytes=gunzip.size, device_bytes=device_size)
    result['decompressed'] = dict(format='gzip', size=gunzip.size, compressed_size=gunzip.compressed_size)
    diff['after'].update(size=gunzip.size)
    return target.changed, diff


def ensure_fetched(module, api):
    """Make ``dest`` hold the image's data; returns ``(changed, result)``."""
    params = module.params
    dest = params['dest']
    # A run killed with SIGKILL could not remove its temporary file beside dest.
    stale = targets.remove_stale(os.path.abspath(dest), check_mode=module.check_mode)
    image = api.find_image(params['image'])
    dest_type = destination_type(dest)
    result = image_facts(image, dest, dest_type)
    result['removed_stale_temp'] = stale
    if image.get('status') != 'active':
        raise errors.ImageStateError(
            'Image %s (%s) is %s, not active: it has no data to fetch yet.'
            % (image['id'], image.get('name'), image.get('status')), status=image.get('status'))
    algo, expected = stream.expected_digest(image)
    if algo is None and not params['allow_unverified']:
        raise errors.IntegrityError(
            'Image %s (%s) has neither a multihash (os_hash_value) nor a checksum in Glance, so its '
            'data cannot be verified. Set allow_unverified=true to fetch it anyway.'
            % (image['id'], image.get('name')))
    result['verified_with'] = algo
    decompressing = check_request(params, image, dest_type)
    # Signature metadata, certificates and declared format fail here, before any read.
    verification = prepare_verification(params, api, image)
    result.update(not_verified())
    job = Fetch(module, api, image, algo, expected, verification)
    if decompressing:
        changed, diff = ensure_decompressed(job, result, dest_type)
    elif dest_type == 'block_device':
        changed, diff = ensure_on_device(job, result)
    else:
        changed, diff = ensure_file(job, result)
    if dest_type == 'file' and os.path.exists(dest):
        changed = module.set_file_attributes(dest, changed, diff=diff)
    result['diff'] = diff
    return changed, result


def check_parent(dest):
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise errors.DestinationError(
            'The directory of dest, %s, does not exist. Create it first (for example with '
            'ansible.builtin.file state=directory).' % parent)
    return parent


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
            decompress=dict(type='bool', default=False),
            allow_unverified=dict(type='bool', default=False),
            timeout=dict(type='int', default=3600),
            verify_signature=dict(type='str', default='auto', choices=['auto', 'true', 'false']),
            trusted_certificates=dict(type='list', elements='str'),
            verify_format=dict(type='bool', default=True),
            allowed_formats=dict(type='list', elements='str'),
            max_virtual_size=dict(type='int'),
        ),
        bounds=dict(timeout=(0, '0 means no limit'), max_virtual_size=(0, 'bytes')),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.run(run)


if __name__ == '__main__':
    main()
