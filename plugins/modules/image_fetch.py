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

from ansible_collections.osimage.glance.plugins.module_utils._jobs import fetch
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule


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
    module.run(fetch.ensure_fetched)


if __name__ == '__main__':
    main()
