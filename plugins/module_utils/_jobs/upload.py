# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The job of image_upload: make an image in Glance hold a local file's data
(or a web-download, or copies in more stores) with the metadata asked for,
or make the images of a name or id absent.

``ensure_present`` and ``ensure_absent`` return ``(changed, result)``; what
goes wrong is raised as an ``OsimageError`` for the module runner to report.

Private to the collection; not a public API.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import sources
from ansible_collections.osimage.glance.plugins.module_utils._disk import stream
from ansible_collections.osimage.glance.plugins.module_utils._jobs import claims
from ansible_collections.osimage.glance.plugins.module_utils._jobs import metadata
from ansible_collections.osimage.glance.plugins.module_utils._module import GlanceModule
from ansible_collections.osimage.glance.plugins.module_utils._openstack.barbican import BarbicanAPI
from ansible_collections.osimage.glance.plugins.module_utils._openstack.glance import GlanceAPI
from ansible_collections.osimage.glance.plugins.module_utils._trust import publisher
from ansible_collections.osimage.glance.plugins.module_utils._trust import signature as trust

# Glance's default multihash algorithm (``[DEFAULT] hashing_algorithm``).
ALGO = 'sha512'
IN_PROGRESS = ('saving', 'uploading', 'importing')
HAS_DATA = ('active', 'deactivated')
# Where a web-download import records what it imported: the URL and the
# publisher's digest it was proven against (ALGO:HEX), for idempotent re-runs.
SOURCE_URI_PROPERTY = 'osimage_glance_uri'
SOURCE_DIGEST_PROPERTY = 'osimage_glance_digest'
# Glance's visibility for an image created without one.
GLANCE_DEFAULT_VISIBILITY = 'shared'
# How often a web-download import that Glance reports failed is asked for.
IMPORT_ATTEMPTS = 3
IMPORT_RETRY_PAUSE = 2
# Bytes of the file the format inspector looks at before the upload.
INSPECT_BYTES = 16 * 1024 * 1024


def split_stores(text: str | None) -> list:
    return [store for store in (text or '').split(',') if store]


