# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Image metadata as Glance's image schema has it: the checks Glance would
make, made before any byte moves, and the JSON patches that turn an image's
metadata into what is wanted.

Private to the collection; not a public API.
"""

from __future__ import annotations

import re
from typing import Any, Collection

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._jobs.claims import CLAIM_PROPERTY
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI

NAME_MAX = 255
AMAZON_FORMATS = ('aki', 'ari', 'ami')
# Image attributes the module manages besides ``properties``.
MANAGED_ATTRIBUTES = ('name', 'visibility', 'min_disk', 'min_ram', 'protected', 'tags', 'owner')
# Attributes Glance accepts only while the image has no data.
QUEUED_ONLY_ATTRIBUTES = ('disk_format', 'container_format')
# Property prefixes that are Glance's own, bound to the data, or this collection's record of where
# the data came from (osimage_glance_uri/_digest); never purged.
RESERVED_PREFIXES = ('os_glance', 'img_signature', 'os_hash', 'osimage_glance')


# -- validation ---------------------------------------------------------------

def schema_enum(schema: dict | None, attribute: str) -> list | None:
    """The values an image attribute may take according to Glance's image
    schema (``GET /v2/schemas/image``), or None when the schema has no enum."""
    values = ((schema or {}).get('properties') or {}).get(attribute, {}).get('enum')
    if not values:
        return None
    return [value for value in values if value is not None]


def validate_metadata(schema: dict | None, name: str | None, disk_format: str | None,
                      container_format: str | None) -> None:
    """The checks Glance would make, made before any byte moves."""
    if name is not None and len(name) > NAME_MAX:
        raise errors.BadRequestError(
            'name is %d characters long; Glance allows at most %d.' % (len(name), NAME_MAX))
    for attribute, value in (('disk_format', disk_format), ('container_format', container_format)):
        allowed = schema_enum(schema, attribute)
        if value is not None and allowed is not None and value not in allowed:
            raise errors.BadRequestError(
                '%s %r is not accepted by this Glance; it accepts: %s.'
                % (attribute, value, ', '.join(allowed)))
    if disk_format in AMAZON_FORMATS or container_format in AMAZON_FORMATS:
        if disk_format != container_format:
            raise errors.BadRequestError(
                'disk_format %r and container_format %r do not go together: when either is one of aki, '
                'ari or ami, both must be the same.' % (disk_format, container_format))


# Keys of ``properties`` that the module has an option for: one place to set
# each, so that the option and a property never disagree.
OPTION_FOR_KEY = {
    'id': 'id', 'name': 'name', 'disk_format': 'disk_format', 'container_format': 'container_format',
    'visibility': 'visibility', 'min_disk': 'min_disk', 'min_ram': 'min_ram', 'protected': 'protected',
    'tags': 'tags', 'owner': 'owner', 'stores': 'stores (or all_stores)',
}
# What Glance sets itself, and why it cannot be given (Glance's read-only
# attributes; the schema marks most of them readOnly).
SET_BY_GLANCE = {
    'status': 'the image\'s state, set by Glance as the data arrives',
    'checksum': 'computed by Glance from the uploaded data',
    'os_hash_algo': 'computed by Glance from the uploaded data (its hashing_algorithm)',
    'os_hash_value': 'computed by Glance from the uploaded data',
    'size': 'computed by Glance from the uploaded data',
    'virtual_size': 'computed by Glance from the uploaded data',
    'created_at': 'a time stamp set by Glance',
    'updated_at': 'a time stamp set by Glance',
    'direct_url': 'a link set by Glance',
    'self': 'a link set by Glance',
    'file': 'a link set by Glance',
    'schema': 'a link set by Glance',
}
# Glance refuses these names and its own namespace (api/common's GLANCE_RESERVED_NS).
RESERVED_KEYS = ('location', 'deleted', 'deleted_at')
RESERVED_NAMESPACE = 'os_glance'
PROPERTY_KEY_MAX = 255
_JSON_TYPE_NAMES = {'boolean': 'a boolean (true or false)', 'integer': 'an integer', 'string': 'a string',
                    'array': 'a list', 'object': 'a dict', 'number': 'a number'}


def _refusal(key, spec):
    """Why ``key`` cannot be an entry of ``properties``, or None."""
    if len(key) > PROPERTY_KEY_MAX:
        return 'Glance allows property names of at most %d characters (this one has %d)' % (
            PROPERTY_KEY_MAX, len(key))
    if key in OPTION_FOR_KEY:
        return 'use the option %s instead' % OPTION_FOR_KEY[key]
    if key in SET_BY_GLANCE:
        return '%s; it cannot be set' % SET_BY_GLANCE[key]
    if key == 'locations':
        return 'image locations are not managed by this module (Glance\'s location API, admin-only by default)'
    if (spec or {}).get('readOnly'):
        return 'read-only in the image schema of this Glance; it cannot be set'
    if key in RESERVED_KEYS or key.startswith(RESERVED_NAMESPACE):
        return 'reserved for Glance\'s own use (the %s* namespace and %s); choose another name' % (
            RESERVED_NAMESPACE, ', '.join(RESERVED_KEYS))
    return None


def _types(spec):
    kind = (spec or {}).get('type')
    if kind is None:
        return []
    return [kind] if isinstance(kind, str) else list(kind)


def _expected(types):
    names = [_JSON_TYPE_NAMES.get(kind, kind) for kind in types if kind != 'null']
    return ' or '.join(names) or 'null'


def coerce_value(value: Any, spec: dict) -> Any:
    """``value`` as the type Glance's schema entry ``spec`` wants, converting
    what Ansible hands over as text ("true", "8"); raises ValueError with
    the reason when it cannot be that type or breaks the entry's limits."""
    types = _types(spec)
    if value is None:
        if types and 'null' not in types:
            raise ValueError('it cannot be removed or null: Glance\'s schema wants %s' % _expected(types))
        return None
    if types:
        value = _to_type(value, types)
    if spec.get('enum') and value not in spec['enum']:
        raise ValueError('%r is not one of %s' % (value, ', '.join(str(v) for v in spec['enum'] if v is not None)))
    if isinstance(value, str):
        if spec.get('maxLength') is not None and len(value) > spec['maxLength']:
            raise ValueError('it is %d characters long; Glance allows at most %d' % (len(value), spec['maxLength']))
        if spec.get('minLength') is not None and len(value) < spec['minLength']:
            raise ValueError('it is %d characters long; Glance wants at least %d' % (len(value), spec['minLength']))
        # jsonschema, which Glance validates with, searches for the pattern.
        if spec.get('pattern') and not re.search(spec['pattern'], value):
            raise ValueError('%r does not match the pattern %s of Glance\'s schema' % (value, spec['pattern']))
    if isinstance(value, int) and not isinstance(value, bool):
        if spec.get('minimum') is not None and value < spec['minimum']:
            raise ValueError('%d is less than the minimum %s' % (value, spec['minimum']))
        if spec.get('maximum') is not None and value > spec['maximum']:
            raise ValueError('%d is more than the maximum %s' % (value, spec['maximum']))
    return value


