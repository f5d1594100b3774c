# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The AWX execution environment's build context, as `tests/run.sh ee` renders it with ansible-builder.

Checks what `podman build` of that context would install, without a container engine or network:
the base image and ansible-core the definition asks for, this collection's tarball, and, by running the
context's own introspection script (the step the image build runs) on that tarball, the Python and
system packages the collection declares in meta/execution-environment.yml.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARBALL = 'osimage-glance.tar.gz'


def read_text(*parts):
    with open(os.path.join(*parts), encoding='utf-8') as f:
        return f.read()


def requirement_lines(text):
    """The requirement lines of a requirements.txt or bindep.txt (no comments, no blank lines)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith('#')]


@pytest.fixture(scope='module', name='context')
def fixture_context():
    context = os.environ.get('EE_CONTEXT', os.path.join(REPO, 'tests', 'output', 'ee', 'context'))
    if not os.path.isfile(os.path.join(context, 'Containerfile')):
        pytest.fail('no rendered build context at %s: run `tests/run.sh ee` (or set EE_CONTEXT)' % context)
    return context


@pytest.fixture(scope='module', name='definition')
def fixture_definition():
    return yaml.safe_load(read_text(REPO, 'execution-environment.yml'))


@pytest.fixture(scope='module', name='containerfile')
def fixture_containerfile(context):
    return read_text(context, 'Containerfile')


@pytest.fixture(scope='module', name='tarball')
def fixture_tarball(context):
    with tarfile.open(os.path.join(context, '_build', 'collections', TARBALL)) as tar:
        yield tar


def tarball_text(tar, name):
    return tar.extractfile(name).read().decode('utf-8')


def test_base_image_is_the_default_and_overridable(definition, containerfile):
    base = definition['images']['base_image']['name']
    assert 'ARG EE_BASE_IMAGE="%s"' % base in containerfile
    assert 'FROM $EE_BASE_IMAGE AS base' in containerfile


def test_ansible_core_is_the_tested_one(definition, containerfile):
    tested = [line for line in requirement_lines(read_text(REPO, 'tests', 'requirements.txt')) if line.startswith('ansible-core==')]
    assert len(tested) == 1, 'tests/requirements.txt must pin ansible-core exactly once'
    assert definition['dependencies']['ansible_core']['package_pip'] == tested[0]
    install_refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.MULTILINE)
    assert install_refs is not None
    assert tested[0] in install_refs.group(1).split()
    assert any(ref.startswith('ansible-runner') for ref in install_refs.group(1).split())


def test_galaxy_stage_installs_the_collection_tarball(context, containerfile):
    requirements = yaml.safe_load(read_text(context, '_build', 'requirements.yml'))
    assert requirements['collections'] == [{'name': 'collections/%s' % TARBALL, 'type': 'file'}]
    # The galaxy stage copies _build to /build and installs from there.
    assert os.path.isfile(os.path.join(context, '_build', 'collections', TARBALL))
    assert 'COPY _build /build' in containerfile
    assert re.search(r'ansible-galaxy collection install .*-r requirements\.yml', containerfile)


def test_tarball_is_this_collection(tarball):
    manifest = json.loads(tarball_text(tarball, 'MANIFEST.json'))['collection_info']
    galaxy = yaml.safe_load(read_text(REPO, 'galaxy.yml'))
    assert (manifest['namespace'], manifest['name'], manifest['version']) == (galaxy['namespace'], galaxy['name'], galaxy['version'])
    for name in ('requirements.txt', 'bindep.txt', 'meta/execution-environment.yml', 'meta/runtime.yml'):
        assert tarball_text(tarball, name) == read_text(REPO, name), '%s in the tarball differs from the repository' % name


def test_tarball_has_every_role_and_playbook_and_no_test_scaffolding(tarball):
    names = set(tarball.getnames())
    for role in os.listdir(os.path.join(REPO, 'roles')):
        if os.path.isfile(os.path.join(REPO, 'roles', role, 'tasks', 'main.yml')):
            assert 'roles/%s/tasks/main.yml' % role in names
            assert 'roles/%s/meta/argument_specs.yml' % role in names
    for playbook in os.listdir(os.path.join(REPO, 'playbooks')):
        assert 'playbooks/%s' % playbook in names
    unwanted = ['.venv/*', '.localcloud/*', 'tests/output/*', 'roles/*/molecule/*', 'build/*', '*.tar.gz']
    assert [name for name in names if any(fnmatch.fnmatch(name, pattern) for pattern in unwanted)] == []


def test_introspection_installs_the_declared_dependencies(context, tarball, tmp_path):
    """Run the build's introspection step on the installed collection, as the builder stage does."""
    install = tmp_path / 'ansible_collections' / 'osimage' / 'glance'
    install.mkdir(parents=True)
    tarball.extractall(install, filter='data')
    pip_out, bindep_out = tmp_path / 'requirements.txt', tmp_path / 'bindep.txt'
    subprocess.run([sys.executable, os.path.join(context, '_build', 'scripts', 'introspect.py'), 'introspect', str(tmp_path),
                    '--write-pip', str(pip_out), '--write-bindep', str(bindep_out)],
                   check=True, capture_output=True, text=True)
    for declared, written in (('requirements.txt', pip_out), ('bindep.txt', bindep_out)):
        expected = requirement_lines(read_text(REPO, declared))
        assert expected, '%s declares nothing' % declared
        got = written.read_text(encoding='utf-8').splitlines()
        assert got == ['%s  # from collection osimage.glance' % line for line in expected]


def test_collection_metadata_paths_are_relative_to_the_collection_root():
    meta = yaml.safe_load(read_text(REPO, 'meta', 'execution-environment.yml'))
    assert meta['version'] == 3
    assert meta['dependencies'] == {'python': 'requirements.txt', 'system': 'bindep.txt'}
    for path in meta['dependencies'].values():
        assert os.path.isfile(os.path.join(REPO, path))
