# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Verification in one read pass: checksums, the Glance image signature and
the disk format together, shared by the verify and fetch jobs
(``_jobs.verify``, ``_jobs.fetch``).

A ``Verification`` is prepared before any data is read, so that everything
that can fail without the data (incomplete signature metadata, an unusable
or untrusted certificate, a declared format that is not allowed) fails
first. Each read pass then gets a ``ReadPass``: its ``consumers()`` go to
``stream.pump`` beside whatever else the pass feeds (a download's
writer), so hashing, the signature's digest and the format inspection run
in threads of their own. ``Verification.evaluate`` judges the pass
afterwards and raises one VerificationError that has a sentence, and an
entry in ``failures``, for every check that failed.

Private to the collection; not a public API.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust

CHECK_ORDER = ('checksum', 'signature', 'format')
# The exceptions one check can end with; anything else ends the run.
CHECK_ERRORS = (errors.IntegrityError, errors.SignatureError, errors.FormatError)


class Expectations(object):
    """What the data must be: from a Glance image or from the options."""

    def __init__(self) -> None:
        self.image = None
        self.digests = {}
        self.digest_origin = 'given'
        self.size = None
        self.disk_format = None
        self.signature_props = {}

    @classmethod
    def from_image(cls, image: Dict[str, Any], states: Sequence[str] = ('active', 'deactivated')) -> 'Expectations':
        exp = cls()
        exp.image = image
        exp.digest_origin = 'Glance image %s' % image['id']
        if image.get('status') not in states:
            raise errors.ImageStateError(
                'Image %s (%s) is %s: it has no data, so there is nothing to verify against.'
                % (image['id'], image.get('name'), image.get('status')), status=image.get('status'))
        if image.get('os_hash_algo') and image.get('os_hash_value'):
            exp.digests[image['os_hash_algo']] = image['os_hash_value'].lower()
        if image.get('checksum'):
            exp.digests.setdefault('md5', image['checksum'].lower())
        exp.size = image.get('size')
        exp.disk_format = image.get('disk_format')
        exp.signature_props = dict((name, image.get(name)) for name in trust.SIGNATURE_PROPERTIES)
        return exp

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> 'Expectations':
        exp = cls()
        if params['hash_algo'] and params['hash_value']:
            exp.digests[params['hash_algo'].lower()] = params['hash_value'].strip().lower()
        if params['checksum']:
            exp.digests.setdefault('md5', params['checksum'].strip().lower())
        exp.disk_format = params['disk_format']
        exp.signature_props = dict((name, params[name]) for name in trust.SIGNATURE_PROPERTIES)
        return exp

    def describe_image(self) -> Optional[Dict[str, Any]]:
        if self.image is None:
            return None
        image = self.image
        return dict(id=image['id'], name=image.get('name'), disk_format=image.get('disk_format'),
                    size=image.get('size'))


def certificate_store(api: Any) -> trust.CertificateStore:
    """Certificates by reference; Barbican secrets are fetched through
    ``api`` (the user's own credentials) when there is one."""
    if api is None:
        return trust.CertificateStore()
    return trust.CertificateStore(
        fetch_secret=lambda uuid: api.barbican.get_secret_payload(uuid, 'Fetching certificate %s from Barbican' % uuid))


class ReadPass(object):
    """What one read of the data feeds: the digests (one thread each) and
    the format inspector (a thread of its own)."""

    def __init__(self, algos: Iterable[str], inspection: Optional[inspect.Inspection]) -> None:
        for algo in algos:
            stream.new_digest(algo)  # an unknown algorithm is refused before reading
        self.digests = stream.Digests(sorted(algos))
        self.inspection = inspection
        self._inspect = inspection.consumer() if inspection is not None else None

    @property
    def size(self) -> int:
        return self.digests.size

    def consumers(self) -> List[Any]:
        """For ``stream.pump``, beside the pass's other consumers."""
        consumers = self.digests.consumers()
        if self._inspect is not None:
            consumers.append(self._inspect)
        return consumers

    def finish(self) -> None:
        """After the last chunk."""
        if self.inspection is not None:
            self.inspection.finish()

    def hexdigests(self) -> Dict[str, str]:
        return self.digests.hexdigests()


