# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: image_properties
short_description: The custom properties of a Glance image record, ready to set on another image
version_added: 0.1.0
author:
  - osimage.glance developers (!UNKNOWN)
description:
  - Takes an image record as Glance API v2 shows it (for example RV(osimage.glance.image_fetch#module:image) or
    RV(osimage.glance.image_upload#module:image)), where custom properties are top-level keys beside Glance's
    own fields, and returns only the custom properties, as a dict that the I(properties) option of
    M(osimage.glance.image_upload) takes.
  - Left out are the fields of Glance's image schema (id, name, status, size, hashes, formats, C(min_disk),
    C(min_ram), tags, visibility, owner, stores, dates, locations and the like), which are either read-only or
    have options of their own; the properties Glance keeps for itself (prefix C(os_glance)); the image
    signature properties (C(img_signature*)), which are bound to the exact data and to a certificate in the
    source cloud's Barbican, unless I(keep_signature=true); C(osimage_glance_claim), the mark
    M(osimage.glance.image_upload) puts on an image while a run makes it; and any property named in I(drop) or
    starting with one of I(drop_prefixes).
  - Values are turned into strings, as Glance stores them.
options:
  _input:
    description: The Glance image record.
    type: dict
    required: true
  keep_signature:
    description: Keep the C(img_signature*) properties (only right when the data is copied unchanged and the
      certificate is reachable from where the image is going).
    type: bool
    default: false
  drop:
    description: Further property names to leave out.
    type: list
    elements: str
    default: []
  drop_prefixes:
    description: Leave out properties whose names start with one of these.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Copy the properties of an image found in one cloud to an image in another
  osimage.glance.image_upload:
    cloud: target
    name: "{{ fetched.image.name }}"
    filename: /var/tmp/image.qcow2
    disk_format: qcow2
    properties: "{{ fetched.image | osimage.glance.image_properties(drop_prefixes=['owner_specified.']) }}"
'''

RETURN = r'''
_value:
  description: The custom properties, name to string value.
  type: dict
  sample: {"hw_disk_bus": "scsi", "os_distro": "debian", "os_version": "12"}
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.osimage.glance.plugins.module_utils._jobs.claims import CLAIM_PROPERTY

# Fields of Glance's v2 image schema that are not custom properties: read-only,
# computed from the data, or set through options of their own. kernel_id and
# ramdisk_id are in the schema too but are ordinary settable properties.
SCHEMA_FIELDS = frozenset((
    'id', 'name', 'status', 'visibility', 'protected', 'os_hidden', 'checksum', 'os_hash_algo', 'os_hash_value',
    'owner', 'size', 'virtual_size', 'min_ram', 'min_disk', 'disk_format', 'container_format', 'created_at',
    'updated_at', 'tags', 'self', 'file', 'schema', 'direct_url', 'locations', 'stores', 'member_status',
))
# Glance's own bookkeeping (import state, stores being copied to, ...).
GLANCE_PREFIX = 'os_glance'
SIGNATURE_PREFIX = 'img_signature'


def image_properties(image, keep_signature=False, drop=None, drop_prefixes=None):
    if not isinstance(image, dict):
        raise AnsibleFilterError('image_properties needs a Glance image record (a dict), got %s.'
                                 % type(image).__name__)
    prefixes = [GLANCE_PREFIX] + [to_text(prefix) for prefix in (drop_prefixes or [])]
    if not keep_signature:
        prefixes.append(SIGNATURE_PREFIX)
    dropped = set(to_text(name) for name in (drop or []))
    properties = {}
    for key, value in image.items():
        name = to_text(key)
        if (name in SCHEMA_FIELDS or name == CLAIM_PROPERTY or name in dropped or name.startswith(tuple(prefixes))
                or value is None):
            continue
        properties[name] = value if isinstance(value, str) else _glance_string(value)
    return properties


def _glance_string(value):
    # Glance stores property values as strings; booleans the way it shows them.
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return to_text(value)


class FilterModule(object):
    def filters(self):
        return {'image_properties': image_properties}
