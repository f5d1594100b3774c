# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The one place children start: real children through a real
AnsibleModule's run_command (bound by the shared fixture), their wrappers,
limits, timeout and death with their parent."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from ansible_collections.osimage.glance.plugins.module_utils import _process

MiB = 1024 * 1024


def python(code):
    return [sys.executable, '-c', code]


def test_children_start_only_through_a_bound_module():
    _process.bind(None)
    with pytest.raises(RuntimeError):
        _process.run(['true'])


def test_the_command_line_has_the_wrappers_and_an_absolute_program():
    argv = _process.command_line(['true', 'a'], _process.Limits(cpu_seconds=5, address_space=64 * MiB))
    assert argv[:4] == [_process.which('setpriv'), '--pdeathsig', 'KILL', '--']
    assert argv[4:] == [_process.which('prlimit'), '--cpu=5:6', '--as=%d:%d' % (64 * MiB, 64 * MiB), '--',
                        _process.which('true'), 'a']
    assert _process.command_line(['true'], _process.Limits())[4:] == [_process.which('true')]


def test_a_missing_program_is_file_not_found():
    with pytest.raises(FileNotFoundError):
        _process.run(['osimage-no-such-program'])


def test_arguments_are_not_expanded_and_the_environment_is_added_to():
    code = 'import os, sys; print(sys.argv[1]); print(os.environ["OSIMAGE_T"]); print("PATH" in os.environ)'
    returncode, out, _err, _cpu = _process.run(python(code) + ['$HOME/~x'], environ_update=dict(OSIMAGE_T='y'))
    assert returncode == 0
    assert out.splitlines() == ['$HOME/~x', 'y', 'True']


def test_limits_are_set_in_the_child_and_a_cpu_hog_is_stopped():
    limits = _process.Limits(cpu_seconds=1, address_space=1024 * MiB)
    returncode, _out, _err, cpu = _process.run(python('while True: pass'), limits)
    assert returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert cpu >= 0.5


def test_the_child_dies_with_its_parent():
    """PR_SET_PDEATHSIG through setpriv: the child's parent death signal is
    SIGKILL (what /proc shows is not exposed; prctl reads it back)."""
    code = ('import ctypes, signal; sig = ctypes.c_int(); '
            'ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0); print(sig.value)')
    returncode, out, _err, _cpu = _process.run(python(code))
    assert returncode == 0
    assert int(out) == signal.SIGKILL


def test_timeout_kills_the_child(tmp_path):
    pidfile = tmp_path / 'pid'
    code = 'import os, sys, time; open(sys.argv[1], "w").write(str(os.getpid())); time.sleep(60)'
    with pytest.raises(_process.Timeout) as info:
        _process.run(python(code) + [str(pidfile)], _process.Limits(timeout=1))
    assert info.value.seconds == 1
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_exception_while_it_runs_kills_the_child(tmp_path, process_module, monkeypatch):
    """KeyboardInterrupt (Ctrl-C, or SIGTERM in terminate_as_interrupt)
    inside run_command: the child is killed and reaped before it propagates."""
    started = []
    real = process_module.run_command
    _process.pdeathsig_wrapper()  # its own check of setpriv runs before

    def interrupted(args, **kwargs):
        callback = kwargs['before_communicate_callback']

        def begin(proc):
            callback(proc)
            started.append(proc)
            raise KeyboardInterrupt()
        return real(args, **dict(kwargs, before_communicate_callback=begin))
    monkeypatch.setattr(process_module, 'run_command', interrupted)
    with pytest.raises(KeyboardInterrupt):
        _process.run(python('import time; time.sleep(60)'))
    assert started and started[0].returncode == -signal.SIGKILL
