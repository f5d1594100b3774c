"""Self-check of the local test cloud started by localcloud.sh.

Run it with the client venv after ``eval "$(localcloud.sh env)"``::

    .venv/bin/python tests/localcloud/check.py

It talks to Glance and Barbican through the service catalog of the clouds
``demo`` and ``admin`` of $OS_CLIENT_CONFIG_FILE and checks, as ``demo``
unless stated otherwise:

* upload to the default store (``fast``) and download, with the sha512
  ``os_hash_value`` matching the data;
* two concurrent downloads;
* a chunked upload (Transfer-Encoding: chunked) in 2 MiB chunks;
* upload to the ``slow`` store;
* the glance-direct import (stage, then import);
* the web-download import from an HTTP server on 127.0.0.1;
* the copy-image import to the other store (refused for ``demo`` by Glance's
  default policy, done as ``admin``);
* image signature verification: a certificate secret in Barbican, data
  signed with RSA-PSS/SHA-256; Glance accepts the good signature and refuses
  a bad one.

Everything it creates is deleted at the end. Prints one line per check and
exits non-zero if any failed.
"""

import argparse
import base64
import datetime
import functools
import hashlib
import http.server
import os
import sys
import threading
import time

import openstack
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

OCTET = {'Content-Type': 'application/octet-stream'}
IMPORT_TIMEOUT = 120


class CheckFailed(Exception):
    """A check found something wrong."""


def expect(condition, message):
    """Raise CheckFailed with message unless condition holds."""
    if not condition:
        raise CheckFailed(message)


def expect_status(resp, *codes):
    """Raise CheckFailed unless the response has one of the codes."""
    expect(resp.status_code in codes,
           f'{resp.request.method} {resp.url}: HTTP {resp.status_code} '
           f'(wanted {codes}): {resp.text[:300]}')


class Glance:
    """Minimal Glance v2 client on an openstacksdk connection's adapter."""

    def __init__(self, conn):
        self.conn = conn
        self.api = conn.image
        self.created = []

    def create(self, name, **props):
        """Create a raw/bare image record and return its id."""
        body = {'name': name, 'disk_format': 'raw',
                'container_format': 'bare'}
        body.update(props)
        resp = self.api.post('/images', json=body)
        expect_status(resp, 201)
        image_id = resp.json()['id']
        self.created.append(image_id)
        return image_id

    def show(self, image_id):
        """Return the image's record."""
        resp = self.api.get(f'/images/{image_id}')
        expect_status(resp, 200)
        return resp.json()

    def upload(self, image_id, data, store=None):
        """PUT the image data; return the response."""
        headers = dict(OCTET)
        if store:
            headers['X-Image-Meta-Store'] = store
        return self.api.put(f'/images/{image_id}/file', data=data,
                            headers=headers)

    def stage(self, image_id, data):
        """PUT the image data to the staging area."""
        resp = self.api.put(f'/images/{image_id}/stage', data=data,
                            headers=OCTET)
        expect_status(resp, 204)

    def import_image(self, image_id, method, **extra):
        """Start an interoperable import; return the response."""
        body = {'method': dict(method)}
        body.update(extra)
        return self.api.post(f'/images/{image_id}/import', json=body)

    def download(self, image_id):
        """Return the image data."""
        resp = self.api.get(f'/images/{image_id}/file')
        expect_status(resp, 200)
        return resp.content

    def wait(self, image_id, predicate, what):
        """Poll the image until predicate(image) holds or time runs out."""
        deadline = time.monotonic() + IMPORT_TIMEOUT
        image = self.show(image_id)
        while not predicate(image):
            expect(image['status'] not in ('killed', 'deleted'),
                   f'image {image_id} is {image["status"]} waiting for '
                   f'{what}')
            expect(time.monotonic() < deadline,
                   f'image {image_id} not {what} after {IMPORT_TIMEOUT}s: '
                   f'status {image["status"]}, stores '
                   f'{image.get("stores")}, '
                   f'failed {image.get("os_glance_failed_import")}')
            time.sleep(0.5)
            image = self.show(image_id)
        return image

    def cleanup(self):
        """Delete every image this client created."""
        for image_id in self.created:
            self.api.delete(f'/images/{image_id}')


