#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Run a module with ``ansible`` ad hoc, SIGKILL the module's own Python
process in the middle of its work, and report what the kill left behind.

  kill_module.py --dest DEST --when writing|qemu-img [--min-bytes N] -- ansible localhost -m ... -a '{...}'

``--when writing``: once the module process has written ``--min-bytes``
bytes (``/proc/PID/io`` wchar) and its temporary file beside DEST exists.
``--when qemu-img``: once a ``qemu-img convert`` child of the module that
names DEST (or its temporary file) runs and has written ``--min-bytes``.

Only the module process is killed (not the controller, not qemu-img). The
JSON on stdout: the pids involved, the children the module had when it was
killed, every process still naming DEST right after the module died (after
a bounded wait of 2 s for the kernel to deliver their death) or after the
controller ended, and the temporary files beside DEST.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

POLL = 0.01


def processes():
    """{pid: (ppid, session, argv)} of every process that can be read."""
    found = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as fileobj:
                argv = [part.decode('utf-8', 'replace') for part in fileobj.read().split(b'\0') if part]
            with open('/proc/%s/stat' % name, 'rb') as fileobj:
                fields = fileobj.read().decode('ascii', 'replace').rsplit(')', 1)[1].split()
        except OSError:
            continue
        found[int(name)] = (int(fields[1]), int(fields[3]), argv)
    return found


def written(pid):
    try:
        with open('/proc/%d/io' % pid, encoding='ascii') as fileobj:
            for line in fileobj:
                if line.startswith('wchar:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def alive(pid):
    """Whether ``pid`` runs (a zombie has ended: its cmdline is empty)."""
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as fileobj:
            return bool(fileobj.read())
    except OSError:
        return False


def temp_files(dest):
    directory, base = os.path.split(os.path.abspath(dest))
    prefix = '.%s.osimage-' % base
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.startswith(prefix) and name.endswith('.part'))


def naming(dest, procs):
    """Processes (not this one) whose argv names dest or its temp files."""
    base = os.path.basename(dest)
    return dict((pid, info) for pid, info in procs.items()
                if pid != os.getpid() and any(base in arg for arg in info[2][1:])
                and not any('kill_module.py' in arg for arg in info[2]))


def descendants(root, procs):
    """Pids below ``root`` (an ansible worker starts a session of its own)."""
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        children = [pid for pid, info in procs.items() if info[0] == parent]
        found += children
        todo += children
    return found


def find_target(args, controller):
    """(module pid, qemu-img pid or None) once the moment to kill has come."""
    procs = processes()
    modules = [pid for pid in descendants(controller.pid, procs)
               if any('AnsiballZ_' in arg for arg in procs[pid][2])]
    for module in modules:
        if args.when == 'writing':
            if written(module) >= args.min_bytes and temp_files(args.dest):
                return module, None
            continue
        for pid, (ppid, _sid, argv) in procs.items():
            if (ppid == module and argv and os.path.basename(argv[0]) == 'qemu-img' and 'convert' in argv
                    and os.path.basename(args.dest) in argv[-1] and written(pid) >= args.min_bytes):
                return module, pid
    return None, None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--dest', required=True)
    parser.add_argument('--when', choices=['writing', 'qemu-img'], required=True)
    parser.add_argument('--min-bytes', type=int, default=0)
    parser.add_argument('--timeout', type=float, default=300)
    parser.add_argument('command', nargs='+')
    args = parser.parse_args()

    env = dict(os.environ, ANSIBLE_PIPELINING='0')  # the module then runs as AnsiballZ_<name>.py
    output = tempfile.TemporaryFile()
    controller = subprocess.Popen(args.command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)
    report = dict(controller_pid=controller.pid)
    deadline = time.monotonic() + args.timeout
    module = qemu = None
    while time.monotonic() < deadline and controller.poll() is None:
        module, qemu = find_target(args, controller)
        if module:
            break
        time.sleep(POLL)
    if not module:
        controller.kill()
        controller.wait()
        output.seek(0)
        report.update(error='the module finished or never reached the point to kill it at',
                      controller_rc=controller.returncode, output=output.read().decode('utf-8', 'replace')[-3000:])
        print(json.dumps(report))
        return 1
    procs = processes()
    report.update(module_pid=module, module_argv=procs.get(module, (0, 0, []))[2], qemu_img_pid=qemu,
                  children_at_kill=[info[2] for pid, info in procs.items() if info[0] == module],
                  written_at_kill=written(module if qemu is None else qemu))
    os.kill(module, signal.SIGKILL)
    # Judged right after the module's death, not after the controller's exit
    # (which waits until qemu-img ends of itself, seconds later, when it does
    # not die with the module). The kernel sends the children their SIGKILL
    # as the module dies; the bound only covers the delivery.
    end = time.monotonic() + 5
    while alive(module) and time.monotonic() < end:
        time.sleep(POLL)
    end = time.monotonic() + 2
    left = naming(args.dest, processes())
    while left and time.monotonic() < end:
        time.sleep(POLL)
        left = naming(args.dest, processes())
    report['left_running'] = [info[2] for info in left.values()]
    try:
        report['controller_rc'] = controller.wait(timeout=120)
    except subprocess.TimeoutExpired:
        controller.kill()
        report['controller_rc'] = 'killed after 120 s'
    report['left_running'] += [info[2] for pid, info in naming(args.dest, processes()).items() if pid not in left]
    report['temp_files'] = temp_files(args.dest)
    print(json.dumps(report))
    return 0


if __name__ == '__main__':
    sys.exit(main())
