# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Cloud access: the common connection options, the connection, and Glance
requests with bounded retries and one error translation.

The options are the ones openstack.cloud uses, so ``module_defaults`` and
clouds.yaml files written for openstack.cloud work unchanged. Requests go
through the keystoneauth session made by openstacksdk's config loader (it reads
clouds.yaml and does the auth and catalog) straight to Glance's v2 API; this
module adds what nova's Glance
client wrapper does on top: bounded retries with backoff on connection-level
failures and one clear message per failure.

Private to the collection; not a public API.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import importlib.util
import os
import re
import sys
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._imports import import_submodule

# The SDK is imported on first use of the cloud (``sdk()``), not here: a
# module that needs no cloud never pays for it, and the import is the largest
# part of a module's start-up. Whether it is installed is known without
# importing it; an SDK that is installed but fails to import is reported on
# first use with the traceback.
HAS_SDK = importlib.util.find_spec('openstack') is not None
SDK_IMPORT_ERROR = None if HAS_SDK else 'No module named openstack (openstacksdk is not installed).'

_SDK = {}


def sdk():
    """The SDK pieces this module uses, imported on first call: ``config``
    (openstack.config), ``sdk_exceptions``, ``ka_exceptions``, ``requests``.
    Raises MissingLibraryError when they cannot be imported."""
    if not HAS_SDK:
        raise errors.MissingLibraryError(missing_required_lib('openstacksdk'), exception=SDK_IMPORT_ERROR)
    if not _SDK:
        try:
            # Only the config loader of the SDK: see _imports for why.
            config = import_submodule('openstack', 'config')
            _SDK.update(
                config=config,
                sdk_exceptions=importlib.import_module('openstack.exceptions'),
                ka_exceptions=importlib.import_module('keystoneauth1.exceptions'),
                requests=importlib.import_module('requests'),
            )
        except ImportError:
            raise errors.MissingLibraryError(missing_required_lib('openstacksdk'), exception=traceback.format_exc())
    return _SDK


def missing_auth_message(params, exc):
    """What to set when keystoneauth lacks required auth options (its own
    "Auth plugin requires parameters which were not given: auth_url")."""
    missing = ', '.join(sorted(getattr(opt, 'dest', None) or getattr(opt, 'name', None) or str(opt)
                               for opt in getattr(exc, 'options', None) or ())) or 'auth_url'
    cloud = params.get('cloud')
    os_cloud = os.environ.get('OS_CLOUD')
    if cloud is None and not os_cloud and not params.get('auth'):
        return ('No cloud to talk to: the option cloud is not set, OS_CLOUD is not set and there is no auth '
                '(keystoneauth is missing %s). Set cloud to the name of a cloud in your clouds.yaml '
                '(or export OS_CLOUD, or set cloud once for all modules in module_defaults under '
                'group/osimage.glance.glance), or give auth with auth_url, username, password and '
                'project_name.' % missing)
    if isinstance(cloud, dict):
        where = 'The auth settings of the cloud dict lack %s' % missing
    elif params.get('auth'):
        where = 'The option auth lacks %s' % missing
    else:
        where = 'The cloud %r (%s) has no %s in its auth settings' % (
            cloud or os_cloud, 'option cloud' if cloud else 'from OS_CLOUD', missing)
    return ('%s. Add it there, or check that a clouds.yaml defining the cloud is found '
            '(OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).'
            % where)


class CloudConnection(object):
    """What this collection uses of an openstacksdk Connection - the
    keystoneauth session, the cloud config and catalog endpoints - made from
    the SDK's config loader alone, without importing the rest of the SDK."""

    def __init__(self, cloud_region):
        self.config = cloud_region
        self.session = cloud_region.get_session()

    def endpoint_for(self, service_type, interface=None, region_name=None):
        """The service's endpoint: a configured ``<service>_endpoint_override``
        first, else the catalog's (as Connection.endpoint_for)."""
        override = self.config.get_endpoint(service_type)
        if override:
            return override
        return self.config.get_endpoint_from_catalog(service_type, interface=interface, region_name=region_name)

    @property
    def current_project_id(self):
        """The project of the token (None for a domain- or unscoped token)."""
        return self.session.get_project_id()


