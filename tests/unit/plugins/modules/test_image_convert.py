# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_convert with real qemu-img on small images; faults (no space, a
limit hit, a missing qemu-img) are injected at the process boundary
(``qemu.run``, through which every child starts).
What ends up on disk, what is reported, what qemu-img was asked, and what
is left behind on failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._disk import targets
from ansible_collections.osimage.glance.plugins.module_utils._jobs import convert as convert_job
from ansible_collections.osimage.glance.plugins.modules import image_convert

pytestmark = pytest.mark.skipif(shutil.which('qemu-img') is None, reason='needs qemu-img (qemu-utils)')

MiB = 1024 * 1024
REAL_RUN = subprocess.run
REAL_PROCESS_RUN = qemu.run


def qemu_img(*args):
    REAL_RUN(['qemu-img'] + list(args), check=True, capture_output=True)


class Subprocesses(object):
    """Records every child the module starts (its own qemu-img runs and the
    format checks'); ``fail`` makes the next ``qemu-img <subcommand>`` run
    for real and then report a failure."""

    def __init__(self):
        self.calls = []
        self.failures = {}

    def __call__(self, argv, *args, **kwargs):
        self.calls.append([str(arg) for arg in argv])
        returncode, stdout, stderr, cpu = REAL_PROCESS_RUN(argv, *args, **kwargs)
        sub = argv[1] if len(argv) > 1 else None
        if sub in self.failures:
            returncode, stderr = self.failures.pop(sub)
        return returncode, stdout, stderr, cpu

    def fail(self, subcommand, returncode, stderr):
        self.failures[subcommand] = (returncode, stderr)

    def subcommands(self):
        return [argv[1] for argv in self.calls if os.path.basename(argv[0]) == 'qemu-img' and len(argv) > 1]

    def touching(self, path):
        return [argv for argv in self.calls if any(path in str(arg) for arg in argv)]


@pytest.fixture
def procs(monkeypatch):
    qemu.QemuImg._found.clear()
    recorder = Subprocesses()
    monkeypatch.setattr(qemu, 'run', recorder)
    yield recorder
    qemu.QemuImg._found.clear()


@pytest.fixture
def qcow2(tmp_path):
    """A 16 MiB qcow2 with 3 MiB of data."""
    path = tmp_path / 'src.qcow2'
    qemu_img('create', '-f', 'qcow2', str(path), '16M')
    REAL_RUN(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xab 0 2M', '-c', 'write -P 0xcd 8M 1M', str(path)],
             check=True, capture_output=True)
    return path


