#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_upload
short_description: Create, upload, update and delete Glance images, idempotent by content
version_added: 0.1.0
description:
  - Creates an OpenStack Glance image from a local file (direct upload or C(glance-direct) import), from a
    URL (C(web-download) import), or copies an existing image to more stores (C(copy-image) import).
  - Idempotent by content. The local file is hashed with Glance's default multihash algorithm (sha512); an
    image with the same name (and owner) and the same C(os_hash_value) is not uploaded again, only its
    metadata is updated. When a new upload is needed, the file is hashed in the same read pass that sends it.
  - The digest of a local file is cached in an extended attribute of the file (C(user.osimage.sha512)),
    keyed by device, inode, size and modification time, so a no-op re-run does not read a large file again.
    Where extended attributes cannot be written, a per-user cache directory is used instead.
  - Everything that can be checked is checked before a byte moves - the formats against those this Glance
    accepts (its image schema), I(properties) and the options I(id), I(owner) and I(tags) against that
    schema, the aki/ari/ami rule, the length of the name, the file, and that the content is the declared
    I(disk_format) (or, without one, which format it is) and passes the format inspector's safety checks.
  - Concurrent runs (on one host or on many) never destroy each other's work; see the notes for the rule.
    Runs that create at the same time agree on the oldest image afterwards and the others delete their own,
    so one image remains; the others wait for it and then converge on it.
  - A timeout never deletes the image.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Predicts create, content change, metadata update or no-op; may hash the local file to do so.
  diff_mode:
    support: full
    details: Shows the image's metadata before and after.
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the image; at most 255 characters. Required with I(state=present).
    type: str
  id:
    description:
      - Id of the image. With I(state=present) a new image gets this id; an existing image with this id is
        the one compared and updated.
    type: str
  state:
    description:
      - C(present) creates or updates the image; C(absent) deletes every image with this name (and owner),
        or the image with I(id).
      - C(deactivated) deactivates the existing image with this name (and owner) or I(id), as Glance's
        deactivate does - its data can then not be downloaded (Glance answers 403) until it is reactivated -
        and changes nothing else about it; an image that is deactivated already is unchanged. More than one
        image of the name is an error that lists their ids.
      - With C(present), an existing image that holds the content but is deactivated is an error unless
        I(reactivate=true).
    type: str
    choices: [present, absent, deactivated]
    default: present
  reactivate:
    description:
      - With I(state=present), make a deactivated image that holds the content active again (Glance's
        reactivate) instead of failing. Check mode and the diff show it as a change of C(status).
    type: bool
    default: false
  hidden:
    description:
      - Whether the image is hidden from Glance's default image lists (C(os_hidden)); a hidden image can still
        be used by id, and every lookup by name of this collection still finds it.
      - The same as C(properties.os_hidden); give one of the two.
      - Not given, the image's C(os_hidden) is left as it is.
    type: bool
  filename:
    description:
      - Local file with the image data, for direct upload and I(import_method=glance-direct).
    type: path
  disk_format:
    description:
      - Disk format; must be one this Glance accepts and must be what the content is (the format inspector
        checks the content of I(filename) against it).
      - When not given, it is detected from the content of I(filename) with the same format inspector, and
        the verdict is cross-checked as a given one would be (safety checks, qemu-img); RV(detected_disk_format)
        says what was found. A disk with a GPT partition table counts as C(raw).
      - Required with I(import_method=web-download) (the data is not local), and to upload an Amazon
        kernel, ramdisk or machine image (C(aki), C(ari), C(ami)), whose content the inspector sees as C(raw).
    type: str
  container_format:
    description:
      - Container format; must be one this Glance accepts. C(aki), C(ari) and C(ami) require the same
        I(disk_format).
    type: str
    default: bare
  visibility:
    description:
      - Visibility of the image. Left alone when not given.
    type: str
    choices: [public, private, shared, community]
  min_disk:
    description: Minimum disk in GB needed to boot the image; not negative.
    type: int
  min_ram:
    description: Minimum RAM in MiB needed to boot the image; not negative.
    type: int
  protected:
    description:
      - Whether the image is protected from deletion. With I(state=absent), C(false) unprotects a protected
        image so it can be deleted.
    type: bool
  tags:
    description: The image's tags (the complete list). Left alone when not given.
    type: list
    elements: str
  properties:
    description:
      - Additional properties, and the attributes of Glance's image schema that have no option of their own
        (for example C(os_hidden)). C(null) removes a property.
      - Checked against the image schema of this Glance (C(GET /v2/schemas/image)) before anything is
        created or changed; every key Glance would refuse is named in one message with what to do instead.
      - A schema attribute gets the type the schema gives it, so text from a template works (the text
        C("true") for C(os_hidden) is sent as the boolean C(true)); a value that cannot be that type is refused.
      - Any other key is an additional property, which Glance stores as a string. Numbers and booleans are
        converted (C(12) becomes C("12"), C(true) becomes C("true")); lists and dicts are refused (give them
        as text, for example with the C(to_json) filter).
      - Refused are keys Glance sets itself (C(status), C(checksum), C(os_hash_algo), C(os_hash_value),
        C(size), C(virtual_size), C(created_at), C(updated_at), C(self), C(file), C(schema), C(direct_url)
        and whatever the schema marks read-only), reserved keys (C(os_glance_*), C(location), C(deleted),
        C(deleted_at)), C(locations), and keys that have an option of their own (C(id), C(name),
        C(disk_format), C(container_format), C(visibility), C(min_disk), C(min_ram), C(protected), C(tags),
        C(owner), C(stores)).
      - C(kernel_id) and C(ramdisk_id) must be ids of existing images, with I(disk_format) C(aki) and C(ari).
      - With I(signing), the C(img_signature*) properties are set by the module and cannot be given here.
    type: dict
    default: {}
  purge_properties:
    description:
      - Remove additional properties that are not in I(properties) (Glance's own C(os_glance*), C(os_hash*)
        and the C(img_signature*) properties are never removed).
    type: bool
    default: false
  owner:
    description:
      - Project id that owns the image. Defaults to the project of the credentials. Existing images are looked
        up among those this project owns.
    type: str
  on_content_change:
    description:
      - What to do when an image with this name exists with different content.
      - C(fail) stops with both hashes in the message; C(new) uploads another image with the same name;
        C(replace) uploads a new image and then deletes the old one(s), except protected ones.
    type: str
    choices: [fail, new, replace]
    default: fail
  import_method:
    description:
      - C(direct) uploads with C(PUT /v2/images/{id}/file). C(glance-direct) stages the file and imports it.
        C(web-download) has Glance fetch I(uri). C(copy-image) copies an existing image (I(name) or I(id))
        to I(stores) or I(all_stores).
    type: str
    choices: [direct, glance-direct, web-download, copy-image]
    default: direct
  uri:
    description:
      - URL Glance downloads the data from, for I(import_method=web-download).
      - The image records it (property C(osimage_glance_uri)); another I(uri) for the same name is other content
        and follows I(on_content_change), as a changed file does.
    type: str
  checksum:
    description:
      - The publisher's digest of the file at I(uri), as C(ALGO:HEX) with C(sha256), C(sha512) or C(md5).
      - Glance never checks a publisher's digest, so the module does - the new image is imported C(private) and
        hidden, its data is compared with the digest (Glance's multihash when it is of the same algorithm, else
        the data read back from Glance once), and only then is it given its visibility and I(hidden). A mismatch
        deletes the image and fails with both digests.
      - The digest is recorded on the image (property C(osimage_glance_digest)); another digest for the same name
        is other content and follows I(on_content_change).
    type: str
  checksum_url:
    description:
      - URL of a checksum file as distributions publish them (Debian's and Ubuntu's C(SHA256SUMS) and
        C(SHA512SUMS), Fedora's and CentOS's C(CHECKSUM), PGP-signed or not), read before anything is created;
        the entry for I(checksum_name) is the publisher's digest (as I(checksum)). Given with I(checksum), the
        two must agree.
    type: str
  checksum_name:
    description:
      - The file name to look up in I(checksum_url). Defaults to the last path segment of I(uri).
    type: str
  stores:
    description:
      - Stores to put the data in. With I(import_method=direct) at most one.
    type: list
    elements: str
  all_stores:
    description: Import into every store of the cloud (import methods only).
    type: bool
    default: false
  all_stores_must_succeed:
    description:
      - Fail the import when any store fails. With C(false) a store that fails is reported as a warning.
    type: bool
    default: true
  signing:
    description:
      - Sign the data so that Glance verifies the signature on upload. The four C(img_signature*) properties
        are set before the data goes up. Needs the Python library cryptography.
    type: dict
    suboptions:
      private_key:
        description: Path of the PEM (or DER) private key. Never prompts.
        type: path
        required: true
      passphrase:
        description: Passphrase of an encrypted private key.
        type: str
      certificate_id:
        description: Barbican secret uuid of the certificate that goes with the key.
        type: str
      certificate:
        description:
          - Path of a PEM certificate that goes with the key; stored in Barbican as a certificate secret
            (reused when it is already there).
        type: path
      hash_method:
        description: Hash method of the signature.
        type: str
        choices: [SHA-224, SHA-256, SHA-384, SHA-512]
        default: SHA-256
      key_type:
        description: Key type; must fit the private key. C(ECC) uses the key's curve.
        type: str
        choices: [RSA-PSS, ECC, DSA]
  timeout:
    description:
      - Seconds the whole run may take (waiting for another run, upload, import and waiting for C(active)).
        A timeout is reported and never deletes the image.
      - C(0) means no limit; a negative value is refused before anything is done.
    type: int
    default: 3600
  stale_after:
    description:
      - Seconds after which the claim of another run on a half-made image with this name (status C(queued),
        C(saving), C(uploading)) is old enough for that image to be judged left behind by a run that is gone
        (killed, or its host lost), provided the image also does not change while this run watches it for 25
        seconds. Such an image is deleted (resumed when it is C(queued) and is the one given by I(id)).
      - Until then this run waits for the other run to finish (within I(timeout)) and converges on its image.
      - Compared with this host's clock; the watch makes a wrong clock harmless, it never turns a live upload
        stale. Must not be negative.
    type: int
    default: 300
