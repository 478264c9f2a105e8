"""Tokens against cross-site form posts: a random value and its HMAC, in the form and a cookie."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
import threading

COOKIE = "ocop_csrf"


_NONCE = 18  # bytes
_POOL = 256  # nonces drawn from the OS at once: one system call per scan was a tenth of it


class _Nonces:
    """Random nonces from the OS's generator, read in blocks (thread-safe)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._at = 0

    def next(self) -> str:
        with self._lock:
            if self._at >= len(self._block):
                self._block, self._at = secrets.token_bytes(_NONCE * _POOL), 0
            raw = self._block[self._at : self._at + _NONCE]
            self._at += _NONCE
        return base64.urlsafe_b64encode(raw).decode()


_nonces = _Nonces()
# A forked worker must never hand out the nonces its parent drew, nor inherit the lock
# held by a thread that does not exist in the child: it starts afresh.
os.register_at_fork(after_in_child=lambda: _nonces.reset())


def new_token(secret: str) -> str:
    nonce = _nonces.next()
    return f"{nonce}.{_mac(secret, nonce)}"


def _mac(secret: str, nonce: str) -> str:
    # hmac.digest: the one-shot form, several times faster than hmac.new (every scan).
    return hmac.digest(secret.encode(), nonce.encode(), "sha256").hex()[:32]


def valid(secret: str, cookie: str | None, field: str) -> bool:
    """The form's token matches the cookie's and was made with our secret."""
    if not cookie or not hmac.compare_digest(cookie, field):
        return False
    nonce, _, mac = field.partition(".")
    return hmac.compare_digest(mac, _mac(secret, nonce))
