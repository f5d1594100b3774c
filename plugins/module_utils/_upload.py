# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The upload side of images: metadata validation and JSON patches, a digest
cache for local files, ownership of half-made images judged in Glance (a
claim property), and an upload body that hashes while it is being sent.

Private to the collection; not a public API.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import tempfile
import threading
import time
import uuid

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream

# Glance's default multihash algorithm (``[DEFAULT] hashing_algorithm``).
DEFAULT_HASH_ALGO = 'sha512'
NAME_MAX = 255
AMAZON_FORMATS = ('aki', 'ari', 'ami')
# Image attributes the module manages besides ``properties``.
MANAGED_ATTRIBUTES = ('name', 'visibility', 'min_disk', 'min_ram', 'protected', 'tags', 'owner')
# Attributes Glance accepts only while the image has no data.
QUEUED_ONLY_ATTRIBUTES = ('disk_format', 'container_format')
# Property prefixes that are Glance's own or are bound to the data; never purged.
RESERVED_PREFIXES = ('os_glance', 'img_signature', 'os_hash')


# -- validation ---------------------------------------------------------------

def schema_enum(schema, attribute):
    """The values an image attribute may take according to Glance's image
    schema (``GET /v2/schemas/image``), or None when the schema has no enum."""
    values = ((schema or {}).get('properties') or {}).get(attribute, {}).get('enum')
    if not values:
        return None
    return [value for value in values if value is not None]


def validate_metadata(schema, name, disk_format, container_format):
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


def coerce_value(value, spec):
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


def check_properties(schema, properties):
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


def check_options(schema, options):
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


def ensure_certificate(barbican, name: str, pem: bytes, check_mode: bool) -> tuple:
    """``(changed, uuid)`` of a Barbican certificate secret named ``name``
    holding ``pem``: an existing one with the same name and payload is
    reused, else one is created. In check mode nothing is created and the
    uuid is None."""
    what = 'Storing the signing certificate in Barbican'
    for uuid_ in barbican.find_secrets(name, 'certificate', what):
        if barbican.get_secret_payload(uuid_, what) == pem:
            return False, uuid_
    if check_mode:
        return True, None
    return True, barbican.create_certificate(name, pem, what)


def check_boot_images(api, properties):
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