def run_module(args, capsys, check_mode=False, diff=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    if diff:
        args = dict(args, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_convert.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def identical(first, first_fmt, second, second_fmt):
    return REAL_RUN(['qemu-img', 'compare', '-f', first_fmt, '-F', second_fmt, str(first), str(second)],
                    capture_output=True, check=False).returncode == 0


def leftovers(directory, *keep):
    return sorted(set(os.listdir(directory)) - set(keep))


def test_qcow2_to_raw(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys, diff=True)
    assert result['rc'] == 0, result
    assert result['changed'] is True
    assert identical(qcow2, 'qcow2', dest, 'raw')
    assert (result['src_format'], result['dest_format'], result['qemu_format']) == ('qcow2', 'raw', 'raw')
    assert result['virtual_size'] == 16 * MiB
    assert result['dest_type'] == 'file'
    assert result['dest_size'] == os.stat(dest).st_blocks * 512
    assert result['timing']['bytes'] == 16 * MiB and result['timing']['seconds'] > 0
    assert result['diff'] == dict(before=dict(state='absent'),
                                  after=dict(state='file', format='raw', virtual_size=16 * MiB))
    assert leftovers(tmp_path, 'src.qcow2') == ['dest.raw']
    convert = [argv for argv in procs.calls if argv[1:2] == ['convert']][0]
    assert convert[convert.index('-f') + 1] == 'qcow2'
    assert convert[-2] == str(qcow2)
    # Written beside dest, then renamed.
    assert os.path.dirname(convert[-1]) == str(tmp_path) and convert[-1] != str(dest)


def test_qemu_img_sees_the_source_only_after_the_inspector(procs, qcow2, tmp_path, capsys):
    run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dest.raw'), format='raw'), capsys)
    first_touch = procs.touching(str(qcow2))[0]
    # Every qemu-img run on the source names its format.
    for argv in procs.touching(str(qcow2)):
        assert '-f' in argv and argv[argv.index('-f') + 1] == 'qcow2'
    assert first_touch[1] in ('info', 'check')


def test_four_steps_check_real_and_idempotent(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.vmdk'
    args = dict(src=str(qcow2), dest=str(dest), format='vmdk', subformat='streamOptimized')
    predicted = run_module(args, capsys, check_mode=True)
    assert predicted['changed'] is True and predicted['rc'] == 0
    assert not dest.exists()
    assert 'convert' not in procs.subcommands()
    assert leftovers(tmp_path, 'src.qcow2') == []

    done = run_module(args, capsys)
    assert done['changed'] is True
    assert identical(qcow2, 'qcow2', dest, 'vmdk')
    mtime = os.stat(dest).st_mtime_ns

    procs.calls.clear()
    again_check = run_module(args, capsys, check_mode=True)
    again = run_module(args, capsys, diff=True)
    assert again_check['changed'] is False and again['changed'] is False
    assert 'convert' not in procs.subcommands()
    assert 'compare' in procs.subcommands()
    assert 'timing' not in again
    assert os.stat(dest).st_mtime_ns == mtime
    assert again['diff']['before'] == again['diff']['after'] == dict(state='file', format='vmdk',
                                                                     virtual_size=16 * MiB)


def test_other_subformat_is_converted_again(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.vmdk'
    run_module(dict(src=str(qcow2), dest=str(dest), format='vmdk'), capsys)
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='vmdk', subformat='streamOptimized'), capsys)
    assert result['changed'] is True


def test_force_converts_again(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys)
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw', force=True), capsys)
    assert result['changed'] is True and 'timing' in result


def test_different_content_is_replaced(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys)
    with open(dest, 'r+b') as fileobj:
        fileobj.seek(5 * MiB)
        fileobj.write(b'guest data changed')
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys, diff=True)
    assert result['changed'] is True
    assert identical(qcow2, 'qcow2', dest, 'raw')


def test_dest_of_another_format_is_replaced_and_diff_shows_it(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.img'
    qemu_img('create', '-f', 'qcow2', str(dest), '8M')
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys, diff=True)
    assert result['changed'] is True
    assert result['diff']['before'] == dict(state='file', format='qcow2', virtual_size=None)
    assert result['diff']['after'] == dict(state='file', format='raw', virtual_size=16 * MiB)
    assert identical(qcow2, 'qcow2', dest, 'raw')


@pytest.mark.parametrize('fmt, qemu_fmt', [('qcow2', 'qcow2'), ('vhd', 'vpc'), ('vhdx', 'vhdx'), ('vdi', 'vdi')])
def test_round_trip(procs, qcow2, tmp_path, capsys, fmt, qemu_fmt):
    there = tmp_path / ('there.' + fmt)
    back = tmp_path / 'back.raw'
    assert run_module(dict(src=str(qcow2), dest=str(there), format=fmt), capsys)['changed'] is True
    result = run_module(dict(src=str(there), src_format=fmt, dest=str(back), format='raw'), capsys)
    assert result['src_format'] == fmt
    assert identical(qcow2, 'qcow2', back, 'raw')
    assert REAL_RUN(['qemu-img', 'info', '-f', qemu_fmt, '--output=json', str(there)],
                    capture_output=True, check=False).returncode == 0
    assert run_module(dict(src=str(qcow2), dest=str(there), format=fmt), capsys)['changed'] is False


def test_vhd_keeps_the_exact_virtual_size(procs, tmp_path, capsys):
    src = tmp_path / 'odd.raw'
    with open(src, 'wb') as fileobj:
        fileobj.truncate(16 * MiB + 3 * 512)
    dest = tmp_path / 'odd.vhd'
    run_module(dict(src=str(src), dest=str(dest), format='vhd'), capsys)
    info = json.loads(REAL_RUN(['qemu-img', 'info', '-f', 'vpc', '--output=json', str(dest)],
                               capture_output=True, check=True).stdout)
    assert info['virtual-size'] == 16 * MiB + 3 * 512
    assert run_module(dict(src=str(src), dest=str(dest), format='vhd'), capsys)['changed'] is False


def test_qcow2_options_and_compression(procs, tmp_path, capsys):
    src = tmp_path / 'src.raw'
    with open(src, 'wb') as fileobj:
        fileobj.write(b'compressible ' * 200000)
        fileobj.truncate(8 * MiB)
    dest = tmp_path / 'dest.qcow2'
    args = dict(src=str(src), dest=str(dest), format='qcow2', compress=True,
                options=dict(compat='0.10', cluster_size='128k', lazy_refcounts=False))
    run_module(args, capsys)
    convert = [argv for argv in procs.calls if argv[1:2] == ['convert']][0]
    assert '-c' in convert and '-W' not in convert
    assert convert[convert.index('-o') + 1] == 'cluster_size=128k,compat=0.10,lazy_refcounts=off'
    info = json.loads(REAL_RUN(['qemu-img', 'info', '-f', 'qcow2', '--output=json', str(dest)],
                               capture_output=True, check=True).stdout)
    assert info['cluster-size'] == 128 * 1024
    assert info['format-specific']['data']['compat'] == '0.10'
    assert run_module(args, capsys)['changed'] is False
    # Another compat level is another image.
    assert run_module(dict(args, options=dict(compat='1.1', cluster_size='128k')), capsys)['changed'] is True


def raw_source(tmp_path):
    """A 2 MiB raw file with 1 MiB of random data."""
    src = tmp_path / 'src.raw'
    with open(src, 'wb') as fileobj:
        fileobj.write(os.urandom(MiB))
        fileobj.truncate(2 * MiB)
    return src


def test_luks_encryption_passphrase_never_on_a_command_line(procs, tmp_path, capsys):
    src = raw_source(tmp_path)
    dest = tmp_path / 'dest.luks'
    passphrase = 'correct horse battery staple'
    args = dict(src=str(src), dest=str(dest), format='raw', encryption=dict(passphrase=passphrase, iter_time=10))
    result = run_module(args, capsys)
    assert result.get('changed') is True, result.get('msg')
    assert result['encrypted'] is True and result['qemu_format'] == 'luks' and result['dest_format'] == 'raw'
    for argv in procs.calls:
        assert not any(passphrase in str(arg) for arg in argv)
    # In memory only: the descriptor qemu-img inherits, no file on disk.
    secret_files = [arg.split('file=')[1] for argv in procs.calls for arg in argv if arg.startswith('secret,')]
    assert secret_files and all(path.startswith('/proc/self/fd/') for path in secret_files)
    with open(dest, 'rb') as fileobj:
        assert fileobj.read(6) == b'LUKS\xba\xbe'
    assert run_module(args, capsys)['changed'] is False


@pytest.mark.parametrize('maker, text', [
    (lambda d, base: ['create', '-f', 'qcow2', '-b', str(base), '-F', 'qcow2', str(d / 'evil.qcow2')],
     'backing file'),
    (lambda d, base: ['create', '-f', 'qcow2', '-o', 'data_file=%s' % (d / 'data.bin'), str(d / 'evil.qcow2'), '4M'],
     'external data file'),
])
def test_hostile_sources_are_refused_before_qemu_img_sees_them(procs, qcow2, tmp_path, capsys, maker, text):
    qemu_img(*maker(tmp_path, qcow2))
    evil = str(tmp_path / 'evil.qcow2')
    procs.calls.clear()
    result = run_module(dict(src=evil, dest=str(tmp_path / 'out.raw'), format='raw'), capsys)
    assert result['rc'] == 1
    assert result['failed'] is True
    assert 'format check failed for src %s' % evil in result['msg'] and text in result['msg']
    assert procs.touching(evil) == []
    assert not (tmp_path / 'out.raw').exists()


def test_declared_raw_with_qcow2_inside_is_refused(procs, qcow2, tmp_path, capsys):
    procs.calls.clear()
    result = run_module(dict(src=str(qcow2), src_format='raw', dest=str(tmp_path / 'out.raw'), format='raw'),
                        capsys)
    assert result['rc'] == 1
    assert 'src_format is declared as raw but the content is qcow2' in result['msg']
    assert procs.touching(str(qcow2)) == []


def test_temp_files_of_dead_runs_are_removed_and_reported(procs, qcow2, tmp_path, capsys):
    """A killed run's temporary file (its pid gone) goes; a live run's, another
    host's and a foreign file beside dest stay."""
    dest = tmp_path / 'dest.raw'
    me = targets.this_process()
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    dead = targets.Owner(me.host, me.boot, me.pidns, child.pid, 1)
    parent = targets.Owner(me.host, me.boot, me.pidns, os.getppid(), targets.start_time(os.getppid()))
    stale = tmp_path / targets.temp_name(str(dest), dead)
    keep = [tmp_path / targets.temp_name(str(dest), parent),
            tmp_path / targets.temp_name(str(dest), targets.Owner('elsewhere', me.boot, me.pidns, child.pid, 1)),
            tmp_path / '.dest.raw.a1b2c3.part']
    for path in [stale] + keep:
        path.write_bytes(b'half')
    check = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys, check_mode=True)
    assert check['removed_stale_temp'] == [str(stale)] and stale.exists()
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys)
    assert result['changed'] is True and result['removed_stale_temp'] == [str(stale)]
    assert not stale.exists() and all(path.exists() for path in keep)
    assert leftovers(tmp_path, 'src.qcow2', 'dest.raw') == sorted(path.name for path in keep)


