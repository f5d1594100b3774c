# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs import info
from ansible_collections.osimage.glance.plugins.modules import image_info

NO_FILTERS = dict((key, None) for key in info.FILTER_OPTIONS + ('sort',))


def params(**given):
    return dict(NO_FILTERS, **given)


def test_filters_are_glance_query_parameters():
    filters = info.build_filters(params(name='debian', visibility='shared', status='active', disk_format='qcow2',
                                        member_status='accepted', tags=['a', 'b'],
                                        properties={'os_distro': 'debian', 'hw_qemu_guest_agent': True, 'build': 7},
                                        created_since='2026-01-31', updated_since='2026-02-01T10:00:00+01:00',
                                        sort=['name', 'created_at:desc']), owner_id='p1')
    assert filters == {
        'name': 'debian', 'visibility': 'shared', 'status': 'active', 'disk_format': 'qcow2',
        'member_status': 'accepted', 'owner': 'p1', 'tag': ['a', 'b'], 'os_distro': 'debian',
        'hw_qemu_guest_agent': 'true', 'build': '7', 'created_at': 'gte:2026-01-31T00:00:00Z',
        'updated_at': 'gte:2026-02-01T09:00:00Z', 'sort': 'name:asc,created_at:desc'}


def test_no_options_no_filters():
    assert info.build_filters(params()) == {}


@pytest.mark.parametrize('key', ['visibility', 'name', 'tag', 'limit', 'os_hidden', 'owner'])
def test_a_property_filter_that_is_a_query_option_is_refused(key):
    with pytest.raises(errors.InvalidOptionsError, match='properties.%s is not an image property filter' % key):
        info.build_filters(params(properties={key: 'x'}))


@pytest.mark.parametrize('value', [{'a': 1}, [1], None])
def test_property_values_must_be_scalars(value):
    with pytest.raises(errors.InvalidOptionsError, match='properties values must be strings'):
        info.build_filters(params(properties={'p': value}))


@pytest.mark.parametrize('text,expected', [
    ('2026-01-31', '2026-01-31T00:00:00Z'),
    ('2026-01-31T12:30:00Z', '2026-01-31T12:30:00Z'),
    ('2026-01-31T12:30:00z', '2026-01-31T12:30:00Z'),
    ('2026-01-31T12:30:00-02:00', '2026-01-31T14:30:00Z'),
])
def test_times_become_utc(text, expected):
    assert info.glance_time(text, 'created_since') == expected


@pytest.mark.parametrize('text', ['yesterday', '31.01.2026', ''])
def test_a_time_that_is_not_iso_8601_is_refused(text):
    with pytest.raises(errors.InvalidOptionsError, match='created_since must be an ISO 8601 time'):
        info.glance_time(text, 'created_since')


@pytest.mark.parametrize('entry,match', [('name:up', 'sort entries are KEY'), (':asc', 'sort entries are KEY'),
                                         ('build:asc', "sort key 'build' is not one Glance sorts by")])
def test_bad_sort_entries_are_refused(entry, match):
    with pytest.raises(errors.InvalidOptionsError, match=match):
        info.sort_keys([entry])


def test_hidden_decides_the_listings():
    assert info.query_hidden('exclude') == ['false']
    assert info.query_hidden('only') == ['true']
    assert info.query_hidden('include') == ['false', 'true']


def test_name_pattern_is_a_glob_and_name_regex_a_search():
    glob = info.name_matcher(params(name_pattern='debian-12-*'))
    assert glob('debian-12-202601') and not glob('xdebian-12-1') and not glob(None)
    regex = info.name_matcher(params(name_regex='^ubuntu-2[24]'))
    assert regex('ubuntu-24.04') and not regex('ubuntu-20.04')
    assert info.name_matcher(params()) is None
    with pytest.raises(errors.InvalidOptionsError, match='name_regex is not a valid regular expression'):
        info.name_matcher(params(name_regex='('))


def test_merged_listings_keep_the_order():
    visible = [{'id': 'b', 'name': 'b', 'created_at': '2026-03'}, {'id': 'a', 'name': 'a', 'created_at': '2026-01'}]
    hidden = [{'id': 'c', 'name': 'c', 'created_at': '2026-02'}]
    assert [i['id'] for i in info.merge_sorted([visible, hidden], [])] == ['b', 'c', 'a']  # newest first
    assert [i['id'] for i in info.merge_sorted([visible, hidden], ['name:asc'])] == ['a', 'b', 'c']
    sized = [{'id': 'x', 'size': 10}, {'id': 'y', 'size': None}, {'id': 'z', 'size': 2}]
    assert [i['id'] for i in info.merge_sorted([sized], ['size:asc'])] == ['y', 'z', 'x']


def run_module(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            image_info.main()
    result = json.loads(capsys.readouterr().out)
    result['rc'] = exit_info.value.code
    return result


def test_image_by_name_finds_every_image_of_that_name_hidden_ones_too(fake_glance, capsys):
    old = fake_glance.add(name='debian', os_hidden=True)
    new = fake_glance.add(name='debian')
    fake_glance.add(name='other')
    result = run_module({'image': 'debian'}, capsys)
    assert result['changed'] is False
    assert [image['id'] for image in result['images']] == [new['id'], old['id']]


def test_image_by_id_and_an_image_that_is_not_there(fake_glance, capsys):
    image = fake_glance.add(name='debian')
    assert [i['id'] for i in run_module({'image': image['id']}, capsys)['images']] == [image['id']]
    result = run_module({'image': 'nothing'}, capsys)
    assert result['rc'] == 0 and result['images'] == []


def test_hidden_include_with_pattern_and_limit(fake_glance, capsys):
    first = fake_glance.add(name='debian-12-1', tags=['debian'])
    second = fake_glance.add(name='debian-12-2', tags=['debian'], os_hidden=True)
    third = fake_glance.add(name='debian-12-3', tags=['debian', 'latest'])
    fake_glance.add(name='ubuntu-24', tags=['debian'])
    result = run_module({'name_pattern': 'debian-12-*', 'hidden': 'include'}, capsys)
    assert [i['id'] for i in result['images']] == [third['id'], second['id'], first['id']]
    result = run_module({'tags': ['debian'], 'hidden': 'include', 'sort': ['name:asc'], 'limit': 2}, capsys)
    assert [i['id'] for i in result['images']] == [first['id'], second['id']]
    result = run_module({'tags': ['debian', 'latest']}, capsys)
    assert [i['id'] for i in result['images']] == [third['id']]
    assert run_module({'hidden': 'only'}, capsys)['images'] == [dict(second)]


def test_check_mode_runs_the_same_query(fake_glance, capsys):
    fake_glance.add(name='debian')
    real = run_module({'name': 'debian'}, capsys)
    check = run_module({'name': 'debian', '_ansible_check_mode': True}, capsys)
    assert check['images'] == real['images'] and len(real['images']) == 1 and check['changed'] is False
