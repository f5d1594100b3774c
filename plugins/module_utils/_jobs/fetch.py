# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The image_fetch job: one Glance image's data into a file or onto a block
device, verified in the same read pass that brings it (see
``_trust.verification``), through a target of ``_disk.targets``.

Private to the collection; not a public API.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Tuple

from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import stream_read_errors
from ansible_collections.osimage.glance.plugins.module_utils._trust.verification import (
    Expectations, Verification, certificate_store)

# The file options (ansible.builtin.files) that make no sense for a block device.
FILE_ATTRIBUTES = ('mode', 'owner', 'group', 'seuser', 'serole', 'selevel', 'setype', 'attributes')


# The image's fields the result repeats at its top level (see RETURN).
IMAGE_FACTS = ('disk_format', 'container_format', 'size', 'virtual_size', 'os_hash_algo', 'os_hash_value',
               'checksum')


def image_facts(image: Dict[str, Any], dest: str, dest_type: str) -> Dict[str, Any]:
    facts = dict(dest=dest, dest_type=dest_type, image=image, id=image['id'], name=image.get('name'))
    facts.update((key, image.get(key)) for key in IMAGE_FACTS)
    return facts


def check_request(params: Dict[str, Any], image: Dict[str, Any], dest: str, dest_type: str) -> bool:
    """Refuse what the image and the options cannot do together, before
    anything is read; returns whether the data is to be decompressed."""
    what = 'Image %s (%s)' % (image['id'], image.get('name'))
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


def prepare_verification(params: Dict[str, Any], api: GlanceAPI, image: Dict[str, Any]) -> Verification:
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


def verified(found: Dict[str, Any]) -> Dict[str, Any]:
    """The return values that describe what passed."""
    return dict(checks=[check for check in found['checks'] if check != 'checksum'], signature=found['signature'],
                format=found['format'])


def not_verified() -> Dict[str, Any]:
    return dict(checks=[], signature=None, format=None)


def file_state(dest: str, dest_stat: Tuple[str, int]) -> Dict[str, Any]:
    """A file dest as the diff shows it, from the run's one look at it
    (``targets.stat_dest``): absent, or a regular file of some size."""
    kind, size = dest_stat
    if kind == 'absent':
        return dict(state='absent')
    if kind != 'file':
        raise targets.not_file_or_device(dest)
    return dict(state='file', size=size)


def inspect_dest(dest: str, dest_stat: Tuple[str, int], image_size: Optional[int], algo: Optional[str],
                 verification: Optional[Verification] = None) -> Tuple[Optional[Dict[str, Any]], Any]:
    """What is at ``dest`` now: None when absent, else its size and, when the
    size could match the image, its digest (the only way to prove equality).
    With a ``verification`` the same read also feeds the signature's digest
    and the format inspector; the finished ReadPass is returned beside it
    (None when dest was not read)."""
    found = file_state(dest, dest_stat)
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


def verify_existing(verification: Verification, rpass: Any, dest: str, image: Dict[str, Any],
                    qemu_img: Any = None) -> Dict[str, Any]:
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

    def __init__(self, module: GlanceModule, api: GlanceAPI, image: Dict[str, Any], dest: str,
                 digest: Tuple[Optional[str], Optional[str]], verification: Verification) -> None:
        self.module = module
        self.api = api
        self.image = image
        self.dest = dest
        self.algo, self.expected = digest
        self.verification = verification
        self.what = 'Downloading image %s' % image['id']

    def stream(self, rpass: Any, target: Any, gunzip: Optional[stream.Gunzip] = None,
               head: Optional[inspect.HeadCheck] = None) -> Dict[str, Any]:
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

    def check_received(self, rpass: Any) -> None:
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

    def run(self, target: Any, gunzip: Optional[stream.Gunzip] = None, head: Optional[inspect.HeadCheck] = None,
            extent: Optional[Callable[[], int]] = None) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
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


def ensure_file(job: Fetch, result: Dict[str, Any], dest_stat: Tuple[str, int]) -> Tuple[bool, Dict[str, Any]]:
    """A regular file dest, its data as Glance stores it."""
    module, image, dest = job.module, job.image, job.dest
    params = module.params
    algo, expected = job.algo, job.expected
    parent = targets.check_parent(dest)
    # With force the old data is replaced anyway: hash it only when the diff shows it.
    before_algo = algo if (not params['force'] or module.diff_mode) else None
    before, rpass = inspect_dest(dest, dest_stat, image.get('size'), before_algo,
                                 None if params['force'] else job.verification)
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


def ensure_on_device(job: Fetch, result: Dict[str, Any]) -> Tuple[bool, Dict[str, Any]]:
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


def ensure_decompressed(job: Fetch, result: Dict[str, Any], dest_stat: Tuple[str, int]) -> Tuple[bool, Dict[str, Any]]:
    """A gzip-compressed image, decompressed into a file or onto a block
    device. Only the download can tell what the decompressed data is, so it
    is downloaded (in check mode too) and compared with dest as it streams
    by; dest is written only from the first difference on."""
    module, image, dest = job.module, job.image, job.dest
    params = module.params
    on_device = dest_stat[0] == 'block'
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
        parent = targets.check_parent(dest)
        before = file_state(dest, dest_stat)

        def open_target(offset):
            return targets.FileTarget(dest, module.atomic_move, copy_prefix=offset)
        if not module.check_mode:
            # The compressed size is the least the decompressed data needs.
            targets.check_free_space(parent, image.get('size'), job.what)
    diff = dict(before=before, after=dict(before, state='block_device' if on_device else 'file'))
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


def ensure_fetched(module: GlanceModule, api: GlanceAPI) -> Tuple[bool, Dict[str, Any]]:
    """Make ``dest`` hold the image's data; returns ``(changed, result)``."""
    params = module.params
    dest = params['dest']
    # A run killed with SIGKILL could not remove its temporary file beside dest.
    stale = targets.remove_stale(os.path.abspath(dest), check_mode=module.check_mode)
    image = api.find_image(params['image'])
    # The run's one look at dest; what is neither a file nor a device is
    # refused where a file dest is prepared, after the checks of the image.
    dest_stat = targets.stat_dest(dest)
    dest_type = 'block_device' if dest_stat[0] == 'block' else 'file'
    result = image_facts(image, dest, dest_type)
    result['removed_stale_temp'] = stale
    if image.get('status') == 'deactivated':
        raise errors.ImageStateError(
            'Image %s (%s) is deactivated by its owner: Glance refuses to download its data. Reactivate it '
            '(osimage.glance.image_upload with reactivate=true) or ask the owner to.'
            % (image['id'], image.get('name')), status='deactivated')
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
    decompressing = check_request(params, image, dest, dest_type)
    # Signature metadata, certificates and declared format fail here, before any read.
    verification = prepare_verification(params, api, image)
    result.update(not_verified())
    job = Fetch(module, api, image, dest, (algo, expected), verification)
    if decompressing:
        changed, diff = ensure_decompressed(job, result, dest_stat)
    elif dest_type == 'block_device':
        changed, diff = ensure_on_device(job, result)
    else:
        changed, diff = ensure_file(job, result, dest_stat)
    # A job that did not fail leaves a file dest in place, except in check
    # mode, which writes nothing: then it is there only if it was before.
    if dest_type == 'file' and (not module.check_mode or dest_stat[0] == 'file'):
        changed = module.set_file_attributes(dest, changed, diff=diff)
    result['diff'] = diff
    return changed, result