def check_active(glance, image_id, data, store):
    """Check the image is active in store with the right sha512."""
    image = glance.wait(image_id, lambda i: i['status'] == 'active',
                        'active')
    digest = hashlib.sha512(data).hexdigest()
    expect(image['os_hash_algo'] == 'sha512',
           f'os_hash_algo is {image["os_hash_algo"]}')
    expect(image['os_hash_value'] == digest, 'os_hash_value mismatch')
    expect(image['size'] == len(data), f'size {image["size"]}')
    expect(store in image.get('stores', '').split(','),
           f'image in stores {image.get("stores")}, wanted {store}')
    return image


def check_upload_download(ctx):
    """Upload to the default store and download again."""
    glance, data = ctx['demo'], ctx['data']
    image_id = glance.create('lc-check-default')
    expect_status(glance.upload(image_id, data), 204)
    check_active(glance, image_id, data, 'fast')
    back = glance.download(image_id)
    expect(hashlib.sha512(back).hexdigest() ==
           glance.show(image_id)['os_hash_value'],
           'downloaded data does not match os_hash_value')
    ctx['image_id'] = image_id


def check_chunked_upload(ctx):
    """Upload with chunked transfer encoding in 2 MiB chunks."""
    glance, data = ctx['demo'], ctx['data']
    step = 2 * 1024 * 1024

    def chunks():
        for pos in range(0, len(data), step):
            yield data[pos:pos + step]

    image_id = glance.create('lc-check-chunked')
    expect_status(glance.upload(image_id, chunks()), 204)
    check_active(glance, image_id, data, 'fast')


def check_concurrent_downloads(ctx):
    """Two downloads of the same image at once."""
    image_id = ctx.get('image_id')
    expect(image_id, 'no image from the upload check')
    digest = hashlib.sha512(ctx['data']).hexdigest()
    results = []

    def fetch():
        try:
            results.append(hashlib.sha512(
                ctx['demo'].download(image_id)).hexdigest())
        except CheckFailed as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=fetch) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(IMPORT_TIMEOUT)
    expect(results == [digest, digest], f'concurrent downloads: {results}')


def check_slow_store(ctx):
    """Upload to the slow store named in the request."""
    glance, data = ctx['demo'], ctx['data']
    image_id = glance.create('lc-check-slow')
    expect_status(glance.upload(image_id, data, store='slow'), 204)
    check_active(glance, image_id, data, 'slow')


def check_glance_direct(ctx):
    """Stage the data, then import it with glance-direct."""
    glance, data = ctx['demo'], ctx['data']
    image_id = glance.create('lc-check-glance-direct')
    glance.stage(image_id, data)
    expect_status(glance.import_image(image_id, {'name': 'glance-direct'}),
                  202)
    check_active(glance, image_id, data, 'fast')


class _DataHandler(http.server.BaseHTTPRequestHandler):
    """Serve the same bytes at every path."""

    def __init__(self, *args, payload=b'', **kwargs):
        self.payload = payload
        super().__init__(*args, **kwargs)

    def do_GET(self):  # pylint: disable=invalid-name
        """Send the payload."""
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        """Keep quiet."""


def check_web_download(ctx):
    """Import from an HTTP server on 127.0.0.1 with web-download."""
    glance, data = ctx['demo'], ctx['data']
    handler = functools.partial(_DataHandler, payload=data)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f'http://127.0.0.1:{server.server_address[1]}/image.raw'
        image_id = glance.create('lc-check-web-download')
        expect_status(glance.import_image(
            image_id, {'name': 'web-download', 'uri': uri}), 202)
        check_active(glance, image_id, data, 'fast')
    finally:
        server.shutdown()
        server.server_close()