def glance_call(action: str, func: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run one Glance call; 413, 403 and 409 become one clear message each."""
    try:
        return func(*args, **kwargs)
    except errors.OverQuotaError as exc:
        raise errors.OverQuotaError(
            '%s was refused because a quota or size limit of this project would be exceeded (HTTP 413). Delete '
            'images you no longer need or ask for a larger image quota. %s' % (action, exc.msg), status_code=413)
    except errors.NotAuthorizedError as exc:
        raise errors.NotAuthorizedError(
            '%s was refused (HTTP 403): the policy or a property protection rule of this Glance does not let '
            'these credentials do it (protected properties can only be set by the roles the operator chose). %s'
            % (action, exc.msg), status_code=403)
    except errors.ConflictError as exc:
        raise errors.ConflictError(
            '%s conflicts with the image\'s current state (HTTP 409), for example an image that already has '
            'data, is being uploaded by another run, or an id that is taken. %s' % (action, exc.msg),
            status_code=409)


def _head(path, limit):
    """The first ``limit`` bytes of a file, in chunks."""
    return stream.read_file(path, limit)


def detect_format(path: str, size: int, schema: dict) -> str:
    """The disk_format of a file when none is given: the format inspector's
    verdict on its head, in Glance's name (a GPT disk is raw), which must be
    one this Glance accepts. ``inspect_format`` then cross-checks it as it
    does a declared one."""
    from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect as formats
    inspection = formats.Inspection('filename %s' % path)
    for dummy in inspection.wrap(_head(path, min(size, INSPECT_BYTES))):
        pass
    detected = formats.effective_format(inspection.detected(), None)
    allowed = metadata.schema_enum(schema, 'disk_format')
    if allowed is not None and detected not in allowed:
        raise errors.FormatError(
            'disk_format is not given and the content of filename %s is %s, which is not a disk_format this Glance '
            'accepts (%s). Convert the image (osimage.glance.image_convert) or give disk_format.'
            % (path, detected, ', '.join(allowed)), check='format', detected_format=detected)
    return detected


def formats_name(detected: str) -> str:
    """The Glance disk_format of a format the inspector detected."""
    from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect as formats
    return formats.effective_format(detected, None)


def inspect_format(path: str, disk_format: str, size: int) -> dict:
    """The one call site of the format inspector (osimage.glance's _disk.inspect):
    the declared disk_format must be what the content is, and the content must
    pass the format's safety checks. Looks at the head of the file."""
    # Imported here so that the rest of the module works where the format
    # inspector's library (oslo.utils) is missing until it is needed.
    from ansible_collections.osimage.glance.plugins.module_utils._disk import inspect as formats
    what = 'filename %s' % path
    inspection = formats.Inspection(what, declared=disk_format)
    limit = size if disk_format == 'vmdk' else min(size, INSPECT_BYTES)
    for dummy in inspection.wrap(_head(path, limit)):
        pass
    return formats.evaluate(inspection, path)


class Uploader(object):
    """One run of the module."""

    # Clocks of the claim watch (replaceable in tests).
    clock = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    def __init__(self, module: GlanceModule, api: GlanceAPI, cache: sources.DigestCache | None = None) -> None:
        self.module = module
        self.api = api
        self.params = module.params
        self.check_mode = module.check_mode
        self.cache = cache or sources.DigestCache()
        self.run_id = claims.new_run_id()
        self.host = socket.gethostname() or 'localhost'
        self.watch = claims.ClaimWatch(self.run_id, self.params['stale_after'] or 0, clock=self.clock,
                                       wall=self.wall)
        self.keeper = None
        self.deadline = stream.Deadline(self.params['timeout'], 'Uploading image %s' % self.params['name'],
                                        clock=self.clock)
        self.schema = None
        self.core = None
        self.properties = {}
        # The disk_format given, or the one detected from the content.
        self.disk_format = module.params['disk_format']
        self.detected_disk_format = None
        self.st = None
        self.digests = {}
        self.deleted = []
        self.kept = []
        self.warnings = []
        self.transfer = None
        self.signer = None
        self.certificate_id = None
        # The publisher's digest of a web-download (checksum, checksum_url), and the proof.
        self.published = None
        self.proof = None

    # -- lookups ---------------------------------------------------------------
    def load_schema(self) -> None:
        self.schema = self.api.get_image_schema()
        self.core = set((self.schema.get('properties') or {}).keys()) | set(['stores', 'file', 'schema', 'self'])

    @property
    def project_id(self) -> str:
        return self.api.current_project_id

    @property
    def owner(self) -> str:
        return self.params['owner'] or self.project_id

    def candidates(self) -> list:
        """Images this task is about: the one with ``id``, or those with the
        name that the owner owns."""
        params = self.params
        if params['id']:
            try:
                image = self.api.get_image(params['id'], 'Looking up image %s' % params['id'])
            except errors.NotFoundError:
                return []
            return [image]
        what = 'Looking up images named %r' % params['name']
        # An image hidden by an earlier run is found too.
        images = self.api.list_images_hidden_too(what, name=params['name'], owner=self.owner)
        gone = ('killed', 'deleted', 'pending_delete')
        return sorted((image for image in images if image.get('status') not in gone),
                      key=lambda image: (image.get('created_at') or '', image['id']))

    def get_image(self, image_id: str) -> dict:
        return self.api.get_image(image_id, 'Reading image %s' % image_id)

    # -- local file --------------------------------------------------------------
    def algos(self) -> list:
        return [ALGO] + ([self.signer.algo] if self.signer and self.signer.algo != ALGO else [])

    def cached_digests(self) -> bool:
        for algo in self.algos():
            if algo not in self.digests:
                found = self.cache.get(self.params['filename'], self.st, algo)
                if found:
                    self.digests[algo] = found
        return all(algo in self.digests for algo in self.algos())

    def hash_local(self) -> None:
        """Digests of the local file: from the cache, else one read pass."""
        if self.cached_digests():
            return
        path = self.params['filename']
        size, digests = stream.hash_file(path, self.algos())
        if size != self.st.st_size:
            raise errors.DestinationError('filename %s changed size while it was read (%d, now %d bytes). Run '
                                          'again when it is complete.' % (path, self.st.st_size, size))
        self.digests.update(digests)
        self.remember_digests()

    def remember_digests(self) -> None:
        if self.check_mode:
            return
        for algo, value in self.digests.items():
            self.cache.put(self.params['filename'], self.st, algo, value)

    # -- metadata ------------------------------------------------------------
    def wanted(self) -> dict:
        params = self.params
        keys = ('name', 'visibility', 'min_disk', 'min_ram', 'protected', 'tags')
        wanted = dict((key, params[key]) for key in keys)
        if params['owner']:
            wanted['owner'] = params['owner']
        if params['import_method'] != 'copy-image':
            wanted['disk_format'] = self.disk_format
            wanted['container_format'] = params['container_format']
        return wanted

    def patch_ops(self, image: dict) -> list:
        return metadata.metadata_patch(image, self.wanted(), self.properties,
                                       self.params['purge_properties'], self.core)

    def apply(self, image: dict, ops: list, action: str) -> dict:
        if not ops:
            return image
        return glance_call(action, self.api.update_image, image['id'], ops, action)

    def new_image_body(self) -> dict:
        params = self.params
        body = dict(name=params['name'], disk_format=self.disk_format,
                    container_format=params['container_format'])
        for key in ('visibility', 'min_disk', 'min_ram', 'tags', 'id'):
            if params[key] is not None:
                body[key] = params[key]
        if params['owner'] and params['owner'] != self.project_id:
            body['owner'] = params['owner']
        for key, value in self.properties.items():
            if value is not None:
                body[key] = value
        if params['import_method'] == 'web-download':
            body[SOURCE_URI_PROPERTY] = params['uri']
            if self.published is not None:
                body[SOURCE_DIGEST_PROPERTY] = str(self.published)
                # Nobody else sees it before its content is proven (prove_published).
                body.update(visibility='private', os_hidden=True)
        body[claims.CLAIM_PROPERTY] = self.claim()
        return body

    # -- ownership (see the notes in DOCUMENTATION) ----------------------------------
    def claim(self, when: float | None = None) -> str:
        return claims.claim_value(self.run_id, self.host, self.wall() if when is None else when)

    def pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def find_image(self, image_id: str) -> dict | None:
        try:
            return self.get_image(image_id)
        except errors.NotFoundError:
            return None

    def settle(self, busy: list, resume_id: str | None = None) -> dict | None:
        """Wait until no image of ``busy`` (half-made, not ours) is being
        written any more, and delete those judged stale; never one without our
        claim or one that still changes. A stale queued image with
        ``resume_id`` is returned instead of deleted, to be resumed."""
        pending = list(busy)
        delay = 1.0
        while True:
            waiting = []
            for image in pending:
                verdict = self.watch.judge(image)
                if verdict == claims.STALE and image['id'] == resume_id and image.get('status') == 'queued':
                    return image
                if verdict == claims.STALE:
                    self.delete(image, 'left %s by %s, which is gone: claim older than stale_after=%s and '
                                'unchanged for %s seconds' % (image.get('status'), claims.parse_claim(
                                    image.get(claims.CLAIM_PROPERTY)), self.params['stale_after'],
                                    claims.CLAIM_WATCH))
                elif verdict == claims.STUCK:
                    raise errors.ImageStateError(
                        'Image %s named %r is %s and has not changed for %s seconds, and it has no %s property: it '
                        'was not made by this module (or by a run of a version before it), and this module never '
                        'deletes an image it did not make. If it is a leftover, delete it (openstack image delete '
                        '%s, or this module with state=absent)%s.'
                        % (image['id'], image.get('name'), image.get('status'),
                           max(self.params['stale_after'], claims.CLAIM_WATCH), claims.CLAIM_PROPERTY, image['id'],
                           ', or give id=%s to upload into it' % image['id'] if image.get('status') == 'queued'
                           else ''), image_id=image['id'], status=image.get('status'))
                elif verdict in (claims.LIVE, claims.FOREIGN):
                    waiting.append(image)
            if not waiting:
                return None
            if self.params['timeout'] and self.deadline.elapsed() > self.params['timeout']:
                raise errors.ImageStateError(
                    'Waited %s seconds (timeout) for another run to finish %s; it is still being written, so it '
                    'was not deleted. Run again when that run has finished, or raise timeout (a run that is gone '
                    'is recognised once its claim is older than stale_after=%s).'
                    % (self.params['timeout'], ', '.join(self.watch.describe(image) for image in waiting),
                       self.params['stale_after']), image_ids=[image['id'] for image in waiting])
            self.pause(delay)
            delay = min(delay * 1.5, 3.0)
            pending = [image for image in (self.find_image(image['id']) for image in waiting) if image]

    def keep_claim(self, image_id: str) -> None:
        """Refresh this run's claim on ``image_id`` (in a thread) until ``stop_claim``."""
        action = 'Refreshing the claim of this run on image %s' % image_id

        def patch(ops):
            self.api.update_image(image_id, ops, action)

        self.keeper = claims.ClaimKeeper(patch, self.run_id, self.host, wall=self.wall).start()

    def stop_claim(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None

    def give_up_claim(self, image_id: str | None) -> None:
        """After a failure: the claim gets time 0, so the next run judges the
        image by the watch alone instead of waiting stale_after. Best effort."""
        self.stop_claim()
        image = self.find_image(image_id) if image_id else None
        if image is None or image.get('status') not in claims.BUSY:
            return
        ops = [dict(op='add', path='/' + claims.CLAIM_PROPERTY, value=self.claim(when=0))]
        try:
            self.api.update_image(image_id, ops, 'Giving up the claim on image %s' % image_id)
        except errors.OsimageError:
            pass

    def remove_claim(self, image: dict) -> dict:
        """The image without this run's claim. Best effort: a claim left on an
        image that has its data is harmless (only half-made images are judged)."""
        if claims.CLAIM_PROPERTY not in image:
            return image
        try:
            return self.apply(image, [dict(op='remove', path='/' + claims.CLAIM_PROPERTY)],
                              'Removing the claim of this run from image %s' % image['id'])
        except errors.OsimageError:
            return image

    # -- waiting -----------------------------------------------------------------
    def wait(self, image: dict, import_stores: bool = False, stores: list | None = None) -> dict:
        """Poll until the image is active and, for an import, its stores are
        done: none left importing and each of ``stores`` holds the data or
        failed (a copy-image task may start after the request returned)."""
        delay = 0.2
        while True:
            status = image.get('status')
            importing = (image.get('os_glance_importing_to_stores') or '').strip(',') if import_stores else ''
            failed = (image.get('os_glance_failed_import') or '').strip(',') if import_stores else ''
            pending = set(stores or []) - set(split_stores(image.get('stores'))) - set(split_stores(failed))
            if status == 'active' and not importing and not pending:
                if failed:
                    text = 'The import of image %s into store(s) %s failed.' % (image['id'], failed)
                    if self.params['all_stores_must_succeed']:
                        raise errors.ImageStateError(text, image_id=image['id'], failed_stores=failed.split(','))
                    self.warnings.append(text)
                return image
            if status in ('killed', 'deleted', 'pending_delete'):
                raise errors.ImageStateError(
                    'Image %s became %s instead of active; Glance could not store (or import) the data. The '
                    'Glance log has the reason.' % (image['id'], status), image_id=image['id'], status=status)
            if status == 'queued' and import_stores and image.get('os_glance_failed_import'):
                raise errors.ImageStateError(
                    'The import of image %s failed in store(s) %s; the image is queued without data.'
                    % (image['id'], image['os_glance_failed_import']), image_id=image['id'], reason='import failed')
            if self.params['timeout'] and self.deadline.elapsed() > self.params['timeout']:
                raise errors.ImageStateError(
                    'Image %s is still %s after the timeout of %s seconds. It was not deleted: it may still '
                    'become active. Run again (the run resumes it) or raise timeout.'
                    % (image['id'], status, self.params['timeout']), image_id=image['id'], status=status,
                    reason='timeout')
            time.sleep(delay)
            delay = min(delay * 1.5, 3.0)
            image = self.get_image(image['id'])

    # -- data ------------------------------------------------------------------
    def upload_store(self) -> str | None:
        """The one store a direct upload goes to (None: Glance's default)."""
        stores = self.params['stores'] or []
        if len(stores) > 1:
            raise errors.BadRequestError('A direct upload goes to one store; use import_method=glance-direct to '
                                         'put the data into several stores (%s).' % ', '.join(stores))
        return stores[0] if stores else None

    def wanted_stores(self) -> list | None:
        """The stores an import must end in (None: Glance's default store)."""
        if self.params['all_stores']:
            return self.api.list_stores('Listing the stores of Glance')
        return self.params['stores']

    def import_body(self, method: str, **extra: Any) -> dict:
        body = dict(method=dict(name=method, **extra))
        if self.params['stores']:
            body['stores'] = self.params['stores']
        if self.params['all_stores']:
            body['all_stores'] = True
        if self.params['stores'] or self.params['all_stores']:
            body['all_stores_must_succeed'] = self.params['all_stores_must_succeed']
        return body

    def send_file(self, image: dict) -> dict:
        """Send the file (direct or staged), hashing it in the same pass when
        its digest is not known yet."""
        params = self.params
        path = params['filename']
        algos = [] if ALGO in self.digests else [ALGO]
        body = sources.HashingBody(path, self.st.st_size, algos, deadline=self.deadline)
        started = time.monotonic()
        if params['import_method'] == 'glance-direct':
            self.put_data(image, True, 'Staging the data of image %s' % image['id'], body)
        else:
            self.put_data(image, False, 'Uploading the data of image %s' % image['id'], body, self.upload_store())
        sent = time.monotonic() - started
        if algos:
            digests = body.hexdigests()
            if not digests:
                raise errors.TransferError('filename %s changed while it was uploaded; run again.' % path)
            self.digests.update(digests)
        if params['import_method'] == 'glance-direct':
            action = 'Importing image %s (glance-direct)' % image['id']
            glance_call(action, self.api.import_image, image['id'], self.import_body('glance-direct'), action)
        self.transfer = stream.transfer_stats(body.sent, sent)
        waited = time.monotonic()
        image = self.wait(self.get_image(image['id']), import_stores=params['import_method'] != 'direct',
                          stores=self.wanted_stores() if params['import_method'] != 'direct' else None)
        self.transfer['wait_seconds'] = round(time.monotonic() - waited, 3)
        if image.get('os_hash_algo') == ALGO and image.get('os_hash_value') != self.digests[ALGO]:
            self.delete(image, 'it holds other data than %s' % path)
            raise errors.IntegrityError(
                'Glance computed sha512 %s for image %s but %s has sha512 %s; the data was changed on the way '
                'or the file changed during the upload. The image was deleted; run again.'
                % (image.get('os_hash_value'), image['id'], path, self.digests[ALGO]))
        self.remember_digests()
        return image

    def put_data(self, image: dict, stage: bool, action: str, body: sources.HashingBody, store: str | None = None,
                 attempts: int = 3) -> Any:
        """PUT the data. A 500 after which the image is still queued means Glance
        took none of it (a busy database when it turns the image to saving, as
        concurrent runs cause): the file is sent again, a few times."""
        for attempt in range(1, attempts + 1):
            try:
                return glance_call(action, self.api.upload_data, image['id'], body, action, stage=stage, store=store)
            except errors.OsimageError as exc:
                if exc.details.get('status_code') != 500 or attempt == attempts:
                    raise
                if (self.find_image(image['id']) or {}).get('status') != 'queued':
                    raise
                self.pause(attempt)

    def delete(self, image: dict, why: str) -> None:
        action = 'Deleting image %s (%s)' % (image['id'], why)
        glance_call(action, self.api.delete_image, image['id'], action)
        self.deleted.append(image['id'])

    # -- signing ----------------------------------------------------------------
    def prepare_signing(self) -> None:
        spec = self.params['signing']
        if not spec:
            return
        if not spec.get('certificate_id') and not spec.get('certificate'):
            raise errors.SignatureError('signing needs certificate_id (a Barbican secret) or certificate (a PEM file).')
        key = trust.load_private_key(spec['private_key'], spec.get('passphrase'))
        key_type = trust.key_type_name(key, spec.get('key_type'))
        self.signer = trust.Signer(key, key_type, spec['hash_method'])
        if spec.get('certificate'):
            pem, cert = trust.load_signing_certificate(spec['certificate'])
            trust.check_key_matches(key, cert, spec['certificate'])
            name = 'osimage-signing-cert-%s' % trust.certificate_fingerprint(cert)[:32]
            dummy, self.certificate_id = ensure_certificate(self.api.barbican, name, pem, self.check_mode)
        else:
            self.certificate_id = spec['certificate_id']

    # -- the states ------------------------------------------------------------
    def validate(self) -> None:
        params = self.params
        method = params['import_method']
        if params['state'] == 'present' and not params['name'] and not (method == 'copy-image' and params['id']):
            raise errors.BadRequestError('name is required with state=present.')
        # Without disk_format the aki/ari/ami rule waits for the detected format.
        detect = not params['disk_format'] and method in ('direct', 'glance-direct')
        metadata.validate_metadata(self.schema, params['name'],
                                   params['disk_format'] if method != 'copy-image' else None,
                                   params['container_format'] if method != 'copy-image' and not detect else None)
        # Before anything is created: Glance would refuse a bad key only in
        # the PATCH after the create, and leave a queued image behind.
        self.properties = metadata.check_properties(self.schema, params['properties'])
        if params['hidden'] is not None:
            if 'os_hidden' in self.properties:
                raise errors.BadRequestError('Give hidden or properties.os_hidden, not both: they set the same '
                                             'attribute of the image.')
            self.properties['os_hidden'] = params['hidden']
        metadata.check_options(self.schema, dict((key, params[key]) for key in ('id', 'owner', 'tags')))
        metadata.check_boot_images(self.api, self.properties)
        if method in ('direct', 'glance-direct'):
            if not params['filename']:
                raise errors.BadRequestError('filename is required with import_method=%s.' % method)
            self.st = sources.check_readable(params['filename'])
        elif params['filename']:
            raise errors.BadRequestError('filename cannot be used with import_method=%s.' % method)
        if method == 'web-download' and not params['uri']:
            raise errors.BadRequestError('uri is required with import_method=web-download.')
        if (params['checksum'] or params['checksum_url']) and method != 'web-download':
            raise errors.BadRequestError('checksum and checksum_url are the publisher\'s digest of a web-download '
                                         '(import_method=web-download); a local file is hashed here.')
        if method == 'web-download' and (params['checksum'] or params['checksum_url']):
            # Before anything is created: a bad digest or a checksum file without the entry fails here.
            self.published = publisher.published_digest(params, timeout=min(params['timeout'] or 60, 60))
        if method == 'web-download' and not params['disk_format']:
            raise errors.BadRequestError('disk_format is required with import_method=web-download: Glance fetches '
                                         'the data, so its format cannot be detected here.')
        if params['signing'] and method not in ('direct', 'glance-direct'):
            raise errors.BadRequestError('signing needs the data locally (import_method direct or glance-direct).')
        if params['stale_after'] is not None and params['stale_after'] < 0:
            raise errors.BadRequestError('stale_after is %d; give the seconds (0 or more) after which the claim of '
                                         'another run on a half-made image counts as old.' % params['stale_after'])
        if claims.CLAIM_PROPERTY in (params['properties'] or {}):
            raise errors.BadRequestError('properties.%s is the mark this module puts on an image while a run makes '
                                         'it; leave it out.' % claims.CLAIM_PROPERTY)
        given = sorted(key for key in self.properties if key.startswith('img_signature'))
        if params['signing'] and given:
            # Both would be set, and the run's own signature overwritten after the upload.
            raise errors.BadRequestError(
                'properties has %s, which signing sets from the data; give either signing or the img_signature* '
                'properties, not both. Nothing was created or changed.' % ', '.join(given))
        if self.st is not None:
            if not params['disk_format']:
                self.disk_format = detect_format(params['filename'], self.st.st_size, self.schema)
                # The aki/ari/ami rule again, with the detected format.
                metadata.validate_metadata(self.schema, None, self.disk_format, params['container_format'])
            verdict = inspect_format(params['filename'], self.disk_format, self.st.st_size)
            self.detected_disk_format = formats_name(verdict['detected_format'])

    # -- web-download -----------------------------------------------------------
    def import_from_uri(self, target: dict, seen: set) -> dict:
        """Have Glance download uri into ``target``: a failed import is asked
        for again (IMPORT_ATTEMPTS in all, after a pause in which Glance ends
        the failed task; the data is Glance's to fetch, so nothing is sent
        twice); when it still fails, or hangs past timeout, an image this run
        created is deleted, so none is left stuck, and the message has what
        Glance's import task said."""
        params = self.params
        action = 'Importing image %s from %s (web-download)' % (target['id'], params['uri'])
        failure = None
        for attempt in range(1, IMPORT_ATTEMPTS + 1):
            if attempt > 1:
                self.pause(IMPORT_RETRY_PAUSE * (attempt - 1))
            try:
                glance_call(action, self.api.import_image, target['id'],
                            self.import_body('web-download', uri=params['uri']), action)
                return self.wait(self.get_image(target['id']), import_stores=True, stores=self.wanted_stores())
            except errors.ConflictError as exc:
                failure = exc  # the previous attempt's task is not over yet
            except errors.ImageStateError as exc:
                failure = exc
                if exc.details.get('reason') != 'import failed':
                    break
        if target['id'] not in seen:
            said = self.import_task_message(target['id'])
            self.stop_claim()
            self.delete(target, 'its web-download did not complete')
            if failure.details.get('reason') == 'timeout':
                failure.msg = ('Glance did not finish downloading %s into image %s within the timeout of %s '
                               'seconds (the server may be stalled). The image, created by this run, was deleted; '
                               'check uri or raise timeout.' % (params['uri'], target['id'], params['timeout']))
            else:
                failure.msg += (' The import was asked for %d times. Image %s, created by this run, was deleted; '
                                'check that Glance can reach uri.' % (attempt, target['id']))
            if said:
                failure.msg += " Glance's import task said: %s" % said
        raise failure

    def import_task_message(self, image_id: str) -> str | None:
        """The message of the image's last failed import task, if Glance tells."""
        try:
            tasks = self.api.list_image_tasks(image_id, 'Reading the import tasks of image %s' % image_id)
        except errors.OsimageError:
            return None  # older Glance, or the policy does not show them
        failed = [task for task in tasks if task.get('status') == 'failure' and task.get('message')]
        return failed[-1]['message'] if failed else None

    def same_source(self, image: dict) -> bool:
        """Whether ``image`` is the import of this uri (and publisher digest);
        an image imported before the source was recorded counts by its name."""
        recorded = image.get(SOURCE_URI_PROPERTY)
        if recorded is None:
            return True
        if recorded != self.params['uri']:
            return False
        return self.published is None or image.get(SOURCE_DIGEST_PROPERTY) == str(self.published)

    def glance_digest(self, image: dict, algo: str) -> str:
        """The ``algo`` digest of the image's data: Glance's own when it has
        that one, else of the data streamed back from Glance once."""
        if image.get('os_hash_algo') == algo and image.get('os_hash_value'):
            return image['os_hash_value']
        if algo == 'md5' and image.get('checksum'):
            return image['checksum']
        digest = self.published.new_hash()
        response = self.api.open_image_data(image, 'Reading image %s back to check it' % image['id'])
        try:
            stream.pump(self.deadline.guard(response.iter_content(stream.CHUNK_SIZE)), [digest.update])
        finally:
            response.close()
        return digest.hexdigest()

    def prove_published(self, image: dict, seen: set) -> dict:
        """Compare the import with the publisher's digest; a mismatch deletes
        the image (it was never visible to anyone else), a match publishes it
        as the options say."""
        ok, sentence = publisher.compare(self.published, self.glance_digest(image, self.published.algo),
                                         'The data Glance downloaded from %s' % self.params['uri'])
        if not ok:
            if image['id'] not in seen:
                self.stop_claim()
                self.delete(image, 'its content is not what the publisher says')
            raise errors.IntegrityError(
                '%s. Image %s was deleted; nobody else could see it. Check uri, checksum and checksum_url.'
                % (sentence, image['id']), image_id=image['id'], expected=str(self.published))
        publish = []
        visibility = self.params['visibility'] or GLANCE_DEFAULT_VISIBILITY
        if image.get('visibility') != visibility:
            publish.append(dict(op='replace', path='/visibility', value=visibility))
        hidden = self.properties.get('os_hidden', False)
        if image.get('os_hidden') != hidden:
            publish.append(dict(op='replace', path='/os_hidden', value=hidden))
        self.proof = sentence
        return self.apply(image, publish, 'Publishing image %s' % image['id'])

    def ensure_present(self) -> tuple[bool, dict]:
        self.load_schema()
        self.validate()
        self.prepare_signing()
        with stream.terminate_as_interrupt():
            if self.params['import_method'] == 'copy-image':
                return self.ensure_copied()
            return self.present(recheck=True)

    def update_existing(self, image: dict, result_changed: bool = False) -> tuple[bool, dict]:
        ops = self.patch_ops(image)
        before = metadata.metadata_view(image, self.core)
        reactivate = image.get('status') == 'deactivated'
        if reactivate and not self.params['reactivate']:
            raise errors.ImageStateError(
                'Image %s (%s) holds this content but is deactivated: nobody can download it. Give '
                'reactivate=true to make it active again, or state=deactivated to keep it so.'
                % (image['id'], image.get('name')), image_id=image['id'], status='deactivated')
        if self.check_mode:
            after_image = metadata.apply_patch(image, ops)
        else:
            after_image = self.apply(image, ops, 'Updating the metadata of image %s' % image['id'])
        if reactivate:
            if not self.check_mode:
                self.api.reactivate_image(image['id'], 'Reactivating image %s' % image['id'])
            after_image = dict(after_image, status='active')
        changed = bool(ops) or result_changed or reactivate
        result = self.result(after_image, before)
        if reactivate:
            result['diff']['before']['status'], result['diff']['after']['status'] = 'deactivated', 'active'
        return changed, result

    def result(self, image: dict | None, before: dict) -> dict:
        diff = dict(before=before, after=metadata.metadata_view(image, self.core) if image else dict(state='absent'))
        result = dict(id=image.get('id') if image else None, image=image, diff=diff, deleted=self.deleted)
        if self.transfer:
            result['transfer'] = self.transfer
        if self.digests.get(ALGO):
            result['sha512'] = self.digests[ALGO]
        if self.detected_disk_format:
            result['detected_disk_format'] = self.detected_disk_format
        if self.kept:
            result['kept_protected'] = self.kept
        if self.published is not None:
            result['published_digest'] = str(self.published)
        if self.proof:
            result['proof'] = self.proof
        for warning in self.warnings:
            self.module.warn(warning)
        return result

    def present(self, recheck: bool) -> tuple[bool, dict]:
        params = self.params
        images = self.candidates()
        if params['import_method'] == 'web-download':
            with_data = [image for image in images if image.get('status') in HAS_DATA]
            same = [image for image in with_data if self.same_source(image)]
            if same:
                return self.update_existing(same[-1])
            if with_data and (params['on_content_change'] == 'fail' or params['id']):
                old = with_data[-1]
                raise errors.IntegrityError(
                    'Image %s (%s) was imported from %s (%s); now uri is %s (%s): other content. Set '
                    'on_content_change=new to import another image with this name, or replace to import and then '
                    'delete the old one.' % (old['id'], params['name'], old.get(SOURCE_URI_PROPERTY),
                                             old.get(SOURCE_DIGEST_PROPERTY) or 'no publisher digest',
                                             params['uri'], self.published or 'no publisher digest'),
                    image_id=old['id'])
            return self.create_and_send(images, with_data if params['on_content_change'] == 'replace' else None,
                                        recheck)

        with_data = [image for image in images if image.get('status') in HAS_DATA]
        self.cached_digests()
        needs_hash = (self.signer is not None
                      or (with_data and ALGO not in self.digests
                          and (params['on_content_change'] == 'fail'
                               or any(image.get('size') == self.st.st_size for image in with_data))))
        if needs_hash:
            self.hash_local()
        local = self.digests.get(ALGO)
        same = [image for image in with_data if local and image.get('os_hash_value') == local]
        if same:
            return self.update_existing(same[-1])
        if with_data:
            if params['on_content_change'] == 'fail' or params['id']:
                if local is None:
                    self.hash_local()
                    local = self.digests[ALGO]
                old = with_data[-1]
                raise errors.IntegrityError(
                    'Image %s (%s) exists with other content: Glance has %s %s, %s has %s %s. Set '
                    'on_content_change=new to upload another image with this name, or replace to upload and then '
                    'delete the old one.' % (old['id'], params['name'], old.get('os_hash_algo'),
                                             old.get('os_hash_value'), params['filename'], ALGO, local),
                    image_id=old['id'], glance_hash=old.get('os_hash_value'), local_hash=local)
        return self.create_and_send(images, with_data if params['on_content_change'] == 'replace' else None,
                                    recheck)

    def create_and_send(self, images: list, replace: list | None, recheck: bool) -> tuple[bool, dict]:
        """Create an image (or resume a queued one), send the data, wait, and
        delete the images it replaces."""
        params = self.params
        busy = [image for image in images if image.get('status') in claims.BUSY]
        # An unclaimed queued image given by id is the user's to fill (as before claims).
        target = next((image for image in busy if params['id'] and image.get('status') == 'queued'
                       and claims.parse_claim(image.get(claims.CLAIM_PROPERTY)) is None), None)
        busy = [image for image in busy if image is not target]
        before = metadata.metadata_view(target, self.core) if target else dict(state='absent')
        if self.check_mode:
            predicted = metadata.apply_patch(target, self.patch_ops(target)) if target else dict(
                self.new_image_body(), status='active', id=params['id'])
            predicted.pop(claims.CLAIM_PROPERTY, None)
            # One look, no waiting: what a real run would judge stale at the earliest.
            old = [image for image in busy if claims.parse_claim(image.get(claims.CLAIM_PROPERTY))
                   and self.watch.claim_age(claims.parse_claim(image.get(claims.CLAIM_PROPERTY)))
                   > self.params['stale_after']]
            for image in old + (replace or []):
                if not image.get('protected'):
                    self.deleted.append(image['id'])
            return True, self.result(predicted, before)
        if busy:
            resumed = self.settle(busy, resume_id=params['id'])
            if resumed is None:
                # The other runs are done: look again, their image may be this one.
                return self.present(recheck)
            target = resumed
            before = metadata.metadata_view(target, self.core)
        seen = set(image['id'] for image in images)
        if target is None:
            body = self.new_image_body()
            action = 'Creating image %s' % params['name']
            target = glance_call(action, self.api.create_image, body, action)
            if recheck:
                winner = self.concurrent_winner(target, seen)
                if winner is not None:
                    self.delete(target, 'another run created %s at the same time' % winner['id'])
                    self.deleted.remove(target['id'])
                    self.settle([winner])
                    return self.present(recheck=False)
        try:
            return self.fill(target, seen, before, replace)
        except BaseException:
            self.give_up_claim(target['id'])
            raise
        finally:
            self.stop_claim()

    def fill(self, target: dict, seen: set, before: dict, replace: list | None) -> tuple[bool, dict]:
        """Claim ``target`` (keep the claim fresh), send the data, wait, and
        delete the images it replaces."""
        params = self.params
        self.keep_claim(target['id'])
        signature = {}
        if self.signer is not None:
            self.hash_local()
            signature = self.signer.properties(self.digests[self.signer.algo], self.certificate_id)
        # Protected only once the data is in: a failed run must be able to clean up.
        ops = [op for op in self.patch_ops(target) if op['path'] != '/protected']
        if claims.parse_claim(target.get(claims.CLAIM_PROPERTY)) is None or \
                claims.parse_claim(target[claims.CLAIM_PROPERTY]).run_id != self.run_id:
            ops.append(dict(op='add', path='/' + claims.CLAIM_PROPERTY, value=self.claim()))  # a resumed image
        for key, value in sorted(signature.items()):
            ops.append(dict(op='replace' if key in target else 'add', path='/' + key, value=value))
        target = self.apply(target, ops, 'Setting the metadata of image %s' % target['id'])
        if params['import_method'] == 'web-download':
            started = time.monotonic()
            image = self.import_from_uri(target, seen)
            self.transfer = dict(bytes=image.get('size'), seconds=round(time.monotonic() - started, 3))
            if self.published is not None:
                image = self.prove_published(image, seen)
        else:
            try:
                image = self.send_file(target)
            except (errors.BadRequestError, errors.NotAuthorizedError, errors.OverQuotaError) as exc:
                # Glance refused the data (signature, format, quota): an image
                # this run created is removed; a broken connection instead
                # leaves it queued with the claim given up, for the next run.
                if target['id'] not in seen:
                    self.delete(target, 'its data was refused')
                    exc.msg += ' Image %s, created by this run, was deleted.' % target['id']
                raise
        # Done: the claim goes (the refresher first, so that it cannot put it back).
        self.stop_claim()
        image = self.apply(image, self.patch_ops(image), 'Setting the metadata of image %s' % image['id'])
        image = self.remove_claim(image)
        for old in replace or []:
            if old.get('protected'):
                self.kept.append(old['id'])
                self.warnings.append('Image %s was not deleted after the replacement because it is protected.'
                                     % old['id'])
            else:
                self.delete(old, 'replaced by %s' % image['id'])
        return True, self.result(image, before)

    def concurrent_winner(self, mine: dict, seen: set) -> dict | None:
        """Another image created for the same name since the lookup, older
        than ours (runs that looked up at the same moment both created one)."""
        others = [image for image in self.candidates()
                  if image['id'] not in seen and image['id'] != mine['id']
                  and image.get('status') in ('queued',) + IN_PROGRESS + HAS_DATA]
        key = (mine.get('created_at') or '', mine['id'])
        older = [image for image in others if (image.get('created_at') or '', image['id']) < key]
        return older[0] if older else None

    def ensure_copied(self) -> tuple[bool, dict]:
        params = self.params
        images = [image for image in self.candidates() if image.get('status') in HAS_DATA]
        if not images:
            raise errors.NotFoundError('import_method=copy-image needs an existing image; none named %r (owner %s) '
                                       'has data.' % (params['name'] or params['id'], self.owner))
        if len(images) > 1:
            raise errors.AmbiguousImageError('%d images are named %r: %s. Give id.'
                                             % (len(images), params['name'], ', '.join(i['id'] for i in images)))
        image = images[0]
        have = set(split_stores(image.get('stores')))
        wanted = set(self.wanted_stores() or [])
        missing = sorted(wanted - have)
        if not missing:
            return self.update_existing(image)
        before = metadata.metadata_view(image, self.core)
        before['stores'] = sorted(have)
        if self.check_mode:
            changed, result = self.update_existing(image, result_changed=True)
            result['diff']['before'] = before
            result['diff']['after']['stores'] = sorted(have | wanted)
            return changed, result
        action = 'Copying image %s to store(s) %s (copy-image)' % (image['id'], ', '.join(missing))
        body = dict(method=dict(name='copy-image'), stores=missing,
                    all_stores_must_succeed=params['all_stores_must_succeed'])
        glance_call(action, self.api.import_image, image['id'], body, action)
        started = time.monotonic()
        image = self.wait(self.get_image(image['id']), import_stores=True, stores=missing)
        self.transfer = dict(bytes=image.get('size'), seconds=round(time.monotonic() - started, 3))
        changed, result = self.update_existing(image, result_changed=True)
        result['diff']['before'] = before
        result['diff']['after']['stores'] = sorted(split_stores(image.get('stores')))
        return changed, result

    def ensure_deactivated(self) -> tuple[bool, dict]:
        """The image named by id or name deactivated (its metadata is left
        alone); one that is deactivated already is unchanged."""
        self.load_schema()
        params = self.params
        if not params['name'] and not params['id']:
            raise errors.BadRequestError('state=deactivated needs name or id.')
        images = self.candidates()
        if not images:
            raise errors.NotFoundError(
                'No image %s to deactivate is owned by project %s. Upload it first (state=present), or check '
                'the name, id and owner.' % (params['id'] or repr(params['name']), self.owner))
        if len(images) > 1:
            ids = [image['id'] for image in images]
            raise errors.AmbiguousImageError(
                '%d images are named %r: %s. Give the id of the one to deactivate.'
                % (len(ids), params['name'], ', '.join(ids)), image_ids=ids)
        image = images[0]
        status = image.get('status')
        if status not in HAS_DATA:
            raise errors.ImageStateError(
                'Image %s is %s; Glance deactivates only active images (with data). Upload its data first.'
                % (image['id'], status), image_id=image['id'], status=status)
        before = dict(metadata.metadata_view(image, self.core), status=status)
        changed = status == 'active'
        if changed and not self.check_mode:
            self.api.deactivate_image(image['id'], 'Deactivating image %s' % image['id'])
            image = self.get_image(image['id'])
        after_image = dict(image, status='deactivated')
        return changed, dict(id=image['id'], image=after_image, deleted=[],
                             diff=dict(before=before, after=dict(metadata.metadata_view(after_image, self.core),
                                                                 status='deactivated')))

    def ensure_absent(self) -> tuple[bool, dict]:
        self.load_schema()
        params = self.params
        if not params['name'] and not params['id']:
            raise errors.BadRequestError('state=absent needs name or id.')
        images = self.candidates()
        if not images:
            absent = dict(state='absent')
            return False, dict(id=None, deleted=[], diff=dict(before=absent, after=absent))
        blocked = [image['id'] for image in images if image.get('protected') and params['protected'] is not False]
        if blocked:
            raise errors.ImageStateError(
                'Image(s) %s are protected and cannot be deleted. Give protected=false with state=absent to '
                'unprotect and delete them.' % ', '.join(blocked), image_ids=blocked)
        before = metadata.metadata_view(images[0], self.core)
        for image in images:
            if self.check_mode:
                self.deleted.append(image['id'])
                continue
            if image.get('protected'):
                self.apply(image, [dict(op='replace', path='/protected', value=False)],
                           'Unprotecting image %s' % image['id'])
            self.delete(image, 'state=absent')
        return True, dict(id=images[0]['id'], deleted=self.deleted,
                          diff=dict(before=before, after=dict(state='absent')))


def ensure_certificate(barbican: BarbicanAPI, name: str, pem: bytes, check_mode: bool) -> tuple[bool, str | None]:
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


def ensure_present(module: GlanceModule, api: GlanceAPI) -> tuple[bool, dict]:
    """``(changed, result)`` of making the image present as the module's options say."""
    return Uploader(module, api).ensure_present()


def ensure_deactivated(module: GlanceModule, api: GlanceAPI) -> tuple[bool, dict]:
    """``(changed, result)`` of deactivating the image the module's name or id names."""
    return Uploader(module, api).ensure_deactivated()


def ensure_absent(module: GlanceModule, api: GlanceAPI) -> tuple[bool, dict]:
    """``(changed, result)`` of deleting the images the module's name or id names."""
    return Uploader(module, api).ensure_absent()
