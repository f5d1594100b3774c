"""Create the identity objects of the local test cloud, idempotently.

Run by localcloud.sh with the python of the cloud's venv after
``keystone-manage bootstrap`` has created the admin user, the admin project,
the admin/member/reader roles and the identity endpoints. This script adds:

* the roles ``creator`` (Barbican) and ``service``;
* the projects ``demo``, ``alt`` and ``service``;
* the users ``demo`` and ``alt`` with the roles member, creator and reader on
  their own project;
* the service users ``glance`` and ``barbican`` (roles admin and service on
  the ``service`` project), used by keystonemiddleware;
* the ``image`` and ``key-manager`` services with public, internal and admin
  endpoints in the region.

Every step first looks for the object and creates or updates it only when
needed, so running it again changes nothing. Its input comes from LC_*
environment variables (see ``main``).
"""

import os
import sys

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

DOMAIN_ID = 'default'
TIMEOUT = 30
INTERFACES = ('public', 'internal', 'admin')


class Identity:
    """Thin idempotent wrapper around the Keystone v3 API."""

    def __init__(self, auth_url, password):
        auth = v3.Password(auth_url=auth_url, username='admin',
                           password=password, project_name='admin',
                           user_domain_id=DOMAIN_ID,
                           project_domain_id=DOMAIN_ID)
        self.auth_url = auth_url
        self.sess = ks_session.Session(auth=auth, timeout=TIMEOUT)

    def _url(self, path):
        return self.auth_url.rstrip('/') + path

    def _get(self, path, **params):
        resp = self.sess.get(self._url(path), params=params)
        return resp.json()

    def _post(self, path, body):
        return self.sess.post(self._url(path), json=body).json()

    def _find(self, collection, key, **params):
        """Return the single object of a listing filtered by params."""
        items = self._get('/' + collection, **params)[key]
        return items[0] if items else None

    def _ensure(self, kind, filters, body):
        """Return the id of the object of this kind that matches filters,
        creating it from body if there is none."""
        found = self._find(kind + 's', kind + 's', **filters)
        if found:
            return found['id']
        print(f'creating {kind} {body.get("name")}')
        return self._post('/' + kind + 's', {kind: body})[kind]['id']

    def role(self, name):
        """Return the id of role name, creating it if missing."""
        return self._ensure('role', {'name': name}, {'name': name})

    def project(self, name, description):
        """Return the id of project name, creating it if missing."""
        return self._ensure(
            'project', {'name': name, 'domain_id': DOMAIN_ID},
            {'name': name, 'domain_id': DOMAIN_ID,
             'description': description, 'enabled': True})

    def user(self, name, password, project_id):
        """Return the id of user name with this password, creating it or
        resetting its password if needed."""
        found = self._find('users', 'users', name=name, domain_id=DOMAIN_ID)
        if not found:
            print(f'creating user {name}')
            body = {'user': {'name': name, 'domain_id': DOMAIN_ID,
                             'password': password, 'enabled': True,
                             'default_project_id': project_id}}
            return self._post('/users', body)['user']['id']
        if not self._password_works(name, password):
            print(f'resetting the password of user {name}')
            self.sess.patch(self._url('/users/' + found['id']),
                            json={'user': {'password': password,
                                           'enabled': True}})
        return found['id']

    def _password_works(self, name, password):
        auth = v3.Password(auth_url=self.auth_url, username=name,
                           password=password, user_domain_id=DOMAIN_ID,
                           unscoped=True)
        try:
            ks_session.Session(auth=auth, timeout=TIMEOUT).get_token()
        except ks_exc.Unauthorized:
            return False
        return True

    def grant(self, project_id, user_id, role_id):
        """Give user the role on project (a no-op if it has it)."""
        self.sess.put(self._url(
            f'/projects/{project_id}/users/{user_id}/roles/{role_id}'))

    def service(self, service_type, name, description):
        """Return the id of the service of this type, creating it."""
        return self._ensure(
            'service', {'type': service_type},
            {'type': service_type, 'name': name,
             'description': description, 'enabled': True})

    def endpoints(self, service_id, region, url):
        """Make the service's endpoints in region point to url."""
        current = self._get('/endpoints', service_id=service_id)['endpoints']
        for interface in INTERFACES:
            mine = [ep for ep in current if ep['interface'] == interface
                    and ep.get('region_id') == region]
            if not mine:
                print(f'creating {interface} endpoint {url}')
                body = {'endpoint': {'service_id': service_id,
                                     'interface': interface,
                                     'region_id': region, 'url': url,
                                     'enabled': True}}
                self._post('/endpoints', body)
                continue
            for extra in mine[1:]:
                self.sess.delete(self._url('/endpoints/' + extra['id']))
            if mine[0]['url'] != url or not mine[0].get('enabled', True):
                print(f'updating {interface} endpoint to {url}')
                self.sess.patch(self._url('/endpoints/' + mine[0]['id']),
                                json={'endpoint': {'url': url,
                                                   'enabled': True}})


def main():
    """Read the LC_* variables and create everything."""
    env = os.environ
    region = env.get('LC_REGION', 'RegionOne')
    ident = Identity(env['LC_AUTH_URL'], env['LC_ADMIN_PASSWORD'])

    roles = {name: ident.role(name)
             for name in ('admin', 'member', 'reader', 'creator', 'service')}

    for name in ('demo', 'alt'):
        project_id = ident.project(name, f'Test project {name}')
        user_id = ident.user(name, env[f'LC_{name.upper()}_PASSWORD'],
                             project_id)
        for role in ('member', 'creator', 'reader'):
            ident.grant(project_id, user_id, roles[role])

    service_project = ident.project('service', 'Service users')
    for name in ('glance', 'barbican'):
        user_id = ident.user(name, env[f'LC_{name.upper()}_PASSWORD'],
                             service_project)
        for role in ('admin', 'service'):
            ident.grant(service_project, user_id, roles[role])

    image = ident.service('image', 'glance', 'Glance image service')
    ident.endpoints(image, region, env['LC_GLANCE_URL'])
    key_manager = ident.service('key-manager', 'barbican',
                                'Barbican key manager')
    ident.endpoints(key_manager, region, env['LC_BARBICAN_URL'])
    print('identity setup done')
    return 0


if __name__ == '__main__':
    sys.exit(main())
