# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The job of image_convert: make dest hold src, converted with qemu-img
into the format the options ask for, after the format-safety checks, with
the space checked before and nothing written when dest already holds it.

Private to the collection; not a public API.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import closing
from typing import Any, Dict, Optional, Tuple

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect as formats
from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu as qemu_img
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.module_utils._module import OsimageModule

OUTPUT_FORMATS = ('raw', 'qcow2', 'vmdk', 'vhd', 'vhdx', 'vdi')
SUBFORMATS = {
    'vmdk': ('monolithicSparse', 'streamOptimized'),
    'vhd': ('dynamic', 'fixed'),
    'vhdx': ('dynamic', 'fixed'),
}
# Options that would make the output read other files, or that other
# module options set.
FORBIDDEN_OPTIONS = ('backing_file', 'backing_fmt', 'data_file', 'data_file_raw', 'subformat', 'encryption',
                     'encrypt', 'key-secret', 'size')
ENCRYPTION_OPTIONS = ('cipher_alg', 'cipher_mode', 'ivgen_alg', 'hash_alg', 'iter_time')
SECRET_ID = 'osimage_sec0'
# How much of the source the format inspector sees per read; it stops
# reading as soon as every format has decided (nova's detect_file_format).
INSPECT_CHUNK = 1024 * 1024

# Chosen by measurement (tests/benchmark/bench.py --sweep): out-of-order
# writes (-W) made raw output faster, to a file and to a device; more
# coroutines than qemu-img's 8 (-m 16), O_DIRECT reads of the source
# (-T none) and copy offloading (-C, which also gives up zero detection, so
# zeros would be written out) were not. Other formats are written in order
# so that their clusters lie in order in the file, and so that qcow2 output
# (compressed too) is byte-identical from run to run: role volume_to_image's
# idempotency (image_upload's content hash) depends on it.
OUT_OF_ORDER = True
COROUTINES = None
# Extra room for the metadata of vmdk/vhd/vhdx/vdi (grain tables, BAT,
# block maps), which qemu-img cannot measure: 1/256 of the virtual size plus 4 MiB.
METADATA_MARGIN = 256
METADATA_MARGIN_FIXED = 4 * 1024 * 1024
# A LUKS header with its eight key slots takes about 2 MiB.
LUKS_HEADER_ALLOWANCE = 4 * 1024 * 1024
LUKS_CALIBRATION_FLAW = 'Unable to get accurate CPU usage'
LUKS_CALIBRATION_ATTEMPTS = 3


class Output(object):
    """What the options ask dest to be."""

    def __init__(self, params: Dict[str, Any]) -> None:
        self.format = params['format']
        self.subformat = params['subformat']
        self.compress = params['compress']
        self.encryption = params['encryption']
        user_options = dict(params['options'] or {})
        for key in user_options:
            if key in FORBIDDEN_OPTIONS or key.startswith('encrypt.'):
                raise errors.InvalidOptionsError(
                    'options.%s is not allowed: %s.' % (key, _forbidden_reason(key)))
        if self.subformat and self.subformat not in SUBFORMATS.get(self.format, ()):
            allowed = ', '.join('%s for %s' % (' or '.join(subs), fmt) for fmt, subs in sorted(SUBFORMATS.items()))
            raise errors.InvalidOptionsError('subformat %s does not go with format %s; subformat is %s.'
                                             % (self.subformat, self.format, allowed))
        if self.compress and self.format != 'qcow2':
            raise errors.InvalidOptionsError('compress is only available for format qcow2, not %s.' % self.format)
        if self.encryption and self.format not in ('raw', 'qcow2'):
            raise errors.InvalidOptionsError(
                'encryption is only available for format raw (a LUKS container) or qcow2 (LUKS inside qcow2), '
                'not %s.' % self.format)
        self.qemu_format = 'luks' if self.encryption and self.format == 'raw' else qemu_img.to_qemu(self.format)
        self.user_options = user_options
        options = dict(user_options)
        if self.format == 'vhd':
            options.setdefault('force_size', True)
        if self.subformat:
            options['subformat'] = self.subformat
        if self.encryption:
            prefix = 'encrypt.' if self.format == 'qcow2' else ''
            if self.format == 'qcow2':
                options['encrypt.format'] = 'luks'
            options[prefix + 'key-secret'] = SECRET_ID
            for key in ENCRYPTION_OPTIONS:
                if self.encryption.get(key) is not None:
                    options[prefix + key.replace('_', '-')] = self.encryption[key]
        self.options = options

    @property
    def inspector_format(self) -> str:
        """The name the format inspector gives an image in this format."""
        return 'luks' if self.qemu_format == 'luks' else self.format

    @property
    def fully_allocated(self) -> bool:
        """Whether the output takes its whole virtual size on disk."""
        prealloc = str(self.user_options.get('preallocation', 'off'))
        if self.subformat == 'fixed' or self.qemu_format == 'luks':
            return True
        if self.format == 'vdi' and str(self.user_options.get('static', 'off')).lower() in ('on', 'true', 'yes'):
            return True
        return prealloc in ('falloc', 'full')

    def describe(self) -> str:
        text = self.format
        if self.subformat:
            text += ' (%s)' % self.subformat
        if self.encryption:
            text += ' with LUKS encryption'
        return text