def test_no_space_during_conversion_removes_the_temp_and_keeps_dest(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    dest.write_bytes(b'previous image')
    procs.fail('convert', 1, 'qemu-img: error while writing at byte 2097152: No space left on device\n')
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw'), capsys)
    assert result['rc'] == 1
    assert result['msg'].startswith('No space left in %s while converting %s to %s' % (tmp_path, qcow2, dest))
    assert 'The temporary file was removed and %s was not changed' % dest in result['msg']
    assert dest.read_bytes() == b'previous image'
    assert leftovers(tmp_path, 'src.qcow2') == ['dest.raw']


def test_cpu_limit_hit_is_reported_and_leaves_nothing(procs, qcow2, tmp_path, capsys):
    procs.fail('convert', -signal.SIGXCPU, '')
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dest.raw'), format='raw',
                             limits=dict(cpu_time=7)), capsys)
    assert result['rc'] == 1
    assert 'stopped by its CPU-time limit of 7 seconds' in result['msg']
    assert result['limit'] == 'cpu_time'
    assert leftovers(tmp_path, 'src.qcow2') == []


def test_limits_reach_qemu_img(monkeypatch, qcow2, tmp_path, capsys):
    qemu.QemuImg._found.clear()
    seen = []
    real = qemu.run_process

    def recording(argv, limits, env, **kwargs):
        seen.append((argv[1] if len(argv) > 1 else None, limits))
        return real(argv, limits, env, **kwargs)

    monkeypatch.setattr(qemu, 'run_process', recording)
    run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dest.raw'), format='raw',
                    limits=dict(address_space=1536, timeout=600)), capsys)
    convert_limits = [limits for sub, limits in seen if sub == 'convert'][0]
    assert convert_limits.address_space == 1536 * MiB
    assert convert_limits.cpu_seconds == 120  # automatic: 60 s + 60 s per started GiB
    assert convert_limits.timeout == 600
    qemu.QemuImg._found.clear()


