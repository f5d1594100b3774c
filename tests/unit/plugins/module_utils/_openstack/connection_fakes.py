# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The one fake below the cloud layer for its own tests: an openstacksdk
connection (the boundary ``session.py`` talks to) with keystoneauth's session,
its auth and the catalog. Tests of everything above use the shared FakeGlance
(tests/unit/plugins/conftest.py) instead."""

from __future__ import annotations

import json

from keystoneauth1 import exceptions as ka_exceptions

AUTH_URL = 'http://keystone.test:5000/v3'
GLANCE = 'http://glance.test:9292'


class FakeResponse(object):
    """A requests.Response: ``body`` is a JSON value, or bytes for a raw payload."""

    def __init__(self, status_code, body=None, text=None, reason='', headers=None):
        self.status_code = status_code
        if isinstance(body, bytes):
            self.content, self._body = body, None
        else:
            self.content, self._body = b'', body
        self.text = text if text is not None else (json.dumps(body) if self._body is not None else '')
        self.reason = reason
        self.headers = headers or {}
        self.closed = False

    def json(self):
        if self._body is None:
            raise ValueError('no json')
        return self._body

    def close(self):
        self.closed = True


class FakeAccess(object):
    user_id = 'u-1'
    username = 'demo'
    project_id = 'd' * 32
    project_name = 'demo'
    project_domain_id = 'default'
    role_names = ['reader', 'member']


class FakeAuth(object):
    def __init__(self, failures):
        self.failures = list(failures)

    def get_access(self, session):
        if self.failures:
            raise self.failures.pop(0)
        return FakeAccess()


class FakeSession(object):
    """keystoneauth's Session: tokens (``token_failures`` raised first), the
    token's access info, and the requests sent with it."""

    def __init__(self, responses, token_failures=(), access_failures=()):
        self.results = list(responses)
        self.token_failures = list(token_failures)
        self.requests = []
        self.calls = 0
        self.auth = FakeAuth(access_failures)

    def request(self, url, method, **kwargs):
        self.requests.append((method, url, kwargs))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    def get_token(self):
        self.calls += 1
        if self.token_failures:
            raise self.token_failures.pop(0)
        return 'token'


class FakeConfig(object):
    def __init__(self, auth_args):
        self.auth_args = auth_args

    def get_auth_args(self):
        return dict(self.auth_args)


class FakeConnection(object):
    """``catalog``: service type -> endpoint; a type not in it is not in the
    catalog (EndpointNotFound), one mapped to None has an empty endpoint."""

    def __init__(self, responses=(), tokens=(), access_failures=(), catalog=None, auth_args=None):
        self.session = FakeSession(responses, tokens, access_failures)
        self.config = FakeConfig(auth_args or {'auth_url': AUTH_URL, 'username': 'demo'})
        self.catalog = {'image': GLANCE} if catalog is None else catalog

    def endpoint_for(self, service_type):
        if service_type not in self.catalog:
            raise ka_exceptions.EndpointNotFound('no %s endpoint' % service_type)
        return self.catalog[service_type]