def check_copy_image(ctx):
    """Copy the first image to the slow store (admin only by policy)."""
    image_id = ctx.get('image_id')
    expect(image_id, 'no image from the upload check')
    method = {'name': 'copy-image'}
    resp = ctx['demo'].import_image(image_id, method, stores=['slow'])
    expect_status(resp, 403)
    resp = ctx['admin'].import_image(image_id, method, stores=['slow'])
    expect_status(resp, 202)
    ctx['demo'].wait(
        image_id,
        lambda i: set(i.get('stores', '').split(',')) >= {'fast', 'slow'},
        'in both stores')


def make_certificate():
    """Return (private key, PEM certificate) of a new self-signed cert."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         'localcloud image signing')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


def sign(key, data):
    """Return the base64 RSA-PSS/SHA-256 signature of data."""
    signature = key.sign(
        data,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                    salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256())
    return base64.b64encode(signature).decode()


def check_signature(ctx):
    """Signed uploads: good signature accepted, bad one refused."""
    glance, data, conn = ctx['demo'], ctx['data'], ctx['demo_conn']
    key, cert_pem = make_certificate()
    secret = conn.key_manager.create_secret(
        name='lc-check-signing-cert', secret_type='certificate',
        payload=base64.b64encode(cert_pem).decode(),
        payload_content_type='application/octet-stream',
        payload_content_encoding='base64')
    ctx['secret'] = secret
    props = {'img_signature_hash_method': 'SHA-256',
             'img_signature_key_type': 'RSA-PSS',
             'img_signature_certificate_uuid': secret.id}

    good = glance.create('lc-check-signed', img_signature=sign(key, data),
                         **props)
    expect_status(glance.upload(good, data), 204)
    check_active(glance, good, data, 'fast')

    bad = glance.create('lc-check-badly-signed',
                        img_signature=sign(key, data + b'x'), **props)
    resp = glance.upload(bad, data)
    expect(400 <= resp.status_code < 500,
           f'bad signature: HTTP {resp.status_code}, wanted a 4xx refusal')
    status = glance.show(bad)['status']
    expect(status != 'active', 'badly signed image became active')


CHECKS = (
    ('upload to the default store and download', check_upload_download),
    ('two concurrent downloads', check_concurrent_downloads),
    ('chunked upload in 2 MiB chunks', check_chunked_upload),
    ('upload to the slow store', check_slow_store),
    ('glance-direct import', check_glance_direct),
    ('web-download import from 127.0.0.1', check_web_download),
    ('copy-image import (admin)', check_copy_image),
    ('image signature verification', check_signature),
)


def main():
    """Run the checks and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--keep', action='store_true',
                        help='do not delete what the checks created')
    args = parser.parse_args()
    expect(os.environ.get('OS_CLIENT_CONFIG_FILE'),
           'OS_CLIENT_CONFIG_FILE is not set; eval "$(localcloud.sh env)"')

    demo_conn = openstack.connect(cloud='demo')
    admin_conn = openstack.connect(cloud='admin')
    ctx = {'demo_conn': demo_conn, 'demo': Glance(demo_conn),
           'admin': Glance(admin_conn),
           'data': os.urandom(3 * 1024 * 1024 + 1234)}
    passed = failed = 0
    try:
        for title, func in CHECKS:
            start = time.monotonic()
            try:
                func(ctx)
            except (CheckFailed, openstack.exceptions.SDKException) as exc:
                failed += 1
                print(f'FAIL {title}: {exc}')
            else:
                passed += 1
                print(f'ok   {title} ({time.monotonic() - start:.1f}s)')
    finally:
        if not args.keep:
            ctx['demo'].cleanup()
            if ctx.get('secret'):
                demo_conn.key_manager.delete_secret(ctx['secret'],
                                                    ignore_missing=True)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
