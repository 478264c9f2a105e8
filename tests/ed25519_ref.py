"""A slow, plain Ed25519 model (RFC 8032 section 5.1) for building and judging edge cases:
affine points, any scalar, any encoding, and the format's verification policy spelled out."""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
# Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z (RFC 8032 section 6).
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


def add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % P, g * h % P, f * g % P, e * h % P


def mul(k: int, p: Point) -> Point:
    result = IDENTITY
    while k:
        if k & 1:
            result = add(result, p)
        p, k = add(p, p), k >> 1
    return result


def same(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def affine(p: Point) -> tuple[int, int]:
    z = pow(p[2], P - 2, P)
    return p[0] * z % P, p[1] * z % P


def point(x: int, y: int) -> Point:
    return x, y, 1, x * y % P


def x_of(y: int, sign: int) -> int | None:
    """The x with this sign bit for y (taken mod p), or None when y is not on the curve."""
    y %= P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    if v * x * x % P != u:
        return None
    if x == 0 and sign:
        return 0  # "negative zero": a non-canonical spelling of x = 0
    return P - x if x & 1 != sign else x


def encode(p: Point, *, y_plus_p: bool = False, negative_zero: bool = False) -> bytes:
    """The canonical encoding, or a non-canonical one: y + p (when it fits) or x = -0."""
    x, y = affine(p)
    y_field = y + P if y_plus_p else y
    assert y_field < 2**255
    sign = 1 if negative_zero and x == 0 else x & 1
    return (y_field | sign << 255).to_bytes(32, "little")


def decode(data: bytes) -> Point | None:
    """Any encoding, canonical or not, of a curve point (as OpenSSL and ref10 read A)."""
    value = int.from_bytes(data, "little")
    y, sign = value & (2**255 - 1), value >> 255
    x = x_of(y, sign)
    return None if x is None else point(x, y % P)


def canonical(data: bytes) -> bool:
    point = decode(data)
    return point is not None and encode(point) == data


BASE: Point = point(x_of(4 * pow(5, P - 2, P), 0) or 0, 4 * pow(5, P - 2, P) % P)


def order_divides_8(p: Point) -> bool:
    return same(mul(8, p), IDENTITY)


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def sign_with(a: int, public: bytes, r: int, r_bytes: bytes, message: bytes) -> bytes:
    """S = r + k·a mod L for a chosen nonce point encoding: no check that R = [r]B."""
    s = (r + challenge(r_bytes, public, message) * a) % L
    return r_bytes + s.to_bytes(32, "little")


def format_accepts(public: bytes, signature: bytes, message: bytes) -> bool:
    """The policy of docs/ledger-format.md section 2.4, computed from the definitions."""
    if len(signature) != 64:
        return False
    r_bytes, s = signature[:32], int.from_bytes(signature[32:], "little")
    a, r = decode(public), decode(r_bytes)
    if s >= L or a is None or r is None:
        return False
    if not canonical(public) or not canonical(r_bytes):
        return False
    if order_divides_8(a) or order_divides_8(r):
        return False
    k = challenge(r_bytes, public, message)
    return same(mul(s, BASE), add(r, mul(k, a)))  # cofactorless
