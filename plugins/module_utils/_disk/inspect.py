# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Disk-format safety: is this file what it claims to be, and is it safe to
hand to qemu-img?

Three layers, in this order, each only when the previous one passed:

1. oslo.utils' format inspector looks at the bytes while they stream by (it
   rides along the one read pass): which format the content really is, and
   that format's safety checks (qcow2 backing file, external data file and
   unknown features; vmdk createType and extents; the MBR/GPT partition
   table; LUKS; qed is refused outright).
2. The detected format must be the declared ``disk_format``, with the
   exceptions nova makes: ``raw`` covers a disk with a GPT partition table,
   and the AMI family (``ami``/``aki``/``ari``) may hold anything safe.
3. Only then is qemu-img asked, always with ``-f <detected format>`` so it
   never probes: ``qemu-img info`` must agree on the format and show neither
   a backing file nor a data file, and ``qemu-img check`` (formats that have
   one) must find no corruption, which is how a truncated image shows.
   Limits on the allowed formats and the virtual size come last.

Private to the collection; not a public API.
"""

from __future__ import annotations

import logging
import os
import traceback
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._imports import import_submodule


OSLO_IMPORT_ERROR = None


try:
    # Without oslo_utils.imageutils' __init__ and its qemu-img output parser,
    # which is not used here (see _imports).
    format_inspector = import_submodule('oslo_utils.imageutils', 'format_inspector')
except ImportError:  # reported through errors.MissingLibraryError when needed
    format_inspector = None
    OSLO_IMPORT_ERROR = traceback.format_exc()


HAS_OSLO_UTILS = OSLO_IMPORT_ERROR is None


if HAS_OSLO_UTILS:
    # The inspector logs every failed check as a warning; the failures are
    # reported in the module result instead, so keep stderr quiet.
    logging.getLogger(format_inspector.__name__).addHandler(logging.NullHandler())
    logging.getLogger(format_inspector.__name__).propagate = False


# Amazon kernel, ramdisk and machine images: nova does not hold their content
# to the declared format (their header says nothing about what they are).
AMI_FAMILY = ('ami', 'aki', 'ari')


# What each oslo.utils safety check protects against, for the message.
_SAFETY_EXPLANATIONS = {
    'backing_file': 'it names a backing file, so using it would read another file of the host',
    'data_file': 'it keeps its data in an external data file, which would be read from the host',
    'unknown_features': 'it uses qcow2 features (or a version) this inspector does not know',
    'descriptor': 'its vmdk descriptor is not a single self-contained monolithicSparse or '
                  'streamOptimized image (its extents may point at other files)',
    'footer': 'its vmdk footer does not match its header',
    'mbr': 'its MBR/GPT partition table is invalid',
    'banned': 'this format is never allowed',
    'version': 'its LUKS version is not supported',
    'passphrase': 'it is encrypted (LUKS) and cannot be inspected without the passphrase',
}


def require_oslo_utils() -> None:
    if not HAS_OSLO_UTILS:
        raise errors.MissingLibraryError(
            'The format check needs the Python library oslo.utils (its format_inspector) on the host '
            'that runs the module: pip install oslo.utils.', exception=OSLO_IMPORT_ERROR)


def qemu_format(glance_format: str) -> str:
    """The qemu-img driver name for a Glance disk_format (or detected format)."""
    return qemu.to_qemu(glance_format)


def glance_format(qemu_name: str) -> str:
    return qemu.to_glance(qemu_name)


def known_formats() -> List[str]:
    """The formats the inspector can recognise, by name."""
    require_oslo_utils()
    return sorted(format_inspector.ALL_FORMATS)


class _Slot(object):
    """The iterator an InspectWrapper pulls from when chunks are pushed to
    it: it holds the one chunk just handed over."""

    def __init__(self):
        self.chunk = None

    def __iter__(self):
        return self

    def __next__(self):
        chunk, self.chunk = self.chunk, None
        if chunk is None:
            raise StopIteration
        return chunk


class Inspection(object):
    """The format inspector riding along a read pass.

    ``wrap(chunks)`` returns the chunks unchanged while oslo.utils' stream
    wrapper looks at them; after the last chunk ``detected()`` names the
    format and ``inspector`` is the one that matched.
    """

    def __init__(self, what: str, declared: Optional[str] = None, option: str = 'disk_format') -> None:
        """``option``: the option that declared the format, for messages."""
        require_oslo_utils()
        self.what = what
        self.declared = declared
        self.option = option
        self._wrapper = None
        self.inspector = None

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self._wrapper = format_inspector.InspectWrapper(iter(chunks))
        return self._wrapper

    def consumer(self) -> Callable[[bytes], None]:
        """The inspector as a ``pump`` consumer, so that it looks at the
        chunks in a thread of its own beside the digests and the writer.
        Call ``finish()`` after the last chunk."""
        slot = _Slot()
        self._wrapper = format_inspector.InspectWrapper(slot)

        def consume(chunk):
            slot.chunk = chunk
            next(self._wrapper)
        return consume

    def finish(self) -> None:
        """End of the data fed through ``consumer()``: formats that were
        still undecided are decided now."""
        if self._wrapper is not None:
            self._wrapper.close()

    def fail(self, text: str, **details: Any) -> errors.FormatError:
        details.setdefault('check', 'format')
        return errors.FormatError('format check failed for %s: %s' % (self.what, text), **details)

    def detected(self) -> str:
        """The detected format's name; the inspector is kept in ``inspector``."""
        if self._wrapper is None:
            raise RuntimeError('Inspection.wrap() was never given the data')
        try:
            matches = self._wrapper.formats
        except format_inspector.ImageFormatError as exc:
            raise self.fail('the content matches no known disk format: %s.' % exc)
        if matches is None:
            raise self.fail('the data ended before its format could be recognised.')
        names = sorted(str(match) for match in matches)
        if len(matches) > 1:
            # A bootable ISO also carries an MBR (declared iso, or nothing
            # declared and detected); anything else with two headers may
            # hide one format inside another.
            if self.declared in ('iso', None) and names == ['gpt', 'iso']:
                matches = [match for match in matches if str(match) == 'iso']
            else:
                raise self.fail(
                    'the content matches several disk formats at once (%s); an image that hides one '
                    'format inside another is refused.' % ', '.join(names), detected_formats=names)
        self.inspector = matches[0]
        return str(self.inspector)

    def safety_check(self) -> None:
        """Run the detected format's own safety checks."""
        fmt = str(self.inspector)
        try:
            self.inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            reasons = []
            for name in sorted(exc.failures):
                base = name[len('inner_'):] if name.startswith('inner_') else name
                explanation = _SAFETY_EXPLANATIONS.get(base)
                found = str(exc.failures[name])
                reasons.append('%s ("%s")%s' % (name, found, ': ' + explanation if explanation else ''))
            raise self.fail('the content is %s and fails its safety check%s: %s.'
                            % (fmt, 's' if len(reasons) > 1 else '', '; '.join(reasons)),
                            detected_format=fmt, safety_checks_failed=sorted(exc.failures))
        except format_inspector.ImageFormatError as exc:
            raise self.fail('the content looks like %s but cannot be parsed as such: %s.' % (fmt, exc),
                            detected_format=fmt)


