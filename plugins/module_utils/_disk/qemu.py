# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The one place where the modules start child processes.

The ``_disk`` package (its ``__init__`` stays empty, so its rules are
here): the local side of every job, one owner for each thing.

- ``qemu``: the only module that starts a process; one runner, one
  environment, the limits, the one Glance<->qemu-img format map;
- ``inspect``: the format inspector and its verdicts (runs qemu-img only
  through ``qemu``);
- ``stream``: the one reader with an explicit limit feeding every consumer
  (digests, inspector, writer), tee/pump, deadline, gunzip;
- ``targets``: atomic files and their temporary names, devices, comparing
  targets, free space, device size;
- ``_disk`` never imports the cloud layer, nor anything that starts a
  process but ``qemu``; imports go one way: targets -> stream,
  inspect -> qemu; qemu imports none of them
  (every module imports it, for ``bind``).

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
``stream.terminate_as_interrupt``) kills it before it propagates.

qemu-img: finding it, naming formats, running it under resource limits,
and reading what it answers.

Every run of qemu-img goes through ``QemuImg.run`` (or ``InspectQemuImg.run``) and ``run``: a
fixed C locale, limits on address space and CPU time set by ``prlimit``
before it starts (so a hostile image cannot make qemu-img eat the host), an
optional wall-clock timeout, death with the module, and one clear message
when a limit stopped it. The format of an input is always given with
``-f``: qemu-img never probes.

This module does not decide whether a file is safe to open; callers pass
only files the format inspector (``inspect``) has passed.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors


MIB = 1024 * 1024


# Where the wrappers and programs are looked for beside PATH (a module may
# run with a minimal PATH).
_EXTRA_PATH = ('/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin')


UTIL_LINUX_HINT = 'install the package util-linux'

# The module that starts children (``bind``) and the pdeathsig wrapper found for it.
_state = {'module': None, 'pdeathsig': None}


class Limits(object):
    """Resource limits for one child.

    ``address_space`` (bytes) and ``cpu_seconds`` become RLIMIT_AS and
    RLIMIT_CPU of the child (through ``prlimit``), ``timeout`` a wall-clock
    limit the module enforces; None means no limit. RLIMIT_CPU's soft limit
    sends SIGXCPU, its hard limit (one second later) SIGKILL.
    """

    def __init__(self, address_space: Optional[int] = None, cpu_seconds: Optional[int] = None, timeout: Optional[float] = None) -> None:
        self.address_space = address_space or None
        self.cpu_seconds = cpu_seconds or None
        self.timeout = timeout or None

    def prlimit_args(self) -> List[str]:
        """The ``prlimit`` options for these limits (empty without any)."""
        args = []
        if self.cpu_seconds:
            args.append('--cpu=%d:%d' % (self.cpu_seconds, self.cpu_seconds + 1))
        if self.address_space:
            args.append('--as=%d:%d' % (self.address_space, self.address_space))
        return args

    def describe(self) -> str:
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

    def __init__(self, argv: Sequence[str], seconds: float) -> None:
        super(Timeout, self).__init__('%s ran longer than %s seconds' % (argv[0], seconds))
        self.argv = argv
        self.seconds = seconds


def bind(module: Any) -> Any:
    """Make ``module`` (an AnsibleModule) the one that starts children."""
    _state['module'] = module
    return module


def bound() -> Any:
    module = _state['module']
    if module is None:
        raise RuntimeError('bind(module) was not called: children are started only through a module')
    return module


def which(program: str) -> Optional[str]:
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


def pdeathsig_wrapper() -> List[str]:
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


def command_line(argv: Sequence[str], limits: Limits) -> List[str]:
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


def run(argv: Sequence[str], limits: Optional[Limits] = None, environ_update: Optional[Dict[str, str]] = None,
        pass_fds: Sequence[int] = ()) -> Tuple[int, str, str, float]:
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


GIB = 1024 * MIB


# Which package has qemu-img, for the message when it is missing.
PACKAGE_HINT = 'install the package qemu-utils (Debian/Ubuntu) or qemu-img (RHEL/CentOS/Fedora)'


# -U (force share), LUKS output and "measure" all need 2.10.
MIN_VERSION = (2, 10, 0)