def connect_cloud(**kwargs):
    """A CloudConnection for ``openstack.connect``-style keyword arguments."""
    config = sdk()['config']
    with payload_off_sys_path():
        return CloudConnection(config.get_cloud_region(**kwargs))


def _own_archive():
    """The zip archive this file was imported from (Ansible's AnsiballZ
    payload, at a new temporary path on every run), or None."""
    return getattr(globals().get('__loader__'), 'archive', None)


@contextlib.contextmanager
def payload_off_sys_path(archive=None):
    """Within the block, the AnsiballZ payload is not on ``sys.path``.

    keystoneauth finds its auth plugins through stevedore, which caches the
    entry points of all installed packages in a file named after a hash of
    ``sys.path`` (~/.cache/python-entrypoints). With the payload's new path
    on every run, every module run missed that cache: it scanned every
    installed package again (0.1-0.2 s) and left another 130 KB file behind.
    The payload holds no installed packages, so leaving it out changes
    nothing but the key; what it holds is imported already.
    """
    archive = archive or _own_archive()
    if not archive or archive not in sys.path:
        yield
        return
    index = sys.path.index(archive)
    sys.path.remove(archive)
    try:
        yield
    finally:
        sys.path.insert(index, archive)


# Options that belong inside ``cloud`` when ``cloud`` is given as a dict.
_CONNECTION_OPTIONS = ('auth', 'auth_type', 'region_name', 'validate_certs', 'ca_cert',
                       'client_cert', 'client_key', 'api_timeout')

# HTTP statuses that mean "the service is there but cannot answer now": retried.
_RETRY_STATUSES = (502, 503, 504)
# A 500 is often transient too (a busy database: "database is locked"), but a
# retry is only safe when repeating the request cannot do anything twice:
# reads, DELETEs (callers accept 404 for "already gone"), and PUTs without a
# data body (PUT sets a state; a data body may be a one-pass stream).
_RETRY_STATUSES_SAFE = _RETRY_STATUSES + (500,)

_UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')
_TAG_RE = re.compile(r'<[^>]+>')
# Keystone project ids: uuid4 hex by default, with dashes from some backends.
_PROJECT_ID_RE = re.compile(r'^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$')


def retry_statuses(method, kwargs):
    """The statuses worth retrying for this request."""
    if method in ('GET', 'HEAD', 'DELETE') or (method == 'PUT' and 'data' not in kwargs):
        return _RETRY_STATUSES_SAFE
    return _RETRY_STATUSES


def cloud_argument_spec():
    """The connection options every module takes (documented by the
    ``osimage.glance.cloud`` doc fragment)."""
    return dict(
        cloud=dict(type='raw'),
        auth_type=dict(type='str'),
        # Not no_log as a whole: auth_url and the user, project and domain
        # names stay readable in messages; _module masks its secret keys.
        auth=dict(type='dict', no_log=False),
        region_name=dict(type='str'),
        validate_certs=dict(type='bool', aliases=['verify']),
        ca_cert=dict(type='path', aliases=['cacert']),
        client_cert=dict(type='path', aliases=['cert']),
        client_key=dict(type='path', no_log=False, aliases=['key']),
        api_timeout=dict(type='int'),
        interface=dict(type='str', default='public', choices=['public', 'internal', 'admin'],
                       aliases=['endpoint_type']),
        api_retries=dict(type='int', default=3),
    )