requirements:
  - cryptography (only to sign, with I(signing); openstacksdk already depends on it)
  - oslo.utils (its format inspector)
  - qemu-img and util-linux (C(setpriv), C(prlimit)) for the format check of a local file
notes:
  - Ownership of half-made images is judged in Glance, the one place all runs share. The run that creates an
    image marks it with the property C(osimage_glance_claim) (C(<run id>@<host>:<unix time>)) and refreshes
    the time every 10 seconds until the image is done; when it finishes it removes the property, and a run
    that fails gives its claim up (time 0) so that the next run need not wait I(stale_after).
  - Another run that finds a half-made image with the same name waits for it while its claim is fresh or
    while the image changes at all (status, size, checksum, claim, C(updated_at)); it deletes it only when the
    claim is older than I(stale_after) and the image stayed unchanged for 25 seconds (more than two refreshes).
    An image Glance is importing (C(importing)) is Glance's own work and is always waited for.
  - An image without the claim property was made by something else and is never deleted by this module; a run
    waits for it to finish and fails with a message naming it when it stays unchanged for I(stale_after).
  - The claim property is not part of the image's metadata for this module - never compared, shown in the
    diff, or removed by I(purge_properties), and it cannot be set in I(properties). A claim left on an active
    image (a run killed right at its end) is harmless; only half-made images are judged.