# Glance disk_format (or the inspector's name) -> qemu-img format driver, where
# they differ: the one map (a GPT partition table is a raw disk to qemu-img).
GLANCE_TO_QEMU = {'vhd': 'vpc', 'iso': 'raw', 'ploop': 'parallels', 'gpt': 'raw'}


# qemu-img format driver -> Glance disk_format, where they differ.
QEMU_TO_GLANCE = {'vpc': 'vhd', 'parallels': 'ploop'}


# Messages qemu-img (and glib) print when an allocation fails: what running
# out of the address-space limit looks like from outside.
_OUT_OF_MEMORY = re.compile(r'cannot allocate memory|failed to allocate|out of memory|'
                            r'qemu_thread_create|resource temporarily unavailable', re.IGNORECASE)


_NO_SPACE = re.compile(r'no space left on device|disk quota exceeded', re.IGNORECASE)


def to_qemu(glance_format: str) -> str:
    """The qemu-img driver for a Glance disk_format (vhd -> vpc, iso -> raw,
    ploop -> parallels, gpt -> raw; the others are the same)."""
    return GLANCE_TO_QEMU.get(glance_format, glance_format)


def to_glance(qemu_format: str) -> str:
    """The Glance disk_format for a qemu-img driver (vpc -> vhd,
    parallels -> ploop; the others are the same)."""
    return QEMU_TO_GLANCE.get(qemu_format, qemu_format)


