# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Shared fixtures: a small PKI (a signing CA and certificates it issues,
good and bad), a signer that makes Glance image signatures, and the one fake
Glance (with its Barbican, and its Keystone below _openstack/keystone.py) at
the boundary of _openstack/glance.py."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import itertools
import json
import os
import types

import jsonschema
import pytest
import requests

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._disk import qemu
from ansible_collections.osimage.glance.plugins.module_utils._openstack import glance as _glance
from ansible_collections.osimage.glance.plugins.module_utils._openstack import keystone as _keystone

HASHES = {'SHA-224': hashes.SHA224, 'SHA-256': hashes.SHA256, 'SHA-384': hashes.SHA384, 'SHA-512': hashes.SHA512}


@pytest.fixture(autouse=True)
def process_module():
    """Children start only through an AnsibleModule's run_command (see
    ``_disk.qemu``): a real one, without options, for the tests that run
    qemu-img below a module; a module under test binds its own."""
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})
    qemu.bind(module)
    yield module
    qemu.bind(None)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Pki(object):
    """A CA and the certificates a test asks it for."""

    def __init__(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        self.now = now
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        self.ca = self.certificate('osimage test CA', self.ca_key.public_key(), ca=True)

    def certificate(self, common_name, public_key, ca=False, self_signed_key=None, days=(-1, 30),
                    digital_signature=True):
        """A certificate issued by the CA (by itself for the CA, or by
        ``self_signed_key``), valid from/to ``days`` around now."""
        if ca:
            issuer_name, issuer_key = _name(common_name), self.ca_key
        elif self_signed_key is not None:
            issuer_name, issuer_key = _name(common_name), self_signed_key
        else:
            issuer_name, issuer_key = self.ca.subject, self.ca_key
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(common_name))
                   .issuer_name(issuer_name)
                   .public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(self.now + datetime.timedelta(days=days[0]))
                   .not_valid_after(self.now + datetime.timedelta(days=days[1]))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=digital_signature, content_commitment=False, key_encipherment=not ca,
                       data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                       crl_sign=ca, encipher_only=False, decipher_only=False), critical=True))
        return builder.sign(issuer_key, hashes.SHA256())

    def signer(self, kind='rsa', self_signed=False, name=None, **options):
        """A key and a certificate for it, issued by the CA unless
        ``self_signed``."""
        key = {'rsa': lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
               'ecc384': lambda: ec.generate_private_key(ec.SECP384R1()),
               'ecc521': lambda: ec.generate_private_key(ec.SECP521R1()),
               'dsa': lambda: dsa.generate_private_key(key_size=2048)}[kind]()
        name = name or 'osimage test signer %s' % kind
        cert = self.certificate(name, key.public_key(), self_signed_key=key if self_signed else None, **options)
        return Signer(key, cert)


class Signer(object):
    def __init__(self, key, cert):
        self.key = key
        self.cert = cert

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, data, hash_method='SHA-256'):
        """The base64 ``img_signature`` of ``data``, as Glance expects it."""
        algorithm = HASHES[hash_method]()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(data, padding.PSS(mgf=padding.MGF1(algorithm),
                                                        salt_length=padding.PSS.MAX_LENGTH), algorithm)
        elif isinstance(self.key, ec.EllipticCurvePrivateKey):
            signature = self.key.sign(data, ec.ECDSA(algorithm))
        else:
            signature = self.key.sign(data, algorithm)
        return base64.b64encode(signature).decode('ascii')

    @property
    def key_type(self):
        if isinstance(self.key, rsa.RSAPrivateKey):
            return 'RSA-PSS'
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return 'ECC_' + self.key.curve.name.upper()
        return 'DSA'

    def properties(self, data, cert_uuid, hash_method='SHA-256'):
        return {'img_signature': self.sign(data, hash_method), 'img_signature_hash_method': hash_method,
                'img_signature_key_type': self.key_type, 'img_signature_certificate_uuid': cert_uuid}