seealso:
  - module: osimage.glance.image_fetch
'''

EXAMPLES = r'''
- name: Upload an image (no upload again while the file is unchanged)
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12
    filename: /srv/images/debian-12.qcow2
    disk_format: qcow2
    properties:
      os_distro: debian
      hw_disk_bus: scsi

- name: Replace the image when the file changed
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12
    filename: /srv/images/debian-12.qcow2
    disk_format: qcow2
    on_content_change: replace

- name: Let the module find the disk format, and hide the image from default listings
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12-build
    filename: /srv/images/debian-12-build.img
    properties:
      os_hidden: true
  register: uploaded   # uploaded.detected_disk_format is qcow2, raw, vmdk...

- name: Signed upload, certificate stored in Barbican
  osimage.glance.image_upload:
    cloud: mycloud
    name: golden
    filename: /srv/images/golden.raw
    disk_format: raw
    signing:
      private_key: /etc/pki/image-signing.key
      passphrase: "{{ vault_signing_passphrase }}"
      certificate: /etc/pki/image-signing.crt
      hash_method: SHA-256
      key_type: RSA-PSS

- name: Let Glance download the data into both stores
  osimage.glance.image_upload:
    cloud: mycloud
    name: cirros
    disk_format: qcow2
    import_method: web-download
    uri: https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img
    stores: [fast, slow]

- name: Import Debian's image, proven against Debian's SHA512SUMS before anyone can see it
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12-genericcloud
    disk_format: qcow2
    import_method: web-download
    uri: https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2
    checksum_url: https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS
    visibility: public

- name: Delete a protected image
  osimage.glance.image_upload:
    cloud: mycloud
    name: old-image
    state: absent
    protected: false

- name: Retire an image without deleting it (instances and volumes made from it keep working)
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12-202601
    state: deactivated

