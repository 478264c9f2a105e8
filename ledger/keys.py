"""Ed25519 keys: generation, self-certifying key ids, verification and PEM key files."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger.errors import KeyFormatError, SignatureError

StrPath = str | os.PathLike[str]

_PUBLIC_LEN = 32
_SIGNATURE_LEN = 64
_HEX = frozenset("0123456789abcdef")
_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    """The 32-byte raw public key."""
    return key.public_key().public_bytes_raw()


def private_seed(key: Ed25519PrivateKey) -> bytes:
    """The 32-byte RFC 8032 seed; treat the result as secret."""
    return key.private_bytes_raw()


def key_id(public: bytes) -> str:
    """Lowercase hex of the raw public key: the id is the key, so no lookup is needed to verify."""
    if len(public) != _PUBLIC_LEN:
        raise KeyFormatError(
            "Ed25519 public key has the wrong length",
            expected=f"{_PUBLIC_LEN} bytes",
            found=f"{len(public)} bytes",
        )
    return public.hex()


def public_key_from_id(key_id: str) -> bytes:
    # Only the canonical lowercase form is accepted so that one key has exactly one id string.
    if len(key_id) != 2 * _PUBLIC_LEN:
        raise KeyFormatError(
            "key id has the wrong length",
            expected=f"{2 * _PUBLIC_LEN} lowercase hex characters",
            found=f"{len(key_id)} characters",
        )
    if not _HEX.issuperset(key_id):
        raise KeyFormatError(
            "key id is not lowercase hex",
            expected="characters 0-9 and a-f",
            found="other characters",
        )
    return bytes.fromhex(key_id)


@functools.lru_cache(maxsize=1024)
def _public_key(public: bytes) -> Ed25519PublicKey:
    # Loading a key costs about as much as hashing a statement, and a ledger has few keys.
    key_id(public)  # length check with the ledger's error
    return Ed25519PublicKey.from_public_bytes(public)


def public_key(public: bytes) -> Ed25519PublicKey:
    """The loaded key for raw public key bytes (cached); a malformed key raises KeyFormatError."""
    return _public_key(bytes(public))


def verify_signature(public: bytes, signature: bytes, message: bytes) -> bool:
    """True iff `signature` is valid under the format's policy (ledger-format.md 2.4);
    a public key of the wrong length raises KeyFormatError.

    libsodium (through PyNaCl) does the arithmetic, about twice as fast as OpenSSL here.
    The policy is checked here first, so it does not rest on how libsodium was built: a
    small-order R and a non-canonical or small-order A are refused, which libsodium's
    default build refuses too (the tests pin both on the same vectors).
    """
    key_id(public)  # length check with the ledger's error
    public = bytes(public)
    return acceptable_public_key(public) and verify_by_acceptable_key(
        public, bytes(signature), message
    )


def verify_by_acceptable_key(public: bytes, signature: bytes, message: bytes) -> bool:
    """verify_signature for 32 bytes already found acceptable_public_key: the verifier's
    workers vet each key once, not once per entry."""
    if len(signature) != _SIGNATURE_LEN or signature[:32] in SMALL_ORDER:
        return False
    try:
        crypto_sign_open(signature + message, public)
    except (BadSignatureError, ValueError):
        return False
    return True


# The Edwards25519 points of order 1, 2, 4 or 8, by the y coordinate of every encoding
# (canonical or not) with either sign bit: y = 0, 1, p - 1, the two y of order 8, and the
# non-canonical p (= 0) and p + 1 (= 1). The same list as libsodium's ge25519_has_small_order.
_SMALL_ORDER_Y = (
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
)
SMALL_ORDER = frozenset(
    y[:31] + bytes([y[31] | sign])
    for y in map(bytes.fromhex, _SMALL_ORDER_Y)
    for sign in (0x00, 0x80)
)
_P = 2**255 - 19


@functools.lru_cache(maxsize=1024)
def acceptable_public_key(public: bytes) -> bool:
    """A canonical encoding (y < p) of a point not of small order; a ledger has few keys."""
    y = int.from_bytes(public, "little") & ((1 << 255) - 1)
    return y < _P and public not in SMALL_ORDER


def verify_or_raise(public: bytes, signature: bytes, message: bytes) -> None:
    if not verify_signature(public, signature, message):
        raise SignatureError(
            "Ed25519 signature does not verify",
            expected="a valid signature by the given key",
            found=f"an invalid {len(signature)}-byte signature",
        )


def private_key_to_pem(key: Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the library's best available scheme when a passphrase is given."""
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    elif not passphrase:
        raise KeyFormatError(
            "empty passphrase", expected="a non-empty passphrase or None", found="0 bytes"
        )
    else:
        encryption = serialization.BestAvailableEncryption(passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def private_key_from_pem(data: bytes, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    if b"-----BEGIN " not in data:
        raise KeyFormatError(
            "key file is not PEM", expected="a PEM private key", found="no PEM header"
        )
    encrypted = _ENCRYPTED_PEM in data
    if encrypted and passphrase is None:
        raise KeyFormatError(
            "private key is encrypted but no passphrase was given",
            expected="a passphrase",
            found="none",
        )
    if not encrypted and passphrase is not None:
        # Refuse rather than ignore: the operator believes the key is protected and it is not.
        raise KeyFormatError(
            "a passphrase was given but the private key is not encrypted",
            expected="an encrypted private key",
            found="an unencrypted private key",
        )
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except ValueError as exc:
        if encrypted:
            raise KeyFormatError(
                "cannot decrypt private key: wrong passphrase",
                expected="the passphrase the key was saved with",
                found="a different passphrase",
            ) from exc
        raise KeyFormatError(
            "cannot read PEM private key", expected="a PKCS#8 private key", found="unreadable data"
        ) from exc
    except TypeError as exc:
        raise KeyFormatError(
            "cannot read PEM private key", expected="a PKCS#8 private key", found=str(exc)
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(
            "private key is not an Ed25519 key", expected="Ed25519", found=type(key).__name__
        )
    return key


def public_key_to_pem(public: bytes) -> bytes:
    return _public_key(bytes(public)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_pem(data: bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 SubjectPublicKeyInfo PEM."""
    if b"-----BEGIN " not in data:
        raise KeyFormatError(
            "key file is not PEM", expected="a PEM public key", found="no PEM header"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFormatError(
            "cannot read PEM public key",
            expected="a SubjectPublicKeyInfo public key",
            found="unreadable data",
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFormatError(
            "public key is not an Ed25519 key", expected="Ed25519", found=type(key).__name__
        )
    return key.public_bytes_raw()


def save_private_key(
    key: Ed25519PrivateKey,
    path: StrPath,
    passphrase: bytes | None = None,
    *,
    overwrite: bool = False,
) -> None:
    """Write a PEM key file readable only by its owner; never clobber one unless asked to."""
    _write_atomic(Path(path), private_key_to_pem(key, passphrase), 0o600, overwrite=overwrite)


def load_private_key(path: StrPath, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    return private_key_from_pem(Path(path).read_bytes(), passphrase)


def save_public_key(public: bytes, path: StrPath, *, overwrite: bool = False) -> None:
    _write_atomic(Path(path), public_key_to_pem(public), 0o644, overwrite=overwrite)


def load_public_key(path: StrPath) -> bytes:
    return public_key_from_pem(Path(path).read_bytes())


def _write_atomic(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    # The temporary file is created with its final mode, so the key is never readable by
    # others, and is renamed into place, so a crash never leaves a half-written key file.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            if sys.platform != "win32":
                os.fchmod(fd, mode)  # the umask may have removed bits we want
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_no_clobber(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def _link_no_clobber(tmp: Path, path: Path) -> None:
    # link() fails atomically if the target exists, which an exists() check cannot promise.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"refusing to overwrite existing key file {path}") from None
    except OSError:
        # Some file systems have no hard links; fall back to a check that is merely racy.
        if path.exists():
            raise FileExistsError(f"refusing to overwrite existing key file {path}") from None
        os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
