# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""The cloud transport: the common connection options, the keystoneauth
session, bounded retries, one ``send()`` with one error translation, and the
catalog endpoints.

Rules of the ``_openstack`` package: only this module imports openstacksdk or
keystoneauth (lazily, on first use); only ``glance`` knows a Glance URL,
``keystone`` a Keystone one, ``barbican`` a Barbican one; none of them decides
about check mode - the caller does.

The options are the ones openstack.cloud uses, so ``module_defaults`` and
clouds.yaml files written for openstack.cloud work unchanged. Requests go
through the keystoneauth session made by openstacksdk's config loader (it reads
clouds.yaml and does the auth and catalog) straight to the services; this
module adds what nova's Glance client wrapper does on top: bounded retries with backoff on connection-level
failures and one clear message per failure.

Private to the collection; not a public API.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Type, Union

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


def sdk() -> Dict[str, Any]:
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


def missing_auth_message(params: Dict[str, Any], exc: Exception) -> str:
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

    def __init__(self, cloud_region: Any) -> None:
        self.config = cloud_region
        self.session = cloud_region.get_session()

    def endpoint_for(self, service_type: str, interface: Optional[str] = None, region_name: Optional[str] = None) -> str:
        """The service's endpoint: a configured ``<service>_endpoint_override``
        first, else the catalog's (as Connection.endpoint_for)."""
        override = self.config.get_endpoint(service_type)
        if override:
            return override
        return self.config.get_endpoint_from_catalog(service_type, interface=interface, region_name=region_name)

    @property
    def current_project_id(self) -> Optional[str]:
        """The project of the token (None for a domain- or unscoped token)."""
        return self.session.get_project_id()


def connect_cloud(**kwargs: Any) -> CloudConnection:
    """A CloudConnection for ``openstack.connect``-style keyword arguments."""
    config = sdk()['config']
    with payload_off_sys_path():
        return CloudConnection(config.get_cloud_region(**kwargs))


def _own_archive():
    """The zip archive this file was imported from (Ansible's AnsiballZ
    payload, at a new temporary path on every run), or None."""
    return getattr(globals().get('__loader__'), 'archive', None)


@contextlib.contextmanager
def payload_off_sys_path(archive: Optional[str] = None) -> Iterator[None]:
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

_TAG_RE = re.compile(r'<[^>]+>')


def retry_statuses(method: str, kwargs: Dict[str, Any]) -> Tuple[int, ...]:
    """The statuses worth retrying for this request."""
    if method in ('GET', 'HEAD', 'DELETE') or (method == 'PUT' and 'data' not in kwargs):
        return _RETRY_STATUSES_SAFE
    return _RETRY_STATUSES


def cloud_argument_spec() -> Dict[str, Dict[str, Any]]:
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


def connection_kwargs(params: Dict[str, Any]) -> Dict[str, Any]:
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


def server_reason(response: Any) -> str:
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


def error_for_status(status: int, reason: str, what: str, where: Tuple[str, str]) -> errors.OsimageError:
    """One exception for an HTTP error status, with the server's reason."""
    cls, text = _STATUS_ERRORS.get(status, (errors.OsimageError, 'failed'))
    return cls('%s: %s at %s %s (HTTP %s): %s' % (what, where[0], where[1], text, status, reason),
               status_code=status)


class Session(object):
    """The keystoneauth session of one cloud connection, with bounded retries."""

    def __init__(self, conn: Optional[CloudConnection] = None, retries: int = 3, backoff: float = 0.5,
            sleep: Callable[[float], None] = time.sleep, connect: Optional[Callable[[], CloudConnection]] = None) -> None:
        """``conn`` is a CloudConnection, or None to have ``connect()`` make
        one on first use (so work that needs no cloud never connects)."""
        self._conn = conn
        self._connect = connect
        self.retries = max(0, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._authenticated = False

    @property
    def conn(self) -> CloudConnection:
        if self._conn is None:
            if self._connect is None:
                raise errors.CloudConfigError('No cloud connection was configured.')
            self._conn = self._connect()
        return self._conn

    @classmethod
    def from_params(cls, params: dict) -> 'Session':
        """A Session for the module parameters; the connection is made (and
        the SDK required) only when something first needs the cloud."""
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
    def auth_url(self) -> str:
        try:
            return self.conn.config.get_auth_args().get('auth_url') or '(no auth_url)'
        except Exception:  # pylint: disable=broad-except
            return '(unknown auth_url)'

    @property
    def current_project_id(self) -> str | None:
        """The project of the token (None for a domain- or unscoped token)."""
        return self.conn.current_project_id

    def authenticate(self) -> None:
        """Get a token (through the retry loop). The keystoneauth session
        itself, not conn.authorize(): that one folds every failure into a
        bare SDKException."""
        self.with_retries(self.conn.session.get_token, ('Keystone', self.auth_url), 'Authentication')

    def endpoint_for(self, service_type: str) -> str | None:
        """The catalog endpoint of a service (None when the catalog has
        none for this region/interface); authenticates first."""
        self.authenticate()
        return self.conn.endpoint_for(service_type)

    def endpoint_not_found_error(self) -> Type[Exception]:
        """The exception ``endpoint_for`` raises for a missing service."""
        return sdk()['ka_exceptions'].EndpointNotFound

    def access(self, what: str = 'Authentication') -> Any:
        """The keystoneauth AccessInfo of the token (no request beyond
        authentication)."""
        session = self.conn.session
        return self.with_retries(lambda: session.auth.get_access(session), ('Keystone', self.auth_url), what)

    # -- the one retry loop -------------------------------------------------
    def with_retries(self, call: Callable[[], Any], where: Tuple[str, str], what: str, statuses: Tuple[int, ...] = _RETRY_STATUSES) -> Any:
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

    # -- the one send ---------------------------------------------------------
    def send(self, where: Tuple[str, str], url: str, method: str, what: str, stream: bool = False, ok: Tuple[int, ...] = (200, 201, 204),
            **kwargs: Any) -> Any:
        """One request over the session through the retry loop; a status
        outside ``ok`` becomes one clear error naming ``where`` (the service
        and its endpoint)."""
        def call():
            return self.conn.session.request(url, method, stream=stream, raise_exc=False,
                                             connect_retries=0, **kwargs)

        response = self.with_retries(call, where, what, statuses=retry_statuses(method, kwargs))
        if response.status_code not in ok:
            reason = server_reason(response)
            response.close()
            raise error_for_status(response.status_code, reason, what, where)
        return response


def other_cloud_params(cloud: Union[str, Dict[str, Any]], params: Dict[str, Any]) -> Dict[str, Any]:
    """Module parameters for a second connection to ``cloud`` (a cloud name
    or dict, like the ``cloud`` option): only the cloud itself plus the
    transport options ``interface`` and ``api_retries`` are taken over; the
    credentials and the other connection options belong to the first one."""
    return dict(cloud=cloud, interface=params.get('interface', 'public'),
                api_retries=params.get('api_retries', 3))


def stream_read_errors() -> Tuple[Type[Exception], ...]:
    """Exceptions a streaming body raises when the connection breaks."""
    libs = sdk()
    return (libs['requests'].exceptions.RequestException, libs['ka_exceptions'].ConnectionError)