def _forbidden_reason(key):
    if key in ('subformat',):
        return 'use the module option subformat'
    if key in ('encryption', 'encrypt', 'key-secret') or key.startswith('encrypt.'):
        return 'use the module option encryption'
    if key == 'size':
        return 'the virtual size is the source\'s'
    return 'an image must not read other files of the host'


def limits_from(params: Dict[str, Any], virtual_size: Optional[int]) -> qemu_img.Limits:
    """The Limits for converting or comparing a disk of ``virtual_size``."""
    given = params['limits'] or {}
    address_space = given.get('address_space', 2048)
    cpu_time = given.get('cpu_time') or qemu_img.cpu_seconds_for(virtual_size)
    return qemu_img.Limits(address_space=(address_space or 0) * qemu_img.MIB, cpu_seconds=cpu_time,
                           timeout=given.get('timeout') or None)


# -- the safety gate ------------------------------------------------------
def inspect(path: str, declared: Optional[str], what: str, option: str = 'format') -> formats.Inspection:
    """Run the format inspector over ``path`` (only as far as it needs to
    decide) and return the ``formats.Inspection``; ``option`` declared the
    format (named in messages)."""
    inspection = formats.Inspection(what, declared, option)
    try:
        # closing: the file is closed once the inspector has decided, not when the chunks are collected.
        with closing(stream.read_file(path, chunk_size=INSPECT_CHUNK)) as chunks:
            wrapper = inspection.wrap(chunks)
            for _chunk in wrapper:
                if wrapper.formats is not None:
                    break
    except OSError as exc:
        raise errors.DestinationError('Cannot read %s: %s' % (what, exc.strerror or exc))
    return inspection


def safe_source(path: str, declared: Optional[str], what: str, option: str = 'format') -> Dict[str, Any]:
    """The gate: the checks image_verify makes (``formats.evaluate``), before
    qemu-img sees the file. Returns ``formats.evaluate``'s dict."""
    return formats.evaluate(inspect(path, declared, what, option), path)


def safe_encrypted(path: str, declared: Optional[str], what: str, qemu: qemu_img.QemuImg) -> Dict[str, Any]:
    """The gate for an encrypted dest, which ``qemu-img check`` cannot open
    without its key: the inspector's checks, then qemu-img info."""
    inspection = inspect(path, declared, what)
    detected = inspection.detected()
    inspection.safety_check()
    formats.check_declared(detected, declared, what, inspection.option)
    info = qemu.info(path, qemu_img.to_qemu(detected), what)
    if info.backing_file or info.data_file:
        raise errors.FormatError('%s refers to another file (%s).' % (what, info.backing_file or info.data_file))
    return dict(detected_format=detected, virtual_size=info.virtual_size, qemu_img_format=info.format, info=info)


# -- dest -----------------------------------------------------------------
def dest_size(dest: str, kind: str) -> Optional[int]:
    if kind == 'file':
        return os.stat(dest).st_blocks * 512
    if kind == 'block':
        return targets.seek_size(dest)
    return None