def check_declared(detected: str, declared: Optional[str], what: str, option: str = 'disk_format') -> None:
    """Refuse content whose format is not the declared disk_format, with
    nova's exceptions (raw covers gpt; the AMI family is not compared).
    ``option`` names the option that declared it in the message."""
    if not declared or declared in AMI_FAMILY:
        return
    if detected == declared:
        return
    if declared == 'raw' and detected == 'gpt':
        return
    hint = ''
    if declared not in format_inspector.ALL_FORMATS:
        hint = (' (%s content cannot be recognised by the inspector, so it cannot be shown to be safe)'
                % declared)
    raise errors.FormatError(
        'format check failed for %s: %s is declared as %s but the content is %s%s.'
        % (what, option, declared, detected, hint), check='format', declared_format=declared, detected_format=detected)


def effective_format(detected: str, declared: Optional[str]) -> str:
    """The Glance name the allowed_formats limit applies to: the declared
    format once it matched (so raw covers gpt), else the detected one."""
    if declared:
        return declared
    return 'raw' if detected == 'gpt' else detected


def cross_check(path: str, detected: str, what: str, qemu_img: qemu.InspectQemuImg) -> Dict[str, Any]:
    """qemu-img's view of a file the inspector has passed; returns its info."""
    fmt = qemu_format(detected)
    # An absolute path: qemu-img never reads it as a protocol ("json:", "nbd:").
    path = os.path.abspath(path)
    info = qemu_img.info(path, fmt, what)
    if info.get('format') != fmt:
        raise errors.FormatError(
            'format check failed for %s: the inspector found %s but qemu-img reads it as %s.'
            % (what, detected, info.get('format')), check='format', detected_format=detected)
    backing = info.get('full-backing-filename') or info.get('backing-filename')
    if backing:
        raise errors.FormatError(
            'format check failed for %s: qemu-img shows a backing file, %s; an image must not read '
            'other files of the host.' % (what, backing), check='format', backing_file=backing)
    specific = (info.get('format-specific') or {}).get('data') or {}
    if specific.get('data-file'):
        raise errors.FormatError(
            'format check failed for %s: qemu-img shows an external data file, %s; an image must not '
            'read other files of the host.' % (what, specific['data-file']), check='format',
            data_file=specific['data-file'])
    own = os.path.realpath(path)
    for extent in specific.get('extents') or []:
        filename = extent.get('filename')
        if filename and os.path.realpath(filename) != own:
            raise errors.FormatError(
                'format check failed for %s: qemu-img shows a vmdk extent in another file, %s; an image '
                'must not read other files of the host.' % (what, filename), check='format', extent=filename)
    if fmt != 'raw':
        # A truncated image shows up here as corruption and not in "info".
        report = qemu_img.check(path, fmt, what)
        if report and (report.get('corruptions') or report.get('check-errors')):
            raise errors.FormatError(
                'format check failed for %s: qemu-img check finds the %s image damaged (%d corruption(s), '
                '%d check error(s)); it is truncated or corrupt. Its metadata ends at byte %s.'
                % (what, fmt, report.get('corruptions') or 0, report.get('check-errors') or 0,
                   report.get('image-end-offset', 'unknown')), check='format', detected_format=detected)
    return info