class Verification(object):
    """The checks for some data, prepared before it is read.

    ``checks`` is a sub-list of CHECK_ORDER. ``signature`` is the prepared
    ``trust.SignatureCheck``, or None: then ``unsigned`` says whether the
    signature check ran and found the image unsigned (which passed).
    """

    def __init__(self, what: str, exp: Expectations, checks: Iterable[str], signature: Any = None,
                 unsigned: bool = False, trusted: bool = False, allowed_formats: Optional[List[str]] = None,
                 max_virtual_size: Optional[int] = None) -> None:
        self.what = what
        self.exp = exp
        self.checks = list(checks)
        self.signature = signature
        self.unsigned = unsigned
        self.trusted = trusted
        self.allowed_formats = allowed_formats
        self.max_virtual_size = max_virtual_size

    @classmethod
    def prepare(cls, what: str, exp: Expectations, checks: Iterable[str], store: trust.CertificateStore,
                certificate_path: Optional[str] = None, trusted_certificates: Optional[List[str]] = None,
                require_signature: Any = False, allowed_formats: Optional[List[str]] = None,
                max_virtual_size: Optional[int] = None) -> 'Verification':
        """Everything that can fail without the data fails here: unknown
        digest algorithms, the signature metadata and certificates (read
        and trust-checked now), a declared format that is not allowed."""
        for algo in exp.digests:
            stream.new_digest(algo)
        signature = None
        unsigned = False
        if 'signature' in checks:
            signature = trust.prepare(
                exp.signature_props, what, store, certificate_path=certificate_path,
                trusted_certificates=trusted_certificates, require=require_signature)
            unsigned = signature is None
        if 'format' in checks:
            inspect.require_oslo_utils()
            if allowed_formats and exp.disk_format:
                inspect.check_limits(exp.disk_format, None, what, allowed_formats=allowed_formats)
        return cls(what, exp, checks, signature=signature, unsigned=unsigned, trusted=bool(trusted_certificates),
                   allowed_formats=allowed_formats, max_virtual_size=max_virtual_size)

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def start(self, extra_algos: Iterable[str] = (), what: Optional[str] = None) -> ReadPass:
        """A fresh ReadPass for one read of the data; ``extra_algos`` are
        digests the caller needs from the same pass."""
        algos = set(extra_algos)
        if 'checksum' in self.checks:
            algos.update(self.exp.digests)
        if self.signature is not None:
            algos.add(self.signature.digest_algo)
        inspection = None
        if 'format' in self.checks:
            inspection = inspect.Inspection(what or self.what, self.exp.disk_format)
        return ReadPass(algos, inspection)

    def compare_checksums(self, rpass: ReadPass, what: Optional[str] = None) -> List[str]:
        """Size (when known) and every expected digest; returns the
        algorithms that matched or raises one IntegrityError for all
        mismatches."""
        exp = self.exp
        problems = []
        if exp.size is not None and rpass.size != exp.size:
            problems.append('size expected %d bytes (%s), found %d' % (exp.size, exp.digest_origin, rpass.size))
        actual = rpass.hexdigests()
        matched = []
        for algo, expected in exp.digests.items():
            if actual[algo] == expected:
                matched.append(algo)
            else:
                problems.append('%s expected %s (%s), found %s' % (algo, expected, exp.digest_origin, actual[algo]))
        if problems:
            raise errors.IntegrityError('checksum check failed for %s: %s.' % (what or self.what, '; '.join(problems)),
                                        check='checksum')
        return matched

    def evaluate(self, rpass: ReadPass, path: str, qemu_img: Any = None) -> Dict[str, Any]:
        """Judge a finished read pass over the file at ``path`` (qemu-img's
        cross-check reads it, and only once the inspector has passed it).

        Returns ``dict(checks, verified_digests, signature, format,
        detected_format, virtual_size)``; raises one VerificationError for
        every check that failed, with ``failures`` and those keys as details.
        """
        result = dict(checks=list(self.checks), verified_digests=[], signature=None, format=None,
                      detected_format=None, virtual_size=None)
        failures = []

        def attempt(check, func):
            try:
                func()
            except CHECK_ERRORS as exc:
                failures.append(dict(check=check, msg=exc.msg))

        def checksum():
            result['verified_digests'] = self.compare_checksums(rpass)

        def signature():
            verified = self.signature.verify(bytes.fromhex(rpass.hexdigests()[self.signature.digest_algo]))
            verified['trusted'] = self.trusted
            result['signature'] = verified

        def disk_format():
            found = inspect.evaluate(rpass.inspection, path, allowed_formats=self.allowed_formats,
                                     max_virtual_size=self.max_virtual_size, qemu_img=qemu_img)
            result['format'] = found
            result['detected_format'] = found['detected_format']
            result['virtual_size'] = found['virtual_size']

        if 'checksum' in self.checks:
            attempt('checksum', checksum)
        if self.signature is not None:
            attempt('signature', signature)
        elif self.unsigned:
            result['signature'] = dict(trust.unsigned_result(), trusted=False)
        if rpass.inspection is not None:
            attempt('format', disk_format)
        if failures:
            raise errors.VerificationError(' '.join(failure['msg'] for failure in failures), failures=failures,
                                           **result)
        return result
