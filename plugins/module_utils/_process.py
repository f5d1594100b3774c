# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The one place where the modules start child processes.

Every child goes through ``run``, which hands it to the running module's
``AnsibleModule.run_command`` (bound once by the module runner, see
``bind``), behind two wrappers from util-linux that exec the real command
in the same process:

- ``setpriv --pdeathsig KILL --``: the kernel kills the child when the
  module dies, SIGKILL included, so no qemu-img goes on writing after its
  module is gone;
- ``prlimit --cpu=... --as=... --``: CPU-time and address-space limits, set
  before the command starts (as oslo.concurrency's ``prlimit`` does for
  nova's and cinder's qemu-img), not in a ``preexec_fn``.

A wall-clock timeout is a timer in the module that kills the child, not a
``timeout`` wrapper (which would outlive a killed module). Any exception
while the child runs (KeyboardInterrupt and SIGTERM included, see
``_transfer.terminate_as_interrupt``) kills it before it propagates.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import threading

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors

MIB = 1024 * 1024

# Where the wrappers and programs are looked for beside PATH (a module may
# run with a minimal PATH).
_EXTRA_PATH = ('/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin')
UTIL_LINUX_HINT = 'install the package util-linux'

_state = {'module': None, 'pdeathsig': None}


class Limits(object):
    """Resource limits for one child.

    ``address_space`` (bytes) and ``cpu_seconds`` become RLIMIT_AS and
    RLIMIT_CPU of the child (through ``prlimit``), ``timeout`` a wall-clock
    limit the module enforces; None means no limit. RLIMIT_CPU's soft limit
    sends SIGXCPU, its hard limit (one second later) SIGKILL.
    """

    def __init__(self, address_space=None, cpu_seconds=None, timeout=None):
        self.address_space = address_space or None
        self.cpu_seconds = cpu_seconds or None
        self.timeout = timeout or None

    def prlimit_args(self):
        """The ``prlimit`` options for these limits (empty without any)."""
        args = []
        if self.cpu_seconds:
            args.append('--cpu=%d:%d' % (self.cpu_seconds, self.cpu_seconds + 1))
        if self.address_space:
            args.append('--as=%d:%d' % (self.address_space, self.address_space))
        return args

    def describe(self):
        parts = []
        if self.address_space:
            parts.append('address space %d MiB' % (self.address_space // MIB))
        if self.cpu_seconds:
            parts.append('CPU time %d s' % self.cpu_seconds)
        if self.timeout:
            parts.append('wall clock %d s' % self.timeout)
        return ', '.join(parts) or 'none'

    def __repr__(self):
        return 'Limits(%s)' % self.describe()


class Timeout(Exception):
    """The child ran longer than its wall-clock limit and was killed."""

    def __init__(self, argv, seconds):
        super(Timeout, self).__init__('%s ran longer than %s seconds' % (argv[0], seconds))
        self.argv = argv
        self.seconds = seconds


def bind(module):
    """Make ``module`` (an AnsibleModule) the one that starts children."""
    _state['module'] = module
    return module


def bound():
    module = _state['module']
    if module is None:
        raise RuntimeError('_process.bind(module) was not called: children are started only through a module')
    return module


def which(program):
    """The absolute path of ``program``, or None."""
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    search = os.pathsep.join([os.environ.get('PATH', '')] + list(_EXTRA_PATH))
    return shutil.which(program, path=search)


def _tool(name):
    path = which(name)
    if not path:
        raise errors.MissingLibraryError(
            '%s is not installed on the host that runs the module; the module runs every child process through '
            'it: %s.' % (name, UTIL_LINUX_HINT))
    return path


def pdeathsig_wrapper():
    """``setpriv --pdeathsig KILL --``, or ``[]`` where setpriv is too old
    for it (util-linux before 2.33, e.g. RHEL 8): then a warning says that
    a killed module may leave its children running."""
    if _state['pdeathsig'] is None:
        setpriv = _tool('setpriv')
        _rc, out, err = bound().run_command([setpriv, '--help'], expand_user_and_vars=False,
                                            handle_exceptions=False)
        if '--pdeathsig' in out + err:
            _state['pdeathsig'] = [setpriv, '--pdeathsig', 'KILL', '--']
        else:
            _state['pdeathsig'] = []
            bound().warn('%s has no --pdeathsig (util-linux older than 2.33): a child process of this module '
                         'is not stopped when the module is killed with SIGKILL.' % setpriv)
    return list(_state['pdeathsig'])


def command_line(argv, limits):
    """The full argv: the wrappers, then ``argv`` with its program made absolute."""
    program = which(argv[0])
    if not program:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    wrapped = pdeathsig_wrapper()
    prlimit = limits.prlimit_args()
    if prlimit:
        wrapped += [_tool('prlimit')] + prlimit + ['--']
    return wrapped + [program] + [str(arg) for arg in argv[1:]]


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass


def run(argv, limits=None, environ_update=None, pass_fds=()):
    """Run ``argv`` under ``limits`` through the bound module's run_command.

    Returns ``(returncode, stdout, stderr, cpu_seconds)`` (a negative code
    for a signal). Raises FileNotFoundError when the program is missing and
    Timeout after the wall-clock limit (the child is killed); any exception
    while it runs kills the child too.
    """
    module = bound()
    limits = limits or Limits()
    full = command_line(argv, limits)
    started = []
    fired = []
    timers = []

    def begin(proc):
        started.append(proc)
        if limits.timeout:
            def expire():
                fired.append(True)
                _kill(proc)
            timer = threading.Timer(limits.timeout, expire)
            timer.daemon = True
            timers.append(timer)
            timer.start()

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        # Not expanded: a path with "$" or "~" in it stays that path.
        returncode, out, err = module.run_command(
            full, environ_update=dict(environ_update or {}), pass_fds=tuple(pass_fds) or None,
            before_communicate_callback=begin, expand_user_and_vars=False, handle_exceptions=False,
            errors='replace')
    except BaseException:
        for proc in started:
            _kill(proc)
            proc.wait()
        raise
    finally:
        for timer in timers:
            timer.cancel()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if fired:
        raise Timeout(argv, limits.timeout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return returncode, out, err, cpu
