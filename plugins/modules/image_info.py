#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_info
short_description: Look up and list OpenStack Glance images, hidden ones too
version_added: 0.1.0
description:
  - Finds one image by I(image) (name or id), or lists the images that match filters, following Glance's
    pagination to the last page.
  - Glance does the filtering where it can (name, visibility, owner, status, formats, member status, tags, property
    equality, creation and update times, sort order); a name pattern (I(name_pattern), I(name_regex)) is matched
    here, over the whole listing.
  - Hidden images (C(os_hidden)) are excluded by default, as in Glance; I(hidden=include) lists them too and
    I(hidden=only) lists only them. An I(image) looked up by name finds hidden images too.
  - The images are returned as Glance shows them, the same records M(osimage.glance.image_upload) and
    M(osimage.glance.image_fetch) return as C(image); with I(members=true) each also lists its members.
  - Read-only. It always reports C(changed=false) and runs the same query in check mode.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode runs the same query.
  diff_mode:
    support: none
  platform:
    platforms: all
options:
  image:
    description:
      - Name or id of one image. By id, that image; by name, every image with that name, hidden ones included
        (more than one when the name is not unique).
      - No image is no error; I(images) is then empty.
      - Cannot be combined with the filters.
    type: str
  name:
    description:
      - Only images with exactly this name.
    type: str
  name_pattern:
    description:
      - Only images whose name matches this shell-style pattern (C(*), C(?), C([...])), for example
        C(debian-12-*). Matched over the whole listing, after Glance's own filters.
    type: str
  name_regex:
    description:
      - Only images whose name contains a match of this Python regular expression, for example
        C(^ubuntu-2[24]\.04). Matched over the whole listing, after Glance's own filters.
    type: str
  tags:
    description:
      - Only images that carry all of these tags.
    type: list
    elements: str
  visibility:
    description:
      - Only images of this visibility. V(all) lists every visibility the caller may see, as Glance does.
      - Without it, Glance lists the images the caller owns, public and community images it owns, and shared
        images whose membership it accepted.
    type: str
    choices: [public, private, shared, community, all]
  owner:
    description:
      - Only images owned by this project, given by id or by name (a name must be resolvable by the caller in
        Keystone, see M(osimage.glance.image_share)).
    type: str
  status:
    description:
      - Only images in this status.
    type: str
    choices: [queued, saving, uploading, importing, active, deactivated, killed, deleted, pending_delete]
  disk_format:
    description:
      - Only images of this disk format, for example C(qcow2) or C(raw).
    type: str
  container_format:
    description:
      - Only images of this container format, for example C(bare).
    type: str
  member_status:
    description:
      - Only shared images whose membership for the caller's project has this status; V(all) lists every
        membership status.
    type: str
    choices: [accepted, pending, rejected, all]
  hidden:
    description:
      - Whether hidden images (C(os_hidden=true)) are left out (V(exclude)), listed too (V(include)) or listed
        alone (V(only)).
    type: str
    choices: [exclude, include, only]
    default: exclude
  properties:
    description:
      - Only images whose properties have these values (equality, compared as strings as Glance stores them),
        for example C({os_distro: debian, hw_firmware_type: uefi}).
      - Image attributes that have an option of their own (C(name), C(visibility), C(owner), C(status), ...)
        are refused here; use their option.
    type: dict
  created_since:
    description:
      - Only images created at or after this time, in ISO 8601 (for example C(2026-01-31) or
        C(2026-01-31T12:00:00Z)); a time without a zone is UTC.
    type: str
  updated_since:
    description:
      - Only images updated at or after this time, in ISO 8601; a time without a zone is UTC.
    type: str
  sort:
    description:
      - The order of the list, as C(KEY) or C(KEY:asc) or C(KEY:desc) entries, for example
        C([name:asc, created_at:desc]). Glance's default order is newest first.
      - Glance sorts by C(name), C(status), C(container_format), C(disk_format), C(size), C(id), C(created_at) and
        C(updated_at) only.
    type: list
    elements: str
  limit:
    description:
      - At most this many images, the first ones of the order. Without it, every matching image.
    type: int
  members:
    description:
      - Whether to add to every shared image the list of its members (C(project_id) and C(status)); one request
        per shared image. A member project sees only its own membership.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Find an image by name, even when it is hidden
  osimage.glance.image_info:
    cloud: prod
    image: debian-12-genericcloud
  register: found

