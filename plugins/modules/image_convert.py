#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: image_convert
short_description: Convert a disk image with qemu-img, safely, atomically and idempotently
version_added: 0.1.0
description:
  - Converts a local disk image to another format (raw, qcow2, vmdk, vhd, vhdx or vdi) with C(qemu-img convert),
    into a file or onto a block device. Needs no cloud.
  - The source must pass the same format-safety checks as M(osimage.glance.image_verify) before qemu-img
    opens it, so an image with a backing file, an external data file, vmdk extents in other files, or a format
    hidden inside another is refused. qemu-img is always told the detected format (C(-f)); it never probes.
  - qemu-img runs under limits on its address space and CPU time (I(limits)), so a hostile image cannot exhaust
    the host; a limit that is hit is reported as such.
  - A file I(dest) is written as a temporary file beside it and renamed into place only when qemu-img succeeded;
    on any failure (no space, a limit, an interruption) the temporary file is removed and an existing I(dest) is
    left untouched. Free space is checked before converting.
  - A block device I(dest) is checked beforehand to be large enough for the image and is written with direct
    I/O when the device supports it.
  - Idempotent by content. When I(dest) already holds an image of the requested format (and I(subformat), and
    the I(options) C(compat) and C(cluster_size) when given) with the same virtual size, and C(qemu-img compare)
    finds the same guest-visible data, nothing is written. Other creation options and I(compress) are not
    compared; use I(force) to rewrite.
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
  - ansible.builtin.files
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Checks the source, compares an existing I(dest) and checks space to predict the result; writes
      nothing.
  diff_mode:
    support: full
    details: Shows the format and virtual size of I(dest) before and after.
  platform:
    platforms: posix
requirements:
  - qemu-img 2.10 or newer on the host that runs the module (package C(qemu-utils) on Debian and Ubuntu,
    C(qemu-img) on RHEL, CentOS and Fedora)
  - oslo.utils (its format inspector) on the host that runs the module
  - util-linux (C(setpriv) and C(prlimit), which qemu-img runs under) on the host that runs the module