def connection_kwargs(params):
    """Turn module parameters into ``openstack.connect`` keyword arguments."""
    cloud = params.get('cloud')
    if isinstance(cloud, str) and cloud.lstrip().startswith('{'):
        # A dict given as JSON, as an ad hoc ``-a 'cloud={"auth": ...}'``
        # gives it (``type='raw'`` leaves it a string).
        try:
            cloud = check_type_dict(cloud.strip())
        except TypeError:
            raise errors.CloudConfigError('cloud looks like a dict but is not valid JSON; give it as a dict or as '
                                          'the name of a cloud in clouds.yaml.')
    if isinstance(cloud, dict):
        clashing = sorted(name for name in _CONNECTION_OPTIONS if params.get(name) is not None)
        if clashing:
            raise errors.CloudConfigError(
                'cloud is given as a dict, so %s must go inside that dict instead of being module '
                'options.' % ', '.join(clashing))
        kwargs = dict(cloud)
        kwargs.setdefault('interface', params.get('interface'))
        return kwargs
    if cloud is not None and not isinstance(cloud, str):
        raise errors.CloudConfigError(
            'cloud must be the name of a cloud in clouds.yaml or a dict of cloud settings, not %s.'
            % type(cloud).__name__)
    kwargs = dict(
        cloud=cloud,
        auth_type=params.get('auth_type'),
        auth=params.get('auth'),
        region_name=params.get('region_name'),
        verify=params.get('validate_certs'),
        cacert=params.get('ca_cert'),
        cert=params.get('client_cert'),
        key=params.get('client_key'),
        api_timeout=params.get('api_timeout'),
        interface=params.get('interface'),
    )
    return dict((key, value) for key, value in kwargs.items() if value is not None)


def server_reason(response):
    """The human part of an error response: Glance answers in JSON or in a
    small HTML page depending on the layer that refused."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ('message', 'title', 'description', 'detail'):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
        for value in body.values():
            if isinstance(value, dict) and value.get('message'):
                return str(value['message'])
    text = _TAG_RE.sub(' ', response.text or '')
    text = ' '.join(text.split())
    # Glance's HTML pages repeat the status line before the reason.
    status_line = '%s %s' % (response.status_code, response.reason or '')
    if text.startswith(status_line.strip()):
        text = text[len(status_line.strip()):].strip()
    return text[:500] or (response.reason or 'no reason given')


_STATUS_ERRORS = {
    400: (errors.BadRequestError, 'rejected the request as invalid'),
    401: (errors.AuthenticationError, 'did not accept the credentials'),
    403: (errors.NotAuthorizedError, 'refused: the credentials are not allowed to do this'),
    404: (errors.NotFoundError, 'found no such resource'),
    409: (errors.ConflictError, 'reported a conflict with the current state'),
    413: (errors.OverQuotaError, 'refused: over quota or size limit'),
}


def error_for_status(status, reason, what, where):
    """One exception for an HTTP error status, with the server's reason."""
    cls, text = _STATUS_ERRORS.get(status, (errors.OsimageError, 'failed'))
    return cls('%s: %s at %s %s (HTTP %s): %s' % (what, where[0], where[1], text, status, reason),
               status_code=status)