def check_readable(path):
    """``os.stat`` of a readable regular file (or block device), or one clear error."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise errors.DestinationError('filename %s does not exist.' % path)
    except OSError as exc:
        raise errors.DestinationError('Cannot access filename %s: %s' % (path, exc.strerror or exc))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise errors.DestinationError('filename %s is not a regular file.' % path)
    if not os.access(path, os.R_OK):
        raise errors.DestinationError('filename %s is not readable by this user.' % path)
    return st


# -- metadata -------------------------------------------------------------------

def user_properties(image, core):
    """The additional properties of an image (all but the schema's own
    attributes and the claim of the run that makes it, which is neither
    compared, shown nor purged)."""
    return dict((key, value) for key, value in image.items() if key not in core and key != CLAIM_PROPERTY)


def metadata_view(image, core):
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


def metadata_patch(image, wanted, properties, purge, core):
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


def apply_patch(image, ops):
    """What Glance will show after the patch (for check mode and the diff)."""
    result = dict(image)
    for op in ops:
        key = op['path'][1:]
        if op['op'] == 'remove':
            result.pop(key, None)
        else:
            result[key] = op['value']
    return result


# -- the digest cache --------------------------------------------------------

XATTR_PREFIX = 'user.osimage.'
# A file changed within this many seconds of being hashed may change again
# within the same mtime tick unnoticed: its digest is not cached.
RACY_SECONDS = 2


def _cache_record(st, digest):
    return 'v1 %d %d %d %d %s' % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest)


def _parse_record(record, st):
    parts = (record or '').split()
    if len(parts) != 6 or parts[0] != 'v1':
        return None
    if parts[1:5] != [str(st.st_dev), str(st.st_ino), str(st.st_size), str(st.st_mtime_ns)]:
        return None
    return parts[5]


class DigestCache(object):
    """Digests of local files, keyed by (path, device, inode, size, mtime).

    Kept in an extended attribute of the file itself (``user.osimage.<algo>``),
    which follows the file and vanishes with it. Where the filesystem or the
    permissions do not allow xattrs, a small per-user cache directory holds
    one record per path instead (mode 0700, files written atomically). A
    record whose key does not match the file's current stat is ignored, so
    the worst a stale or damaged cache can cause is a re-hash.
    """

    def __init__(self, fallback_dir=None):
        if fallback_dir is None:
            base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
            fallback_dir = os.path.join(base, 'osimage.glance', 'digests')
        self.fallback_dir = fallback_dir

    def _fallback_path(self, path, algo):
        key = hashlib.sha256(os.path.realpath(path).encode('utf-8', 'surrogateescape')).hexdigest()
        return os.path.join(self.fallback_dir, '%s.%s' % (key, algo))

    def get(self, path, st, algo):
        """The cached digest of ``path`` (whose stat is ``st``), or None."""
        getxattr = getattr(os, 'getxattr', None)
        if getxattr is not None:
            try:
                found = _parse_record(getxattr(path, XATTR_PREFIX + algo).decode('ascii', 'replace'), st)
                if found:
                    return found
            except OSError:
                pass
        try:
            with open(self._fallback_path(path, algo)) as fileobj:
                record = fileobj.read(1024).strip()
        except OSError:
            return None
        # The fallback is keyed by path too: the record names the inode.
        return _parse_record(record, st)

    def put(self, path, st, algo, digest, now=None):
        """Remember ``digest``; returns where (``xattr``, ``file`` or None)."""
        now = time.time() if now is None else now
        if now - st.st_mtime_ns / 1e9 < RACY_SECONDS:
            return None
        try:
            current = os.stat(path)
        except OSError:
            return None
        if _cache_record(current, digest) != _cache_record(st, digest):
            return None  # changed while it was read: the digest is not its content
        record = _cache_record(st, digest)
        setxattr = getattr(os, 'setxattr', None)
        if setxattr is not None:
            try:
                setxattr(path, XATTR_PREFIX + algo, record.encode('ascii'))
                return 'xattr'
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES,
                                     errno.EROFS, errno.ENOSPC, errno.E2BIG):
                    return None
        try:
            os.makedirs(self.fallback_dir, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.fallback_dir, prefix='.record.')
            with os.fdopen(fd, 'w') as fileobj:
                fileobj.write(record + '\n')
            os.replace(tmp, self._fallback_path(path, algo))
            return 'file'
        except OSError:
            return None


# -- ownership in Glance ---------------------------------------------------------
#
# Runs on different hosts share nothing but Glance, so ownership of a half-made
# image is taken and judged there: the run that creates an image marks it with
# CLAIM_PROPERTY ("<run id>@<host>:<unix time>") and refreshes the time every
# CLAIM_REFRESH seconds until it is done. Another run judges such an image stale
# (left by a dead run) only when the claim is older than its stale_after AND the
# image has not changed at all (status, size, checksum, claim, updated_at) while
# it watched it for CLAIM_WATCH seconds, which spans more than two refreshes: a
# live writer's refresh always shows, even with clocks that disagree.

CLAIM_PROPERTY = 'osimage_glance_claim'
CLAIM_REFRESH = 10
CLAIM_WATCH = 25
# Statuses of an image whose data is not (yet) in.
BUSY = ('queued', 'saving', 'uploading', 'importing')

LIVE = 'live'          # being written: wait for it
STALE = 'stale'        # claimed by a run that is gone: may be removed
FOREIGN = 'foreign'    # not claimed (made by something else): wait, never remove
STUCK = 'stuck'        # not claimed and unchanged for stale_after: never removed, fail
DONE = 'done'          # not busy (any more), or gone
MINE = 'mine'          # claimed by this run


class Claim(object):
    """A parsed claim: who (run id and host) and when (unix time)."""

    def __init__(self, run_id, host, when):
        self.run_id = run_id
        self.host = host
        self.when = when

    def __str__(self):
        return 'run %s on host %s' % (self.run_id, self.host)


def new_run_id():
    """Unique per run: random, plus the pid for whoever reads it."""
    return '%s.%d' % (uuid.uuid4().hex[:12], os.getpid())


def claim_value(run_id, host, when):
    return '%s@%s:%d' % (run_id, host, int(when))


def parse_claim(value):
    """The Claim in a property value, or None when it is not one of ours."""
    if not isinstance(value, str):
        return None
    who, sep, when = value.rpartition(':')
    run_id, at, host = who.partition('@')
    if not (sep and at and run_id and host and when.isdigit()):
        return None
    return Claim(run_id, host, int(when))


def fingerprint(image):
    """What changes when anyone works on an image."""
    return tuple(image.get(key) for key in ('status', 'size', 'checksum', 'os_hash_value', 'updated_at',
                                            CLAIM_PROPERTY, 'os_glance_importing_to_stores'))


class ClaimWatch(object):
    """The verdict on other runs' half-made images, over repeated looks.

    ``judge(image)`` is called for each look; the verdict is one of LIVE,
    STALE, FOREIGN, STUCK, DONE and MINE (see above). ``clock`` measures how
    long an image has been watched unchanged (monotonic); ``wall`` is this
    host's time to read the age of a claim."""

    def __init__(self, run_id, stale_after, watch=CLAIM_WATCH, clock=time.monotonic, wall=time.time):
        self.run_id = run_id
        self.stale_after = stale_after
        self.watch = watch
        self._clock = clock
        self._wall = wall
        self._seen = {}

    def unchanged_for(self, image):
        """Seconds this image has looked the same (0 at the first look)."""
        now = self._clock()
        mark = fingerprint(image)
        seen = self._seen.get(image['id'])
        if seen is None or seen[0] != mark:
            self._seen[image['id']] = (mark, now)
            return 0.0
        return now - seen[1]

    def claim_age(self, claim):
        return self._wall() - claim.when

    def judge(self, image):
        if image is None or image.get('status') not in BUSY:
            return DONE
        claim = parse_claim(image.get(CLAIM_PROPERTY))
        if claim is not None and claim.run_id == self.run_id:
            return MINE
        still = self.unchanged_for(image)
        if claim is None:
            return STUCK if still >= max(self.stale_after, self.watch) else FOREIGN
        if image.get('status') == 'importing' or (image.get('os_glance_importing_to_stores') or '').strip(','):
            return LIVE  # Glance's own import task does the work, whether or not the run is alive
        if self.claim_age(claim) > self.stale_after and still >= self.watch:
            return STALE
        return LIVE

    def describe(self, image):
        """The image and who claims it, for messages."""
        claim = parse_claim(image.get(CLAIM_PROPERTY))
        text = 'image %s (%s' % (image['id'], image.get('status'))
        if claim is None:
            return text + ', no %s property: not made by this module)' % CLAIM_PROPERTY
        if claim.when == 0:
            return text + ', claimed by %s, which gave it up)' % claim
        return text + ', claimed by %s, refreshed %d seconds ago)' % (claim, max(0, self.claim_age(claim)))


