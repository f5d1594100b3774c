# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The rules of plugins/' layout (README, Layout), read from the source with
``ast``: one owner for each outside world, thin modules, type hints on the
core's API. Pure Python, so pre-commit runs it too (``layout`` hook)."""

from __future__ import annotations

import ast
import os
import re

import pytest

PLUGINS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'plugins'))
MODULE_UTILS = os.path.join(PLUGINS, 'module_utils')

# The owner of each outside world, relative to module_utils.
CLOUD_LIBRARIES = ('openstack', 'keystoneauth1', 'requests', 'glanceclient')
CLOUD_OWNER = os.path.join('_openstack', 'session.py')
PROCESS_OWNER = os.path.join('_disk', 'qemu.py')
GLANCE_OWNER = os.path.join('_openstack', 'glance.py')
PROCESS_CALLS = ('run_command', 'Popen', 'system', 'popen', 'fork', 'execv', 'execve', 'execvp', 'spawnv', 'spawnl')
# A Glance API path in a string: only glance.py builds them.
GLANCE_PATH = re.compile(r'^/(v2/)?(images|schemas|stores|info|tasks)(/|$)')
# Lines a module may keep outside DOCUMENTATION, EXAMPLES and RETURN.
MODULE_LINES = 250


def _python_files(top):
    for root, _dirs, files in os.walk(top):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(root, name)


def _tree(path):
    with open(path) as fileobj:
        return ast.parse(fileobj.read(), path)


def _imported(tree):
    """Every module name an import statement names (``from a import b``: a and a.b)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            for alias in node.names:
                yield '%s.%s' % (node.module, alias.name)


def _strings(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _called_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                yield func.id, node.lineno
            elif isinstance(func, ast.Attribute):
                yield func.attr, node.lineno


def _plugin_files():
    return [path for path in _python_files(PLUGINS) if not path.endswith('__init__.py')]


def _rel(path):
    return os.path.relpath(path, MODULE_UTILS)


def test_only_the_session_imports_the_cloud_libraries():
    offenders = []
    for path in _plugin_files():
        if _rel(path) == CLOUD_OWNER:
            continue
        tree = _tree(path)
        for name in _imported(tree):
            if name.split('.')[0] in CLOUD_LIBRARIES:
                offenders.append('%s imports %s' % (path, name))
        for node in _strings(tree):
            # import_submodule('openstack', ...) and friends name the library in a string
            if node.value in CLOUD_LIBRARIES or node.value.startswith(tuple(lib + '.' for lib in CLOUD_LIBRARIES)):
                offenders.append('%s:%d names %r' % (path, node.lineno, node.value))
    assert offenders == []


def test_only_qemu_py_starts_processes():
    offenders = []
    for path in _plugin_files():
        if _rel(path) == PROCESS_OWNER:
            continue
        tree = _tree(path)
        offenders += ['%s imports %s' % (path, name) for name in _imported(tree) if name.split('.')[0] == 'subprocess']
        offenders += ['%s:%d calls %s' % (path, line, name) for name, line in _called_names(tree) if name in PROCESS_CALLS]
    assert offenders == []


def test_only_glance_py_knows_a_glance_url():
    offenders = []
    for path in _plugin_files():
        if _rel(path) == GLANCE_OWNER:
            continue
        offenders += ['%s:%d %r' % (path, node.lineno, node.value) for node in _strings(_tree(path))
                      if GLANCE_PATH.match(node.value)]
    assert offenders == []


def test_disk_never_talks_to_the_cloud():
    offenders = []
    for path in _python_files(os.path.join(MODULE_UTILS, '_disk')):
        offenders += ['%s imports %s' % (path, name) for name in _imported(_tree(path)) if '._openstack' in name]
    assert offenders == []


def _module_paths():
    return sorted(path for path in _python_files(os.path.join(PLUGINS, 'modules')) if not path.endswith('__init__.py'))


@pytest.mark.parametrize('path', _module_paths(), ids=os.path.basename)
def test_a_module_is_docs_argument_spec_and_one_job(path):
    tree = _tree(path)
    with open(path) as fileobj:
        total = len(fileobj.read().splitlines())
    docs = sum(node.end_lineno - node.lineno + 1 for node in tree.body
               if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
               and node.targets[0].id in ('DOCUMENTATION', 'EXAMPLES', 'RETURN'))
    assert total - docs <= MODULE_LINES, '%s keeps %d lines outside its docs' % (path, total - docs)
    # The job's I/O belongs to the core: no file, REST call or process of its own.
    calls = sorted(set(name for name, _line in _called_names(tree) if name in ('open', 'send', 'request') + PROCESS_CALLS))
    assert calls == []


def _public_functions(tree):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('_'):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                        not sub.name.startswith('_') or sub.name == '__init__'):
                    yield '%s.%s' % (node.name, sub.name), sub


def _unannotated(func):
    args = func.args
    missing = [arg.arg for arg in args.posonlyargs + args.args + args.kwonlyargs
               if arg.annotation is None and arg.arg not in ('self', 'cls')]
    missing += ['*' + arg.arg for arg in (args.vararg, args.kwarg) if arg is not None and arg.annotation is None]
    if func.returns is None and func.name != '__init__':
        missing.append('return')
    return missing


def test_the_core_api_has_type_hints():
    offenders = []
    for path in _python_files(MODULE_UTILS):
        for name, func in _public_functions(_tree(path)):
            missing = _unannotated(func)
            if missing:
                offenders.append('%s:%d %s: %s' % (_rel(path), func.lineno, name, ', '.join(missing)))
    assert offenders == []


def test_the_rules_see_a_breach():
    """The readers above find what they look for (so an empty list means clean, not blind)."""
    tree = ast.parse("import subprocess\nfrom openstack import connection\nx = '/v2/images/%s'\n"
                     "def f(a):\n    return run_command(a)\n")
    assert 'subprocess' in list(_imported(tree)) and 'openstack.connection' in list(_imported(tree))
    assert [node.value for node in _strings(tree) if GLANCE_PATH.match(node.value)] == ['/v2/images/%s']
    assert ('run_command', 5) in list(_called_names(tree))
    assert [(name, _unannotated(func)) for name, func in _public_functions(tree)] == [('f', ['a', 'return'])]
