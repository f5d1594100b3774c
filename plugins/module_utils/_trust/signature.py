# -*- coding: utf-8 -*-
# Copyright (c) osimage.glance contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# or, at your option, GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or
# https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

"""Image signatures, the one owner of trust: the table of hash methods and
key types (``HASH_METHOD_ALGOS``, ``KEY_TYPES``), signing (``Signer``) and
verifying (``SignatureCheck``), and the one certificate loader
(``load_certificate``).

Verifying: the four ``img_signature*`` properties, the signing certificate
(from Barbican or a local PEM file), trust in that certificate, and the
verification itself. What is accepted is what Glance, nova and cinder
accept, through cursive: the key types of ``KEY_TYPES``, the hash methods
SHA-224/256/384/512, and a signature over the image data. The signature's
digest is taken in the same read pass as the integrity digests (the caller
adds ``SignatureCheck.digest_algo`` to its digests and hands the result to
``verify``), so verifying costs no extra read and, when the hash method is
the Glance multihash algorithm, not even an extra digest.

Signing, the way Glance verifies it (cursive), without a TTY: the signature
is made over a digest taken in the same read pass as the content hash
(``Signer.algo`` joins the digests), then handed to the private key as a
pre-hashed value: ``RSA-PSS`` (PSS padding, MGF1 with the same hash, maximum
salt length), ``ECC_<CURVE>`` (ECDSA, DER signature) and ``DSA``.

cryptography's modules are imported on first use (``_imports.lazy_module``):
only a run that signs or checks a signature needs them, and they cost about
0.05 s of every module run (x509 and the public-key modules); cursive is
imported by ``require_cursive``.

Private to the collection; not a public API.
"""

from __future__ import annotations

import base64
import datetime
import importlib.util
import logging
import os
import re
import traceback
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from ansible_collections.osimage.glance.plugins.module_utils import _errors as errors
from ansible_collections.osimage.glance.plugins.module_utils._imports import lazy_module

crypto_exceptions = lazy_module('cryptography.exceptions')
x509 = lazy_module('cryptography.x509')
hashes = lazy_module('cryptography.hazmat.primitives.hashes')
serialization = lazy_module('cryptography.hazmat.primitives.serialization')
dsa = lazy_module('cryptography.hazmat.primitives.asymmetric.dsa')
ec = lazy_module('cryptography.hazmat.primitives.asymmetric.ec')
padding = lazy_module('cryptography.hazmat.primitives.asymmetric.padding')
rsa = lazy_module('cryptography.hazmat.primitives.asymmetric.rsa')
asym_utils = lazy_module('cryptography.hazmat.primitives.asymmetric.utils')
_MODULES = (crypto_exceptions, x509, hashes, serialization, dsa, ec, padding, rsa, asym_utils)

CRYPTOGRAPHY_IMPORT_ERROR = None
if importlib.util.find_spec('cryptography') is None:
    CRYPTOGRAPHY_IMPORT_ERROR = 'No module named cryptography (cryptography is not installed).'


def _load_crypto():
    """Import the modules now; returns None, or the reason they cannot be
    imported (a traceback or CRYPTOGRAPHY_IMPORT_ERROR)."""
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        return CRYPTOGRAPHY_IMPORT_ERROR
    try:
        for module in _MODULES:
            module.load()
    except ImportError:
        return traceback.format_exc()
    return None


# cryptography and cursive are imported when a signature is checked
# (require_cursive): cursive brings oslo.log and oslo.config, and
# cryptography's x509 and public-key modules add more; about 0.15 s of every
# module run, which an unsigned image does not need.

CURSIVE_IMPORT_ERROR = None
for _name in ('cryptography', 'cursive'):
    if importlib.util.find_spec(_name) is None:
        CURSIVE_IMPORT_ERROR = 'No module named %s (%s is not installed).' % (_name, _name)

HAS_CURSIVE = CURSIVE_IMPORT_ERROR is None