def test_too_little_free_space_is_refused_before_converting(procs, qcow2, tmp_path, capsys, monkeypatch):
    real_statvfs = os.statvfs

    class Tiny(object):
        f_bavail = 16
        f_frsize = 4096

    monkeypatch.setattr(os, 'statvfs', lambda path: Tiny() if str(path) == str(tmp_path) else real_statvfs(path))
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dest.raw'), format='raw'), capsys)
    assert result['rc'] == 1
    assert 'needs' in result['msg'] and 'in %s but only 65536 bytes are free there' % tmp_path in result['msg']
    assert 'convert' not in procs.subcommands()
    assert leftovers(tmp_path, 'src.qcow2') == []


def test_missing_qemu_img_is_one_clear_message(procs, qcow2, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(qemu.shutil, 'which', lambda name, path=None: None)
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dest.raw'), format='raw'), capsys)
    assert result['rc'] == 1
    assert result['msg'].startswith('qemu-img is not installed')
    assert 'qemu-utils (Debian/Ubuntu)' in result['msg']


@pytest.mark.parametrize('args, text', [
    (dict(format='raw', compress=True), 'compress is only available for format qcow2'),
    (dict(format='qcow2', subformat='streamOptimized'), 'subformat streamOptimized does not go with format qcow2'),
    (dict(format='vdi', encryption=dict(passphrase='secret words')), 'encryption is only available'),
    (dict(format='qcow2', options=dict(backing_file='/etc/passwd')), 'options.backing_file is not allowed'),
    (dict(format='qcow2', options=dict(data_file='/dev/sda')), 'options.data_file is not allowed'),
    (dict(format='qcow2', options={'encrypt.format': 'luks'}), 'use the module option encryption'),
])
def test_contradicting_options_are_refused(procs, qcow2, tmp_path, capsys, args, text):
    result = run_module(dict(args, src=str(qcow2), dest=str(tmp_path / 'd')), capsys)
    assert result['rc'] == 1
    assert text in result['msg']
    assert procs.calls == []


def test_src_equal_to_dest_is_refused(procs, qcow2, capsys):
    result = run_module(dict(src=str(qcow2), dest=str(qcow2), format='qcow2'), capsys)
    assert result['rc'] == 1
    assert 'src and dest are the same file' in result['msg']


def test_dest_that_is_a_directory_is_refused(procs, qcow2, tmp_path, capsys):
    (tmp_path / 'dir').mkdir()
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'dir'), format='raw'), capsys)
    assert result['rc'] == 1
    assert 'neither a regular file nor a block device' in result['msg']


