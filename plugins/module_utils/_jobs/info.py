# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The image_info job: the options become one Glance query (two when hidden
images are included: Glance lists them only on their own), followed to its
last page; what Glance cannot filter (a name pattern) is filtered here, and
members are added when asked.

Private to the collection; not a public API.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from typing import Any, Dict, List, Optional

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance

HIDDEN_CHOICES = ('exclude', 'include', 'only')
# Options that are Glance list filters of the same name.
SERVER_FILTERS = ('name', 'visibility', 'status', 'disk_format', 'container_format', 'member_status')
# Query parameters of Glance's image list that are not image properties: a
# ``properties`` key of these would change the query instead of filtering.
RESERVED_QUERY = frozenset(('limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'tag', 'os_hidden', 'size_min',
                            'size_max', 'created_at', 'updated_at', 'id', 'owner', 'protected', 'checksum',
                            'os_hash_value') + SERVER_FILTERS)
SORT_DIRECTIONS = ('asc', 'desc')
# The keys Glance sorts by (its SUPPORTED_SORT_KEYS); any other is HTTP 400.
SORT_KEYS = ('name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at')
# Glance's default order, kept when two listings are merged.
DEFAULT_SORT = ['created_at:desc', 'id:desc']
FILTER_OPTIONS = SERVER_FILTERS + ('name_pattern', 'name_regex', 'tags', 'owner', 'hidden', 'properties',
                                   'created_since', 'updated_since')


def glance_time(value: str, option: str) -> str:
    """An ISO 8601 time as Glance's list filters take it (UTC, ``Z``)."""
    text = value.strip()
    try:
        moment = datetime.datetime.fromisoformat(text[:-1] + '+00:00' if text.endswith(('Z', 'z')) else text)
    except ValueError:
        raise errors.InvalidOptionsError(
            '%s must be an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z, not %r.' % (option, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def sort_keys(sort: Optional[List[str]]) -> List[str]:
    """``sort`` entries (``KEY`` or ``KEY:asc|desc``) checked and made explicit."""
    keys = []
    for entry in sort or ():
        key, _sep, direction = entry.partition(':')
        direction = direction or 'asc'
        if not key or direction not in SORT_DIRECTIONS:
            raise errors.InvalidOptionsError(
                'sort entries are KEY or KEY:asc or KEY:desc (for example created_at:desc), not %r.' % entry)
        if key not in SORT_KEYS:
            raise errors.InvalidOptionsError(
                'sort key %r is not one Glance sorts by; use one of %s.' % (key, ', '.join(SORT_KEYS)))
        keys.append('%s:%s' % (key, direction))
    return keys


def property_text(value: Any) -> str:
    """A property value as Glance stores and compares it: a string."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, (dict, list)) or value is None:
        raise errors.InvalidOptionsError('properties values must be strings, numbers or booleans, not %r.' % (value,))
    return str(value)


def build_filters(params: Dict[str, Any], owner_id: Optional[str] = None) -> Dict[str, Any]:
    """The query parameters of Glance's image list for the options (without
    ``os_hidden``, which ``query_hidden`` decides)."""
    filters = dict((key, params[key]) for key in SERVER_FILTERS if params.get(key) is not None)
    if owner_id:
        filters['owner'] = owner_id
    if params.get('tags'):
        filters['tag'] = list(params['tags'])  # repeated: an image must carry all of them
    for key, value in sorted((params.get('properties') or {}).items()):
        if key in RESERVED_QUERY:
            raise errors.InvalidOptionsError(
                'properties.%s is not an image property filter; use the option %s instead (or drop it).'
                % (key, 'tags' if key == 'tag' else key))
        filters[key] = property_text(value)
    for option, field in (('created_since', 'created_at'), ('updated_since', 'updated_at')):
        if params.get(option):
            filters[field] = 'gte:' + glance_time(params[option], option)
    keys = sort_keys(params.get('sort'))
    if keys:
        filters['sort'] = ','.join(keys)
    return filters


def query_hidden(hidden: str) -> List[str]:
    """The ``os_hidden`` values to list with: Glance lists hidden images only
    when asked for them, and then only them."""
    return {'exclude': ['false'], 'only': ['true'], 'include': ['false', 'true']}[hidden]


def name_matcher(params: Dict[str, Any]) -> Optional[Any]:
    """A test of an image's name for name_pattern (glob) or name_regex, or None."""
    if params.get('name_pattern'):
        pattern = re.compile(fnmatch.translate(params['name_pattern']))
        return lambda name: bool(pattern.match(name or ''))
    if params.get('name_regex'):
        try:
            pattern = re.compile(params['name_regex'])
        except re.error as exc:
            raise errors.InvalidOptionsError('name_regex is not a valid regular expression: %s.' % exc)
        return lambda name: bool(pattern.search(name or ''))
    return None


def _sort_value(image, key):
    value = image.get(key)
    # None sorts first, as in Glance's ascending order; mixed types compare as text.
    return (value is not None, value if isinstance(value, (int, float)) else str(value or ''))


def merge_sorted(listings: List[List[Dict[str, Any]]], keys: List[str]) -> List[Dict[str, Any]]:
    """Several listings of one order as one, in that order."""
    images = [image for listing in listings for image in listing]
    for entry in reversed(keys or DEFAULT_SORT):
        key, _sep, direction = entry.partition(':')
        images.sort(key=lambda image, key=key: _sort_value(image, key), reverse=direction == 'desc')
    return images


def find_by_image(api: Any, name_or_id: str) -> List[Dict[str, Any]]:
    """The images ``image`` names: the one with that id, else every image
    with that name, hidden ones too; none is an empty list, not an error."""
    if glance.is_image_id(name_or_id):
        try:
            return [api.get_image(name_or_id, 'Reading image %s' % name_or_id)]
        except errors.NotFoundError:
            pass  # an image may be named like an id
    return merge_sorted([api.list_images_hidden_too('Looking up image %r' % name_or_id, name=name_or_id)], [])


def query(module: Any, api: Any) -> Dict[str, Any]:
    """The images the options select, as Glance shows them."""
    params = module.params
    if params['image']:
        images = find_by_image(api, params['image'])
    else:
        owner_id = api.keystone.find_project(params['owner'])['id'] if params['owner'] else None
        filters = build_filters(params, owner_id)
        matches = name_matcher(params)
        # A client-side name filter needs every image; otherwise Glance stops at the limit.
        limit = None if matches else params['limit']
        listings = [api.list_images('Listing images', max_images=limit, os_hidden=hidden, **filters)
                    for hidden in query_hidden(params['hidden'])]
        images = listings[0] if len(listings) == 1 else merge_sorted(listings, sort_keys(params['sort']))
        if matches:
            images = [image for image in images if matches(image.get('name'))]
    if params['limit']:
        images = images[:params['limit']]
    if params['members']:
        for image in images:
            image['members'] = image_members(api, image)
    return dict(changed=False, images=images)


def image_members(api: Any, image: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The members of a shared image (as far as the caller may see them:
    a member sees only its own entry); other images have none."""
    if image.get('visibility') != 'shared':
        return []
    return [dict(project_id=member['member_id'], status=member['status'])
            for member in api.list_members(image['id'], 'Listing the members of image %s' % image['id'])]