def check_limits(fmt: str, virtual_size: Optional[int], what: str,
                 allowed_formats: Optional[Sequence[str]] = None, max_virtual_size: Optional[int] = None) -> None:
    if allowed_formats and fmt not in allowed_formats:
        raise errors.FormatError(
            'format check failed for %s: the format %s is not in allowed_formats (%s).'
            % (what, fmt, ', '.join(allowed_formats)), check='format', detected_format=fmt)
    if max_virtual_size is not None and virtual_size is not None and virtual_size > max_virtual_size:
        raise errors.FormatError(
            'format check failed for %s: the virtual size is %d bytes, more than max_virtual_size %d.'
            % (what, virtual_size, max_virtual_size), check='format', virtual_size=virtual_size,
            max_virtual_size=max_virtual_size)


def evaluate(inspection: Inspection, path: str, allowed_formats: Optional[Sequence[str]] = None,
             max_virtual_size: Optional[int] = None, qemu_img: Optional[qemu.InspectQemuImg] = None) -> Dict[str, Any]:
    """Every format check on a file whose bytes went through ``inspection``.

    Returns ``dict(detected_format, declared_format, virtual_size,
    qemu_img_format)``; raises FormatError at the first failure. qemu-img is
    not run unless the inspector has passed the file.
    """
    what = inspection.what
    declared = inspection.declared
    detected = inspection.detected()
    inspection.safety_check()
    check_declared(detected, declared, what, inspection.option)
    # Refuse a format that is not allowed before qemu-img touches it.
    fmt = effective_format(detected, declared)
    check_limits(fmt, None, what, allowed_formats=allowed_formats)
    info = cross_check(path, detected, what, qemu_img or qemu.InspectQemuImg())
    virtual_size = info.get('virtual-size')
    if virtual_size is None:
        virtual_size = inspection.inspector.virtual_size
    check_limits(fmt, virtual_size, what, max_virtual_size=max_virtual_size)
    return dict(detected_format=detected, declared_format=declared, virtual_size=virtual_size,
                qemu_img_format=info.get('format'))


# The most of the data held back for the format inspector before a block
# device is written. Every inspector has decided on raw data after 256 KiB.
HEAD_BYTES = 8 * 1024 * 1024


class HeadInspection(Inspection):
    """An Inspection fed by hand that can tell, before the data ends,
    whether the inspector has decided."""

    def __init__(self, what: str, declared: Optional[str]) -> None:
        super(HeadInspection, self).__init__(what, declared)
        self.feed = self.consumer()

    def decided(self) -> bool:
        return self._wrapper.formats is not None


class HeadCheck(object):
    """Holds the first chunks of the data back until the format inspector
    has judged them raw (the image's declared format on a block device);
    only then are they passed on, followed by the rest. A refusal therefore
    comes before the destination has seen a byte."""

    def __init__(self, what: str, dest: str, limit: int = HEAD_BYTES) -> None:
        self.what = what
        self.dest = dest
        self.limit = limit
        self.inspection = HeadInspection(what, 'raw')
        self.head_bytes = 0

    def chunks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        chunks = iter(chunks)
        head = []
        for chunk in chunks:
            head.append(chunk)
            self.head_bytes += len(chunk)
            self.inspection.feed(chunk)
            if self.inspection.decided() or self.head_bytes >= self.limit:
                break
        else:
            self.inspection.finish()
        self.judge()
        yield from head
        yield from chunks

    def judge(self) -> None:
        if not self.inspection.decided():
            raise errors.FormatError(
                'format check failed for %s: the format inspector could not tell from the first %d bytes whether '
                'the data is raw, and only raw data is written to block device %s.'
                % (self.what, self.head_bytes, self.dest), check='format')
        detected = self.inspection.detected()
        self.inspection.safety_check()
        check_declared(detected, 'raw', self.what)


class ExtentQemuImg(qemu.InspectQemuImg):
    """qemu-img that sees only the first ``size`` bytes of a block device
    (the image, on a device that is usually larger), rounded up to the 512
    bytes qemu-img counts in; the same as it reports for a raw file."""

    def __init__(self, size: int, **kwargs: Any) -> None:
        super(ExtentQemuImg, self).__init__(**kwargs)
        self.size = -(-int(size) // 512) * 512

    def info(self, path: str, fmt: str, what: str) -> Dict[str, Any]:
        filename, driver = qemu.json_filename(path, fmt, size=self.size)
        return super(ExtentQemuImg, self).info(filename, driver, what)
