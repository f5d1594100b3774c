# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Glance v2, one typed method per service call: images (find, list with
hidden ones, get, create, patch, delete), data (download, upload, stage),
import, stores, schema and members. The only place that knows a Glance URL;
the transport (retries, errors) is the session's.

``keystone`` and ``barbican`` of the same connection hang off the API object
so that a module gets one handle on its cloud.

Private to the collection; not a public API.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Dict, Iterable, List, Optional

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack import barbican as _barbican
from ansible_collections.osimage.glance.plugins.module_utils._openstack import keystone as _keystone
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import CloudConnection, Session

# The media type of Glance's JSON patch (PATCH /v2/images/{id}).
PATCH_CONTENT_TYPE = 'application/openstack-images-v2.1-json-patch'

_UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')
# Images per list request.
PAGE_SIZE = 1000


def is_image_id(text: str) -> bool:
    """Whether ``text`` has the form of an image id (a UUID)."""
    return bool(_UUID_RE.match(text))


class GlanceAPI(object):
    """Glance v2 over one cloud session, with bounded retries."""

    def __init__(self, conn: Optional[CloudConnection] = None, retries: int = 3, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep, connect: Optional[Callable[[], CloudConnection]] = None,
                 session: Optional[Session] = None) -> None:
        """``conn`` is a cloud connection, or None to have ``connect()`` make
        one on first use (so work that needs no cloud never connects); or
        give a ready ``session``."""
        self.session = session or Session(conn, retries=retries, backoff=backoff, sleep=sleep, connect=connect)
        self.keystone = _keystone.KeystoneAPI(self.session)
        self.barbican = _barbican.BarbicanAPI(self.session)
        self._endpoint = None

    @classmethod
    def from_params(cls, params: dict) -> 'GlanceAPI':
        """A GlanceAPI for the module parameters; the connection is made
        (and the SDK required) only when something first needs the cloud."""
        return cls(session=Session.from_params(params))

    @property
    def conn(self) -> CloudConnection:
        return self.session.conn

    @property
    def auth_url(self) -> str:
        return self.session.auth_url

    @property
    def current_project_id(self) -> str | None:
        """The project of the token (None for a domain- or unscoped token)."""
        return self.session.current_project_id

    # -- where Glance is --------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The image endpoint from the catalog; authenticates on first use."""
        if self._endpoint is None:
            try:
                self._endpoint = self.session.endpoint_for('image')
            except self.session.endpoint_not_found_error() as exc:
                raise errors.CloudConfigError(
                    'The catalog of %s has no image (Glance) endpoint for this region/interface: %s. '
                    'Check region_name and interface.' % (self.auth_url, exc))
            if not self._endpoint:
                raise errors.CloudConfigError(
                    'The catalog of %s has no image (Glance) endpoint for this region/interface. '
                    'Check region_name and interface.' % self.auth_url)
        return self._endpoint

    @property
    def base_url(self) -> str:
        """The Glance v2 API root. Built from the catalog endpoint instead of
        asking the SDK's image proxy, whose version discovery turns an
        unreachable Glance into a misleading "no supported versions" error
        outside our retries, and costs a request per run."""
        endpoint = self.endpoint.rstrip('/')
        return endpoint if endpoint.endswith('/v2') else endpoint + '/v2'

    def _request(self, method, path, what, stream=False, ok=(200, 201, 204), **kwargs):
        """One Glance request; returns the response or raises one clear error."""
        return self.session.send(('Glance', self.endpoint), self.base_url + path, method, what, stream, ok, **kwargs)

    def _get_json(self, path, what, **kwargs):
        return self._request('GET', path, what, **kwargs).json()

    # -- schema and stores ------------------------------------------------------
    def get_image_schema(self) -> dict:
        """Glance's image schema (``GET /v2/schemas/image``): the attributes
        an image has, their types, which are read-only, the formats this
        Glance accepts, and the type of additional properties."""
        return self._get_json('/schemas/image', 'Reading the image schema of Glance')

    def list_stores(self, what: str = 'Listing the stores of Glance') -> list:
        """The ids of the stores of a multi-store Glance, sorted."""
        info = self._get_json('/info/stores', what)
        return sorted(store['id'] for store in info.get('stores', []))

    # -- images -----------------------------------------------------------------
    def get_image(self, image_id: str, what: str | None = None) -> dict:
        """One image by id (NotFoundError when it is not visible)."""
        return self._get_json('/images/%s' % image_id, what or 'Reading image %s' % image_id)

    def list_images(self, what: str, max_images: Optional[int] = None, **filters: Any) -> List[Dict[str, Any]]:
        """All images matching the filters (at most ``max_images``),
        following Glance's pagination (``next``) to the last page."""
        images = []
        params = dict(filters)
        # Large pages: Glance caps them at its api_limit_max (1000 by default).
        params.setdefault('limit', min(max_images, PAGE_SIZE) if max_images else PAGE_SIZE)
        path = '/images'
        while path:
            page = self._get_json(path, what, params=params)
            images.extend(page.get('images', []))
            nxt = page.get('next')
            if not nxt or (max_images and len(images) >= max_images):
                break
            # "next" is a path with the version prefix and the marker query.
            path = re.sub(r'^.*?/v2(?=/)', '', nxt)
            params = None
        return images[:max_images] if max_images else images

    def list_images_hidden_too(self, what: str, **filters: Any) -> List[Dict[str, Any]]:
        """The images matching the filters, hidden ones (os_hidden) after the
        others: Glance lists hidden images only when asked for them alone."""
        return self.list_images(what, **filters) + self.list_images(what, os_hidden='true', **filters)

    def find_image(self, name_or_id: str, **filters: Any) -> Dict[str, Any]:
        """An image by id, or by name when exactly one visible image has it
        (``filters`` go to the name listing, e.g. ``member_status='all'``),
        hidden images (os_hidden) counted as any other."""
        what = 'Looking up image %r' % name_or_id
        if is_image_id(name_or_id):
            try:
                return self._get_json('/images/%s' % name_or_id, what)
            except errors.NotFoundError:
                pass  # an image may be named like a UUID
        # A hidden image is still "the image X", and with a visible X makes X ambiguous.
        matches = (self.list_images(what, name=name_or_id, **filters) if 'os_hidden' in filters
                   else self.list_images_hidden_too(what, name=name_or_id, **filters))
        if not matches:
            raise errors.NotFoundError(
                'No image with name or id %r is visible to this project in %s. Check the name, the '
                'cloud and that the image is shared with (and accepted by) this project.'
                % (name_or_id, self.endpoint))
        if len(matches) > 1:
            ids = sorted(image['id'] for image in matches)
            raise errors.AmbiguousImageError(
                '%d images are named %r: %s. Give the id of the one you mean as image.'
                % (len(matches), name_or_id, ', '.join(ids)), image_ids=ids)
        return matches[0]

    def create_image(self, body: dict, what: str) -> dict:
        """A new image record (queued, no data) from ``body``."""
        return self._request('POST', '/images', what, ok=(201,), json=body).json()

    def update_image(self, image_id: str, operations: list, what: str) -> dict:
        """Apply JSON-patch ``operations`` to an image; returns the image."""
        response = self._request('PATCH', '/images/%s' % image_id, what, ok=(200,), json=operations,
                                 headers={'Content-Type': PATCH_CONTENT_TYPE})
        return response.json()

    def list_image_tasks(self, image_id: str, what: str) -> List[Dict[str, Any]]:
        """The tasks of an image, such as its imports (image API 2.12 and later)."""
        return self._get_json('/images/%s/tasks' % image_id, what).get('tasks', [])

    def deactivate_image(self, image_id: str, what: str) -> None:
        """Deactivate an active image: its data can no longer be downloaded
        (Glance answers 403) until it is reactivated; idempotent in Glance."""
        self._request('POST', '/images/%s/actions/deactivate' % image_id, what, ok=(204,)).close()

    def reactivate_image(self, image_id: str, what: str) -> None:
        """Make a deactivated image active again."""
        self._request('POST', '/images/%s/actions/reactivate' % image_id, what, ok=(204,)).close()

    def delete_image(self, image_id: str, what: str) -> None:
        """Delete an image; one that is gone already is fine."""
        self._request('DELETE', '/images/%s' % image_id, what, ok=(204, 404)).close()

    # -- data -------------------------------------------------------------------
    def open_image_data(self, image: Dict[str, Any], what: str) -> Any:
        """A streaming response with the image's bytes."""
        return self._request('GET', '/images/%s/file' % image['id'], what, stream=True, ok=(200,))

    def upload_data(self, image_id: str, body: Iterable[bytes], what: str, stage: bool = False, store: Optional[str] = None) -> None:
        """PUT the image data (``body`` an iterable with a length): into the
        image (``/file``, into ``store`` of a multi-store Glance when given),
        or into the staging area for an import (``stage``)."""
        headers = {'Content-Type': 'application/octet-stream'}
        if store:
            headers['X-Image-Meta-Store'] = store
        self._request('PUT', '/images/%s/%s' % (image_id, 'stage' if stage else 'file'), what,
                      data=body, headers=headers).close()

    def import_image(self, image_id: str, body: dict, what: str) -> None:
        """Start an interoperable import (glance-direct, web-download,
        copy-image; ``body`` is the import request)."""
        self._request('POST', '/images/%s/import' % image_id, what, ok=(202,), json=body).close()

    # -- image members ----------------------------------------------------------
    def list_members(self, image_id: str, what: str) -> list:
        """The members of a shared image (Glance refuses the list for an
        image that is not shared)."""
        return self._get_json('/images/%s/members' % image_id, what).get('members', [])

    def get_member(self, image_id: str, member_id: str, what: str) -> dict:
        return self._get_json('/images/%s/members/%s' % (image_id, member_id), what)

    def add_member(self, image_id: str, member_id: str, what: str) -> dict:
        response = self._request('POST', '/images/%s/members' % image_id, what, ok=(200, 201),
                                 json={'member': member_id})
        return response.json()

    def set_member_status(self, image_id: str, member_id: str, status: str, what: str) -> dict:
        response = self._request('PUT', '/images/%s/members/%s' % (image_id, member_id), what, ok=(200,),
                                 json={'status': status})
        return response.json()

    def remove_member(self, image_id: str, member_id: str, what: str) -> None:
        self._request('DELETE', '/images/%s/members/%s' % (image_id, member_id), what, ok=(200, 204)).close()
