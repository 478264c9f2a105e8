"""Labels that prove themselves offline: the QR link carries the producer's Ed25519 signature.

The signed message is a domain prefix and the link's GS1 element string (or, for a short
link, its serial). The link gains two parameters: `k`, the first 8 hex digits of the
signing key's id, and `s`, the signature in unpadded base64url. GS1 resolvers ignore
non-numeric query parameters, so a signed link still resolves wherever an unsigned one does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyRegistry
from ledger.bundle import read_records
from ledger.statement import parse_entry
from ledger.verifier import CheckpointRecord, EntryRecord
from ocop_trace.digital_link import DigitalLinkError, parse_digital_link
from ocop_trace.errors import BadLink

LABEL_DOMAIN = b"ocop-trace/label/v1\n"
KEY_HINT_CHARS = 8


class LabelSignatureError(BadLink, ValueError):
    """A link that carries no signature, or one that cannot be read."""


@dataclass(frozen=True)
class LabelCheck:
    valid: bool
    key_id: str | None
    reason: str


def _unsigned(url: str) -> tuple[str, bytes, dict[str, str]]:
    """The link without k and s, and what the signature covers: the GS1 element string of a
    Digital Link, or the serial of a short link. Not the host, so a label checks out the
    same behind any proxy or mirror of the resolver."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    rest = [(k, v) for k, v in pairs if k not in ("k", "s")]
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    if "/01/" in parts.path:
        try:
            link = parse_digital_link(plain)
        except DigitalLinkError as exc:
            raise LabelSignatureError(f"not a GS1 Digital Link we can read: {exc}") from None
        return link.canonical_uri(), link.element_string().encode("utf-8"), dict(pairs)
    serial = parts.path.rstrip("/").rpartition("/")[2]
    if "/l/" not in parts.path or not serial:
        raise LabelSignatureError("not a label link: expected /01/… or /l/SERIAL")
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return plain, f"serial:{serial}".encode(), dict(pairs)


def producer_keys_from_bundle(path: Path, root_key_id: str) -> dict[str, bytes]:
    """The unrevoked producer keys a bundle registers, each registration checked against
    the pinned root key's chain of authority (signatures included)."""
    registry = KeyRegistry(root_key_id)
    for record in read_records(path):
        if isinstance(record, CheckpointRecord):
            continue
        for index, data in (
            record.load()
            if not isinstance(record, EntryRecord)
            else [(record.position, record.data)]
        ):
            if b'"kind":"key.' not in data:
                continue
            entry = parse_entry(data)
            if entry.statement.kind not in (KEY_REGISTERED, KEY_REVOKED):
                continue
            entry.statement.verify(entry.signing_input())
            registry.check_and_apply(entry.statement, index)
    return {
        g.key_id: bytes.fromhex(g.key_id)
        for g in registry.grants.values()
        if g.role == "producer" and g.revoked_index is None
    }


def sign_label_url(url: str, key: Ed25519PrivateKey) -> str:
    plain, covered, _ = _unsigned(url)
    signature = key.sign(LABEL_DOMAIN + covered)
    hint = keys.key_id(keys.public_bytes(key))[:KEY_HINT_CHARS]
    encoded = base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")
    return f"{plain}{'&' if '?' in plain else '?'}k={hint}&s={encoded}"


def verify_label_url(url: str, public_keys: Mapping[str, bytes]) -> LabelCheck:
    """Check a signed label against known producer keys (key id -> raw public key)."""
    _, covered, params = _unsigned(url)
    hint, signed = params.get("k"), params.get("s")
    if not hint or not signed:
        raise LabelSignatureError("this link carries no signature (no k= and s= parameters)")
    try:
        signature = base64.urlsafe_b64decode(signed + "=" * (-len(signed) % 4))
    except (binascii.Error, ValueError):
        raise LabelSignatureError("the s= parameter is not base64url") from None
    candidates = {kid: pub for kid, pub in public_keys.items() if kid.startswith(hint)}
    if not candidates:
        return LabelCheck(False, None, f"no known producer key starts with {hint}")
    message = LABEL_DOMAIN + covered
    for key_id, public in candidates.items():
        if keys.verify_signature(public, signature, message):
            return LabelCheck(True, key_id, "signed by this producer key")
    return LabelCheck(False, None, "the signature does not match the link: altered or forged")