def _to_type(value, types):
    """The first of the JSON ``types`` that ``value`` is or converts to."""
    for kind in types:
        if _is_type(value, kind):
            return value
    for kind in types:
        if kind == 'boolean' and isinstance(value, (str, int)):
            try:
                return boolean(value, strict=True)
            except TypeError:
                continue
        if kind == 'integer' and isinstance(value, str) and re.match(r'^\s*[-+]?\d+\s*$', value):
            return int(value)
        if kind == 'string' and isinstance(value, (bool, int, float)):
            # Ansible's YAML turns 12 and true into numbers and booleans;
            # Glance keeps them as text, written the way YAML reads them.
            return ('true' if value else 'false') if isinstance(value, bool) else str(value)
    got = 'a list' if isinstance(value, list) else 'a dict' if isinstance(value, dict) else repr(value)
    hint = ''
    if 'string' in types and isinstance(value, (list, dict)):
        hint = ' (to store structured data, give it as text, for example with the to_json filter)'
    raise ValueError('Glance\'s schema wants %s, not %s%s' % (_expected(types), got, hint))


def _is_type(value, kind):
    if kind == 'boolean':
        return isinstance(value, bool)
    if kind == 'integer':
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == 'number':
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == 'string':
        return isinstance(value, str)
    if kind == 'array':
        return isinstance(value, list)
    if kind == 'object':
        return isinstance(value, dict)
    return kind == 'null' and value is None


