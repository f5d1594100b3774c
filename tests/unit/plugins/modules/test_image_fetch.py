# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""image_fetch with the Glance API faked at its boundary (GlanceAPI): what
ends up on disk, what is reported, and what is left behind on failure."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils import _cloud
from ansible_collections.osimage.glance.plugins.modules import image_fetch

DATA = os.urandom(5 * 1024 * 1024 + 3)
IMAGE = {
    'id': '11111111-2222-3333-4444-555555555555', 'name': 'cirros', 'status': 'active',
    'disk_format': 'raw', 'container_format': 'bare', 'size': len(DATA), 'virtual_size': None,
    'os_hash_algo': 'sha512', 'os_hash_value': hashlib.sha512(DATA).hexdigest(),
    'checksum': hashlib.md5(DATA).hexdigest(),
}


class FakeStream(object):
    def __init__(self, data, break_after=None):
        self.data = data
        self.break_after = break_after
        self.closed = False

    def iter_content(self, chunk_size):
        for offset in range(0, len(self.data), chunk_size):
            if self.break_after is not None and offset >= self.break_after:
                raise requests.exceptions.ChunkedEncodingError('Connection broken: reset by peer')
            yield self.data[offset:offset + chunk_size]

    def close(self):
        self.closed = True


class FakeGlance(object):
    endpoint = 'http://glance.test:9292'

    def __init__(self, image, stream):
        self.image = image
        self.stream = stream
        self.downloads = 0

    def find_image(self, name_or_id):
        assert name_or_id in (self.image['id'], self.image['name'])
        return dict(self.image)

    def open_image_data(self, image, what):
        self.downloads += 1
        return self.stream


@pytest.fixture
def glance(monkeypatch):
    fake = FakeGlance(IMAGE, FakeStream(DATA))
    monkeypatch.setattr(_cloud.GlanceAPI, 'from_params', classmethod(lambda cls, params: fake))
    return fake


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_fetch.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def test_fetch_writes_verified_data_and_reports_the_transfer(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['rc'] == 0 and result['changed'] is True
    assert dest.read_bytes() == DATA
    assert result['transfer']['bytes'] == len(DATA)
    assert result['verified_with'] == 'sha512'
    assert glance.stream.closed
    assert os.listdir(tmp_path) == ['cirros.raw']


def test_check_mode_predicts_a_download_and_writes_nothing(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    result = run_module({'image': 'cirros', 'dest': str(dest), '_ansible_check_mode': True,
                         '_ansible_diff': True}, capsys)
    assert result['changed'] is True
    assert result['diff']['before'] == {'state': 'absent'}
    assert result['diff']['after']['sha512'] == IMAGE['os_hash_value']
    assert glance.downloads == 0
    assert not dest.exists()


def test_up_to_date_dest_is_not_downloaded_again(glance, tmp_path, capsys):
    dest = tmp_path / 'cirros.raw'
    dest.write_bytes(DATA)
    result = run_module({'image': IMAGE['id'], 'dest': str(dest)}, capsys)
    assert result['changed'] is False
    assert 'transfer' not in result
    assert glance.downloads == 0


def test_hash_mismatch_fails_and_keeps_the_old_dest(glance, tmp_path, capsys):
    glance.stream = FakeStream(DATA[:-1] + b'\0')
    dest = tmp_path / 'cirros.raw'
    dest.write_bytes(b'old content')
    result = run_module({'image': 'cirros', 'dest': str(dest)}, capsys)
    assert result['rc'] == 1 and result['failed'] is True
    assert 'the data does not match the image: sha512 expected %s' % IMAGE['os_hash_value'] in result['msg']
    assert dest.read_bytes() == b'old content'
    assert os.listdir(tmp_path) == ['cirros.raw']


def test_short_download_is_reported_with_both_sizes(glance, tmp_path, capsys):
    glance.stream = FakeStream(DATA[:1000])
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert 'received 1000 bytes but Glance says the image has %d' % len(DATA) in result['msg']
    assert os.listdir(tmp_path) == []


def test_connection_lost_mid_stream_leaves_nothing(glance, tmp_path, capsys):
    glance.stream = FakeStream(DATA, break_after=4 * 1024 * 1024)
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert result['failed'] is True
    assert 'broke off after 4194304 bytes' in result['msg']
    assert os.listdir(tmp_path) == []


def test_image_without_any_hash_needs_allow_unverified(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, os_hash_algo=None, os_hash_value=None, checksum=None)
    refused = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert 'cannot be verified. Set allow_unverified=true' in refused['msg']
    allowed = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x'), 'allow_unverified': True}, capsys)
    assert allowed['changed'] is True and allowed['verified_with'] is None
    assert (tmp_path / 'x').read_bytes() == DATA


def test_md5_checksum_is_the_fallback_for_old_images(glance, tmp_path, capsys):
    glance.image = dict(IMAGE, os_hash_algo=None, os_hash_value=None)
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x')}, capsys)
    assert result['verified_with'] == 'md5'
    assert result['changed'] is True


def test_dest_that_is_a_directory_is_refused(glance, tmp_path, capsys):
    result = run_module({'image': 'cirros', 'dest': str(tmp_path)}, capsys)
    assert 'is not a regular file' in result['msg']


def test_cloud_dict_with_region_beside_it_is_one_clear_error(tmp_path, capsys):
    result = run_module({'image': 'cirros', 'dest': str(tmp_path / 'x'), 'cloud': {'auth': {}},
                         'region_name': 'RegionOne'}, capsys)
    assert result['failed'] is True
    assert result['msg'] == 'cloud is given as a dict, so region_name must go inside that dict instead of being module options.'