# cursive logs what it skips; the result and the messages say it instead.
for _name in ('cursive', 'castellan'):
    logging.getLogger(_name).addHandler(logging.NullHandler())
    logging.getLogger(_name).propagate = False


class _Cursive(object):
    """cursive's modules (``certificate_utils``, ``exception``,
    ``signature_utils``), imported by ``require_cursive()``."""

    def __getattr__(self, name):
        # Only reached before the import: every user calls require_cursive() first anyway.
        if name.startswith('__'):
            raise AttributeError(name)
        require_cursive()
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name)


cursive = _Cursive()

SIGNATURE = 'img_signature'
HASH_METHOD = 'img_signature_hash_method'
KEY_TYPE = 'img_signature_key_type'
CERT_UUID = 'img_signature_certificate_uuid'
SIGNATURE_PROPERTIES = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERT_UUID)

# The one table of what Glance (cursive) signs and verifies with.
# Hash methods: Glance's name -> the hashlib name (the digest of the shared read pass).
HASH_METHOD_ALGOS = {'SHA-224': 'sha224', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512'}
HASH_METHODS = tuple(HASH_METHOD_ALGOS)
# The curves cursive verifies (it names them ECC_ + the curve name in capitals).
ECC_CURVES = ('secp384r1', 'secp521r1', 'sect409k1', 'sect409r1', 'sect571k1', 'sect571r1')
# Key types as img_signature_key_type names them (cursive's registered types).
KEY_TYPES = ('RSA-PSS',) + tuple('ECC_' + curve.upper() for curve in ECC_CURVES) + ('DSA',)
# Key types a signer may ask for: ECC means the curve of the key.
SIGNING_KEY_TYPES = ('RSA-PSS', 'ECC', 'DSA')

_UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')


def require_cursive() -> None:
    """Import cursive (once), or raise MissingLibraryError."""
    error = CURSIVE_IMPORT_ERROR
    if error is None and not cursive.__dict__:
        error = _load_crypto()
    if error is None and not cursive.__dict__:
        try:
            # pylint: disable=import-outside-toplevel  # see the imports above
            from cursive import certificate_utils
            from cursive import exception as cursive_exception
            from cursive import signature_utils
        except ImportError:
            error = traceback.format_exc()
        else:
            cursive.__dict__.update(certificate_utils=certificate_utils, exception=cursive_exception,
                                    signature_utils=signature_utils)
    if error is not None or not HAS_CURSIVE:
        raise errors.MissingLibraryError(
            'The signature check needs the Python libraries cursive and cryptography on the host that '
            'runs the module: pip install cursive.', exception=error or CURSIVE_IMPORT_ERROR)


def _fail(what, text, **details):
    details.setdefault('check', 'signature')
    return errors.SignatureError('signature check failed for %s: %s' % (what, text), **details)


def signature_properties(props: Dict[str, Any], what: str, certificate_path: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The signature metadata of an image, or None when it is not signed.

    All four properties absent: unsigned. Some but not all: an error, as
    cinder refuses incomplete signature metadata. A local certificate file
    stands in for the certificate uuid.
    """
    found = dict((name, props.get(name)) for name in SIGNATURE_PROPERTIES if props.get(name))
    if not found:
        return None
    missing = [name for name in SIGNATURE_PROPERTIES if name not in found]
    if certificate_path and missing == [CERT_UUID]:
        missing = []
    if missing:
        raise _fail(what, 'incomplete signature metadata: %s %s set but %s %s missing; a signed image needs '
                          'all four of %s.'
                    % (', '.join(sorted(found)), 'is' if len(found) == 1 else 'are', ', '.join(missing),
                       'is' if len(missing) == 1 else 'are', ', '.join(SIGNATURE_PROPERTIES)),
                    present=sorted(found), missing=missing)
    return found


def is_barbican_reference(ref: str) -> bool:
    """A certificate reference is a Barbican secret id when it looks like a
    UUID and is not an existing file; anything else is a PEM file path."""
    return bool(_UUID_RE.match(ref)) and not os.path.exists(ref)


class Certificate(object):
    """An X.509 certificate and where it came from."""

    def __init__(self, cert: Any, source: str) -> None:
        self.cert = cert
        self.source = source

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self.cert.issuer.rfc4514_string()

    @property
    def label(self) -> str:
        """How messages name it: subject and origin."""
        return '"%s" (%s)' % (self.subject, self.source)

    def describe(self) -> Dict[str, Any]:
        return dict(
            subject=self.subject,
            issuer=self.issuer,
            serial=format(self.cert.serial_number, 'x'),
            fingerprint_sha256=self.cert.fingerprint(hashes.SHA256()).hex(),
            not_valid_before=self.cert.not_valid_before_utc.isoformat(),
            not_valid_after=self.cert.not_valid_after_utc.isoformat(),
            source=self.source,
        )


def load_certificate(data: bytes, source: str, pem_only: bool = False) -> Certificate:
    """The one certificate loader: an X.509 certificate from PEM bytes, or
    from DER unless ``pem_only`` (a certificate for Barbican is PEM);
    ``source`` names it in messages."""
    # Signing needs cryptography only; verifying needs cursive anyway.
    if pem_only:
        require_cryptography()
    else:
        require_cursive()
    try:
        if pem_only or b'-----BEGIN' in data:
            return Certificate(x509.load_pem_x509_certificate(data), source)
        return Certificate(x509.load_der_x509_certificate(data), source)
    except ValueError as exc:
        if pem_only:
            raise errors.SignatureError('The signing certificate %s is not a PEM X.509 certificate: %s' % (source, exc))
        raise errors.SignatureError(
            'signature check failed: %s is not an X.509 certificate in PEM or DER form: %s' % (source, exc),
            check='signature', certificate=source)


class CertificateStore(object):
    """Certificates by reference: a Barbican secret id (fetched with the
    user's own credentials by ``fetch_secret(uuid)``) or a PEM file path."""

    def __init__(self, fetch_secret: Optional[Callable[[str], bytes]] = None) -> None:
        self._fetch_secret = fetch_secret
        self._cache = {}

    def get(self, ref: str) -> Certificate:
        if ref not in self._cache:
            if is_barbican_reference(ref):
                self._cache[ref] = self.from_barbican(ref)
            else:
                self._cache[ref] = self.from_file(ref)
        return self._cache[ref]

    def from_barbican(self, uuid: str) -> Certificate:
        if self._fetch_secret is None:
            raise errors.SignatureError(
                'signature check failed: certificate %s is a Barbican secret id, but there is no cloud '
                'connection to fetch it with.' % uuid, check='signature', certificate=uuid)
        return load_certificate(self._fetch_secret(uuid), 'Barbican secret %s' % uuid)

    @staticmethod
    def from_file(path: str) -> Certificate:
        try:
            with open(path, 'rb') as fileobj:
                data = fileobj.read()
        except OSError as exc:
            raise errors.SignatureError(
                'signature check failed: cannot read the certificate file %s: %s' % (path, exc.strerror or exc),
                check='signature', certificate=path)
        return load_certificate(data, 'file %s' % path)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _trust_problem(cert, now):
    """Why a trusted certificate cannot anchor a chain, or None."""
    if now < cert.cert.not_valid_before_utc:
        return 'not valid before %s' % cert.cert.not_valid_before_utc.isoformat()
    if now > cert.cert.not_valid_after_utc:
        return 'expired on %s' % cert.cert.not_valid_after_utc.isoformat()
    if not cursive.certificate_utils.can_sign_certificates(cert.cert):
        return 'not a CA (needs basic constraints CA:TRUE and key usage keyCertSign)'
    return None


def check_trust(certificate: Certificate, trusted: Sequence[Certificate], what: str,
                now: Optional[datetime.datetime] = None) -> None:
    """The signing certificate must be inside its validity dates, be allowed
    to sign (key usage digitalSignature, when it has a key usage) and chain
    to one of the ``trusted`` certificates, as nova's trusted_certs."""
    now = now or _now()
    cert = certificate.cert
    if now < cert.not_valid_before_utc:
        raise _fail(what, 'the signing certificate %s is not valid before %s.'
                    % (certificate.label, cert.not_valid_before_utc.isoformat()), certificate=certificate.describe())
    if now > cert.not_valid_after_utc:
        raise _fail(what, 'the signing certificate %s expired on %s.'
                    % (certificate.label, cert.not_valid_after_utc.isoformat()), certificate=certificate.describe())
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise _fail(what, 'the signing certificate %s is not allowed to sign data: its key usage lacks '
                          'digitalSignature.' % certificate.label, certificate=certificate.describe())
    context = cursive.certificate_utils.CertificateVerificationContext(
        [(item.source, item.cert) for item in trusted],
        enforce_valid_dates=True, enforce_signing_extensions=True, enforce_path_length=True)
    try:
        context.update(cert)
        context.verify()
    except cursive.exception.SignatureVerificationError as exc:
        notes = []
        for item in trusted:
            problem = _trust_problem(item, now)
            notes.append('%s%s' % (item.label, ' (unusable: %s)' % problem if problem else ''))
        raise _fail(what, 'the signing certificate %s, issued by "%s", does not chain to any trusted '
                          'certificate (%s): %s'
                    % (certificate.label, certificate.issuer, '; '.join(notes) or 'none given',
                       exc.message.rstrip('.') + '.'), certificate=certificate.describe())


class SignatureCheck(object):
    """One image signature, ready to be checked against a digest of the
    data taken in the shared read pass."""

    def __init__(self, props: Dict[str, Any], certificate: Certificate, what: str) -> None:
        require_cursive()
        self.what = what
        self.certificate = certificate
        self.hash_method_name = props[HASH_METHOD]
        self.key_type_name = props[KEY_TYPE]
        self.signature = _decode_signature(props[SIGNATURE], what)
        if self.hash_method_name not in HASH_METHOD_ALGOS:
            raise _fail(what, '%s is %r; supported: %s.'
                        % (HASH_METHOD, self.hash_method_name, ', '.join(sorted(HASH_METHOD_ALGOS))))
        self.hash_method = cursive.signature_utils.get_hash_method(self.hash_method_name)
        self.digest_algo = HASH_METHOD_ALGOS[self.hash_method_name]
        try:
            self.key_type = cursive.signature_utils.SignatureKeyType.lookup(self.key_type_name)
        except cursive.exception.SignatureVerificationError:
            raise _fail(what, '%s is %r; supported: %s.'
                        % (KEY_TYPE, self.key_type_name,
                           ', '.join(sorted(cursive.signature_utils.SignatureKeyType.REGISTERED_TYPES))))
        self.public_key = certificate.cert.public_key()
        self._check_key_matches()

    def _check_key_matches(self):
        key = self.public_key
        if not isinstance(key, self.key_type.public_key_type):
            raise _fail(self.what, 'the certificate %s holds a %s key but %s is %s.'
                        % (self.certificate.label, _key_kind(key), KEY_TYPE, self.key_type_name),
                        certificate=self.certificate.describe())
        if isinstance(key, ec.EllipticCurvePublicKey):
            curve = 'ECC_' + key.curve.name.upper()
            if curve != self.key_type_name:
                raise _fail(self.what, 'the certificate %s holds a key on curve %s but %s is %s.'
                            % (self.certificate.label, key.curve.name, KEY_TYPE, self.key_type_name),
                            certificate=self.certificate.describe())

    def verify(self, digest: bytes) -> Dict[str, Any]:
        """Check the signature over the data whose ``digest_algo`` digest
        (bytes) was taken in the read pass; returns the result to report."""
        prehashed = asym_utils.Prehashed(self.hash_method)
        key = self.public_key
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(self.signature, digest,
                           padding.PSS(mgf=padding.MGF1(self.hash_method), salt_length=padding.PSS.MAX_LENGTH),
                           prehashed)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(self.signature, digest, ec.ECDSA(prehashed))
            elif isinstance(key, dsa.DSAPublicKey):
                key.verify(self.signature, digest, prehashed)
            else:  # pragma: no cover - excluded by the key type check
                raise _fail(self.what, 'unsupported key %s.' % _key_kind(key))
        except crypto_exceptions.InvalidSignature:
            raise _fail(self.what, 'the signature does not match the data: %s (%s, %s) by the certificate %s was not '
                                   'made over data with the %s digest %s. The image was changed after signing, '
                                   'or signed with another key.'
                        % (SIGNATURE, self.key_type_name, self.hash_method_name, self.certificate.label,
                           self.hash_method_name, digest.hex()), certificate=self.certificate.describe())
        return self.result(verified=True)

    def result(self, verified: bool) -> Dict[str, Any]:
        return dict(signed=True, verified=verified, hash_method=self.hash_method_name,
                    key_type=self.key_type_name, certificate=self.certificate.describe())


def _decode_signature(value, what):
    """The signature bytes. Stricter than cursive (which skips characters
    outside the alphabet): anything but base64 and whitespace is refused."""
    try:
        signature = base64.b64decode(''.join(str(value).split()), validate=True)
    except (TypeError, ValueError):
        signature = b''
    if not signature:
        raise _fail(what, '%s is not a base64 signature: %r.' % (SIGNATURE, str(value)[:40]))
    return signature


def _key_kind(key):
    for cls, name in ((rsa.RSAPublicKey, 'RSA'), (ec.EllipticCurvePublicKey, 'ECC'), (dsa.DSAPublicKey, 'DSA')):
        if isinstance(key, cls):
            return name
    return type(key).__name__


def prepare(props: Dict[str, Any], what: str, store: CertificateStore, certificate_path: Optional[str] = None,
            trusted_certificates: Optional[Sequence[str]] = None, require: Union[bool, str] = False) -> Optional[SignatureCheck]:
    """Everything that can be checked before reading the data.

    Returns a ``SignatureCheck`` for a signed image, None for an unsigned one
    that may pass; raises SignatureError for incomplete metadata, an
    unsigned image when a signature is required (``require``: true or a
    string saying why, or trusted certificates given, as nova does), an
    unusable or untrusted certificate.
    """
    found = signature_properties(props, what, certificate_path=certificate_path)
    if found is None:
        if require or trusted_certificates:
            raise _fail(what, 'the image is not signed (none of %s is set) but a signature is required%s.'
                        % (', '.join(SIGNATURE_PROPERTIES),
                           ' (%s)' % (require if isinstance(require, str) else 'require_signature=true')
                           if require else ' (trusted_certificates are given)'))
        return None
    require_cursive()
    if certificate_path:
        certificate = store.from_file(certificate_path)
    else:
        certificate = store.from_barbican(found[CERT_UUID])
    check = SignatureCheck(found, certificate, what)
    if trusted_certificates:
        check_trust(certificate, [store.get(ref) for ref in trusted_certificates], what)
    return check


def unsigned_result() -> Dict[str, bool]:
    return dict(signed=False, verified=False)


# -- signing ------------------------------------------------------------------


def _hash_object(method):
    return {'SHA-224': hashes.SHA224, 'SHA-256': hashes.SHA256,
            'SHA-384': hashes.SHA384, 'SHA-512': hashes.SHA512}[method]()


def require_cryptography() -> None:
    """Import cryptography's modules now, or raise MissingLibraryError."""
    error = _load_crypto()
    if error is not None:
        raise errors.MissingLibraryError(
            'Signing needs the Python library cryptography on the host that runs the module: '
            'pip install cryptography.', exception=error)


def _read(path, what):
    try:
        with open(path, 'rb') as fileobj:
            return fileobj.read()
    except OSError as exc:
        raise errors.SignatureError('Cannot read the %s %s: %s' % (what, path, exc.strerror or exc))


def load_private_key(path: str, passphrase: Optional[str]) -> Any:
    """A private key from a PEM (or DER) file, never asking on a TTY."""
    require_cryptography()
    data = _read(path, 'signing private key')
    password = passphrase.encode('utf-8') if passphrase else None
    loaders = (serialization.load_pem_private_key, serialization.load_der_private_key)
    problem = None
    for load in loaders:
        try:
            return load(data, password=password)
        except TypeError as exc:
            # Encrypted without a passphrase, or a passphrase for a plain key.
            problem = str(exc)
            break
        except ValueError as exc:
            problem = str(exc)
    if passphrase and problem and 'password' in problem.lower():
        raise errors.SignatureError('The signing private key %s cannot be decrypted: %s. Check signing.passphrase.'
                                    % (path, problem))
    raise errors.SignatureError(
        'The signing private key %s cannot be loaded: %s%s.'
        % (path, problem, '' if passphrase else ' (if it is encrypted, give signing.passphrase)'))


def key_type_name(key: Any, requested: Optional[str]) -> str:
    """cursive's key type name for ``key``; ``requested`` (RSA-PSS, ECC, an
    ECC_<CURVE> name or DSA) must fit the key."""
    if isinstance(key, rsa.RSAPrivateKey):
        name = 'RSA-PSS'
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in ECC_CURVES:
            raise errors.SignatureError(
                'The signing key is on the curve %s, which Glance (cursive) does not verify; use one of %s.'
                % (key.curve.name, ', '.join(ECC_CURVES)))
        name = 'ECC_' + key.curve.name.upper()
    elif isinstance(key, dsa.DSAPrivateKey):
        name = 'DSA'
    else:
        raise errors.SignatureError('The signing key is a %s key; Glance verifies RSA, ECC and DSA keys only.'
                                    % type(key).__name__)
    if requested and requested != name and not (requested == 'ECC' and name.startswith('ECC_')):
        raise errors.SignatureError('signing.key_type is %s but the private key is a %s key.' % (requested, name))
    return name


def load_signing_certificate(path: str) -> Tuple[bytes, Any]:
    """``(pem_bytes, certificate)`` of the PEM certificate file that signs
    (read here, parsed by ``load_certificate``)."""
    require_cryptography()
    data = _read(path, 'signing certificate')
    return data, load_certificate(data, path, pem_only=True).cert


def check_key_matches(key: Any, cert: Any, cert_source: str) -> None:
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != cert.public_key().public_bytes(enc, pub):
        raise errors.SignatureError(
            'The signing private key does not belong to the certificate %s (their public keys differ), so '
            'Glance would refuse the signature.' % cert_source)


def certificate_fingerprint(cert: Any) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class Signer(object):
    """Signs the digest ``algo`` of the image data."""

    def __init__(self, key: Any, key_type: str, hash_method: str) -> None:
        if hash_method not in HASH_METHODS:
            raise errors.SignatureError('signing.hash_method must be one of %s, not %s.'
                                        % (', '.join(HASH_METHODS), hash_method))
        self.key = key
        self.key_type = key_type
        self.hash_method = hash_method
        self.algo = HASH_METHOD_ALGOS[hash_method]

    def sign(self, hexdigest: str) -> str:
        """The base64 signature (as Glance's ``img_signature``) over data whose
        ``algo`` digest is ``hexdigest``."""
        digest = bytes.fromhex(hexdigest)
        prehashed = asym_utils.Prehashed(_hash_object(self.hash_method))
        if self.key_type == 'RSA-PSS':
            signature = self.key.sign(
                digest, padding.PSS(mgf=padding.MGF1(_hash_object(self.hash_method)),
                                    salt_length=padding.PSS.MAX_LENGTH), prehashed)
        elif self.key_type == 'DSA':
            signature = self.key.sign(digest, prehashed)
        else:
            signature = self.key.sign(digest, ec.ECDSA(prehashed))
        return base64.b64encode(signature).decode('ascii')

    def properties(self, hexdigest: str, certificate_uuid: str) -> Dict[str, str]:
        """The four ``img_signature*`` properties."""
        return {
            'img_signature': self.sign(hexdigest),
            'img_signature_hash_method': self.hash_method,
            'img_signature_key_type': self.key_type,
            'img_signature_certificate_uuid': certificate_uuid,
        }
