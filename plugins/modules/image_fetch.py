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
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Looks the image up and hashes an existing I(dest) to predict the result; writes nothing. An
      I(dest) that is up to date is verified as in a real run. When a download is predicted, only the checks
      that need no data run (signature metadata and certificates, the declared format, Glance's virtual size);
      the signature over the data and the format of the data can only be checked by downloading it.
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
    type: int
requirements:
  - openstacksdk
  - cursive (for signed images, unless I(verify_signature=false))
  - oslo.utils and qemu-img (unless I(verify_format=false))
seealso:
  - module: openstack.cloud.image_info
  - module: osimage.glance.image_verify
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
dest_type:
  description: What I(dest) is - V(file) (a regular file, existing or to be created) or V(block_device).
  returned: always
  type: str
  sample: file
image:
  description:
    - The image record as Glance shows it (Glance API v2), also in check mode, so that the module can look an image
      up without fetching it. Custom properties are top-level keys, as in Glance.
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
from ansible_collections.osimage.glance.plugins.module_utils import _format
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer
from ansible_collections.osimage.glance.plugins.module_utils._cloud import stream_read_errors
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._verify import (
    Expectations, Verification, certificate_store, read_pass)


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
            _format.check_limits(image.get('disk_format'), image['virtual_size'], what,
                                 max_virtual_size=params['max_virtual_size'])
    elif params['allowed_formats'] or params['max_virtual_size'] is not None:
        raise errors.InvalidOptionsError(
            'allowed_formats and max_virtual_size are checked by the format check, but verify_format is false. '
            'Set verify_format to true, or leave them out.')
    exp = Expectations.from_image(image, states=('active',))
    return Verification.prepare(
        what, exp, checks, certificate_store(api), trusted_certificates=trusted, require_signature=mode == 'true',
        allowed_formats=params['allowed_formats'], max_virtual_size=params['max_virtual_size'])


def verified(found):
    """The return values that describe what passed."""
    return dict(checks=[check for check in found['checks'] if check != 'checksum'], signature=found['signature'],
                format=found['format'])


def not_verified():
    return dict(checks=[], signature=None, format=None)


def inspect_dest(dest, image_size, algo, verification=None):
    """What is at ``dest`` now: None when absent, else its size and, when the
    size could match the image, its digest (the only way to prove equality).
    With a ``verification`` the same read also feeds the signature's digest
    and the format inspector; the finished ReadPass is returned beside it
    (None when dest was not read)."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        raise errors.DestinationError(
            'dest %s exists and is not a regular file. Give the path of a file to create or replace.' % dest)
    found = dict(state='file', size=st.st_size)
    rpass = None
    if algo and st.st_size == image_size:
        if verification is not None and verification.checks:
            rpass = read_pass(dest, verification.start(extra_algos=[algo]))
            found[algo] = rpass.hexdigests()[algo]
        else:
            found[algo] = transfer.hash_file(dest, [algo])[1][algo]
    return found, rpass


def verify_existing(verification, rpass, dest, image):
    """The checks over an up-to-date dest (its data is the image's). A
    failure leaves dest alone: downloading again would bring the same
    data."""
    try:
        return verified(verification.evaluate(rpass, dest))
    except errors.VerificationError as exc:
        raise errors.VerificationError(
            'dest %s holds the data of image %s, but it fails verification: %s dest was left as it is; remove it '
            'yourself if it must not stay.' % (dest, image['id'], exc.msg), **exc.details)


def download(module, api, image, dest, algo, expected, verification):
    """Stream the image into a temporary file beside ``dest``, hashing,
    checking the signature's digest and inspecting the format as it goes;
    rename into place only when size, hash, signature and format are right.
    Returns the transfer statistics and what was verified."""
    what = 'Downloading image %s' % image['id']
    deadline = transfer.Deadline(module.params['timeout'], what)
    with transfer.terminate_as_interrupt(), transfer.AtomicFile(dest) as target:
        target.preallocate(image.get('size'))
        rpass = verification.start(extra_algos=[algo] if algo else [])
        digests = rpass.digests
        response = api.open_image_data(image, what)
        try:
            chunks = deadline.guard(response.iter_content(transfer.CHUNK_SIZE))
            transfer.pump(chunks, rpass.consumers() + [target.write])
        except stream_read_errors() as exc:
            raise errors.TransferError(
                '%s from %s broke off after %d bytes: %s. Nothing was changed at %s; run again.'
                % (what, api.endpoint, digests.size, exc, dest))
        finally:
            response.close()
        rpass.finish()
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
        # qemu-img reads the complete temporary file, never dest.
        target.flush()
        try:
            found = verified(verification.evaluate(rpass, target.tmp_path))
        except errors.VerificationError as exc:
            raise errors.VerificationError(
                '%s: the data was refused: %s Nothing was changed at %s.' % (what, exc.msg, dest), **exc.details)
        target.commit(rename=module.ansible.atomic_move)
    return transfer.transfer_stats(digests.size, deadline.elapsed()), found


def ensure_fetched(module, api):
    """Make ``dest`` hold the image's data; returns ``(changed, result)``."""
    params = module.params
    dest = params['dest']
    image = api.find_image(params['image'])
    result = image_facts(image, dest, destination_type(dest))
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
    # Signature metadata, certificates and declared format fail here, before any read.
    verification = prepare_verification(params, api, image)
    result.update(not_verified())

    parent = check_parent(dest)
    before, rpass = inspect_dest(dest, image.get('size'), algo, None if params['force'] else verification)
    up_to_date = (before is not None and algo is not None and not params['force']
                  and before.get(algo) == expected)
    after = dict(state='file', size=image.get('size'))
    if algo:
        after[algo] = expected
    diff = dict(before=before or dict(state='absent'), after=after)

    if up_to_date:
        changed = False
        if rpass is not None:
            result.update(verify_existing(verification, rpass, dest, image))
    else:
        changed = True
        if not module.check_mode:
            # An existing dest stays until the rename, so the full size must fit.
            transfer.check_free_space(parent, image.get('size'), 'Downloading image %s' % image['id'])
            result['transfer'], found = download(module, api, image, dest, algo, expected, verification)
            result.update(found)

    file_args = module.ansible.load_file_common_arguments(module.params, path=dest)
    if os.path.exists(dest):
        changed = module.ansible.set_fs_attributes_if_different(file_args, changed, diff=diff)
    result['diff'] = diff
    return changed, result


def destination_type(dest):
    """``block_device`` for an existing block device, else ``file``."""
    try:
        return 'block_device' if stat.S_ISBLK(os.stat(dest).st_mode) else 'file'
    except FileNotFoundError:
        return 'file'


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
            allow_unverified=dict(type='bool', default=False),
            timeout=dict(type='int', default=3600),
            verify_signature=dict(type='str', default='auto', choices=['auto', 'true', 'false']),
            trusted_certificates=dict(type='list', elements='str'),
            verify_format=dict(type='bool', default=True),
            allowed_formats=dict(type='list', elements='str'),
            max_virtual_size=dict(type='int'),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.run(run)


if __name__ == '__main__':
    main()
