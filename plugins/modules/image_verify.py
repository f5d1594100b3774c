#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_verify
short_description: Prove that a local image file is what Glance says it is, signed by someone trusted and safe for qemu-img
version_added: 0.1.0
description:
  - Checks a local image file or block device in one read pass that feeds every check at once.
  - V(checksum) - the data must match the expected digests (Glance's multihash C(os_hash_algo)/C(os_hash_value)
    and md5 C(checksum), or the ones given as I(hash_algo)/I(hash_value) and I(checksum)); with I(image), also
    Glance's C(size).
  - V(signature) - a Glance image signature (the properties C(img_signature), C(img_signature_hash_method),
    C(img_signature_key_type) and C(img_signature_certificate_uuid)) must verify against the data, as nova and
    cinder verify it. Key types C(RSA-PSS), C(ECC_SECP384R1), C(ECC_SECP521R1), C(ECC_SECT409K1),
    C(ECC_SECT409R1), C(ECC_SECT571K1), C(ECC_SECT571R1) and C(DSA) (those cursive verifies, and so those
    osimage.glance.image_upload signs with); hash methods C(SHA-224), C(SHA-256), C(SHA-384) and C(SHA-512).
    The signing certificate is fetched from Barbican with the same credentials, or read from
    I(certificate_path). An image with none of the four properties is unsigned; one with only some of them is
    refused as incomplete.
  - V(format) - the content is inspected with oslo.utils' format inspector, which must recognise one format and
    pass its safety checks (no qcow2 backing file, external data file or unknown features; vmdk only as a single
    self-contained monolithicSparse or streamOptimized file; a valid MBR/GPT; no LUKS without its passphrase;
    never qed). The detected format must be the declared C(disk_format); a disk with a GPT partition table
    passes as C(raw), and C(ami)/C(aki)/C(ari) are not compared, as in nova. Only then is qemu-img run on the file,
    always with C(-f) and the detected format so it never guesses; C(qemu-img info) must agree on the format and
    show no backing file, data file or foreign vmdk extent, and C(qemu-img check) must find no corruption (a
    truncated image shows there). Needs C(qemu-img) on the host.
  - Read-only. Never changes anything, so it always reports C(changed=false) and runs the same in check mode.
  - Every failed check is one message that names the check and gives what was expected and what was found; when
    several checks fail, the message has one sentence for each and the C(failures) return value lists them.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode verifies exactly as a normal run does.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  path:
    description:
      - The local image file, or a block device holding the image.
      - For a block device and an I(image) of known size, only the first C(size) bytes are verified, so a volume
        larger than the image passes.
    type: path
    required: true
  image:
    description:
      - Name or id of a Glance image to verify I(path) against. The expected digests and size, the signature
        properties and the C(disk_format) come from Glance.
      - Needs the cloud connection options; without I(image) no cloud is contacted unless a signing or trusted
        certificate is a Barbican secret id.
      - Mutually exclusive with the explicit expectations I(checksum), I(hash_algo), I(hash_value),
        I(disk_format) and the C(img_signature*) options.
    type: str
  checksum:
    description:
      - Expected md5 of the data (Glance's legacy C(checksum)), when I(image) is not given.
    type: str
  hash_algo:
    description:
      - Algorithm of I(hash_value), as Glance's C(os_hash_algo) (for example V(sha512)).
    type: str
  hash_value:
    description:
      - Expected digest of the data with I(hash_algo), as Glance's C(os_hash_value).
    type: str
  disk_format:
    description:
      - The declared disk format the content must be (Glance names, for example V(qcow2), V(raw), V(vmdk),
        V(vhd), V(vhdx), V(vdi), V(iso)), when I(image) is not given.
      - Without it (and without I(image)) the format check still detects the format and runs the safety checks.
    type: str
  img_signature:
    description:
      - The base64 signature of the data, when I(image) is not given.
    type: str
  img_signature_hash_method:
    description:
      - Hash method of I(img_signature).
    type: str
    choices: [SHA-224, SHA-256, SHA-384, SHA-512]
  img_signature_key_type:
    description:
      - Key type of I(img_signature).
    type: str
    choices: [RSA-PSS, ECC_SECP384R1, ECC_SECP521R1, ECC_SECT409K1, ECC_SECT409R1, ECC_SECT571K1, ECC_SECT571R1, DSA]
  img_signature_certificate_uuid:
    description:
      - Barbican secret id of the signing certificate, when I(image) is not given and I(certificate_path) is not
        used.
    type: str
  certificate_path:
    description:
      - Local PEM (or DER) file with the signing certificate. Used instead of fetching
        C(img_signature_certificate_uuid) from Barbican.
    type: path
  checks:
    description:
      - Which checks to run. Default is every check that applies, that is V(checksum) when there is an expected
        digest, V(signature) when I(image), signature properties, I(require_signature) or I(trusted_certificates)
        are given, and always V(format).
      - A check asked for that has nothing to compare with is an error.
    type: list
    elements: str
    choices: [checksum, signature, format]
  require_signature:
    description:
      - Refuse an unsigned image. When V(false), an image with none of the signature properties passes the
        signature check as unsigned (C(signature.signed=false)).
      - The default is V(true) when I(checks) lists V(signature), so that an audit asking for the signature check
        never passes an unsigned image; set V(false) explicitly to accept unsigned images there. Otherwise the
        default is V(false) (a signed image is verified, an unsigned one accepted).
      - Giving I(trusted_certificates) requires a signature too, as in nova.
    type: bool
  trusted_certificates:
    description:
      - Certificates (Barbican secret ids or local PEM file paths) the signing certificate must chain to, as nova's
        C(trusted_image_certificates). The signing certificate must then also be inside its validity dates and,
        when it has a key usage extension, allowed to make digital signatures. Trusted certificates that are
        expired or not CAs are unusable, and the message says so.
    type: list
    elements: str
  allowed_formats:
    description:
      - Disk formats (Glance names) the image may have. A disk with a GPT partition table counts as V(raw).
    type: list
    elements: str
  max_virtual_size:
    description:
      - Largest virtual disk size in bytes the image may have (as qemu-img reports it); not negative.
    type: int
requirements:
  - cursive (for signatures)
  - oslo.utils (for the format check)
  - qemu-img and util-linux (C(setpriv), C(prlimit)) for the format check
notes:
  - The read pass computes every digest in the same pass; the signature's digest is shared with the multihash when
    the hash methods agree (for example C(SHA-512) and C(sha512)).
seealso:
  - module: osimage.glance.image_fetch
'''

EXAMPLES = r'''
- name: Verify a downloaded file against its Glance image (digests, signature, format)
  osimage.glance.image_verify:
    cloud: mycloud
    image: debian-12-genericcloud
    path: /var/lib/images/debian-12.qcow2

- name: Require a signature by a certificate that chains to our image-signing CA
  osimage.glance.image_verify:
    cloud: mycloud
    image: debian-12-genericcloud
    path: /var/lib/images/debian-12.qcow2
    require_signature: true
    trusted_certificates:
      - 5b1c1c1e-9a35-4a0e-8b6a-6c8f1d9c0a11   # Barbican secret holding the CA
      - /etc/pki/image-signing/ca.pem

- name: Check a local file with explicit expectations only (no cloud needed)
  osimage.glance.image_verify:
    path: /srv/incoming/appliance.qcow2
    hash_algo: sha512
    hash_value: "{{ lookup('ansible.builtin.file', '/srv/incoming/appliance.qcow2.sha512') }}"
    disk_format: qcow2
    allowed_formats: [qcow2, raw]
    max_virtual_size: 107374182400

- name: Only the format safety check, for example before qemu-img convert
  osimage.glance.image_verify:
    path: /srv/incoming/upload.img
    checks: [format]
  register: inspected
'''

RETURN = r'''
checks:
  description: The checks that ran, in the order they are evaluated.
  returned: always
  type: list
  elements: str
  sample: [checksum, signature, format]
size:
  description: Bytes read from I(path) (its actual size; for a block device, the part that was verified).
  returned: always
  type: int
  sample: 471269376
digests:
  description: Hex digests of the data computed in the read pass, by algorithm.
  returned: always
  type: dict
  sample: {"md5": "a1b2...", "sha512": "c3d4..."}
verified_digests:
  description: The algorithms whose digest was compared with an expected value and matched.
  returned: always
  type: list
  elements: str
  sample: [sha512, md5]
detected_format:
  description: The disk format the inspector found (C(gpt) for a raw disk with a GPT partition table); null when the
    format check did not run.
  returned: always
  type: str
  sample: qcow2
virtual_size:
  description: Virtual disk size in bytes as qemu-img reports it; null when the format check did not run.
  returned: always
  type: int
  sample: 2147483648
format:
  description: What the format check found; null when it did not run.
  returned: always
  type: dict
  contains:
    detected_format:
      description: Format found by the inspector.
      type: str
    declared_format:
      description: The declared C(disk_format), if any.
      type: str
    virtual_size:
      description: Virtual size in bytes.
      type: int
    qemu_img_format:
      description: The format qemu-img read it as (qemu-img's names, for example C(vpc) for vhd).
      type: str
signature:
  description: The signature result; null when the signature check did not run.
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
          description: Where it came from (C(Barbican secret <id>) or C(file <path>)).
          type: str
image:
  description: The Glance image verified against; null without I(image).
  returned: always
  type: dict
  contains:
    id:
      description: Image id.
      type: str
    name:
      description: Image name.
      type: str
    disk_format:
      description: Declared disk format.
      type: str
    size:
      description: Size of the image data in bytes.
      type: int
failures:
  description: On failure, one entry per failed check with its message.
  returned: failure
  type: list
  elements: dict
'''

from ansible_collections.osimage.glance.plugins.module_utils._jobs import verify
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust
from ansible_collections.osimage.glance.plugins.module_utils._trust.verification import CHECK_ORDER


def main():
    module = GlanceModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            image=dict(type='str'),
            checksum=dict(type='str'),
            hash_algo=dict(type='str'),
            hash_value=dict(type='str'),
            disk_format=dict(type='str'),
            img_signature=dict(type='str'),
            img_signature_hash_method=dict(type='str', choices=sorted(trust.HASH_METHOD_ALGOS)),
            img_signature_key_type=dict(type='str', no_log=False, choices=list(trust.KEY_TYPES)),
            img_signature_certificate_uuid=dict(type='str'),
            certificate_path=dict(type='path'),
            checks=dict(type='list', elements='str', choices=list(CHECK_ORDER)),
            require_signature=dict(type='bool'),
            trusted_certificates=dict(type='list', elements='str'),
            allowed_formats=dict(type='list', elements='str'),
            max_virtual_size=dict(type='int'),
        ),
        mutually_exclusive=[('image', option) for option in verify.EXPLICIT_OPTIONS],
        required_together=[('hash_algo', 'hash_value')],
        bounds=dict(max_virtual_size=(0, 'bytes')),
        supports_check_mode=True,
    )
    module.run(verify.run)


if __name__ == '__main__':
    main()
