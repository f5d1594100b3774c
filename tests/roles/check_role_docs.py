#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Check that `ansible-doc -t role` renders every role of the collection.

  check_role_docs.py [ROLE...]      (default: every directory under roles/)

ansible-doc prints nothing and exits 0 for a role without meta/argument_specs.yml,
so for each role this asserts what a reader of the documentation relies on:
the text rendering is not empty, the `main` entry point has a short description,
a description and an author, and every variable in defaults/main.yml is documented
as an option of `main`. Needs ANSIBLE_COLLECTIONS_PATH to find the collection
(tests/run.sh sets it) and ansible-doc on PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = 'osimage.glance'


def ansible_doc(*args):
    """Run ansible-doc for roles; return (exit code, stdout, stderr)."""
    proc = subprocess.run(['ansible-doc', '-t', 'role'] + list(args), capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def role_defaults(role):
    """Variable names the role sets in defaults/main.yml (empty when it has none)."""
    path = os.path.join(REPO, 'roles', role, 'defaults', 'main.yml')
    if not os.path.exists(path):
        return []
    with open(path, encoding='utf-8') as f:
        return sorted(yaml.safe_load(f) or {})


def problems_of(role):
    """List what is wrong with one role's rendered documentation."""
    name = '%s.%s' % (COLLECTION, role)
    rc, text, err = ansible_doc(name)
    if rc != 0:
        return ['ansible-doc %s failed (rc %d): %s' % (name, rc, err.strip())]
    if not text.strip():
        return ['ansible-doc %s rendered nothing: add roles/%s/meta/argument_specs.yml' % (name, role)]
    rc, out, err = ansible_doc('--json', name)
    if rc != 0:
        return ['ansible-doc --json %s failed (rc %d): %s' % (name, rc, err.strip())]
    entry_points = json.loads(out).get(name, {}).get('entry_points', {})
    main = entry_points.get('main')
    if main is None:
        return ['%s has no `main` entry point in meta/argument_specs.yml (has: %s)' % (name, ', '.join(sorted(entry_points)) or 'none')]
    found = []
    for key in ('short_description', 'description', 'author'):
        if not main.get(key):
            found.append('%s: entry point main has no %s' % (name, key))
    options = main.get('options') or {}
    for variable in role_defaults(role):
        if variable not in options:
            found.append('%s: defaults/main.yml sets %s, which meta/argument_specs.yml does not document' % (name, variable))
    return found


def main(argv):
    roles_dir = os.path.join(REPO, 'roles')
    roles = argv or sorted(entry for entry in os.listdir(roles_dir) if os.path.isdir(os.path.join(roles_dir, entry)))
    failed = 0
    for role in roles:
        found = problems_of(role)
        for problem in found:
            print('FAIL %s' % problem)
        if found:
            failed += 1
        else:
            print('ok   ansible-doc -t role %s.%s' % (COLLECTION, role))
    print('role docs: %d ok, %d with problems' % (len(roles) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
