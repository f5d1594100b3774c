#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_share
short_description: Manage who can use a Glance image - visibility, members and member acceptance
version_added: 0.1.0
description:
  - Sets the visibility of an OpenStack Glance image (C(private), C(shared), C(community), C(public)) and
    the projects it is shared with (its members), as the image's owner.
  - As a member project, accepts, rejects or resets (C(pending)) an image shared with it
    (I(member_status)), which only the member project itself (or an admin) may do.
  - Both in one task - a member with its own I(members[].cloud) is added by the owner and then
    accepted or rejected with the member's credentials.
  - Glance keeps members only on C(shared) images. When members are wanted and I(visibility) is not
    given, a private image is made C(shared) (the diff shows it). I(visibility=private) with members is a
    contradiction and is refused before anything is done. A C(community) or C(public) image is not narrowed
    to C(shared) unless I(visibility=shared) says so.
  - Members that an image had while it was shared stay in Glance, hidden, while it is not shared and
    come back when it is shared again. They cannot be listed before that, so check mode cannot predict
    them; a real run takes them into account (and I(purge_members=true) removes them).
  - Without I(visibility), I(members) and I(member_status) the module changes nothing and returns the
    image's visibility and members.
  - Idempotent. Check mode predicts every change without making it.
author:
  - osimage.glance developers (!UNKNOWN)
extends_documentation_fragment:
  - osimage.glance.cloud
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the image, its members and the projects, and predicts the result; changes nothing.
  diff_mode:
    support: full
    details: Shows the visibility and the map of member project id to member status before and after.
  platform:
    platforms: all
options:
  image:
    description:
      - Name or id of the image.
      - A name that more than one visible image has is an error that lists their ids.
      - On the owner's side the image must be owned by the project of the credentials (or they must
        have the admin role).
    type: str
    required: true
  visibility:
    description:
      - The visibility the image must have.
      - C(public) needs Glance's C(publicize_image) policy, which only admins pass by default.
      - Changing away from C(shared) hides the members (see above); with I(purge_members=true) and
        no I(members) they are removed first.
      - Without it the visibility is left alone, except that an image that gets members becomes
        C(shared).
    type: str
    choices: [private, shared, community, public]
  members:
    description:
      - The projects the image must be shared with, as the image's owner.
      - Members not listed here are kept unless I(purge_members=true).
      - Needs a C(shared) image; see I(visibility).
    type: list
    elements: dict
    suboptions:
      project:
        description:
          - Name or id of the member project.
          - A name is resolved through Keystone. Keystone's default policy lets only admins look up
            other projects, so other users can give by name only projects they have a role in, or a
            member with I(cloud); otherwise give the project id (the module says so).
          - An id is taken as it is when Keystone does not let the caller check it.
          - May be left out when I(cloud) is given; it then is the project I(cloud) authenticates to.
        type: str
      status:
        description:
          - The member status the project must have. New members start as C(pending).
          - Only the member project itself (or an admin) can set it, so unless the credentials of the
            task are the member's or an admin's, give I(cloud).
          - Without it the status is left as it is.
        type: str
        choices: [accepted, rejected, pending]
      cloud:
        description:
          - Credentials of the member project, to set I(status) with - a cloud name from
            C(clouds.yaml) or a dict of cloud settings, like the I(cloud) option.
          - The project they authenticate to is the member; it must match I(project) when that is
            given.
          - This second connection takes I(interface) and I(api_retries) from the task and everything
            else from this cloud.
        type: raw
  purge_members:
    description:
      - Remove the members that I(members) does not list (C(members=[]) removes all). Without
        I(members) it does nothing.
      - Removals happen before additions, so they make room under Glance's member quota.
    type: bool
    default: false
  member_status:
    description:
      - The member side - the status the project of the credentials must have as a member of the
        image, run with the member's credentials.
      - An image that is not shared with that project is an error.
      - Cannot be combined with I(visibility), I(members) or I(purge_members).
    type: str
    choices: [accepted, rejected, pending]
notes:
  - Glance limits the members of one image (C(image_member_quota), 128 by default); going over it is
    an error that says so.
seealso:
  - module: osimage.glance.image_fetch
  - module: openstack.cloud.image
'''

EXAMPLES = r'''
# Under Keystone's default policy only an admin may look projects up by name, so a member
# without its own cloud is given by project id ("openstack project show -f value -c id NAME"
# run by the member, or "openstack token issue -c project_id" with its credentials).
- name: Share an image with two projects by id (the image becomes shared)
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - project: 3c4f9a1d2e5b4c6d8e7f9a0b1c2d3e4f
      - project: 9b1e4c1f0a7d4f0e8a2f51c5f6a3b2d1

- name: Share and accept in one task, with the member's own credentials (its project is the member)
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - cloud: alt
        status: accepted

- name: Accept an image shared with this project (run as the member)
  osimage.glance.image_share:
    cloud: alt
    image: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
    member_status: accepted

- name: Share with exactly this project, removing all others
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    members:
      - project: 9b1e4c1f0a7d4f0e8a2f51c5f6a3b2d1
    purge_members: true

- name: Make the image private again, removing all members first
  osimage.glance.image_share:
    cloud: demo
    image: debian-12-golden
    visibility: private
    members: []
    purge_members: true

- name: Publish an image to every project (needs an admin by default)
  osimage.glance.image_share:
    cloud: admin
    image: debian-12-golden
    visibility: public
'''

RETURN = r'''
id:
  description: Id of the image.
  returned: always
  type: str
  sample: 0b4a7e6e-3d37-4a8f-9a52-3fd1d4a1a0a5
name:
  description: Name of the image.
  returned: always
  type: str
  sample: debian-12-golden
owner:
  description: Id of the project that owns the image.
  returned: always
  type: str
  sample: 2426041665f84900adcb18bf61c00458
visibility:
  description: Visibility of the image (predicted in check mode).
  returned: always
  type: str
  sample: shared
members:
  description:
    - The image's members with their statuses (predicted in check mode), sorted by project id.
    - Empty for an image that is not shared. On the member side only the caller's own membership.
  returned: always
  type: list
  elements: dict
  contains:
    project_id:
      description: Id of the member project.
      type: str
      sample: 188a37002e0f4c2ba0d231a39e7edf0a
    status:
      description: Member status.
      type: str
      sample: accepted
member_status:
  description: The caller's member status (predicted in check mode).
  returned: when I(member_status) is given
  type: str
  sample: accepted
resolved_projects:
  description: The project of every I(members) entry, as given (or the cloud's project name), mapped to its id.
  returned: when I(members) is given
  type: dict
  sample: {alt: 188a37002e0f4c2ba0d231a39e7edf0a}
'''

from ansible_collections.osimage.glance.plugins.module_utils._jobs import share
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule


def main():
    module = GlanceModule(
        argument_spec=dict(
            image=dict(type='str', required=True),
            visibility=dict(type='str', choices=['private', 'shared', 'community', 'public']),
            members=dict(type='list', elements='dict', options=dict(
                project=dict(type='str'),
                status=dict(type='str', choices=list(share.STATUSES)),
                cloud=dict(type='raw'),
            ), required_one_of=[('project', 'cloud')]),
            purge_members=dict(type='bool', default=False),
            member_status=dict(type='str', choices=list(share.STATUSES)),
        ),
        mutually_exclusive=[('member_status', 'visibility'), ('member_status', 'members'),
                            ('member_status', 'purge_members')],
        supports_check_mode=True,
    )
    # The member's side, or the owner's.
    module.run(share.ensure_member_status if module.params['member_status'] else share.ensure_shared)


if __name__ == '__main__':
    main()