@pytest.fixture(scope='session')
def pki():
    return Pki()


@pytest.fixture(scope='session')
def rsa_signer(pki):
    return pki.signer('rsa')


@pytest.fixture
def write_pem(tmp_path):
    def write(cert, name):
        path = tmp_path / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return str(path)
    return write


# -- the one fake Glance ---------------------------------------------------------

# A copy of GET /v2/schemas/image of the local cloud's Glance (33.0.0).
with open(os.path.join(os.path.dirname(__file__), 'fixtures', 'glance_image_schema.json')) as _fileobj:
    GLANCE_SCHEMA = json.load(_fileobj)
# What Glance's image API refuses before its schema validation
# (glance.api.v2.images.RequestDeserializer).
GLANCE_DISALLOWED = ('direct_url', 'self', 'file', 'schema', 'stores')
GLANCE_READ_ONLY = ('created_at', 'updated_at', 'status', 'checksum', 'size', 'virtual_size', 'direct_url', 'self',
                    'file', 'schema', 'id', 'os_hash_algo', 'os_hash_value')
GLANCE_RESERVED = ('location', 'deleted', 'deleted_at')
PROJECT = 'p' * 32
_ids = itertools.count(1)


class FakeResponse(object):
    def __init__(self, body=None):
        self.body = body

    def json(self):
        return self.body


class FakeStream(object):
    """The streaming response of GET /v2/images/{id}/file; it may break."""

    def __init__(self, data, break_after=None):
        self.data = data
        self.break_after = break_after
        self.closed = False

    def iter_content(self, chunk_size):
        for offset in range(0, len(self.data), chunk_size):
            if self.break_after is not None and offset >= self.break_after:
                raise requests.exceptions.ChunkedEncodingError('Connection broken: reset by peer')
            yield self.data[offset:offset + chunk_size]

    def close(self):
        self.closed = True


class FakeBarbican(object):
    """Barbican's secrets by uuid, and certificate names."""

    def __init__(self):
        self.secrets = {}
        self.names = {}

    def get_secret_payload(self, secret_id, what):
        if secret_id not in self.secrets:
            raise errors.NotFoundError('%s: Barbican at http://barbican.test found no such resource (HTTP 404)'
                                       % what)
        return self.secrets[secret_id]

    def find_secrets(self, name, secret_type, what):
        assert secret_type == 'certificate'
        return [self.names[name]] if name in self.names else []

    def create_certificate(self, name, pem, what):
        uuid = 'c' * 8 + '-0000-0000-0000-%012d' % len(self.secrets)
        self.secrets[uuid], self.names[name] = pem, uuid
        return uuid


class FakeKeystoneSession(object):
    """One user's connection to the fake Keystone, with the surface of
    session.Session that keystone.KeystoneAPI uses: the token (``access``)
    and identity v3 GETs (``send``) answered under Keystone's default policy
    (only admins list or show other projects; everyone lists their own)."""

    def __init__(self, keystone, user):
        self.keystone = keystone
        own, roles = keystone.users[user]
        self.user = user
        self.own = [p for p in keystone.projects if p['name'] in own]
        project = next(p for p in self.own if p['name'] == (user if user in own else own[0]))
        self.project_id, self.project_name = project['id'], project['name']
        self.roles = list(roles)
        self.admin = 'admin' in roles
        self.auth_url = keystone.endpoint

    def access(self, what='Authentication'):
        return types.SimpleNamespace(user_id='user-' + self.user, username=self.user, project_id=self.project_id,
                                     project_name=self.project_name, project_domain_id='default',
                                     role_names=self.roles)

    def endpoint_for(self, service_type):
        assert service_type == 'identity'
        return self.keystone.endpoint

    @staticmethod
    def endpoint_not_found_error():
        return LookupError

    def send(self, where, url, method, what, stream=False, ok=(200,), params=None):
        assert method == 'GET' and url.startswith(self.keystone.endpoint)
        path = url[len(self.keystone.endpoint):]
        if path == '/auth/projects':
            return FakeResponse({'projects': [dict(p) for p in self.own]})
        if path == '/projects':
            if not self.admin:
                raise errors.NotAuthorizedError('%s: identity:list_projects refused (HTTP 403)' % what, status_code=403)
            return FakeResponse({'projects': [dict(p) for p in self.keystone.projects
                                              if p['name'] == params['name']]})
        found = [p for p in self.keystone.projects if p['id'] == path.split('/')[-1]]
        if not self.admin and not (found and found[0] in self.own):
            raise errors.NotAuthorizedError('%s: identity:get_project refused (HTTP 403)' % what, status_code=403)
        if not found:
            raise errors.NotFoundError('%s: Could not find project (HTTP 404)' % what, status_code=404)
        return FakeResponse({'project': dict(found[0])})