def round_sector(size: int) -> int:
    return -(-int(size) // 512) * 512


class Existing(object):
    """What dest holds now, and whether it is already the wanted image."""

    def __init__(self, kind: str, fmt: Optional[str] = None, virtual_size: Optional[int] = None,
                 reason: Optional[str] = None) -> None:
        self.kind = kind
        self.format = fmt
        self.virtual_size = virtual_size
        self.reason = reason
        self.same = False

    def describe(self) -> Dict[str, Any]:
        if self.kind == 'absent':
            return dict(state='absent')
        return dict(state='block device' if self.kind == 'block' else 'file', format=self.format,
                    virtual_size=self.virtual_size)


def examine_dest(ctx: Context) -> Existing:
    """An Existing for dest; ``same`` when it holds the image already."""
    kind = ctx.kind
    existing = Existing(kind)
    if kind == 'absent':
        existing.reason = 'dest does not exist'
        return existing
    out = ctx.output
    what = 'dest %s' % ctx.dest
    try:
        if out.encryption:
            found = safe_encrypted(ctx.dest, out.inspector_format, what, ctx.qemu)
        else:
            found = safe_source(ctx.dest, out.inspector_format, what)
    except (errors.FormatError, errors.QemuImgError) as exc:
        detected = exc.details.get('detected_format')
        existing.format = _glance_name(detected) if detected else None
        existing.reason = exc.msg
        return existing
    existing.format = _glance_name(found['detected_format'])
    existing.virtual_size = found['virtual_size']
    if ctx.params['force']:
        existing.reason = 'force is set'
        return existing
    raw_like = out.qemu_format in ('raw', 'luks')
    if kind == 'block' and raw_like:
        # A device is larger than the image: compare the image's extent only.
        if existing.virtual_size is None or existing.virtual_size < ctx.virtual_size:
            existing.reason = 'the device is smaller than the image'
            return existing
    elif round_sector(existing.virtual_size or 0) != round_sector(ctx.virtual_size):
        existing.reason = 'its virtual size is %s, not %d' % (existing.virtual_size, ctx.virtual_size)
        return existing
    mismatch = option_mismatch(ctx, found)
    if mismatch:
        existing.reason = mismatch
        return existing
    existing.same = compare(ctx, kind, raw_like)
    if not existing.same:
        existing.reason = 'qemu-img compare finds different data (%s)' % ctx.qemu.last_compare_message
    return existing


def option_mismatch(ctx: Context, found: Dict[str, Any]) -> Optional[str]:
    """Why dest's variant is not the one asked for, or None."""
    out = ctx.output
    info = found.get('info') or ctx.qemu.info(ctx.dest, out.qemu_format, 'dest %s' % ctx.dest)
    if out.format == 'vmdk':
        wanted = out.subformat or 'monolithicSparse'
        if info.subformat and info.subformat != wanted:
            return 'it is a %s vmdk, not %s' % (info.subformat, wanted)
    if out.format == 'qcow2':
        compat = out.user_options.get('compat')
        if compat is not None and info.compat and str(compat) != info.compat:
            return 'its qcow2 compat is %s, not %s' % (info.compat, compat)
        cluster = out.user_options.get('cluster_size')
        if cluster is not None and info.cluster_size and _parse_size(cluster) != info.cluster_size:
            return 'its cluster size is %s, not %s' % (info.cluster_size, cluster)
        if bool(out.encryption) != info.encrypted:
            return 'it is %sencrypted' % ('' if info.encrypted else 'not ')
    return None


def _parse_size(value):
    text = str(value).strip().lower()
    units = {'k': 1024, 'm': 1024 ** 2, 'g': 1024 ** 3}
    try:
        if text and text[-1] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)
    except ValueError:
        return None


def compare(ctx: Context, kind: str, raw_like: bool) -> bool:
    out = ctx.output
    secret = SECRET_ID if out.encryption else None
    key = 'encrypt.key-secret' if out.format == 'qcow2' else 'key-secret'
    size = ctx.virtual_size if kind == 'block' and raw_like else None
    if secret or size is not None:
        second, second_fmt = qemu_img.json_filename(ctx.dest, out.qemu_format, secret_id=secret, secret_key=key,
                                                    size=size)
    else:
        second, second_fmt = ctx.dest, out.qemu_format
    return bool(ctx.qemu.compare(ctx.src, ctx.src_qemu_format, second, second_fmt,
                                 'Comparing %s with %s' % (ctx.src, ctx.dest), objects=ctx.objects,
                                 limits=ctx.limits))