options:
  src:
    description:
      - Path of the image to convert, a regular file or a block device.
      - It must pass the format-safety checks; an encrypted (LUKS) source is refused because it cannot be
        inspected.
    type: path
    required: true
  src_format:
    description:
      - The format the source is supposed to have. When given, the detected format must be this one (C(raw)
        also covers a disk with a GPT partition table), else the source is refused.
      - When not given, any format the checks recognise and pass is converted.
    type: str
    choices: [raw, qcow2, vmdk, vhd, vhdx, vdi, iso]
  dest:
    description:
      - Path of the converted image. Its directory must exist.
      - A path that does not exist or is a regular file is written through a temporary file beside it and
        replaced atomically.
      - A block device is written in place; it must be at least as large as the image needs.
    type: path
    required: true
  format:
    description:
      - Format of I(dest), by its Glance name (C(vhd) is qemu-img's C(vpc)).
    type: str
    required: true
    choices: [raw, qcow2, vmdk, vhd, vhdx, vdi]
  subformat:
    description:
      - Variant of the output format. vmdk C(monolithicSparse) (the default) or C(streamOptimized) (what
        VMware and many appliances import); vhd and vhdx C(dynamic) (the default) or C(fixed).
      - vmdk variants that keep data in further files beside I(dest) are not offered.
    type: str
    choices: [monolithicSparse, streamOptimized, dynamic, fixed]
  compress:
    description:
      - Compress the data clusters of a qcow2 I(dest) (C(qemu-img convert -c)). Slower, smaller, read-only in
        effect (guest writes are not compressed).
      - Only for I(format=qcow2).
    type: bool
    default: false
  options:
    description:
      - Creation options of the output format, as C(qemu-img convert -o) takes them, for example
        C(compat), C(cluster_size), C(preallocation), C(lazy_refcounts) for qcow2, C(static) for vdi or
        C(force_size) for vhd. Booleans become C(on)/C(off).
      - For vhd, C(force_size) defaults to C(true), so the virtual size is exactly the source's and not rounded
        to a disk geometry.
      - C(backing_file), C(backing_fmt), C(data_file) and C(data_file_raw) are refused (the image would read
        other files), as are the options set by I(subformat) and I(encryption).
    type: dict
    default: {}
  encryption:
    description:
      - Encrypt I(dest) with LUKS. With I(format=raw), I(dest) is a LUKS container (qemu-img format C(luks));
        with I(format=qcow2), a qcow2 image with LUKS encryption inside. Not available for other formats.
      - The passphrase reaches qemu-img in an anonymous in-memory file (memfd) that only the qemu-img runs
        inherit, as C(/proc/self/fd/N); it never appears on a command line or in a file on disk.
    type: dict
    suboptions:
      passphrase:
        description:
          - The passphrase of the LUKS key slot. Never logged.
        type: str
        required: true
      cipher_alg:
        description:
          - Cipher, for example C(aes-256) (qemu-img's default).
        type: str
      cipher_mode:
        description:
          - Cipher mode, for example C(xts) (qemu-img's default).
        type: str
      ivgen_alg:
        description:
          - Initialisation vector generator, for example C(plain64) (qemu-img's default).
        type: str
      hash_alg:
        description:
          - Hash for the key derivation, for example C(sha256) (qemu-img's default).
        type: str
      iter_time:
        description:
          - Milliseconds of key derivation when opening (qemu-img's default is 2000); at least 1.
        type: int
  force:
    description:
      - Convert and replace I(dest) even when it already holds the same image.
    type: bool
    default: false
  limits:
    description:
      - Resource limits for each qemu-img run on the images.
      - C(qemu-img info) on the source always runs with 1 GiB of address space and 30 seconds of CPU time, as
        in nova and cinder.
    type: dict
    default: {}
    suboptions:
      address_space:
        description:
          - Address space (virtual memory) qemu-img may use, in MiB. C(0) means no limit; not negative.
        type: int
        default: 2048
      cpu_time:
        description:
          - CPU seconds qemu-img may use for one conversion or comparison. C(0) means the automatic limit,
            60 seconds plus 60 seconds per GiB of virtual size (compression on every core takes about 10 s
            per GiB). Not negative.
        type: int
        default: 0
      timeout:
        description:
          - Wall-clock seconds one conversion or comparison may take. C(0) means no limit; not negative.
        type: int
        default: 0
notes:
  - Runs on the host where the module runs (usually C(localhost)) and needs no cloud, so it takes none of the
    cloud connection options.
  - For a block device, qemu-img writes the whole virtual size of the image (zeros too), so stale data of an
    earlier image does not show through; data beyond the image's virtual size is left as it was.
  - A fixed vhd has its only header at its end, so the format checks see raw data. It therefore cannot be a
    source with I(src_format=vhd), and an existing fixed-vhd I(dest) is not recognised and is converted again on
    every run (see RV(reason)).
  - An encrypted (LUKS) I(dest) is recognised with the passphrase given in I(encryption); with another passphrase
    it counts as different and is replaced.
seealso:
  - module: osimage.glance.image_verify
  - module: osimage.glance.image_fetch
'''

EXAMPLES = r'''
- name: Convert a fetched qcow2 image to raw for a Ceph-less compute host
  osimage.glance.image_convert:
    src: /var/lib/images/debian-12.qcow2
    src_format: qcow2
    dest: /var/lib/images/debian-12.raw
    format: raw

- name: Make a compressed qcow2 with the compat level old hypervisors understand
  osimage.glance.image_convert:
    src: /var/lib/images/debian-12.raw
    dest: /srv/export/debian-12.qcow2
    format: qcow2
    compress: true
    options:
      compat: '0.10'
      cluster_size: 65536

- name: Write an image onto a logical volume
  osimage.glance.image_convert:
    src: /var/lib/images/debian-12.qcow2
    dest: /dev/vg0/vm-disk
    format: raw

- name: Export a stream-optimized vmdk for VMware
  osimage.glance.image_convert:
    src: /var/lib/images/appliance.qcow2
    dest: /srv/export/appliance.vmdk
    format: vmdk
    subformat: streamOptimized

- name: Encrypt an image with LUKS (a qcow2 with LUKS inside)
  osimage.glance.image_convert:
    src: /var/lib/images/secret.raw
    dest: /var/lib/images/secret.qcow2
    format: qcow2
    encryption:
      passphrase: "{{ vault_image_passphrase }}"

- name: Allow a large, compressed image more CPU time
  osimage.glance.image_convert:
    src: /var/lib/images/big.qcow2
    dest: /var/lib/images/big.vhd
    format: vhd
    subformat: fixed
    limits:
      cpu_time: 7200
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
  sample: [/var/lib/images/.debian-12.raw.osimage-host1-1a2b3c4d-4026531836-41235-9876543-5f0e1d2c.part]
src:
  description: Absolute path of the source.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.qcow2
dest:
  description: Absolute path of the destination.
  returned: always
  type: str
  sample: /var/lib/images/debian-12.raw
src_format:
  description: Format of the source as detected, by its Glance name.
  returned: always
  type: str
  sample: qcow2
dest_format:
  description: Format of I(dest), by its Glance name (C(raw) for a LUKS container, see RV(encrypted)).
  returned: always
  type: str
  sample: raw
qemu_format:
  description: Format of I(dest) by its qemu-img name (C(vpc) for vhd, C(luks) for an encrypted raw image).
  returned: always
  type: str
  sample: raw
subformat:
  description: The output variant asked for (vmdk, vhd, vhdx), else C(null).
  returned: always
  type: str
  sample: streamOptimized
encrypted:
  description: Whether I(dest) is encrypted with LUKS.
  returned: always
  type: bool
  sample: false
dest_type:
  description: C(file) or C(block) (a block device).
  returned: always
  type: str
  sample: file
virtual_size:
  description: Virtual size of the disk (what the guest sees) in bytes.
  returned: always
  type: int
  sample: 2147483648
dest_size:
  description: Bytes I(dest) occupies on disk (allocated blocks) for a file; the size of the device for a
    block device; C(null) when I(dest) does not exist (in check mode).
  returned: always
  type: int
  sample: 471269376
timing:
  description: How long the conversion took; absent when nothing was converted.
  returned: when the image was converted
  type: dict
  contains:
    bytes:
      description: Virtual size converted, in bytes.
      type: int
    seconds:
      description: Seconds from the start of qemu-img until the data was on disk (for a file, its fsync and
        rename included).
      type: float
    mb_per_second:
      description: Virtual size per second in megabytes (10^6 bytes).
      type: float
reason:
  description: Why I(dest) was (or in check mode would be) converted, for example that it does not exist, is of
    another format or variant, or holds other data; C(null) when it already held the image.
  returned: always
  type: str
  sample: qemu-img compare finds different data (Content mismatch at offset 1048576!)
qemu_img_version:
  description: Version of the qemu-img that was used.
  returned: always
  type: str
  sample: 7.2.22
'''

from ansible_collections.osimage.glance.plugins.module_utils._jobs import convert
from ansible_collections.osimage.glance.plugins.module_utils._module import OsimageModule


def main():
    module = OsimageModule(
        argument_spec=dict(
            src=dict(type='path', required=True),
            src_format=dict(type='str', choices=['raw', 'qcow2', 'vmdk', 'vhd', 'vhdx', 'vdi', 'iso']),
            dest=dict(type='path', required=True),
            format=dict(type='str', required=True, choices=list(convert.OUTPUT_FORMATS)),
            subformat=dict(type='str', choices=['monolithicSparse', 'streamOptimized', 'dynamic', 'fixed']),
            compress=dict(type='bool', default=False),
            options=dict(type='dict', default={}),
            encryption=dict(type='dict', options=dict(
                passphrase=dict(type='str', required=True, no_log=True),
                cipher_alg=dict(type='str'),
                cipher_mode=dict(type='str'),
                ivgen_alg=dict(type='str'),
                hash_alg=dict(type='str'),
                iter_time=dict(type='int'),
            )),
            force=dict(type='bool', default=False),
            limits=dict(type='dict', default={}, options=dict(
                address_space=dict(type='int', default=2048),
                cpu_time=dict(type='int', default=0),
                timeout=dict(type='int', default=0),
            )),
        ),
        bounds={'limits.address_space': (0, 'MiB; 0 means no limit'),
                'limits.cpu_time': (0, '0 means the automatic limit'),
                'limits.timeout': (0, '0 means no limit'),
                'encryption.iter_time': (1, 'milliseconds')},
        add_file_common_args=True,
        supports_check_mode=True,
    )
    module.run(convert.ensure_converted)


if __name__ == '__main__':
    main()
