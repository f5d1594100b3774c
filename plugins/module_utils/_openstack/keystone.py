# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Keystone (identity v3): who this connection is and which project a name
or id means. The only place that knows a Keystone URL.

Private to the collection; not a public API.
"""

from __future__ import annotations

import re

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._openstack.session import Session

# Keystone project ids: uuid4 hex by default, with dashes from some backends.
_PROJECT_ID_RE = re.compile(r'^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$')


class KeystoneAPI(object):
    """Keystone over one cloud session (see session.Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._identity_endpoint = None
        self._own_projects_cache = None
        self._keystone_refused = set()

    def whoami(self) -> dict:
        """The user, project and roles of this connection's token (from the
        token itself: no request beyond authentication)."""
        access = self.session.access()
        return dict(user_id=access.user_id, user_name=access.username, project_id=access.project_id,
                    project_name=access.project_name, project_domain_id=access.project_domain_id,
                    roles=sorted(access.role_names or []))

    @property
    def identity_endpoint(self) -> str:
        """Keystone's v3 root from the catalog (the auth_url when the catalog
        has no identity endpoint for this interface)."""
        if self._identity_endpoint is None:
            try:
                endpoint = self.session.endpoint_for('identity')
            except self.session.endpoint_not_found_error():
                endpoint = None
            endpoint = (endpoint or self.session.auth_url).rstrip('/')
            self._identity_endpoint = endpoint if endpoint.endswith('/v3') else endpoint + '/v3'
        return self._identity_endpoint

    def _get_json(self, path, what, **kwargs):
        """One Keystone (identity v3) GET over the same session and retry
        loop as Glance's; ``path`` is below the v3 root."""
        root = self.identity_endpoint
        return self.session.send(('Keystone', root), root + path, 'GET', what, **kwargs).json()

    def find_project(self, name_or_id: str) -> dict:
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
            return self._get_json(path, what, **kwargs)
        except errors.NotAuthorizedError:
            self._keystone_refused.add(kind)
            raise

    def _own_projects(self, what):
        """The projects the caller's user has a role on (always allowed)."""
        if self._own_projects_cache is None:
            self._own_projects_cache = self._get_json('/auth/projects', what).get('projects', [])
        return self._own_projects_cache
