# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Barbican (key manager): get, find and create secrets - the signing
certificates Glance reads. The only place that knows a Barbican URL. Nothing
here knows about check mode: the caller decides whether to create.

Private to the collection; not a public API.
"""

from __future__ import annotations

import base64

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import Session


def secret_uuid(secret_ref: str) -> str:
    """The uuid at the end of a Barbican secret reference (its URL)."""
    return (secret_ref or '').rstrip('/').rsplit('/', 1)[-1]


class BarbicanAPI(object):
    """Barbican over one cloud session (see session.Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._key_manager_endpoint = None

    @property
    def key_manager_endpoint(self) -> str:
        """The key-manager (Barbican) endpoint from the catalog."""
        if self._key_manager_endpoint is None:
            try:
                endpoint = self.session.endpoint_for('key-manager')
            except self.session.endpoint_not_found_error():
                endpoint = None
            if not endpoint:
                raise errors.CloudConfigError(
                    'The catalog of %s has no key-manager (Barbican) endpoint for this region/interface, so '
                    'certificates stored there cannot be fetched. Check region_name and interface, or give '
                    'the certificate as a PEM file.' % self.session.auth_url)
            self._key_manager_endpoint = endpoint.rstrip('/')
        return self._key_manager_endpoint

    def _request(self, method, path, what, ok=(200, 201), **kwargs):
        endpoint = self.key_manager_endpoint
        root = endpoint if endpoint.endswith('/v1') else endpoint + '/v1'
        return self.session.send(('Barbican', endpoint), root + path, method, what, ok=ok, **kwargs)

    def get_secret_payload(self, secret_id: str, what: str) -> bytes:
        """The payload of a Barbican secret (for a certificate: its PEM or
        DER bytes), fetched with the user's own credentials."""
        return self._request('GET', '/secrets/%s/payload' % secret_id, what, ok=(200,),
                             headers={'Accept': 'application/octet-stream'}).content

    def find_secrets(self, name: str, secret_type: str, what: str) -> list:
        """The uuids of the secrets of this name and type (the first 100)."""
        listing = self._request('GET', '/secrets', what, ok=(200,),
                                params={'name': name, 'secret_type': secret_type, 'limit': 100})
        uuids = (secret_uuid(secret.get('secret_ref')) for secret in listing.json().get('secrets', []))
        return [uuid for uuid in uuids if uuid]

    def create_certificate(self, name: str, pem: bytes, what: str) -> str:
        """The uuid of a new certificate secret named ``name`` holding
        ``pem``, in the form Glance reads (the PEM text, base64-encoded, as
        application/octet-stream)."""
        body = {'name': name, 'secret_type': 'certificate', 'payload': base64.b64encode(pem).decode('ascii'),
                'payload_content_type': 'application/octet-stream', 'payload_content_encoding': 'base64'}
        created = self._request('POST', '/secrets', what, ok=(201,), json=body).json()
        return secret_uuid(created['secret_ref'])