class FakeKeystone(object):
    """Keystone's projects and users (user -> (names of the projects it has
    a role in, the first or its namesake being its token's; its roles))."""

    endpoint = 'http://keystone.test/v3'

    def __init__(self):
        self.projects = [dict(id=PROJECT, name='demo', domain_id='default')]
        self.users = {'demo': (['demo'], ['member', 'reader'])}


class FakeGlance(object):
    """An in-memory Glance with the typed surface of glance.GlanceAPI: each
    call is one request of Glance's REST API (``request``, recorded in
    ``calls``, its changes with their bodies in ``writes``), checked as
    Glance checks it; data PUT is stored and hashed as Glance does; downloads
    are served from ``stream``. The caller is user demo of project PROJECT
    (``connected_as`` gives another user's connection to the same Glance);
    images, their members (kept while an image is not shared, as Glance
    does) and who sees them follow Glance's sharing rules."""

    endpoint = 'http://glance.test:9292'
    auth_url = 'http://keystone.test/v3'
    current_project_id = PROJECT

    def __init__(self):
        self.images = {}
        self.data = {}
        self.calls = []
        self.fail_upload = None
        self.stream = None
        self.downloads = 0
        self.lookups = 0
        self.barbican = FakeBarbican()
        self.members = {}  # image id -> {project id: status}
        self.member_quota = 128  # Glance's image_member_quota
        self.writes = []  # (method, path, body) of every change Glance made, in order
        self.identity = FakeKeystone()
        self.caller = FakeKeystoneSession(self.identity, 'demo')
        # The real Keystone client over the fake Keystone: name resolution is not the fake's.
        self.keystone = _keystone.KeystoneAPI(self.caller)

    def connected_as(self, user):
        """User ``user``'s connection to this Glance (the same images and members)."""
        view = copy.copy(self)
        view.caller = FakeKeystoneSession(self.identity, user)
        view.keystone = _keystone.KeystoneAPI(view.caller)
        view.current_project_id = view.caller.project_id
        return view

    # -- set-up for the tests ---------------------------------------------------
    @property
    def image(self):
        """The one image of a Glance that holds one."""
        assert len(self.images) == 1, 'the test set up %d images, not one' % len(self.images)
        return next(iter(self.images.values()))

    @image.setter
    def image(self, image):
        self.images = {image['id']: image}

    @property
    def secrets(self):
        return self.barbican.secrets

    def serve(self, data, break_after=None):
        """Downloads get ``data`` (the connection breaking after ``break_after`` bytes)."""
        self.stream = FakeStream(data, break_after=break_after)
        return self.stream

    def add(self, **fields):
        image = dict(id='00000000-0000-0000-0000-%012d' % next(_ids), status='queued', owner=PROJECT,
                     visibility='shared', protected=False, os_hidden=False, tags=[], min_ram=0, min_disk=0,
                     created_at='2025-01-01T00:00:%02dZ' % len(self.images), updated_at='u0',
                     disk_format='raw', container_format='bare', os_hash_algo=None, os_hash_value=None,
                     size=None)
        image.update(fields)
        self.images[image['id']] = image
        return image

    def uploads(self):
        return [call for call in self.calls if call[0] == 'PUT']

    # -- the GlanceAPI surface ---------------------------------------------------
    def get_image_schema(self):
        return self.request('GET', '/schemas/image', 'Reading the image schema of Glance').json()

    def list_stores(self, what):
        return sorted(store['id'] for store in self.request('GET', '/info/stores', what).json()['stores'])

    def get_image(self, image_id, what=None):
        return self.request('GET', '/images/%s' % image_id, what).json()

    def list_images(self, what, max_images=None, **filters):
        # Like Glance: hidden images only with os_hidden=true, and then only they;
        # shared images of others by member status; every tag given must be on the image;
        # sorted (newest first unless asked); at most limit.
        hidden = filters.pop('os_hidden', 'false') == 'true'
        tags = filters.pop('tag', [])
        limit = filters.pop('limit', None) or max_images
        member_status = filters.pop('member_status', 'accepted')
        order = filters.pop('sort', 'created_at:desc,id:desc')
        found = [dict(image) for image in self.images.values()
                 if image.get('os_hidden', False) == hidden and self.listed(image, member_status)
                 and all(tag in image['tags'] for tag in tags)
                 and all(image.get(key) == value for key, value in filters.items())]
        for entry in reversed(order.split(',')):
            key, _sep, direction = entry.partition(':')
            found.sort(key=lambda image, key=key: str(image.get(key)), reverse=direction == 'desc')
        return found[:limit] if limit else found

    def list_images_hidden_too(self, what, **filters):
        return self.list_images(what, **filters) + self.list_images(what, os_hidden='true', **filters)

    def find_image(self, name_or_id, **filters):
        self.lookups += 1
        if name_or_id in self.images and self.visible(self.images[name_or_id]):
            return dict(self.images[name_or_id])
        matches = self.list_images_hidden_too('', name=name_or_id, **filters)
        if len(matches) != 1:
            raise errors.NotFoundError('No image with name or id %r is visible to this project (%d found)'
                                       % (name_or_id, len(matches)))
        return matches[0]

    def create_image(self, body, what):
        return self.request('POST', '/images', what, json=body).json()

    def update_image(self, image_id, operations, what):
        return self.request('PATCH', '/images/%s' % image_id, what, json=operations).json()

    def delete_image(self, image_id, what):
        try:
            self.request('DELETE', '/images/%s' % image_id, what)
        except errors.NotFoundError:
            pass  # gone already is fine

    def open_image_data(self, image, what):
        self.downloads += 1
        return self.stream

    def upload_data(self, image_id, body, what, stage=False, store=None):
        self.request('PUT', '/images/%s/%s' % (image_id, 'stage' if stage else 'file'), what, data=body,
                     store=store)

    def deactivate_image(self, image_id, what):
        self.request('POST', '/images/%s/actions/deactivate' % image_id, what)

    def reactivate_image(self, image_id, what):
        self.request('POST', '/images/%s/actions/reactivate' % image_id, what)

    def import_image(self, image_id, body, what):
        self.request('POST', '/images/%s/import' % image_id, what, json=body)

    def list_members(self, image_id, what):
        return self.request('GET', '/images/%s/members' % image_id, what).json()['members']

    def get_member(self, image_id, member_id, what):
        return self.request('GET', '/images/%s/members/%s' % (image_id, member_id), what).json()

    def add_member(self, image_id, member_id, what):
        return self.request('POST', '/images/%s/members' % image_id, what, json={'member': member_id}).json()

    def set_member_status(self, image_id, member_id, status, what):
        return self.request('PUT', '/images/%s/members/%s' % (image_id, member_id), what,
                            json={'status': status}).json()

    def remove_member(self, image_id, member_id, what):
        self.request('DELETE', '/images/%s/members/%s' % (image_id, member_id), what)

    # -- who sees what: Glance's sharing rules -------------------------------------
    def owns(self, image):
        # An image set up without an owner is the caller's.
        return self.caller.admin or image.get('owner') in (None, self.caller.project_id)

    def visible(self, image):
        if self.owns(image) or image.get('visibility') in ('public', 'community'):
            return True
        return image.get('visibility') == 'shared' and self.caller.project_id in self.members.get(image['id'], {})

    def listed(self, image, member_status):
        """Whether GET /v2/images lists the image: community images only for
        their owner, shared ones of others only with the member status asked
        for (``accepted`` unless said otherwise)."""
        if image.get('visibility') == 'community':
            return image.get('owner') in (None, self.caller.project_id)
        if image.get('visibility') == 'shared' and not self.owns(image):
            status = self.members.get(image['id'], {}).get(self.caller.project_id)
            return status is not None and member_status in ('all', status)
        return self.visible(image)

    # -- Glance's REST API, in memory ---------------------------------------------
    @staticmethod
    def refuse(body, read_only, validate=True):
        """Glance's checks of a create body or of a patched attribute: 403
        for what it sets itself or reserves, 400 for a schema violation."""
        for key in body:
            if key in read_only or key in GLANCE_RESERVED or key.startswith('os_glance'):
                raise errors.NotAuthorizedError("Attribute '%s' is read-only." % key, status_code=403)
        try:
            if validate:
                jsonschema.validate(body, GLANCE_SCHEMA)
        except jsonschema.ValidationError as exc:
            raise errors.BadRequestError('Provided object does not match schema: %s' % exc.message, status_code=400)

    def request(self, method, path, what, json=None, data=None, store=None):  # pylint: disable=redefined-outer-name
        response = self.answer(method, path, what, json=json, data=data, store=store)
        if method != 'GET':
            self.writes.append((method, path, json))
        return response

    def answer(self, method, path, what, json=None, data=None, store=None):  # pylint: disable=redefined-outer-name
        self.calls.append((method, path))
        parts = path.strip('/').split('/')
        if path == '/schemas/image':
            return FakeResponse(GLANCE_SCHEMA)
        if path == '/info/stores':
            return FakeResponse({'stores': [{'id': 'fast'}, {'id': 'slow'}]})
        if method == 'POST' and path == '/images':
            self.refuse(json, GLANCE_DISALLOWED)
            return FakeResponse(dict(self.add(**json)))
        image = self.images.get(parts[1])
        if image is None or not self.visible(image):
            raise errors.NotFoundError('no image %s' % parts[1], status_code=404)
        if len(parts) > 2 and parts[2] == 'members':
            return self.answer_members(method, image, parts[3] if len(parts) > 3 else None, json)
        if method == 'GET':
            return FakeResponse(dict(image))
        if method == 'DELETE':
            if image['protected']:
                raise errors.NotAuthorizedError('protected', status_code=403)
            del self.images[image['id']]
            return FakeResponse()
        if method == 'PATCH':
            if not self.owns(image):
                raise errors.NotAuthorizedError('You are not authorized to complete modify_image action.',
                                                status_code=403)
            if not self.caller.admin and {'op': 'replace', 'path': '/visibility', 'value': 'public'} in json:
                raise errors.NotAuthorizedError('You are not authorized to complete publicize_image action.',
                                                status_code=403)
            for op in json:
                self.refuse({op['path'][1:]: op.get('value')}, GLANCE_READ_ONLY, validate=op['op'] != 'remove')
            for op in json:
                # JSON patch as Glance applies it, written here rather than
                # borrowed from the code under test.
                if op['op'] == 'remove':
                    image.pop(op['path'][1:])
                else:
                    image[op['path'][1:]] = op['value']
            image['updated_at'] = 'u%d' % len(self.calls)
            return FakeResponse(dict(image))
        if method == 'PUT' and parts[2] in ('file', 'stage'):
            if self.fail_upload is not None:
                raise self.fail_upload  # pylint: disable=raising-bad-type
            assert len(data) == data.size
            payload = b''.join(data)
            if parts[2] == 'stage':
                image.update(status='uploading')
                self.data[image['id']] = payload
                return FakeResponse()
            self.store(image, payload, store or 'fast')
            return FakeResponse()
        if method == 'POST' and parts[2:] in (['actions', 'deactivate'], ['actions', 'reactivate']):
            # Glance: only the owner (or an admin), only images with data.
            if not self.owns(image):
                raise errors.NotAuthorizedError('You are not authorized to complete %s action.' % parts[3],
                                                status_code=403)
            if image['status'] not in ('active', 'deactivated'):
                raise errors.ConflictError('Not allowed to %s image in status %s' % (parts[3], image['status']),
                                           status_code=409)
            image['status'] = 'deactivated' if parts[3] == 'deactivate' else 'active'
            return FakeResponse()
        if method == 'POST' and parts[2] == 'import':
            if json['method']['name'] == 'glance-direct':
                self.store(image, self.data[image['id']], ','.join(json.get('stores') or ['fast']))
            elif json['method']['name'] == 'copy-image':
                image['stores'] = ','.join(sorted(set(image['stores'].split(',')) | set(json['stores'])))
            return FakeResponse()
        raise AssertionError('unexpected %s %s' % (method, path))

    def answer_members(self, method, image, member_id, body):
        """/v2/images/{id}/members[/{member}]: only on shared images; the
        owner adds and removes, the member itself (or an admin) sets its
        status; the owner sees all members, a member only itself."""
        if image.get('visibility') != 'shared':
            error = errors.NotFoundError if method == 'PUT' else errors.NotAuthorizedError
            raise error('Only shared images have members.', status_code=404 if method == 'PUT' else 403)
        members = self.members.setdefault(image['id'], {})
        owner = self.owns(image)
        if member_id is None and method == 'GET':
            shown = dict((k, v) for k, v in members.items() if owner or k == self.caller.project_id)
            return FakeResponse({'members': [dict(member_id=k, status=v) for k, v in shown.items()]})
        if member_id is None and method == 'POST':
            if not owner:
                raise errors.NotAuthorizedError('not allowed', status_code=403)
            if body['member'] in members:
                raise errors.ConflictError('Member %s is duplicated' % body['member'], status_code=409)
            if len(members) >= self.member_quota:
                raise errors.OverQuotaError('The request returned a 413 Request Entity Too Large.', status_code=413)
            members[body['member']] = 'pending'
            return FakeResponse(dict(member_id=body['member'], status='pending'))
        if member_id not in members or not (owner or member_id == self.caller.project_id):
            raise errors.NotFoundError('%s not found in the member list' % member_id, status_code=404)
        if method == 'GET':
            return FakeResponse(dict(member_id=member_id, status=members[member_id]))
        if method == 'PUT':
            if member_id != self.caller.project_id and not self.caller.admin:
                raise errors.NotAuthorizedError('You are not authorized to complete modify_member action.',
                                                status_code=403)
            members[member_id] = body['status']
            return FakeResponse(dict(member_id=member_id, status=body['status']))
        if method == 'DELETE' and owner:
            del members[member_id]
            return FakeResponse()
        raise errors.NotAuthorizedError('not allowed', status_code=403)

    def store(self, image, payload, stores):
        """Glance storing data: active, with its size and sha512."""
        image.update(status='active', size=len(payload), os_hash_algo='sha512',
                     os_hash_value=hashlib.sha512(payload).hexdigest(), stores=stores,
                     updated_at='u%d' % len(self.calls))
        self.data[image['id']] = payload


@pytest.fixture
def fake_glance(monkeypatch):
    """The fake Glance, installed as the cloud every module run gets."""
    fake = FakeGlance()
    monkeypatch.setattr(_glance.GlanceAPI, 'from_params', classmethod(lambda cls, params: fake))
    return fake