class GlanceAPI(object):
    """Glance v2 over an openstacksdk connection, with bounded retries."""

    def __init__(self, conn=None, retries=3, backoff=0.5, sleep=time.sleep, connect=None):
        """``conn`` is an openstacksdk connection, or None to have ``connect()``
        make one on first use (so work that needs no cloud never connects)."""
        self._conn = conn
        self._connect = connect
        self.retries = max(0, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._endpoint = None
        self._identity_endpoint = None
        self._own_projects_cache = None
        self._keystone_refused = set()
        self._key_manager_endpoint = None

    @property
    def conn(self):
        if self._conn is None:
            if self._connect is None:
                raise errors.CloudConfigError('No cloud connection was configured.')
            self._conn = self._connect()
        return self._conn

    @classmethod
    def from_params(cls, params):
        """A GlanceAPI for the module parameters; the connection is made
        (and the SDK required) only when something first needs the cloud."""
        kwargs = connection_kwargs(params)

        def connect():
            config_exception = sdk()['sdk_exceptions'].ConfigException
            ka_exceptions = sdk()['ka_exceptions']
            try:
                return connect_cloud(**kwargs)
            except (ka_exceptions.MissingRequiredOptions, ka_exceptions.MissingAuthPlugin) as exc:
                raise errors.CloudConfigError(missing_auth_message(params, exc))
            except config_exception as exc:
                raise errors.CloudConfigError(
                    'Cannot configure the cloud connection: %s. Check the cloud name against your '
                    'clouds.yaml (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, '
                    '/etc/openstack/clouds.yaml) or give auth.' % str(exc).rstrip('.'))

        return cls(retries=params.get('api_retries', 3), connect=connect)

    # -- where things are -------------------------------------------------
    @property
    def auth_url(self):
        try:
            return self.conn.config.get_auth_args().get('auth_url') or '(no auth_url)'
        except Exception:  # pylint: disable=broad-except
            return '(unknown auth_url)'

    @property
    def endpoint(self):
        """The image endpoint from the catalog; authenticates on first use."""
        if self._endpoint is None:
            # The keystoneauth session itself, not conn.authorize(): that one
            # folds every failure into a bare SDKException.
            self._with_retries(self.conn.session.get_token, ('Keystone', self.auth_url), 'Authentication')
            try:
                self._endpoint = self.conn.endpoint_for('image')
            except sdk()['ka_exceptions'].EndpointNotFound as exc:
                raise errors.CloudConfigError(
                    'The catalog of %s has no image (Glance) endpoint for this region/interface: %s. '
                    'Check region_name and interface.' % (self.auth_url, exc))
            if not self._endpoint:
                raise errors.CloudConfigError(
                    'The catalog of %s has no image (Glance) endpoint for this region/interface. '
                    'Check region_name and interface.' % self.auth_url)
        return self._endpoint

    @property
    def base_url(self):
        """The Glance v2 API root. Built from the catalog endpoint instead of
        asking the SDK's image proxy, whose version discovery turns an
        unreachable Glance into a misleading "no supported versions" error
        outside our retries, and costs a request per run."""
        endpoint = self.endpoint.rstrip('/')
        return endpoint if endpoint.endswith('/v2') else endpoint + '/v2'

    # -- the one retry loop -------------------------------------------------
    def _with_retries(self, call, where, what, statuses=_RETRY_STATUSES):
        """Run ``call`` and retry it on connection-level failures (refused,
        reset, timeout, 502/503/504; ``statuses`` may add 500) with
        exponential backoff, as nova's client does; then one clear message
        naming the service and endpoint.
        """
        ka_exceptions = sdk()['ka_exceptions']
        sdk_exceptions = sdk()['sdk_exceptions']
        attempt = 0
        while True:
            try:
                result = call()
            except ka_exceptions.SSLError as exc:
                raise errors.CloudConfigError(
                    '%s: TLS failure talking to %s at %s: %s. Check ca_cert / validate_certs.'
                    % (what, where[0], where[1], exc))
            except ka_exceptions.ConnectionError as exc:
                cause = str(exc)
            except (sdk_exceptions.HttpException, ka_exceptions.HttpError) as exc:
                status = getattr(exc, 'status_code', None) or getattr(exc, 'http_status', None)
                if status in statuses:
                    cause = 'HTTP %s' % status
                else:
                    raise self._translate_http_exception(exc, status, where, what)
            except (ka_exceptions.MissingRequiredOptions, ka_exceptions.MissingAuthPlugin,
                    ka_exceptions.NoMatchingPlugin, ka_exceptions.DiscoveryFailure) as exc:
                raise errors.CloudConfigError(
                    '%s: the cloud configuration is incomplete or invalid: %s. Check cloud/auth '
                    '(and clouds.yaml).' % (what, exc))
            else:
                status = getattr(result, 'status_code', None)
                if status not in statuses:
                    return result
                cause = 'HTTP %s %s' % (status, server_reason(result))
                result.close()
            attempt += 1
            if attempt > self.retries:
                raise errors.ServiceUnavailableError(
                    '%s: could not reach %s at %s after %d attempt(s): %s'
                    % (what, where[0], where[1], attempt, cause), attempts=attempt)
            self._sleep(self.backoff * (2 ** (attempt - 1)))

    def _translate_http_exception(self, exc, status, where, what):
        if status == 401 and where[0] == 'Keystone':
            user = self.conn.config.get_auth_args().get('username') or '(token or application credential)'
            return errors.AuthenticationError(
                '%s failed: Keystone at %s rejected the credentials of user %s (HTTP 401). '
                'Check the username, password, project and domains of the cloud.'
                % (what, where[1], user), status_code=401)
        reason = getattr(exc, 'details', None) or getattr(exc, 'message', None) or str(exc)
        return error_for_status(status or 0, reason, what, where)

    # -- requests -----------------------------------------------------------
    def _send(self, where, url, method, what, stream, ok, kwargs):
        """One request over the session through the retry loop; a status
        outside ``ok`` becomes one clear error naming ``where``."""
        def call():
            return self.conn.session.request(url, method, stream=stream, raise_exc=False,
                                             connect_retries=0, **kwargs)

        response = self._with_retries(call, where, what, statuses=retry_statuses(method, kwargs))
        if response.status_code not in ok:
            reason = server_reason(response)
            response.close()
            raise error_for_status(response.status_code, reason, what, where)
        return response

    def request(self, method, path, what, stream=False, ok=(200, 201, 204), **kwargs):
        """One Glance request; returns the response or raises one clear error."""
        return self._send(('Glance', self.endpoint), self.base_url + path, method, what, stream, ok, kwargs)

    def get_json(self, path, what, **kwargs):
        response = self.request('GET', path, what, **kwargs)
        return response.json()

    def get_image_schema(self) -> dict:
        """Glance's image schema (``GET /v2/schemas/image``): the attributes
        an image has, their types, which are read-only, the formats this
        Glance accepts, and the type of additional properties."""
        return self.get_json('/schemas/image', 'Reading the image schema of Glance')

    def get_image(self, image_id: str, what: str = None) -> dict:
        """One image by id (NotFoundError when it is not visible)."""
        return self.get_json('/images/%s' % image_id, what or 'Reading image %s' % image_id)

    def list_images(self, what, **filters):
        """All images matching the filters, following Glance's pagination."""
        images = []
        params = dict(filters)
        params.setdefault('limit', 100)
        path = '/images'
        while path:
            page = self.get_json(path, what, params=params)
            images.extend(page.get('images', []))
            nxt = page.get('next')
            if not nxt:
                break
            # "next" is a path with the version prefix and the marker query.
            path = re.sub(r'^.*?/v2(?=/)', '', nxt)
            params = None
        return images

    def find_image(self, name_or_id, **filters):
        """An image by id, or by name when exactly one visible image has it
        (``filters`` go to the name listing, e.g. ``member_status='all'``);
        a hidden image (os_hidden) when no other image has the name."""
        what = 'Looking up image %r' % name_or_id
        if _UUID_RE.match(name_or_id):
            try:
                return self.get_json('/images/%s' % name_or_id, what)
            except errors.NotFoundError:
                pass  # an image may be named like a UUID
        matches = self.list_images(what, name=name_or_id, **filters)
        if not matches and 'os_hidden' not in filters:
            # Glance lists hidden images (os_hidden) only when asked for them alone.
            matches = self.list_images(what, name=name_or_id, os_hidden='true', **filters)
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

    def open_image_data(self, image, what):
        """A streaming response with the image's bytes."""
        return self.request('GET', '/images/%s/file' % image['id'], what, stream=True, ok=(200,))

    def update_image(self, image_id, operations, what):
        """Apply JSON-patch ``operations`` to an image; returns the image."""
        response = self.request('PATCH', '/images/%s' % image_id, what, ok=(200,), json=operations,
                                headers={'Content-Type': 'application/openstack-images-v2.1-json-patch'})
        return response.json()

    # -- image members --------------------------------------------------------
    def list_members(self, image_id, what):
        """The members of a shared image (Glance refuses the list for an
        image that is not shared)."""
        return self.get_json('/images/%s/members' % image_id, what).get('members', [])

    def get_member(self, image_id, member_id, what):
        return self.get_json('/images/%s/members/%s' % (image_id, member_id), what)

    def add_member(self, image_id, member_id, what):
        response = self.request('POST', '/images/%s/members' % image_id, what, ok=(200, 201),
                                json={'member': member_id})
        return response.json()

    def set_member_status(self, image_id, member_id, status, what):
        response = self.request('PUT', '/images/%s/members/%s' % (image_id, member_id), what, ok=(200,),
                                json={'status': status})
        return response.json()

    def remove_member(self, image_id, member_id, what):
        self.request('DELETE', '/images/%s/members/%s' % (image_id, member_id), what, ok=(200, 204)).close()

    # -- who we are and Keystone ------------------------------------------------
    def whoami(self):
        """The user, project and roles of this connection's token (from the
        token itself: no request beyond authentication)."""
        session = self.conn.session
        access = self._with_retries(lambda: session.auth.get_access(session), ('Keystone', self.auth_url),
                                    'Authentication')
        return dict(user_id=access.user_id, user_name=access.username, project_id=access.project_id,
                    project_name=access.project_name, project_domain_id=access.project_domain_id,
                    roles=sorted(access.role_names or []))

    @property
    def identity_endpoint(self):
        """Keystone's v3 root from the catalog (the auth_url when the catalog
        has no identity endpoint for this interface)."""
        if self._identity_endpoint is None:
            self._with_retries(self.conn.session.get_token, ('Keystone', self.auth_url), 'Authentication')
            try:
                endpoint = self.conn.endpoint_for('identity')
            except sdk()['ka_exceptions'].EndpointNotFound:
                endpoint = None
            endpoint = (endpoint or self.auth_url).rstrip('/')
            self._identity_endpoint = endpoint if endpoint.endswith('/v3') else endpoint + '/v3'
        return self._identity_endpoint

    def keystone_request(self, method, path, what, ok=(200, 201, 204), **kwargs):
        """One Keystone (identity v3) request over the same session and
        retry loop as Glance's; ``path`` is below the v3 root."""
        root = self.identity_endpoint
        return self._send(('Keystone', root), root + path, method, what, False, ok, kwargs)

    def keystone_get_json(self, path, what, **kwargs):
        return self.keystone_request('GET', path, what, **kwargs).json()

    def find_project(self, name_or_id):
        """A Keystone project by id or name, as far as the caller may see.

        Keystone's default policy lets only admins (and domain readers) list
        or show other projects; everyone may list their own projects
        (``/v3/auth/projects``). So: an id or a unique name is resolved when
        the policy allows it or when it is one of the caller's projects; an
        id that cannot be checked is taken as it is (``verified`` is false);
        a name that cannot be resolved is an error asking for the id.
        """
        what = 'Looking up project %r' % name_or_id
        if _PROJECT_ID_RE.match(name_or_id):
            try:
                project = self._keystone_unless_refused('show', '/projects/%s' % name_or_id, what)['project']
                return dict(id=project['id'], name=project.get('name'), verified=True)
            except errors.NotFoundError:
                pass  # a project may be named like an id
            except errors.NotAuthorizedError:
                own = [p for p in self._own_projects(what) if p['id'] == name_or_id]
                if own:
                    return dict(id=own[0]['id'], name=own[0].get('name'), verified=True)
                return dict(id=name_or_id, name=None, verified=False)
        try:
            matches = self._keystone_unless_refused('list', '/projects', what,
                                                    params={'name': name_or_id}).get('projects', [])
            listed = True
        except errors.NotAuthorizedError:
            matches = [p for p in self._own_projects(what) if p.get('name') == name_or_id]
            listed = False
        if len(matches) > 1:
            found = sorted('%s (domain %s)' % (p['id'], p.get('domain_id')) for p in matches)
            raise errors.AmbiguousProjectError(
                '%d projects are named %r: %s. Give the id of the one you mean.'
                % (len(matches), name_or_id, ', '.join(found)), project_ids=sorted(p['id'] for p in matches))
        if matches:
            return dict(id=matches[0]['id'], name=matches[0].get('name'), verified=True)
        if listed:
            raise errors.NotFoundError(
                'Keystone at %s has no project with name or id %r. Check the name (names are '
                'case-sensitive) or give the project id.' % (self.identity_endpoint, name_or_id))
        raise errors.NotAuthorizedError(
            'Cannot resolve the project name %r: Keystone at %s does not let user %s list other '
            'projects (policy identity:list_projects, admin-only by default), and it is not one of '
            'the projects of that user. Give the project id instead (an admin sees it with '
            '"openstack project show %s", a member of that project with "openstack token issue"), '
            "or give the member's cloud so that its own credentials name the project."
            % (name_or_id, self.identity_endpoint, self.whoami().get('user_name'), name_or_id))

    def _keystone_unless_refused(self, kind, path, what, **kwargs):
        """A Keystone GET, remembering a policy refusal for the rest of the
        run so that a long member list costs one refused request, not one each."""
        if kind in self._keystone_refused:
            raise errors.NotAuthorizedError('%s: refused by Keystone earlier in this run.' % what, status_code=403)
        try:
            return self.keystone_get_json(path, what, **kwargs)
        except errors.NotAuthorizedError:
            self._keystone_refused.add(kind)
            raise

    def _own_projects(self, what):
        """The projects the caller's user has a role on (always allowed)."""
        if self._own_projects_cache is None:
            self._own_projects_cache = self.keystone_get_json('/auth/projects', what).get('projects', [])
        return self._own_projects_cache

    # -- Barbican (key manager): signing certificates -------------------------
    @property
    def key_manager_endpoint(self):
        """The key-manager (Barbican) endpoint from the catalog."""
        if self._key_manager_endpoint is None:
            self._with_retries(self.conn.session.get_token, ('Keystone', self.auth_url), 'Authentication')
            try:
                endpoint = self.conn.endpoint_for('key-manager')
            except sdk()['ka_exceptions'].EndpointNotFound:
                endpoint = None
            if not endpoint:
                raise errors.CloudConfigError(
                    'The catalog of %s has no key-manager (Barbican) endpoint for this region/interface, so '
                    'certificates stored there cannot be fetched. Check region_name and interface, or give '
                    'the certificate as a PEM file.' % self.auth_url)
            self._key_manager_endpoint = endpoint.rstrip('/')
        return self._key_manager_endpoint

    def get_secret_payload(self, secret_id, what):
        """The payload of a Barbican secret (for a certificate: its PEM or
        DER bytes), fetched with the user's own credentials."""
        endpoint = self.key_manager_endpoint
        root = endpoint if endpoint.endswith('/v1') else endpoint + '/v1'
        url = '%s/secrets/%s/payload' % (root, secret_id)
        response = self._send(('Barbican', endpoint), url, 'GET', what, False, (200,),
                              {'headers': {'Accept': 'application/octet-stream'}})
        return response.content

    def _key_manager_request(self, method, path, what, ok=(200, 201), **kwargs):
        endpoint = self.key_manager_endpoint
        where = ('Barbican', endpoint)
        root = endpoint if endpoint.endswith('/v1') else endpoint + '/v1'

        def call():
            return self.conn.session.request(root + path, method, raise_exc=False, connect_retries=0, **kwargs)

        response = self._with_retries(call, where, what, statuses=retry_statuses(method, kwargs))
        if response.status_code not in ok:
            reason = server_reason(response)
            response.close()
            raise error_for_status(response.status_code, reason, what, where)
        return response

    def store_certificate(self, name, pem, check_mode=False):
        """``(changed, uuid)`` of a Barbican certificate secret named ``name``
        holding ``pem``: an existing one with the same name and payload is
        reused, else one is created in the form Glance reads (the PEM text,
        base64-encoded, as application/octet-stream). In check mode nothing is
        created and the uuid is None."""
        what = 'Storing the signing certificate in Barbican'
        listing = self._key_manager_request('GET', '/secrets', what, ok=(200,),
                                            params={'name': name, 'secret_type': 'certificate', 'limit': 100})
        for secret in listing.json().get('secrets', []):
            uuid = (secret.get('secret_ref') or '').rstrip('/').rsplit('/', 1)[-1]
            if uuid and self.get_secret_payload(uuid, what) == pem:
                return False, uuid
        if check_mode:
            return True, None
        body = {'name': name, 'secret_type': 'certificate', 'payload': base64.b64encode(pem).decode('ascii'),
                'payload_content_type': 'application/octet-stream', 'payload_content_encoding': 'base64'}
        created = self._key_manager_request('POST', '/secrets', what, ok=(201,), json=body).json()
        return True, created['secret_ref'].rstrip('/').rsplit('/', 1)[-1]


def other_cloud_params(cloud, params):
    """Module parameters for a second connection to ``cloud`` (a cloud name
    or dict, like the ``cloud`` option): only the cloud itself plus the
    transport options ``interface`` and ``api_retries`` are taken over; the
    credentials and the other connection options belong to the first one."""
    return dict(cloud=cloud, interface=params.get('interface', 'public'),
                api_retries=params.get('api_retries', 3))


def stream_read_errors():
    """Exceptions a streaming body raises when the connection breaks."""
    libs = sdk()
    return (libs['requests'].exceptions.RequestException, libs['ka_exceptions'].ConnectionError)
