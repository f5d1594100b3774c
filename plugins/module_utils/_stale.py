# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Temporary files beside a destination: names that say which process
owns them, and the removal of those whose owner is provably dead.

A run killed with SIGKILL cannot remove its temporary file, so the next run
does it, under one rule: a file is removed only when it is a temporary file
of this very dest, made on this host during this boot in this pid namespace
(so that its pid means the same process here), and that pid is gone or is
now another process (its start time differs). A file of another host,
another boot (a host name is not proof that two machines are one), another
container, a live run, or with any other name, is never touched.

The name: ``.<dest name>.osimage-<host>-<boot>-<pidns>-<pid>-<start>-<random>.part``
with the host name (at most 32 characters), the first 8 hex digits of the
kernel's boot id, the inode of the pid namespace, the pid, the process's
start time in clock ticks after boot (``/proc/<pid>/stat``), and 8 random
hex digits.

Private to the collection; not a public API.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import stat

MARK = '.osimage-'
SUFFIX = '.part'
HOST_MAX = 32
_FIELDS = re.compile(r'^(?P<host>.+)-(?P<boot>[0-9a-f]{8})-(?P<pidns>[0-9]+)-(?P<pid>[0-9]+)-(?P<start>[0-9]+)'
                     r'-(?P<random>[0-9a-f]{8})$')
_UNSAFE_HOST = re.compile(r'[^A-Za-z0-9_.-]')


class Owner(object):
    """The process a temporary file belongs to."""

    def __init__(self, host, boot, pidns, pid, start):
        self.host = host
        self.boot = boot
        self.pidns = int(pidns)
        self.pid = int(pid)
        self.start = int(start)

    def same_place(self, other):
        """Same host, boot and pid namespace: pids mean the same processes."""
        return (self.host, self.boot, self.pidns) == (other.host, other.boot, other.pidns)

    def tag(self):
        return '%s-%s-%d-%d-%d' % (self.host, self.boot, self.pidns, self.pid, self.start)

    def __eq__(self, other):
        return isinstance(other, Owner) and self.tag() == other.tag()

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.tag())

    def __repr__(self):
        return 'Owner(%s)' % self.tag()


def start_time(pid, proc='/proc'):
    """The start time of ``pid`` in clock ticks after boot, or None when
    there is no such process."""
    try:
        with open(os.path.join(proc, str(pid), 'stat'), 'rb') as fileobj:
            text = fileobj.read().decode('ascii', 'replace')
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may hold anything;
    # field 22, the start time, is the 20th after its closing parenthesis.
    return int(text[text.rindex(')') + 2:].split()[19])


def _boot_id():
    with open('/proc/sys/kernel/random/boot_id', encoding='ascii') as fileobj:
        return fileobj.read().strip().replace('-', '')[:8].lower()


def this_process():
    """The Owner of files this process makes; None where /proc cannot tell
    (then files get plain random names and nothing is ever judged stale)."""
    try:
        if os.readlink('/proc/self') != str(os.getpid()):
            return None  # a /proc of another pid namespace
        host = _UNSAFE_HOST.sub('_', socket.gethostname() or 'localhost')[:HOST_MAX]
        return Owner(host, _boot_id(), os.stat('/proc/self/ns/pid').st_ino, os.getpid(), start_time(os.getpid()))
    except (OSError, ValueError, IndexError, TypeError):
        return None


def prefix(dest):
    """What every temporary file of ``dest`` is named with first."""
    return '.%s%s' % (os.path.basename(dest), MARK)


def temp_name(dest, owner):
    """A new temporary name beside ``dest`` (basename only)."""
    tag = owner.tag() if owner is not None else 'unknown'
    return '%s%s-%s%s' % (prefix(dest), tag, secrets.token_hex(4), SUFFIX)


def owner_of(name, dest):
    """The Owner named in ``name`` when it is a temporary file of ``dest``
    made by this scheme, else None."""
    start = prefix(dest)
    if not (name.startswith(start) and name.endswith(SUFFIX)):
        return None
    match = _FIELDS.match(name[len(start):-len(SUFFIX)])
    if not match:
        return None
    return Owner(match.group('host'), match.group('boot'), match.group('pidns'), match.group('pid'),
                 match.group('start'))


def provably_dead(owner, me, proc='/proc'):
    """Whether the process ``owner`` is certainly gone, seen from ``me``
    (this process): only an owner of the same host, boot and pid namespace
    can be judged, and it is dead when its pid is gone or now belongs to a
    process that started at another time."""
    if owner is None or me is None or not owner.same_place(me):
        return False
    if owner.pid == me.pid and owner.start == me.start:
        return False
    return start_time(owner.pid, proc) != owner.start


def stale_temp_files(dest, me=None, proc='/proc'):
    """Paths of the temporary files of ``dest`` whose owner is provably dead."""
    me = me if me is not None else this_process()
    directory = os.path.dirname(os.path.abspath(dest))
    if me is None:
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        owner = owner_of(name, dest)
        if owner is None or not provably_dead(owner, me, proc):
            continue
        path = os.path.join(directory, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue  # only regular files: never a link, a directory or a device
        except OSError:
            continue
        found.append(path)
    return found


def remove_stale(dest, check_mode=False, me=None, proc='/proc'):
    """Remove (not in check mode) the temporary files of ``dest`` left by
    dead runs; returns their paths."""
    removed = []
    for path in stale_temp_files(dest, me, proc):
        if not check_mode:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue  # another run removed it first
            except OSError:
                continue  # not ours to remove after all (permissions): left alone
        removed.append(path)
    return removed
