# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Import one submodule of a third-party package without the package's own
``__init__``, for start-up time.

Every module run is a new Python process, so its imports are paid on every
task. Some packages import far more in their ``__init__`` than the one
submodule used here: ``openstack/__init__`` imports the SDK's whole cloud
layer and every service proxy (about 0.2 s) where only ``openstack.config``
is used; ``oslo_utils.imageutils`` imports its qemu-img output parser and
with it ``oslo_utils.strutils``, which compiles a hundred regular
expressions at import, where only ``format_inspector`` is used.

Private to the collection; not a public API.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def import_submodule(package: str, submodule: str) -> types.ModuleType:
    """``importlib.import_module(package + '.' + submodule)``, but when
    ``package`` is not imported yet it is registered without running its
    ``__init__``.

    The package stays complete for anyone else: the first time something
    asks it for a name that is not one of its submodules (``openstack.connect``,
    say), its ``__init__`` runs and the name is returned. If the partial import
    fails for any reason, the package is imported normally instead.
    """
    name = '%s.%s' % (package, submodule)
    if package in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        return importlib.import_module(name)
    module = importlib.util.module_from_spec(spec)

    def complete(attr):
        # PEP 562: called only for names the module does not have yet. A
        # submodule's name is left to the import system ("from openstack
        # import exceptions" asks the package for it before importing it).
        if not attr.startswith('__') and importlib.util.find_spec('%s.%s' % (package, attr)) is not None:
            raise AttributeError(attr)
        del module.__getattr__
        spec.loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = complete
    sys.modules[package] = module
    parent, dummy, child = package.rpartition('.')
    if parent:
        # As the import system does: a subpackage is an attribute of its parent.
        setattr(sys.modules[parent], child, module)
    try:
        return importlib.import_module(name)
    except Exception:  # pylint: disable=broad-except  # fall back to the plain import
        prefix = package + '.'
        for loaded in [loaded for loaded in sys.modules if loaded == package or loaded.startswith(prefix)]:
            del sys.modules[loaded]
        return importlib.import_module(name)


class LazyModule(object):
    """A stand-in for a module that imports it on first attribute access, for
    libraries only some runs need (cryptography's x509 and public-key modules
    cost about 0.05 s and are used only for signed images). ``load()``
    imports it now (ImportError when it cannot be imported)."""

    def __init__(self, name: str) -> None:
        self.__dict__['_lazy_name'] = name

    def load(self) -> types.ModuleType:
        return importlib.import_module(self.__dict__['_lazy_name'])

    def __getattr__(self, attr):
        if attr.startswith('__'):
            raise AttributeError(attr)
        return getattr(self.load(), attr)


def lazy_module(name: str) -> LazyModule:
    """``LazyModule(name)``."""
    return LazyModule(name)