- name: Fail when it is not there
  ansible.builtin.assert:
    that: found.images | length == 1
    fail_msg: "debian-12-genericcloud is missing or not unique"

- name: Every monthly build of Debian 12, newest first, hidden old ones included
  osimage.glance.image_info:
    cloud: prod
    name_pattern: "debian-12-*"
    hidden: include
    properties:
      os_distro: debian
    sort: [created_at:desc]
  register: debian

- name: The public images uploaded this year, with their owners
  osimage.glance.image_info:
    cloud: prod
    visibility: public
    created_since: "2026-01-01"
  register: recent

- name: Who an image is shared with
  osimage.glance.image_info:
    cloud: prod
    image: team-image
    members: true
  register: shared

- name: Show the members
  ansible.builtin.debug:
    msg: "{{ shared.images[0].members | map(attribute='project_id') | list }}"
'''

RETURN = r'''
images:
  description:
    - The images found, as Glance shows them (its image records, core attributes and properties side by side),
      in the requested order.
    - C(locations) and C(direct_url) are there only when Glance's policy shows them to the caller.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The image id.
      type: str
      sample: 9728f7b0-b12f-407d-af3e-5348467b9f46
    name:
      description: The image name.
      type: str
      sample: debian-12-genericcloud
    status:
      description: The image status.
      type: str
      sample: active
    visibility:
      description: The image visibility.
      type: str
      sample: private
    owner:
      description: The id of the project that owns the image.
      type: str
    disk_format:
      description: The disk format.
      type: str
      sample: qcow2
    container_format:
      description: The container format.
      type: str
      sample: bare
    size:
      description: The size of the image data in bytes.
      type: int
    virtual_size:
      description: The virtual size of the disk in bytes, when Glance knows it.
      type: int
    os_hash_algo:
      description: The algorithm of Glance's multihash.
      type: str
      sample: sha512
    os_hash_value:
      description: Glance's multihash of the image data.
      type: str
    checksum:
      description: The MD5 checksum of the image data.
      type: str
    os_hidden:
      description: Whether the image is hidden from default listings.
      type: bool
    protected:
      description: Whether the image is protected from deletion.
      type: bool
    tags:
      description: The image tags.
      type: list
      elements: str
    stores:
      description: The stores that hold the image data (multi-store Glance), comma-separated.
      type: str
    created_at:
      description: When the image was created.
      type: str
    updated_at:
      description: When the image was last updated.
      type: str
    members:
      description:
        - With I(members=true), the members of a shared image (other images have none).
      type: list
      elements: dict
      contains:
        project_id:
          description: The member project.
          type: str
        status:
          description: C(pending), C(accepted) or C(rejected).
          type: str
'''

from ansible_collections.osimage.glance.plugins.module_utils._jobs import info
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule


def main():
    module = GlanceModule(
        argument_spec=dict(
            image=dict(type='str'),
            name=dict(type='str'),
            name_pattern=dict(type='str'),
            name_regex=dict(type='str'),
            tags=dict(type='list', elements='str'),
            visibility=dict(type='str', choices=['public', 'private', 'shared', 'community', 'all']),
            owner=dict(type='str'),
            status=dict(type='str', choices=['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated',
                                             'killed', 'deleted', 'pending_delete']),
            disk_format=dict(type='str'),
            container_format=dict(type='str'),
            member_status=dict(type='str', choices=['accepted', 'pending', 'rejected', 'all']),
            hidden=dict(type='str', choices=list(info.HIDDEN_CHOICES), default='exclude'),
            properties=dict(type='dict'),
            created_since=dict(type='str'),
            updated_since=dict(type='str'),
            sort=dict(type='list', elements='str'),
            limit=dict(type='int'),
            members=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('image', option) for option in info.FILTER_OPTIONS if option != 'hidden']
        + [('name', 'name_pattern', 'name_regex')],
        bounds=dict(limit=(1, 'images')),
        supports_check_mode=True,
    )
    module.run(info.query)


if __name__ == '__main__':
    main()
