# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):
    # The connection options, the same as openstack.cloud's so that existing
    # clouds.yaml files and module_defaults work unchanged. Paired with
    # plugins/module_utils/_openstack/session.py:cloud_argument_spec().
    DOCUMENTATION = r'''
options:
  cloud:
    description:
      - Name of a cloud in C(clouds.yaml), or a dict of cloud settings as C(clouds.yaml) would hold them.
      - When it is a dict, I(auth), I(auth_type), I(region_name), I(validate_certs), I(ca_cert),
        I(client_cert), I(client_key) and I(api_timeout) go inside it, not beside it.
      - Without it, and without I(auth), the C(OS_*) environment variables (for example C(OS_CLOUD)) are used.
      - C(clouds.yaml) is looked up in C(OS_CLIENT_CONFIG_FILE), the current directory,
        C(~/.config/openstack) and C(/etc/openstack).
      - In a dict, the values of secret keys (C(password), C(token), C(application_credential_secret), any key
        naming a password, passphrase, passcode, secret or token) are never logged or returned; names and URLs
        stay readable.
    type: raw
  auth:
    description:
      - Authentication settings (for example C(auth_url), C(username), C(password), C(project_name),
        C(user_domain_name), C(project_domain_name)) for the auth plugin I(auth_type).
      - The values of its secret keys (C(password), C(token), C(application_credential_secret), ...) are never
        logged or returned; C(auth_url), user, project and domain names stay readable in messages.
    type: dict
  auth_type:
    description:
      - Name of the keystoneauth plugin to use, for example C(password), C(v3password), C(token) or
        C(v3applicationcredential). Defaults to C(password).
    type: str
  region_name:
    description:
      - Name of the region whose endpoints to use.
    type: str
  validate_certs:
    description:
      - Whether to verify TLS certificates. Defaults to C(true) unless C(clouds.yaml) says otherwise.
    type: bool
    aliases: [verify]
  ca_cert:
    description:
      - Path to a CA bundle to verify the endpoints' certificates with.
    type: path
    aliases: [cacert]
  client_cert:
    description:
      - Path to a client certificate for TLS client authentication.
    type: path
    aliases: [cert]
  client_key:
    description:
      - Path to the private key of I(client_cert).
    type: path
    aliases: [key]
  api_timeout:
    description:
      - Seconds to wait for a single API response (socket timeout); at least 1.
    type: int
  interface:
    description:
      - Which endpoint interface of the catalog to use.
    type: str
    default: public
    choices: [public, internal, admin]
    aliases: [endpoint_type]
  api_retries:
    description:
      - How many times to retry a request that fails at connection level (refused, reset, timed out) or
        with HTTP 502, 503 or 504, with exponential backoff starting at half a second.
      - After the last try the module fails with one message naming the service and its endpoint.
      - C(0) means no retries; a negative value is refused.
    type: int
    default: 3
requirements:
  - python >= 3.10
  - openstacksdk >= 1.0.0
notes:
  - The modules run where the task runs; for a cloud API that is usually C(localhost) with
    C(delegate_to) or a play on C(localhost). The host needs the Python packages of the collection's
    C(requirements.txt).
'''