def parse_version(text: str) -> Optional[Tuple[int, int, int]]:
    """``(major, minor, micro)`` from ``qemu-img --version`` output, or None."""
    match = re.search(r'qemu-img version (\d+)\.(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())


def escape_option(value: Any) -> str:
    """A value inside a qemu ``-o``/``--object`` option list: commas doubled."""
    return str(value).replace(',', ',,')


def render_options(options: Dict[str, Any]) -> str:
    """``-o`` text for a dict of creation options (sorted for stable command
    lines; booleans become on/off)."""
    parts = []
    for key in sorted(options):
        value = options[key]
        if isinstance(value, bool):
            value = 'on' if value else 'off'
        parts.append('%s=%s' % (key, escape_option(value)))
    return ','.join(parts)


# Reading an untrusted image's metadata needs little: nova and cinder allow
# qemu-img info 1 GiB of address space and 30 s of CPU.
INFO_LIMITS = Limits(address_space=1 * GIB, cpu_seconds=30, timeout=120)


# Converting and comparing: a larger address space (qemu-img's I/O threads
# each reserve stack and malloc arenas) and CPU time that grows with the size
# of the disk (see ``cpu_seconds_for``).
DEFAULT_ADDRESS_SPACE = 2 * GIB


CPU_SECONDS_BASE = 60


CPU_SECONDS_PER_GIB = 60


def cpu_seconds_for(virtual_size: Optional[int]) -> int:
    """The default CPU-time limit for reading or writing a disk of
    ``virtual_size`` bytes: generous for zlib compression on every core
    (about 10 s of CPU per GiB), far below what a runaway image would burn."""
    gib = -(-int(virtual_size or 0) // GIB)
    return CPU_SECONDS_BASE + CPU_SECONDS_PER_GIB * gib


class Result(object):
    """What one qemu-img run gave back."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.cpu_seconds = cpu_seconds

    @property
    def message(self) -> str:
        """qemu-img's own words about a failure (last lines of stderr)."""
        text = (self.stderr or self.stdout or '').strip()
        if not text:
            return 'exit status %d' % self.returncode
        lines = text.splitlines()
        return ' '.join(line.strip() for line in lines[-3:])


def run_process(argv: Sequence[str], limits: Limits, env: Dict[str, str], pass_fds: Sequence[int] = ()) -> Tuple[int, str, str, float]:
    """Run ``argv`` under ``limits`` with ``env`` (variables set on top of
    the module's environment); the boundary to the operating system, which
    is ``run``.

    Returns ``(returncode, stdout, stderr, cpu_seconds)``; raises
    FileNotFoundError when the program is missing and ``Timeout``
    after the timeout (the child is killed). An exception here
    (KeyboardInterrupt included) kills the child too.
    """
    return run(argv, limits, environ_update=env, pass_fds=pass_fds)


# run_process, or a test's stand-in for it: (argv, limits, env, pass_fds) -> (rc, stdout, stderr, cpu seconds).
Runner = Callable[..., Tuple[int, str, str, float]]


class ImageInfo(object):
    """``qemu-img info --output=json``, parsed."""

    def __init__(self, data: Dict[str, Any]) -> None:
        self.data = data
        self.format = data.get('format')
        self.virtual_size = data.get('virtual-size')
        self.actual_size = data.get('actual-size')
        self.cluster_size = data.get('cluster-size')
        self.backing_file = data.get('full-backing-filename') or data.get('backing-filename')
        self.encrypted = bool(data.get('encrypted'))
        self.dirty = bool(data.get('dirty-flag'))
        specific = data.get('format-specific') or {}
        self.specific = specific.get('data') or {}
        self.data_file = self.specific.get('data-file')

    @property
    def glance_format(self) -> Optional[str]:
        return to_glance(self.format)

    @property
    def subformat(self) -> Optional[str]:
        """vmdk's create type (monolithicSparse, streamOptimized, ...), else None."""
        return self.specific.get('create-type')

    @property
    def compat(self) -> Optional[str]:
        """qcow2's compat level (0.10 or 1.1), else None."""
        return self.specific.get('compat')


def parse_info(text: str, what: str) -> ImageInfo:
    """An ImageInfo from ``qemu-img info --output=json`` output."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or 'format' not in data or 'virtual-size' not in data:
        raise errors.QemuImgError('qemu-img info gave no usable JSON for %s: %s' % (what, text.strip()[:300]))
    return ImageInfo(data)


class FdArgument(str):
    """An argument that names a descriptor of this process (``fd``), which
    the child must inherit for the argument to mean anything."""

    fd = None


def secret_object(secret_id: str, secret: SecretFile) -> FdArgument:
    """The ``--object`` argument for a secret qemu-img reads from the
    in-memory file of ``secret`` (a SecretFile); it carries the descriptor
    qemu-img must inherit."""
    arg = FdArgument('secret,id=%s,format=raw,file=%s' % (secret_id, escape_option(secret.path)))
    arg.fd = secret.fd
    return arg


class SecretFile(object):
    """A passphrase in an anonymous in-memory file (memfd), for qemu-img's
    ``--object secret,file=/proc/self/fd/N``: it is on no command line and
    in no file on disk, and only processes that inherit the descriptor (the
    qemu-img runs given it, see ``FdArgument``) or may trace this one can
    read it. Closed, and so gone, when the block ends, however it ends."""

    def __init__(self, passphrase: str) -> None:
        memfd_create = getattr(os, 'memfd_create', None)
        if memfd_create is None:
            raise errors.QemuImgError(
                'encryption needs os.memfd_create (Linux 3.17 or newer and glibc 2.27 or newer) on the host that '
                'runs the module, so that the passphrase reaches qemu-img in memory only.')
        self.fd = memfd_create('osimage-secret', getattr(os, 'MFD_CLOEXEC', 1))
        try:
            data = passphrase.encode('utf-8')
            while data:
                data = data[os.write(self.fd, data):]
        except BaseException:
            os.close(self.fd)
            raise
        # The child's own descriptor of the same number (pass_fds keeps it).
        self.path = '/proc/self/fd/%d' % self.fd

    def remove(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
        return False


class JsonFilename(str):
    """A ``json:`` filename made by ``json_filename``: the only kind of
    name that is handed to qemu-img as it is, not made absolute."""


def json_filename(path: str, fmt: str, secret_id: Optional[str] = None, secret_key: str = 'key-secret',
                  size: Optional[int] = None) -> Tuple[JsonFilename, str]:
    """A ``json:`` filename and its top driver for opening ``path`` as
    ``fmt``: with a LUKS key (``secret_key`` names the option: ``key-secret``
    for luks, ``encrypt.key-secret`` for qcow2), or limited to its first
    ``size`` bytes (a raw disk on a device larger than the image).

    Built with json.dumps from an absolute path, so nothing in the path can
    add options. Returns ``(filename, driver)``.
    """
    node = {'driver': fmt, 'file': {'filename': os.path.abspath(path)}}
    if secret_id:
        node[secret_key] = secret_id
    if size is not None:
        if fmt == 'raw':
            node['size'] = int(size)
        else:
            node = {'driver': 'raw', 'size': int(size), 'file': node}
    return JsonFilename('json:' + json.dumps(node, sort_keys=True)), node['driver']


class QemuImg(object):
    """qemu-img on this host: where it is, its version, and the commands
    image_convert needs, each run under limits."""

    _found = {}

    def __init__(self, path: str, version: Tuple[int, ...], runner: Optional[Runner] = None) -> None:
        self.path = path
        self.version = version
        self._runner = runner

    @classmethod
    def find(cls, runner: Optional[Runner] = None) -> QemuImg:
        """The qemu-img on PATH (also /usr/bin, /usr/local/bin), found and
        asked for its version once per process."""
        if 'qemu-img' in cls._found:
            return cls._found['qemu-img']
        search = os.pathsep.join([os.environ.get('PATH', ''), '/usr/local/bin', '/usr/bin', '/bin'])
        path = shutil.which('qemu-img', path=search)
        if not path:
            raise errors.QemuImgError('qemu-img is not installed on the host that runs the module (it is not '
                                      'on PATH): %s.' % PACKAGE_HINT)
        try:
            _rc, out, err, _cpu = (runner or run_process)([path, '--version'], INFO_LIMITS, _environment())
        except OSError as exc:
            raise errors.QemuImgError('qemu-img at %s cannot be run: %s. Reinstall it: %s.'
                                      % (path, exc.strerror or exc, PACKAGE_HINT))
        version = parse_version(out + err)
        if version is None:
            raise errors.QemuImgError('%s --version did not say which version it is: %s'
                                      % (path, (out + err).strip()[:200]))
        if version < MIN_VERSION:
            raise errors.QemuImgError('qemu-img %s at %s is too old; %s or newer is needed.'
                                      % (_dotted(version), path, _dotted(MIN_VERSION)))
        found = cls(path, version, runner=runner)
        cls._found['qemu-img'] = found
        return found

    @property
    def version_string(self) -> str:
        return _dotted(self.version)

    # -- running ----------------------------------------------------------
    def run(self, args: Sequence[str], what: str, limits: Limits) -> Result:
        """Run ``qemu-img ARGS`` under ``limits``; a Result whatever the exit
        status, except that a missing binary, a timeout or a limit hit raise
        QemuImgError with a clear message."""
        argv = [self.path] + list(args)
        pass_fds = tuple(arg.fd for arg in args if isinstance(arg, FdArgument))
        start = time.monotonic()
        try:
            returncode, out, err, cpu = (self._runner or run_process)(argv, limits, _environment(),
                                                                      pass_fds=pass_fds)
        except FileNotFoundError:
            raise errors.QemuImgError('qemu-img (%s) is gone from the host that runs the module: %s.'
                                      % (self.path, PACKAGE_HINT))
        except Timeout:
            raise errors.QemuImgError(
                '%s: qemu-img did not finish within %d seconds and was stopped. Raise the timeout if the '
                'image is that large or the storage that slow.' % (what, limits.timeout),
                limit='timeout', limits=limits.describe())
        result = Result(argv, returncode, out, err, time.monotonic() - start, cpu)
        self._check_limits(result, what, limits)
        return result

    @staticmethod
    def _check_limits(result, what, limits):
        code = result.returncode
        if code == 0:
            return
        cpu_hit = limits.cpu_seconds and (code == -signal.SIGXCPU or (
            code == -signal.SIGKILL and result.cpu_seconds >= limits.cpu_seconds))
        if cpu_hit:
            raise errors.QemuImgError(
                '%s: qemu-img was stopped by its CPU-time limit of %d seconds. A hostile or damaged image can '
                'do that; if the image is trusted and just large or compressed, raise limits.cpu_time.'
                % (what, limits.cpu_seconds), limit='cpu_time', limits=limits.describe())
        if limits.address_space and _OUT_OF_MEMORY.search(result.stderr):
            raise errors.QemuImgError(
                '%s: qemu-img ran out of its address-space limit of %d MiB (%s). A hostile image can do that; '
                'if the image is trusted, raise limits.address_space.'
                % (what, limits.address_space // MIB, result.message), limit='address_space',
                limits=limits.describe())
        if code < 0:
            raise errors.QemuImgError('%s: qemu-img was killed by signal %d (%s). %s'
                                      % (what, -code, _signal_name(-code), result.message), signal=-code)

    # -- commands ---------------------------------------------------------
    def info(self, path: str, fmt: str, what: str, limits: Limits = INFO_LIMITS) -> ImageInfo:
        """``qemu-img info`` of ``path`` read as ``fmt`` (never probed), as
        an ImageInfo. ``-U``: no lock, so an image in use can be looked at."""
        result = self.run(['info', '-U', '-f', fmt, '--output=json', _plain_path(path)], what, limits)
        if result.returncode != 0:
            raise errors.QemuImgError('qemu-img cannot read %s as %s: %s' % (what, fmt, result.message),
                                      qemu_format=fmt)
        return parse_info(result.stdout, what)

    def measure(self, path: str, fmt: str, out_fmt: str, what: str, options: Optional[Dict[str, Any]] = None,
            objects: Sequence[str] = (), limits: Limits = INFO_LIMITS) -> Optional[Dict[str, int]]:
        """``qemu-img measure``: ``{'required': ..., 'fully-allocated': ...}``
        bytes for converting ``path`` to ``out_fmt``; None when the output
        driver cannot measure (vmdk, vpc, vhdx, vdi)."""
        args = ['measure', '--output=json']
        for obj in objects:
            args += ['--object', obj]
        args += ['-f', fmt, '-O', out_fmt]
        if options:
            args += ['-o', render_options(options)]
        args.append(_plain_path(path))
        result = self.run(args, what, limits)
        if result.returncode != 0:
            if 'does not support size measurement' in result.stderr:
                return None
            raise errors.QemuImgError('qemu-img cannot measure %s converted to %s: %s'
                                      % (what, out_fmt, result.message))
        try:
            data = json.loads(result.stdout)
            return dict(required=int(data['required']), fully_allocated=int(data['fully-allocated']))
        except (ValueError, KeyError, TypeError):
            raise errors.QemuImgError('qemu-img measure gave no usable JSON for %s: %s'
                                      % (what, result.stdout.strip()[:300]))

    def compare(self, first: str, first_fmt: str, second: str, second_fmt: str, what: str, objects: Sequence[str] = (),
            limits: Optional[Limits] = None) -> Optional[bool]:
        """``qemu-img compare``: True when the guest sees the same data,
        False when not, None when it cannot tell (then its message is in
        ``self.last_compare_message``)."""
        args = ['compare']
        for obj in objects:
            args += ['--object', obj]
        args += ['-f', first_fmt, '-F', second_fmt, _plain_path(first), _plain_path(second)]
        result = self.run(args, what, limits or Limits())
        self.last_compare_message = result.message
        if result.returncode == 0:
            return True
        if result.returncode == 1:
            return False
        return None

    last_compare_message = None

    def convert(self, command: ConvertCommand, what: str, limits: Limits) -> float:
        """Run a ConvertCommand; returns the seconds it took. No space left
        becomes a DestinationError, any other failure a QemuImgError."""
        result = self.run(command.args(), what, limits)
        if result.returncode != 0:
            if _NO_SPACE.search(result.stderr):
                raise errors.DestinationError(
                    '%s: no space left on the device holding %s (qemu-img: %s).'
                    % (what, command.dest, result.message), errno='ENOSPC', qemu_img=result.message)
            raise errors.QemuImgError('%s failed: %s' % (what, result.message), rc=result.returncode)
        return result.seconds


class ConvertCommand(object):
    """The arguments of one ``qemu-img convert``; the source format is
    required (``-f``: qemu-img never probes)."""

    def __init__(self, src: str, src_format: str, dest: str, dest_format: str, options: Optional[Dict[str, Any]] = None,
            compress: bool = False, objects: Sequence[str] = (), cache: Optional[str] = None, src_cache: Optional[str] = None,
            coroutines: Optional[int] = None, out_of_order: bool = False) -> None:
        if not src_format:
            raise ValueError('the source format must be given: qemu-img must not probe')
        self.src = src
        self.src_format = src_format
        self.dest = dest
        self.dest_format = dest_format
        self.options = dict(options or {})
        self.compress = compress
        self.objects = list(objects)
        self.cache = cache
        self.src_cache = src_cache
        self.coroutines = coroutines
        self.out_of_order = out_of_order

    def args(self) -> List[str]:
        args = ['convert']
        for obj in self.objects:
            args += ['--object', obj]
        args += ['-f', self.src_format, '-O', self.dest_format]
        if self.src_cache:
            args += ['-T', self.src_cache]
        if self.cache:
            args += ['-t', self.cache]
        if self.coroutines:
            args += ['-m', str(self.coroutines)]
        if self.out_of_order:
            args.append('-W')
        if self.compress:
            args.append('-c')
        if self.options:
            args += ['-o', render_options(self.options)]
        args += [_plain_path(self.src), _plain_path(self.dest)]
        return args


def _plain_path(path):
    """A path qemu-img cannot mistake for a protocol ("nbd:", "json:"):
    absolute. Only our own JsonFilename passes unchanged."""
    if isinstance(path, JsonFilename):
        return str(path)
    return os.path.abspath(path)


def _environment():
    """What qemu-img's environment adds to the module's."""
    env = dict(LC_ALL='C')
    # glibc reserves up to 8 malloc arenas of 64 MiB per core; with qemu-img's
    # I/O threads that is gigabytes of address space that is never used and
    # makes an address-space limit meaningless. Two arenas are enough.
    if 'MALLOC_ARENA_MAX' not in os.environ:
        env['MALLOC_ARENA_MAX'] = '2'
    return env


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return 'unknown signal'


def _dotted(version):
    return '.'.join(str(part) for part in version)


class InspectQemuImg(object):
    """qemu-img info/check on an untrusted file: always ``-f``, never a
    probe; ``-U`` (no lock, read-only); limited address space, CPU time and
    wall clock (``INFO_LIMITS``), in qemu-img's one environment. Its failures
    are format-check failures (FormatError)."""

    def __init__(self, binary: str = 'qemu-img', timeout: Optional[float] = INFO_LIMITS.timeout) -> None:
        self.binary = binary
        self.timeout = timeout

    def run(self, args: Sequence[str], what: str) -> Tuple[int, str, str]:
        """``(rc, stdout, stderr)`` of ``qemu-img ARGS`` (through ``run``)."""
        cmd = [self.binary] + list(args)
        limits = Limits(address_space=INFO_LIMITS.address_space, cpu_seconds=INFO_LIMITS.cpu_seconds,
                        timeout=self.timeout)
        try:
            rc, out, err, _cpu = run(cmd, limits, environ_update=_environment())
        except FileNotFoundError:
            raise errors.FormatError(
                'format check failed for %s: qemu-img is not installed on the host that runs the module; '
                'install it (Debian/Ubuntu: qemu-utils, RHEL/Fedora: qemu-img) or leave format out of checks.'
                % what, check='format')
        except Timeout:
            raise errors.FormatError(
                'format check failed for %s: %s did not finish within %d seconds.'
                % (what, ' '.join(cmd), self.timeout), check='format')
        return rc, out, err

    def info(self, path: str, fmt: str, what: str) -> Dict[str, Any]:
        rc, out, err = self.run(['info', '-U', '-f', fmt, '--output=json', path], what)
        if rc != 0:
            raise errors.FormatError(
                'format check failed for %s: qemu-img cannot read it as %s: %s'
                % (what, fmt, (err.strip() or 'exit status %d' % rc)), check='format', qemu_format=fmt)
        try:
            return json.loads(out)
        except ValueError:
            raise errors.FormatError(
                'format check failed for %s: qemu-img info gave no JSON: %s' % (what, out[:200]), check='format')

    def check(self, path: str, fmt: str, what: str) -> Optional[Dict[str, Any]]:
        """``qemu-img check``; None when the format has no check."""
        rc, out, err = self.run(['check', '-U', '-f', fmt, '--output=json', path], what)
        if rc == 63:  # the format does not support checks
            return None
        try:
            report = json.loads(out) if out.strip() else {}
        except ValueError:
            report = {}
        if rc not in (0, 2, 3) or not report:
            raise errors.FormatError(
                'format check failed for %s: qemu-img check could not check it as %s: %s'
                % (what, fmt, (err.strip() or out.strip() or 'exit status %d' % rc)[:500]), check='format')
        return report