class ClaimKeeper(object):
    """Refreshes this run's claim on one image every ``interval`` seconds in a
    daemon thread until ``stop()``; ``patch(ops)`` sends one JSON patch.

    Best effort: a refused refresh is retried at the next tick (a reader only
    takes the image for stale after an unchanged watch, so a missed tick is
    harmless); 404 (the image is gone) ends it."""

    def __init__(self, patch, run_id, host, interval=CLAIM_REFRESH, wall=time.time):
        self._patch = patch
        self.run_id = run_id
        self.host = host
        self.interval = interval
        self._wall = wall
        self._stop = threading.Event()
        self._thread = None
        self.refreshed = 0
        self.last_error = None

    def value(self):
        return claim_value(self.run_id, self.host, self._wall())

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='osimage-claim', daemon=True)
            self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            try:
                self._patch([dict(op='add', path='/' + CLAIM_PROPERTY, value=self.value())])
                self.refreshed += 1
            except errors.NotFoundError:
                return
            except errors.OsimageError as exc:
                self.last_error = exc.msg

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None


# -- the upload body ---------------------------------------------------------------

class HashingBody(object):
    """The data of a local file as a request body that is hashed as it is sent.

    Iterating reads the file in chunks; each chunk goes to the network and, in
    parallel, to one thread per digest, so a file is read once for upload and
    hash. ``len()`` gives the size so the request carries Content-Length.
    Iterating again (a retried request) starts a new pass with fresh digests.
    """

    def __init__(self, path, size, algos, chunk_size=stream.CHUNK_SIZE, deadline=None,
                 depth=stream.QUEUE_DEPTH):
        self.path = path
        self.size = size
        self.algos = list(algos)
        self.chunk_size = chunk_size
        self.deadline = deadline
        self.depth = depth
        self.digests = stream.Digests(self.algos)
        self.sent = 0

    def __len__(self):
        return self.size

    def __iter__(self):
        self.digests = stream.Digests(self.algos)
        self.sent = 0
        return self._chunks()

    def _chunks(self):
        with open(self.path, 'rb') as fileobj:
            chunks = stream.read_chunks(fileobj, self.chunk_size)
            if self.deadline is not None:
                chunks = self.deadline.guard(chunks)
            for chunk in stream.tee(chunks, self.digests.consumers(), self.depth):
                self.sent += len(chunk)
                yield chunk

    def hexdigests(self):
        """The digests of the last complete pass."""
        if self.digests.size != self.size:
            return {}
        return self.digests.hexdigests()
