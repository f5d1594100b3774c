# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""cryptography's modules, shared by signing (``_signing``) and signature
checking (``_signature``), imported on first use.

Only a run that signs or checks a signature needs them, and they cost about
0.05 s of every module run (x509 and the public-key modules).

Private to the collection; not a public API.
"""

from __future__ import annotations

import importlib.util
import traceback

from ansible_collections.osimage.glance.plugins.module_utils._imports import lazy_module

exceptions = lazy_module('cryptography.exceptions')
x509 = lazy_module('cryptography.x509')
hashes = lazy_module('cryptography.hazmat.primitives.hashes')
serialization = lazy_module('cryptography.hazmat.primitives.serialization')
dsa = lazy_module('cryptography.hazmat.primitives.asymmetric.dsa')
ec = lazy_module('cryptography.hazmat.primitives.asymmetric.ec')
padding = lazy_module('cryptography.hazmat.primitives.asymmetric.padding')
rsa = lazy_module('cryptography.hazmat.primitives.asymmetric.rsa')
asym_utils = lazy_module('cryptography.hazmat.primitives.asymmetric.utils')
_MODULES = (exceptions, x509, hashes, serialization, dsa, ec, padding, rsa, asym_utils)

IMPORT_ERROR = None
if importlib.util.find_spec('cryptography') is None:
    IMPORT_ERROR = 'No module named cryptography (cryptography is not installed).'


def load():
    """Import the modules now; returns None, or the reason they cannot be
    imported (a traceback or IMPORT_ERROR)."""
    if IMPORT_ERROR is not None:
        return IMPORT_ERROR
    try:
        for module in _MODULES:
            module.load()
    except ImportError:
        return traceback.format_exc()
    return None