# -- space ----------------------------------------------------------------
def needed_bytes(ctx: Context) -> int:
    """Bytes the output needs: qemu-img measure where the output format can
    be measured, else an estimate from the allocated data."""
    out = ctx.output
    what = 'src %s' % ctx.src
    # Measuring with encryption would run the key derivation (seconds of
    # CPU): measure without it and add room for the LUKS header.
    header = LUKS_HEADER_ALLOWANCE if out.encryption else 0
    if out.qemu_format == 'luks':
        return ctx.virtual_size + header
    if out.qemu_format == 'qcow2' or (out.qemu_format == 'raw' and out.fully_allocated):
        measured = ctx.qemu.measure(ctx.src, ctx.src_qemu_format, out.qemu_format, what,
                                    options=_measure_options(out))
        if measured is not None:
            return measured['required'] + header
    if out.fully_allocated:
        return ctx.virtual_size + ctx.virtual_size // METADATA_MARGIN + METADATA_MARGIN_FIXED
    # Sparse output: about the allocated data (what a qcow2 of it needs).
    measured = ctx.qemu.measure(ctx.src, ctx.src_qemu_format, 'qcow2', what)
    data = measured['required'] if measured else ctx.virtual_size
    if out.qemu_format == 'raw':
        return data
    return data + ctx.virtual_size // METADATA_MARGIN + METADATA_MARGIN_FIXED


def _measure_options(out):
    """The creation options measure needs (not the encryption, not vhd's)."""
    return dict((key, value) for key, value in out.options.items()
                if key != 'force_size' and not key.startswith('encrypt.'))


def check_space(ctx: Context) -> int:
    """Refuse before converting when the output cannot fit."""
    need = needed_bytes(ctx)
    what = 'Converting %s to %s' % (ctx.src, ctx.output.describe())
    if ctx.kind == 'block':
        size = targets.seek_size(ctx.dest)
        if ctx.output.qemu_format == 'raw':
            need = ctx.virtual_size
            text = 'the image\'s virtual size is %d bytes (%s)' % (need, _human(need))
        else:
            text = 'the %s image needs %d bytes (%s)' % (ctx.output.describe(), need, _human(need))
        if need > size:
            raise errors.DestinationError(
                '%s does not fit on block device %s: %s but the device has only %d bytes (%s). Nothing was '
                'written to it; use a larger device.' % (what, ctx.dest, text, size, _human(size)),
                needed_bytes=need, device_bytes=size)
        return need
    # An existing dest stays until the rename, so the whole output must fit beside it.
    targets.check_free_space(os.path.dirname(ctx.dest), need, what)
    return need


def _human(size):
    for unit, factor in (('GiB', 1024 ** 3), ('MiB', 1024 ** 2), ('KiB', 1024)):
        if size >= factor:
            return '%.1f %s' % (size / factor, unit)
    return '%d bytes' % size


# -- converting -----------------------------------------------------------
def convert_command(ctx: Context, target: str, cache: Optional[str] = None) -> qemu_img.ConvertCommand:
    out = ctx.output
    return qemu_img.ConvertCommand(
        ctx.src, ctx.src_qemu_format, target, out.qemu_format, options=out.options, compress=out.compress,
        objects=ctx.objects, cache=cache, coroutines=COROUTINES,
        out_of_order=OUT_OF_ORDER and out.qemu_format == 'raw')


def run_convert(ctx: Context, command: qemu_img.ConvertCommand, what: str) -> float:
    """qemu-img convert, tried again (twice at most) when creating a LUKS
    header fails because qemu-img's key-derivation calibration saw no CPU
    time pass (a known qemu-img flaw on hosts with coarse per-thread CPU
    accounting: "Unable to get accurate CPU usage")."""
    attempts_left = LUKS_CALIBRATION_ATTEMPTS if ctx.output.encryption else 1
    while True:
        attempts_left -= 1
        try:
            return ctx.qemu.convert(command, what, ctx.limits)
        except errors.QemuImgError as exc:
            if not attempts_left or LUKS_CALIBRATION_FLAW not in exc.msg:
                raise


def convert(ctx: Context) -> float:
    """Convert into dest; returns the seconds it took until the data was on
    disk (qemu-img, and for a file the fsync and rename)."""
    what = 'Converting %s to %s (%s)' % (ctx.src, ctx.dest, ctx.output.describe())
    start = time.monotonic()
    if ctx.kind == 'block':
        cache = 'none' if targets.supports_direct_io(ctx.dest) else None
        with stream.terminate_as_interrupt():
            run_convert(ctx, convert_command(ctx, ctx.dest, cache=cache), what)
        return time.monotonic() - start
    try:
        with stream.terminate_as_interrupt(), targets.OutputFile(ctx.dest) as target:
            run_convert(ctx, convert_command(ctx, target.path), what)
            target.commit(rename=ctx.rename)
    except errors.DestinationError as exc:
        if exc.details.get('errno') != 'ENOSPC':
            raise
        raise errors.DestinationError(
            'No space left in %s while converting %s to %s (%s). The temporary file was removed and %s was not '
            'changed; free some space or choose another destination.'
            % (os.path.dirname(ctx.dest), ctx.src, ctx.dest, exc.details.get('qemu_img', exc.msg), ctx.dest),
            errno='ENOSPC')
    return time.monotonic() - start


