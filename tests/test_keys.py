"""Tests for ledger.keys: key ids, verification policy and PEM key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import keys
from ledger.errors import KeyFormatError, SignatureError

_KEY = keys.generate()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_raw_sizes_and_seed_round_trip() -> None:
    key = keys.generate()
    assert len(keys.public_bytes(key)) == 32
    seed = keys.private_seed(key)
    assert len(seed) == 32
    again = Ed25519PrivateKey.from_private_bytes(seed)
    assert keys.public_bytes(again) == keys.public_bytes(key)


def test_key_id_round_trip() -> None:
    public = keys.public_bytes(_KEY)
    kid = keys.key_id(public)
    assert kid == public.hex()
    assert len(kid) == 64
    assert kid == kid.lower()
    assert keys.public_key_from_id(kid) == public


@pytest.mark.parametrize(
    "bad",
    ["", "ab", "0" * 63, "0" * 65, "g" * 64, "A" * 64, " " + "0" * 63, "0x" + "0" * 62, "é" * 64],
)
def test_bad_key_ids_are_rejected(bad: str) -> None:
    with pytest.raises(KeyFormatError) as err:
        keys.public_key_from_id(bad)
    assert err.value.expected is not None
    assert err.value.found is not None


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_key_id_needs_32_bytes(length: int) -> None:
    with pytest.raises(KeyFormatError):
        keys.key_id(b"\x01" * length)


def test_verify_signature() -> None:
    public = keys.public_bytes(_KEY)
    sig = _KEY.sign(b"message")
    assert keys.verify_signature(public, sig, b"message")
    assert not keys.verify_signature(public, sig, b"messagE")
    assert not keys.verify_signature(public, sig[:-1], b"message")
    assert not keys.verify_signature(public, sig + b"\x00", b"message")
    assert not keys.verify_signature(keys.public_bytes(keys.generate()), sig, b"message")
    keys.verify_or_raise(public, sig, b"message")
    with pytest.raises(SignatureError):
        keys.verify_or_raise(public, bytes(64), b"message")
    with pytest.raises(KeyFormatError):
        keys.verify_signature(public[:31], sig, b"message")


@settings(max_examples=50)
@given(message=st.binary(max_size=256), bit=st.integers(0, 511))
def test_any_flipped_signature_bit_fails(message: bytes, bit: int) -> None:
    public = keys.public_bytes(_KEY)
    sig = bytearray(_KEY.sign(message))
    assert keys.verify_signature(public, bytes(sig), message)
    sig[bit // 8] ^= 1 << (bit % 8)
    assert not keys.verify_signature(public, bytes(sig), message)


def test_private_pem_round_trip_plain(tmp_path: Path) -> None:
    path = tmp_path / "signer.pem"
    keys.save_private_key(_KEY, path, None)
    assert _mode(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = keys.load_private_key(path)
    assert keys.private_seed(loaded) == keys.private_seed(_KEY)
    assert keys.private_key_from_pem(keys.private_key_to_pem(_KEY)).private_bytes_raw() == (
        keys.private_seed(_KEY)
    )


def test_private_pem_round_trip_encrypted(tmp_path: Path) -> None:
    path = tmp_path / "signer.pem"
    keys.save_private_key(_KEY, str(path), b"correct horse")
    assert _mode(path) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert keys.private_seed(_KEY) not in data
    loaded = keys.load_private_key(path, b"correct horse")
    assert keys.private_seed(loaded) == keys.private_seed(_KEY)


def test_mode_ignores_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        keys.save_private_key(_KEY, tmp_path / "k.pem", None)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k.pem") == 0o600


def test_passphrase_errors(tmp_path: Path) -> None:
    enc, plain = tmp_path / "enc.pem", tmp_path / "plain.pem"
    keys.save_private_key(_KEY, enc, b"correct horse")
    keys.save_private_key(_KEY, plain, None)
    secrets = [keys.private_seed(_KEY).hex(), "correct horse", "wrong horse"]
    cases = [(enc, None, "no passphrase"), (enc, b"wrong horse", "wrong passphrase")]
    cases.append((plain, b"correct horse", "not encrypted"))
    for path, passphrase, words in cases:
        with pytest.raises(KeyFormatError) as err:
            keys.load_private_key(path, passphrase)
        message = str(err.value)
        assert words in message
        assert not any(s in message for s in secrets)
    with pytest.raises(KeyFormatError):
        keys.private_key_to_pem(_KEY, b"")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "signer.pem"
    keys.save_private_key(_KEY, path, None)
    before = path.read_bytes()
    other = keys.generate()
    with pytest.raises(FileExistsError):
        keys.save_private_key(other, path, None)
    assert path.read_bytes() == before
    keys.save_private_key(other, path, b"pw", overwrite=True)
    assert _mode(path) == 0o600
    assert keys.private_seed(keys.load_private_key(path, b"pw")) == keys.private_seed(other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signer.pem"]  # no temp files left


def test_not_pem_and_not_ed25519(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 not a key")
    with pytest.raises(KeyFormatError, match="not PEM"):
        keys.load_private_key(garbage)
    with pytest.raises(KeyFormatError, match="not PEM"):
        keys.load_public_key(garbage)
    broken = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeyFormatError):
        keys.private_key_from_pem(broken)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFormatError, match="not an Ed25519"):
        keys.private_key_from_pem(ec_pem)
    ec_public = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyFormatError, match="not an Ed25519"):
        keys.public_key_from_pem(ec_public)
    # A public key file handed to the private key loader fails cleanly too.
    with pytest.raises(KeyFormatError):
        keys.private_key_from_pem(keys.public_key_to_pem(keys.public_bytes(_KEY)))


def test_public_pem_round_trip(tmp_path: Path) -> None:
    public = keys.public_bytes(_KEY)
    path = tmp_path / "signer.pub.pem"
    keys.save_public_key(public, path)
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert keys.load_public_key(path) == public
    with pytest.raises(FileExistsError):
        keys.save_public_key(public, path)
