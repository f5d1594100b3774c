# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Domain exceptions of osimage.glance.

They are raised deep in the core and turned into ``fail_json`` in exactly one
place (``_module.GlanceModule.run``). Each carries a message meant for an
operator: what went wrong and what to do about it, plus optional structured
details that end up in the module result.

Private to the collection; not a public API.
"""

from __future__ import annotations

from typing import Any


class OsimageError(Exception):
    """Base class: an error that ends a module run with one clear message."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class CloudConfigError(OsimageError):
    """The cloud options or clouds.yaml cannot produce a connection."""


class AuthenticationError(OsimageError):
    """Keystone refused the credentials (401)."""


class NotAuthorizedError(OsimageError):
    """The credentials are valid but not allowed to do this (403)."""


class NotFoundError(OsimageError):
    """The thing asked for does not exist or is not visible (404)."""


class AmbiguousImageError(OsimageError):
    """More than one image answers to a name."""


class BadRequestError(OsimageError):
    """The service rejected the request (400) with a reason."""


class ConflictError(OsimageError):
    """The request conflicts with the current state (409)."""


class OverQuotaError(OsimageError):
    """A quota or size limit was hit (413)."""


class ServiceUnavailableError(OsimageError):
    """The service could not be reached after the bounded retries."""


class IntegrityError(OsimageError):
    """Data does not match the hash it must have."""


class TransferError(OsimageError):
    """A transfer failed half way (connection lost, timeout)."""


class DestinationError(OsimageError):
    """The destination cannot be written (no space, permissions, not a file)."""


class ImageStateError(OsimageError):
    """The image is not in a state that allows the operation."""


class MissingLibraryError(OsimageError):
    """A Python library the requested work needs is not installed."""


class FormatError(OsimageError):
    """The image's disk format is unsafe, unexpected or not allowed."""


class SignatureError(OsimageError):
    """The image's signature, its metadata or its certificate does not check out."""


class VerificationError(OsimageError):
    """One or more verification checks failed (the message lists each)."""


class AmbiguousProjectError(OsimageError):
    """More than one Keystone project answers to a name."""


class InvalidOptionsError(OsimageError):
    """The options contradict each other or what the image allows."""


class QemuImgError(OsimageError):
    """qemu-img is missing, failed, or was stopped by its resource limits."""