def check_properties(schema: dict | None, properties: dict | None) -> dict:
    """``properties`` checked against Glance's image schema (``GET
    /v2/schemas/image``) and converted to the types Glance wants: a schema
    attribute (``os_hidden``, or ``kernel_id`` where the operator's schema
    has it) to its type, any other key to a string (the schema's
    ``additionalProperties``). A value of None stays None (remove it).

    Every key Glance would refuse - read-only, server-set, reserved, one
    the module has an option for, or the wrong type - is named in one
    error, each with what to do instead, so a run fails before it creates
    anything (Glance would otherwise refuse only the PATCH after the create,
    and leave a queued image behind)."""
    declared = (schema or {}).get('properties') or {}
    additional = (schema or {}).get('additionalProperties')
    if not isinstance(additional, dict):
        additional = {'type': 'string'}
    result = {}
    problems = []
    for key in sorted(properties or {}, key=str):
        value = properties[key]
        key = str(key)
        reason = _refusal(key, declared.get(key))
        if reason is None:
            spec = declared.get(key)
            if spec is None:
                # An additional property: text; None means remove it.
                spec = dict(additional, type=sorted(set(_types(additional) or ['string']) | set(['null'])))
            try:
                result[key] = coerce_value(value, spec)
                continue
            except ValueError as exc:
                reason = str(exc)
        problems.append('%s: %s' % (key, reason))
    if problems:
        raise errors.BadRequestError(
            'properties has %d key(s) that Glance would refuse; nothing was created or changed. %s.'
            % (len(problems), '; '.join(problems)), bad_properties=sorted(p.split(':', 1)[0] for p in problems))
    return result


def check_options(schema: dict | None, options: dict) -> None:
    """The options that become image attributes (``id``, ``owner``,
    ``tags``...) against their entries in Glance's image schema."""
    declared = (schema or {}).get('properties') or {}
    problems = []
    for name in sorted(options):
        value, spec = options[name], declared.get(name)
        if value is None or not spec:
            continue
        items = value if isinstance(value, list) and isinstance(spec.get('items'), dict) else None
        try:
            for item in items if items is not None else [value]:
                coerce_value(item, spec['items'] if items is not None else spec)
        except ValueError as exc:
            problems.append('%s: %s' % (name, exc))
    if problems:
        raise errors.BadRequestError('Glance would refuse these options; nothing was created or changed. %s.'
                                     % '; '.join(problems))


# Properties that name the kernel and ramdisk images an ami boots with, and
# the disk_format those images must have (nova boots them as such).
BOOT_IMAGE_FORMATS = {'kernel_id': 'aki', 'ramdisk_id': 'ari'}


