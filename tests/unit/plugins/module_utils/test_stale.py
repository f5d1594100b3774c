# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Temporary files beside dest: their names, and which of them a later run
removes. Real files in a temporary directory, real processes in /proc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _stale
from ansible_collections.osimage.glance.plugins.module_utils import _transfer as transfer


@pytest.fixture
def me():
    owner = _stale.this_process()
    assert owner is not None, 'this host has a /proc of its own pid namespace'
    return owner


@pytest.fixture
def dead_pid():
    """The pid of a process that has exited and was reaped."""
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def name_for(dest, owner):
    return _stale.temp_name(str(dest), owner)


def like(owner, **changes):
    fields = dict(host=owner.host, boot=owner.boot, pidns=owner.pidns, pid=owner.pid, start=owner.start)
    fields.update(changes)
    return _stale.Owner(**fields)


def test_this_process_is_named_by_host_boot_namespace_pid_and_start(me):
    assert me.pid == os.getpid()
    assert me.pidns == os.stat('/proc/self/ns/pid').st_ino
    assert me.start == _stale.start_time(os.getpid())
    assert len(me.boot) == 8 and len(me.host) <= _stale.HOST_MAX


def test_a_name_parses_back_to_its_owner_even_with_dashes_in_names(tmp_path, me):
    owner = like(me, host='web-01.example.org')
    dest = tmp_path / 'my-disk.osimage-x.qcow2'
    name = name_for(dest, owner)
    assert name.startswith('.my-disk.osimage-x.qcow2.osimage-web-01.example.org-') and name.endswith('.part')
    assert _stale.owner_of(name, str(dest)) == owner


@pytest.mark.parametrize('name', [
    '.disk.raw.abc123.part',                                    # the old mkstemp names: not judged
    '.disk.raw.osimage-host-0123abcd-1-2-3.part',               # a field missing
    '.disk.raw.osimage-host-0123abcd-1-2-3-0123abcd.tmp',       # another suffix
    '.disk.raw.osimage-host-0123ABCD-1-2-3-0123abcd.part',      # not our hex
    '.disk.raw.osimage-host-0123abcd-x-2-3-0123abcd.part',      # not a number
    '.other.raw.osimage-host-0123abcd-1-2-3-0123abcd.part',     # another dest
    'disk.raw',
])
def test_foreign_names_have_no_owner(tmp_path, name):
    assert _stale.owner_of(name, str(tmp_path / 'disk.raw')) is None


def test_start_time_of_a_live_and_a_gone_process(dead_pid):
    assert _stale.start_time(os.getpid()) > 0
    assert _stale.start_time(dead_pid) is None


def test_a_dead_owner_here_is_provably_dead(me, dead_pid):
    assert _stale.provably_dead(like(me, pid=dead_pid), me)


def test_a_reused_pid_is_dead_but_a_live_process_is_not(me):
    parent = os.getppid()
    assert not _stale.provably_dead(like(me, pid=parent, start=_stale.start_time(parent)), me)
    assert _stale.provably_dead(like(me, pid=parent, start=_stale.start_time(parent) + 1), me)
    assert not _stale.provably_dead(me, me)


@pytest.mark.parametrize('change', [dict(host='elsewhere'), dict(boot='00000000'), dict(pidns=1)])
def test_another_host_boot_or_namespace_is_never_judged(me, dead_pid, change):
    if change.get('boot') == me.boot:
        change['boot'] = 'ffffffff'
    assert not _stale.provably_dead(like(me, pid=dead_pid, **change), me)


def test_only_this_dest_s_files_of_dead_owners_are_removed(tmp_path, me, dead_pid):
    dest = tmp_path / 'disk.raw'
    dead = like(me, pid=dead_pid)
    stale = tmp_path / name_for(dest, dead)
    keep = [
        tmp_path / name_for(dest, me),                                   # this live run's own
        tmp_path / name_for(dest, like(me, pid=os.getppid(), start=_stale.start_time(os.getppid()))),
        tmp_path / name_for(dest, like(dead, host='elsewhere')),         # another host
        tmp_path / name_for(dest, like(dead, pidns=me.pidns + 1)),       # another container
        tmp_path / name_for(tmp_path / 'other.raw', dead),               # another dest
        tmp_path / '.disk.raw.k2j3h4.part',                              # not this scheme
        tmp_path / 'disk.raw',
    ]
    for path in [stale] + keep:
        path.write_bytes(b'x')
    # A directory and a link with a stale name are not regular files: left alone.
    odd_dir = tmp_path / name_for(dest, dead)
    odd_dir.mkdir()
    odd_link = tmp_path / name_for(dest, dead)
    odd_link.symlink_to(tmp_path / 'disk.raw')

    assert _stale.remove_stale(str(dest), check_mode=True) == [str(stale)]
    assert stale.exists()
    assert _stale.remove_stale(str(dest)) == [str(stale)]
    assert not stale.exists()
    assert all(path.exists() for path in keep) and odd_dir.is_dir() and odd_link.is_symlink()
    assert _stale.remove_stale(str(dest)) == []


def test_atomic_files_carry_their_owner(tmp_path, me):
    dest = tmp_path / 'disk.raw'
    with transfer.AtomicFile(str(dest)) as target:
        name = os.path.basename(target.tmp_path)
        assert _stale.owner_of(name, str(dest)) == me
        assert oct(os.stat(target.tmp_path).st_mode & 0o777) == oct(0o600)
        # A live run's file is not stale to another run of this host.
        assert _stale.remove_stale(str(dest)) == []
    assert os.listdir(tmp_path) == []