def test_missing_dest_directory_is_named(procs, qcow2, tmp_path, capsys):
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'no' / 'dest.raw'), format='raw'), capsys)
    assert result['rc'] == 1
    assert 'The directory of dest, %s, does not exist' % (tmp_path / 'no') in result['msg']


def test_file_attributes_are_applied(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    result = run_module(dict(src=str(qcow2), dest=str(dest), format='raw', mode='0640'), capsys)
    assert result['changed'] is True
    assert oct(os.stat(dest).st_mode & 0o777) == '0o640'
    os.chmod(dest, 0o600)
    again = run_module(dict(src=str(qcow2), dest=str(dest), format='raw', mode='0640'), capsys)
    assert again['changed'] is True and 'timing' not in again
    assert oct(os.stat(dest).st_mode & 0o777) == '0o640'


def test_takes_no_cloud_options(procs, qcow2, tmp_path, capsys):
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'd.raw'), format='raw', cloud='demo'), capsys)
    assert result['rc'] == 1
    assert 'Unsupported parameters' in result['msg'] and 'cloud' in result['msg']


def test_luks_calibration_flaw_of_qemu_img_is_tried_again(procs, tmp_path, capsys):
    src = tmp_path / 'src.raw'
    with open(src, 'wb') as fileobj:
        fileobj.truncate(MiB)
    procs.fail('convert', 1, 'qemu-img: /x.part: error while converting luks: Unable to get accurate CPU usage\n')
    result = run_module(dict(src=str(src), dest=str(tmp_path / 'dest.luks'), format='raw',
                             encryption=dict(passphrase='a long passphrase', iter_time=10)), capsys)
    assert result['changed'] is True, result
    # The injected failure was retried. The retries run the real qemu-img 7.2,
    # which can hit the same flaw again on a busy host, so up to the bound.
    assert 'convert' not in procs.failures
    assert 2 <= procs.subcommands().count('convert') <= convert_job.LUKS_CALIBRATION_ATTEMPTS


def test_reason_says_why_it_converted(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'dest.raw'
    args = dict(src=str(qcow2), dest=str(dest), format='raw')
    assert run_module(args, capsys)['reason'] == 'dest does not exist'
    assert run_module(args, capsys)['reason'] is None
    with open(dest, 'r+b') as fileobj:
        fileobj.write(b'x')
    assert run_module(args, capsys)['reason'].startswith('qemu-img compare finds different data')
    assert run_module(dict(args, force=True), capsys)['reason'] == 'force is set'


def test_negative_limits_are_refused_before_qemu_img_runs(procs, qcow2, tmp_path, capsys):
    dest = tmp_path / 'out.raw'
    result = run_module({'src': str(qcow2), 'dest': str(dest), 'format': 'raw',
                         'limits': {'timeout': -1, 'address_space': -1}}, capsys)
    assert result['failed'] is True
    assert result['msg'] == ('limits.address_space is -1 but must be 0 or more (MiB; 0 means no limit); '
                             'limits.timeout is -1 but must be 0 or more (0 means no limit). Nothing was done.')
    assert procs.calls == [] and not dest.exists()


def test_other_convert_failures_are_not_run_again(procs, qcow2, tmp_path, capsys):
    procs.fail('convert', 1, 'qemu-img: error while writing sector 0: Input/output error')
    result = run_module(dict(src=str(qcow2), dest=str(tmp_path / 'out.raw'), format='raw'), capsys)
    assert result['rc'] == 1 and 'Input/output error' in result['msg']
    assert procs.subcommands().count('convert') == 1