- name: Bring it back, hidden from default listings
  osimage.glance.image_upload:
    cloud: mycloud
    name: debian-12-202601
    filename: /var/lib/images/debian-12-202601.qcow2
    reactivate: true
    hidden: true
'''

RETURN = r'''
published_digest:
  description: The publisher's digest of a web-download (from I(checksum) or I(checksum_url)), as C(ALGO:HEX).
  returned: with checksum or checksum_url
  type: str
proof:
  description: How the imported data was proven to be the publisher's file (when this run imported it).
  returned: when a web-download with a publisher's digest was imported
  type: str
id:
  description: Id of the image (C(null) after a delete or a predicted create).
  returned: always
  type: str
  sample: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
image:
  description: The image as Glance shows it after the run (in check mode, as predicted).
  returned: with state=present or state=deactivated
  type: dict
  sample: {"id": "0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5", "status": "active", "os_hash_algo": "sha512"}
transfer:
  description: What the upload moved; absent when nothing was uploaded.
  returned: when data was uploaded
  type: dict
  contains:
    bytes:
      description: Bytes uploaded.
      type: int
    seconds:
      description: Seconds the upload took (until Glance accepted the data).
      type: float
    mb_per_second:
      description: Throughput in megabytes (10^6 bytes) per second.
      type: float
    wait_seconds:
      description: Seconds spent waiting for the image to become active after the data went up.
      type: float
deleted:
  description: Ids of the images deleted (state=absent, a replaced image, or a stale half-made one).
  returned: always
  type: list
  elements: str
kept_protected:
  description: Ids of protected images that on_content_change=replace did not delete.
  returned: when there are any
  type: list
  elements: str
detected_disk_format:
  description:
    - The disk_format the format inspector found in the content of I(filename) (in Glance's name; a GPT disk
      is C(raw)). When I(disk_format) was not given, this is the disk_format the image got.
  returned: when a local file was given
  type: str
  sample: qcow2
sha512:
  description: sha512 of the local file, when it was known or computed.
  returned: when a local file was given
  type: str
'''

from ansible_collections.osimage.glance.plugins.module_utils._jobs import upload
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust


def main():
    module = GlanceModule(
        argument_spec=dict(
            name=dict(type='str'),
            id=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent', 'deactivated']),
            reactivate=dict(type='bool', default=False),
            hidden=dict(type='bool'),
            filename=dict(type='path'),
            disk_format=dict(type='str'),
            container_format=dict(type='str', default='bare'),
            visibility=dict(type='str', choices=['public', 'private', 'shared', 'community']),
            min_disk=dict(type='int'),
            min_ram=dict(type='int'),
            protected=dict(type='bool'),
            tags=dict(type='list', elements='str'),
            properties=dict(type='dict', default={}),
            purge_properties=dict(type='bool', default=False),
            owner=dict(type='str'),
            on_content_change=dict(type='str', default='fail', choices=['fail', 'new', 'replace']),
            import_method=dict(type='str', default='direct',
                               choices=['direct', 'glance-direct', 'web-download', 'copy-image']),
            uri=dict(type='str'),
            checksum=dict(type='str'),
            checksum_url=dict(type='str'),
            checksum_name=dict(type='str'),
            stores=dict(type='list', elements='str'),
            all_stores=dict(type='bool', default=False),
            all_stores_must_succeed=dict(type='bool', default=True),
            signing=dict(type='dict', options=dict(
                private_key=dict(type='path', required=True, no_log=False),
                passphrase=dict(type='str', no_log=True),
                certificate_id=dict(type='str'),
                certificate=dict(type='path'),
                hash_method=dict(type='str', default='SHA-256', choices=list(trust.HASH_METHODS)),
                key_type=dict(type='str', choices=list(trust.SIGNING_KEY_TYPES)),
            ), mutually_exclusive=[['certificate_id', 'certificate']]),
            timeout=dict(type='int', default=3600),
            stale_after=dict(type='int', default=300),
        ),
        mutually_exclusive=[['filename', 'uri'], ['stores', 'all_stores']],
        bounds=dict(timeout=(0, '0 means no limit'), min_disk=(0, 'GB'), min_ram=(0, 'MiB')),
        supports_check_mode=True,
    )
    jobs = dict(present=upload.ensure_present, absent=upload.ensure_absent, deactivated=upload.ensure_deactivated)
    module.run(jobs[module.params['state']])


if __name__ == '__main__':
    main()