def check_boot_images(api: GlanceAPI, properties: dict | None) -> None:
    """``kernel_id`` and ``ramdisk_id`` must be ids of images this project
    sees, with disk_format aki and ari: Glance stores any text there, and
    the mistake would show only when nova boots the image."""
    problems = []
    for key, wanted in sorted(BOOT_IMAGE_FORMATS.items()):
        image_id = (properties or {}).get(key)
        if image_id is None:
            continue
        kind = 'kernel' if wanted == 'aki' else 'ramdisk'
        try:
            image = api.get_image(image_id, 'Looking up the %s image %s (%s)' % (kind, image_id, key))
        except errors.NotFoundError:
            problems.append('%s %s is not the id of an image this project can see; give the id (not the name) '
                            'of an existing %s image with disk_format %s and container_format %s'
                            % (key, image_id, kind, wanted, wanted))
            continue
        if image.get('disk_format') != wanted:
            problems.append('%s %s is image %r with disk_format %s, not a %s image; give the id of an image with '
                            'disk_format %s' % (key, image_id, image.get('name'), image.get('disk_format'), kind,
                                                wanted))
    if problems:
        raise errors.BadRequestError('%s. Nothing was created or changed.' % '; '.join(problems))


# -- metadata -------------------------------------------------------------------

def user_properties(image: dict, core: Collection[str]) -> dict:
    """The additional properties of an image (all but the schema's own
    attributes and the claim of the run that makes it, which is neither
    compared, shown nor purged)."""
    return dict((key, value) for key, value in image.items() if key not in core and key != CLAIM_PROPERTY)


def metadata_view(image: dict | None, core: Collection[str]) -> dict:
    """What the diff shows of an image: the managed attributes and its properties."""
    if image is None:
        return dict(state='absent')
    view = dict((key, image.get(key)) for key in MANAGED_ATTRIBUTES + QUEUED_ONLY_ATTRIBUTES)
    # A schema attribute set through properties: shown so the diff explains the change.
    if 'os_hidden' in image:
        view['os_hidden'] = image['os_hidden']
    view['tags'] = sorted(view.get('tags') or [])
    view['properties'] = user_properties(image, core)
    return view


def metadata_patch(image: dict, wanted: dict, properties: dict, purge: bool, core: Collection[str]) -> list:
    """The JSON-patch operations that turn ``image`` into what is wanted.

    ``wanted`` holds the managed attributes with None meaning "leave alone";
    ``properties`` are the wanted additional properties (None values are
    removed); with ``purge`` every other additional property is removed too,
    except Glance's own and the signature (bound to the data)."""
    ops = []
    for key in MANAGED_ATTRIBUTES + QUEUED_ONLY_ATTRIBUTES:
        value = wanted.get(key)
        if value is None:
            continue
        current = image.get(key)
        if key == 'tags':
            if sorted(set(value)) != sorted(set(current or [])):
                ops.append(dict(op='replace', path='/tags', value=sorted(set(value))))
            continue
        if current != value:
            if key in QUEUED_ONLY_ATTRIBUTES and image.get('status') != 'queued':
                raise errors.ConflictError(
                    'Image %s already holds data as %s=%s; Glance cannot change %s once an image has '
                    'data. Upload it as a new image (on_content_change=new or replace does not apply: the '
                    'content is the same) or delete the existing one first.'
                    % (image['id'], key, current, key), image_id=image['id'])
            ops.append(dict(op='replace' if key in image else 'add', path='/%s' % key, value=value))
    existing = user_properties(image, core)
    for key, value in sorted(properties.items()):
        # Compared with the image itself, not only its additional properties:
        # a schema attribute such as os_hidden is given in properties too.
        if value is None:
            if key in image:
                ops.append(dict(op='remove', path='/%s' % key))
        elif key not in image:
            ops.append(dict(op='add', path='/%s' % key, value=value))
        elif image[key] != value:
            ops.append(dict(op='replace', path='/%s' % key, value=value))
    if purge:
        for key in sorted(existing):
            if key not in properties and not key.startswith(RESERVED_PREFIXES):
                ops.append(dict(op='remove', path='/%s' % key))
    return ops


def apply_patch(image: dict, ops: list) -> dict:
    """What Glance will show after the patch (for check mode and the diff)."""
    result = dict(image)
    for op in ops:
        key = op['path'][1:]
        if op['op'] == 'remove':
            result.pop(key, None)
        else:
            result[key] = op['value']
    return result
