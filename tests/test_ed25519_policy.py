"""One Ed25519 policy, three implementations that must agree on every input: the library's
verify (libsodium through PyNaCl, after the policy's pre-checks), libsodium alone, and
OpenSSL (`cryptography`) after the same pre-checks; a plain model of section 2.4
(tests/ed25519_ref.py) says which answer is right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from ed25519_ref import (
    BASE,
    IDENTITY,
    L,
    P,
    Point,
    add,
    affine,
    challenge,
    decode,
    encode,
    format_accepts,
    mul,
    same,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from ledger import keys

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "ed25519"
# A point of order 8; its multiples are the whole small-order subgroup.
T8 = decode(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))
assert T8 is not None
TORSION = [mul(j, T8) for j in range(8)]


def sodium_alone(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        crypto_sign_open(signature + message, public)
    except (BadSignatureError, ValueError):
        return False
    return True


def openssl(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def prechecked(public: bytes, signature: bytes) -> bool:
    return keys.acceptable_public_key(public) and signature[:32] not in keys.SMALL_ORDER


def verdicts(public: bytes, signature: bytes, message: bytes) -> dict[str, bool]:
    return {
        "library": keys.verify_signature(public, signature, message),
        "libsodium alone": sodium_alone(public, signature, message),
        "OpenSSL after the pre-checks": prechecked(public, signature)
        and openssl(public, signature, message),
    }


def test_small_order_encodings_are_exactly_the_subgroups() -> None:
    spellings = set()
    for point in TORSION:
        x, y = affine(point)
        for y_plus_p in (False, True):
            for negative_zero in (False, True):
                if (y_plus_p and y + P >= 2**255) or (negative_zero and x != 0):
                    continue
                spellings.add(encode(point, y_plus_p=y_plus_p, negative_zero=negative_zero))
    assert spellings == keys.SMALL_ORDER
    assert len(spellings) == 14  # the 8 points and 6 other spellings


def test_vectors() -> None:
    # Section 2.4: reject every vector flagged with one of these; accept the other 43. If a
    # PyNaCl (libsodium) or `cryptography` (OpenSSL) upgrade changes this, ledgers checked by
    # different versions could disagree: treat a failure as a consensus change, not a flake.
    refused = {"non_canonical_R", "low_order_residue", "low_order_A", "low_order_R"}
    refused.add("non_canonical_A")
    vectors = json.loads((VECTORS / "ed25519vectors.json").read_text())
    accepted = 0
    for v in vectors:
        public, signature = bytes.fromhex(v["key"]), bytes.fromhex(v["sig"])
        expected = not set(v["flags"] or ()) & refused
        got = verdicts(public, signature, v["msg"].encode())
        assert set(got.values()) == {expected}, (v["number"], v["flags"], got)
        accepted += expected
    assert accepted == 43


@st.composite
def edge_cases(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """Signatures over keys and nonces with chosen small-order parts, spellings and S."""
    a, r = draw(st.integers(0, L - 1)), draw(st.integers(0, L - 1))
    i, j = draw(st.integers(0, 7)), draw(st.integers(0, 7))  # torsion parts of A and R
    point_a, point_r = add(mul(a, BASE), TORSION[i]), add(mul(r, BASE), TORSION[j])

    def spelling(p: Point) -> bytes:
        way = draw(st.sampled_from(["canonical", "y + p", "x = -0"]))
        x, y = affine(p)
        if way == "y + p" and y + P < 2**255:
            return encode(p, y_plus_p=True)
        if way == "x = -0" and x == 0:
            return encode(p, negative_zero=True)
        return encode(p)

    public, nonce = spelling(point_a), spelling(point_r)
    message = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        # Prefer a message whose challenge cancels the small-order parts: the cofactorless
        # equation then holds, and only the policy decides.
        for tweak in range(32):
            k = challenge(nonce, public, message + bytes([tweak]))
            if (j + k * i) % 8 == 0:  # T^j + k·T^i, in multiples of T8
                message += bytes([tweak])
                break
    s = (r + challenge(nonce, public, message) * a) % L
    s += draw(st.sampled_from([0, 0, 0, L, 2 * L, 15 * L]))  # non-canonical S too
    if s >= 2**256:
        s -= L
    return public, nonce + s.to_bytes(32, "little"), message


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_cases())
def test_edge_cases_agree_with_the_model(case: tuple[bytes, bytes, bytes]) -> None:
    public, signature, message = case
    expected = format_accepts(public, signature, message)
    event("accepted" if expected else "refused")
    if openssl(public, signature, message) != expected:
        event("OpenSSL alone would differ (the policy's stricter part)")
    got = verdicts(public, signature, message)
    assert set(got.values()) == {expected}, got


@pytest.mark.parametrize("spelled", sorted(keys.SMALL_ORDER))
def test_a_small_order_key_verifies_nothing(spelled: bytes) -> None:
    # With a = 0 and S = r, [S]B = R + [k]A holds when k·A is the identity: OpenSSL accepts
    # such a signature, the policy does not.
    point = decode(spelled)
    assert point is not None
    r = 12345
    nonce = encode(mul(r, BASE))
    for tweak in range(256):
        message = bytes([tweak])
        if same(mul(challenge(nonce, spelled, message) % 8, point), IDENTITY):
            break
    signature = nonce + r.to_bytes(32, "little")
    assert openssl(spelled, signature, message) == (decode(spelled) is not None)
    assert set(verdicts(spelled, signature, message).values()) == {False}