class Context(object):
    """Everything one run works with."""

    def __init__(self, module: OsimageModule, qemu: qemu_img.QemuImg, output: Output) -> None:
        params = module.params
        self.params = params
        self.qemu = qemu
        self.src = os.path.abspath(params['src'])
        self.dest = os.path.abspath(params['dest'])
        self.output = output
        self.objects = []
        self.kind = None
        self.virtual_size = None
        self.src_qemu_format = None
        self.limits = None
        self.rename = module.atomic_move


def check_src(src: str, dest: str) -> None:
    try:
        st = os.stat(src)
    except OSError as exc:
        raise errors.DestinationError('Cannot read src %s: %s.' % (src, exc.strerror or exc))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise errors.DestinationError('src ' + stream.neither_file_nor_device(src))
    if os.path.exists(dest) and os.path.samefile(src, dest):
        raise errors.InvalidOptionsError('src and dest are the same file, %s; convert into another path.' % src)


def ensure_converted(module: OsimageModule, _api: None = None) -> Tuple[bool, Dict[str, Any]]:
    """The job: make dest hold src in the wanted format; returns ``(changed, result)``."""
    output = Output(module.params)  # contradicting options fail before anything runs
    qemu = qemu_img.QemuImg.find()
    encryption = module.params['encryption']
    if encryption:
        with qemu_img.SecretFile(encryption['passphrase']) as secret:
            return ensure_converted_with(module, qemu, output, secret)
    return ensure_converted_with(module, qemu, output)


def ensure_converted_with(module: OsimageModule, qemu: qemu_img.QemuImg, output: Output,
                          secret: Optional[qemu_img.SecretFile] = None) -> Tuple[bool, Dict[str, Any]]:
    """Make dest hold src as ``output`` says, with qemu-img ``qemu`` and the
    LUKS passphrase in ``secret``; returns ``(changed, result)``."""
    ctx = Context(module, qemu, output)
    out = output
    if secret is not None:
        ctx.objects = [qemu_img.secret_object(SECRET_ID, secret)]
    check_src(ctx.src, ctx.dest)
    targets.check_parent(ctx.dest)
    # A run killed with SIGKILL could not remove its temporary file beside dest.
    stale = targets.remove_stale(ctx.dest, check_mode=module.check_mode)
    ctx.kind = targets.dest_kind(ctx.dest)

    source = safe_source(ctx.src, module.params['src_format'], 'src %s' % ctx.src, 'src_format')
    ctx.src_qemu_format = source['qemu_img_format'] or qemu_img.to_qemu(source['detected_format'])
    ctx.virtual_size = source['virtual_size']
    ctx.limits = limits_from(module.params, ctx.virtual_size)

    result = dict(src=ctx.src, dest=ctx.dest, src_format=_glance_name(source['detected_format']),
                  dest_format=out.format, qemu_format=out.qemu_format, subformat=out.subformat,
                  encrypted=bool(out.encryption), dest_type='block' if ctx.kind == 'block' else 'file',
                  virtual_size=ctx.virtual_size, qemu_img_version=qemu.version_string, removed_stale_temp=stale)

    before = examine_dest(ctx)
    after = dict(state='block device' if ctx.kind == 'block' else 'file', format=out.format,
                 virtual_size=ctx.virtual_size)
    diff = dict(before=before.describe(), after=after)
    changed = not before.same
    result['reason'] = before.reason
    if changed:
        check_space(ctx)
        if not module.check_mode:
            seconds = convert(ctx)
            result['timing'] = stream.transfer_stats(ctx.virtual_size, seconds)
    kind_now = targets.dest_kind(ctx.dest)
    result['dest_size'] = dest_size(ctx.dest, kind_now)
    if kind_now == 'file':
        changed = module.set_file_attributes(ctx.dest, changed, diff=diff)
    result['diff'] = diff
    return changed, result


def _glance_name(detected):
    """The Glance format of a detected format: a GPT disk and a LUKS
    container are raw images to Glance."""
    name = qemu_img.to_glance(detected)
    return 'raw' if name in ('gpt', 'luks') else name
