"""The EPCIS event hash ID of CBV 2.0: a canonical pre-hash string, SHA-256, an ni: URI.

Written from the algorithm's description (CBV 2.0, "EPCIS Event Hash ID"; restated in the
README of GS1's reference implementation): properties in the canonical order, `key=value`
pairs concatenated without separators, list items sorted, CBV bare words and CURIEs
expanded, times in UTC with milliseconds, numbers without trailing zeros, GS1 Digital Link
URIs in constrained canonical form on id.gs1.org, then ILMD and user extensions as
`{namespace}localName=value`, sorted. `certificationInfo`, which that table leaves out,
goes right after `eventTimeZoneOffset`, where the reference implementation puts it.

Covers every field this service writes (and the other common ones); sensor elements,
error declarations and EPC URNs (urn:epc:id:...) are not needed here and are refused.
Tests compare every ID with the independent `epcis-event-hash-generator` package.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ocop_trace.digital_link import build_link, gtin_check_digit, parse_digital_link
from ocop_trace.errors import InvalidInput, ServiceError

HASH_VERSION = "CBV2.0"
CBV = "https://ref.gs1.org/cbv/"
# Prefixes the EPCIS 2.0 context defines; a document's own context may add more.
STANDARD_PREFIXES = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
}
_QUANTITY = ("epcClass", "quantity", "uom")
# (property, what it holds): "value", "ids" (a list of URIs), "quantities", "id" (an
# object with an id), "typed" (a list of objects with a type), "persistent".
_ORDER: tuple[tuple[str, str], ...] = (
    ("eventTime", "value"),
    ("eventTimeZoneOffset", "value"),
    ("certificationInfo", "ids"),
    ("epcList", "ids"),
    ("parentID", "value"),
    ("inputEPCList", "ids"),
    ("childEPCs", "ids"),
    ("quantityList", "quantities"),
    ("childQuantityList", "quantities"),
    ("inputQuantityList", "quantities"),
    ("outputEPCList", "ids"),
    ("outputQuantityList", "quantities"),
    ("action", "value"),
    ("transformationID", "value"),
    ("bizStep", "value"),
    ("disposition", "value"),
    ("persistentDisposition", "persistent"),
    ("readPoint", "id"),
    ("bizLocation", "id"),
    ("bizTransactionList", "typed"),
    ("sourceList", "typed"),
    ("destinationList", "typed"),
)
_NOT_HASHED = {"type", "eventID", "recordTime", "@context"}
_UNSUPPORTED = {"sensorElementList", "errorDeclaration"}
# Bare CBV words: which vocabulary each property's words come from.
_BARE = {"bizStep": "BizStep-", "disposition": "Disp-", "set": "Disp-", "unset": "Disp-"}
_TYPED = {
    "bizTransactionList": ("bizTransaction", "BTT-"),
    "sourceList": ("source", "SDT-"),
    "destinationList": ("destination", "SDT-"),
}
_CBV_URNS = {
    "urn:epcglobal:cbv:bizstep:": "BizStep-",
    "urn:epcglobal:cbv:disp:": "Disp-",
    "urn:epcglobal:cbv:btt:": "BTT-",
    "urn:epcglobal:cbv:sdt:": "SDT-",
    "urn:epcglobal:cbv:er:": "ER-",
}
# Constrained canonical Digital Link: the finest identification level only.
_FINEST = {"01": ("21", "10", "235"), "414": ("254",), "8006": ("21", "10"), "8010": ("8011",)}


def prefixes_of(context: Any) -> dict[str, str]:
    """The CURIE prefixes a document's @context defines inline, over the standard ones."""
    found = dict(STANDARD_PREFIXES)
    for item in context if isinstance(context, list) else [context]:
        if isinstance(item, Mapping):
            found.update((k, v) for k, v in item.items() if isinstance(v, str) and ":" in v)
    return found


def event_id(event: Mapping[str, Any], prefixes: Mapping[str, str]) -> str:
    """`ni:///sha-256;<hex>?ver=CBV2.0` for an event as written in JSON-LD."""
    digest = hashlib.sha256(pre_hash(event, prefixes).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"


def pre_hash(event: Mapping[str, Any], prefixes: Mapping[str, str]) -> str:
    """The canonical pre-hash string of one event."""
    hasher = _PreHash(prefixes)
    unsupported = _UNSUPPORTED & set(event)
    if unsupported:
        raise InvalidInput(f"the event hash does not cover {', '.join(sorted(unsupported))}")
    out = [f"eventType={event['type']}"]
    for name, shape in _ORDER:
        if name in event:
            out.append(hasher.field(name, shape, event[name]))
    if "ilmd" in event:
        out.append(
            "ilmd" + "".join(sorted(hasher.extension(k, v) for k, v in event["ilmd"].items()))
        )
    known = {name for name, _ in _ORDER} | _NOT_HASHED | {"ilmd"}
    out.extend(sorted(hasher.extension(k, v) for k, v in event.items() if k not in known))
    return "".join(out)


class _PreHash:
    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = prefixes

    def field(self, name: str, shape: str, value: Any) -> str:
        if shape == "value":
            return f"{name}={self.value(name, value)}"
        if shape == "ids":
            items = value if isinstance(value, list) else [value]
            inner = "epc" if name.endswith(("List", "EPCs")) else name
            joined = "".join(sorted(f"{inner}={self.value(inner, v)}" for v in items))
            return (name + joined) if inner != name else joined
        if shape == "quantities":
            return name + "".join(sorted(self.quantity(q) for q in value))
        if shape == "id":
            extra = sorted(self.extension(k, v) for k, v in value.items() if k != "id")
            return f"{name}id={self.value('id', value['id'])}" + "".join(extra)
        if shape == "typed":
            member, vocabulary = _TYPED[name]
            parts = []
            for item in value:
                text = f"{member}={self.value(member, item[member])}"
                if "type" in item:
                    text = f"type={self.uri(item['type'], vocabulary)}" + text
                parts.append(text)
            return name + "".join(sorted(parts))
        # persistentDisposition: its set and unset lists, each sorted
        return name + "".join(
            "".join(sorted(f"{key}={self.value(key, v)}" for v in value.get(key, [])))
            for key in ("set", "unset")
        )

    def quantity(self, element: Mapping[str, Any]) -> str:
        return "quantityElement" + "".join(
            f"{key}={self.value(key, element[key])}" for key in _QUANTITY if key in element
        )

    def value(self, name: str, value: Any, *, standard: bool = True) -> str:
        """A value canonicalised; times and bare CBV words only in the standard fields."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return _number(value)
        text = str(value).strip()
        if standard and "time" in name.lower() and "offset" not in name.lower():
            return _utc_millis(text)
        if standard and name in _BARE and ":" not in text:
            return CBV + _BARE[name] + text
        return self.uri(text, "")

    def uri(self, text: str, bare_vocabulary: str) -> str:
        if bare_vocabulary and ":" not in text:
            return CBV + bare_vocabulary + text
        for urn, vocabulary in _CBV_URNS.items():
            if text.startswith(urn):
                return CBV + vocabulary + text.removeprefix(urn)
        if text.startswith("urn:epc:"):
            return _epc_urn_link(text)
        return _constrained_link(text) or self.expand(text)

    def expand(self, curie: str) -> str:
        prefix, _, rest = curie.partition(":")
        if rest and not rest.startswith("//") and prefix in self.prefixes:
            return self.prefixes[prefix] + rest
        return curie

    def extension(self, key: str, value: Any) -> str:
        """`{namespace}localName=value`, nested objects' members sorted after the name."""
        name = self.qualified(key)
        if isinstance(value, Mapping):
            return name + "".join(sorted(self.extension(k, v) for k, v in value.items()))
        if isinstance(value, list):
            return "".join(sorted(self.extension(key, v) for v in value))
        return f"{name}={self.value(key, value, standard=False)}"

    def qualified(self, key: str) -> str:
        prefix, _, local = key.partition(":")
        if local and prefix in self.prefixes:
            return "{" + self.prefixes[prefix] + "}" + local
        return key


def _number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _utc_millis(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{text!r} has no time zone")
    moment = moment.astimezone(UTC)
    # Rounded to the millisecond, as the algorithm's reference rounds a longer fraction.
    millis = round(moment.microsecond / 1000)
    if millis == 1000:
        moment, millis = moment.replace(microsecond=0) + timedelta(seconds=1), 0
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _epc_urn_link(urn: str) -> str:
    """An EPC URN (SGTIN and its pattern, LGTIN class, SGLN, SSCC) as its canonical Digital Link on
    id.gs1.org; other schemes are refused (this service never writes them)."""
    kind, _, rest = urn.removeprefix("urn:epc:").partition(":")
    name, _, rest = rest.partition(":")
    scheme, parts = f"{kind}:{name}", rest.split(".")
    gs1 = "https://id.gs1.org"
    if scheme in ("id:sgtin", "class:lgtin", "idpat:sgtin") and len(parts) == 3:
        company, item, tail = parts
        digits = item[:1] + company + item[1:]
        gtin = f"{gs1}/01/{digits}{gtin_check_digit(digits)}"
        if scheme == "idpat:sgtin":
            return gtin  # every serial of the GTIN: the class itself
        return f"{gtin}/{'21' if scheme == 'id:sgtin' else '10'}/{tail}"
    if scheme == "id:sgln" and len(parts) == 3:
        digits = parts[0] + parts[1]
        gln = digits + str(gtin_check_digit(digits))
        return f"{gs1}/414/{gln}" + ("" if parts[2] == "0" else f"/254/{parts[2]}")
    if scheme == "id:sscc" and len(parts) == 2:
        digits = parts[1][:1] + parts[0] + parts[1][1:]
        return f"{gs1}/00/{digits}{gtin_check_digit(digits)}"
    raise InvalidInput(f"{urn}: this EPC URN scheme is not hashed here; use a Digital Link")


def _constrained_link(text: str) -> str | None:
    """A GS1 Digital Link URI as id.gs1.org with its key and finest qualifier, no query."""
    if not text.startswith(("https://", "http://")):
        return None
    try:
        link = parse_digital_link(text, allow_zero_suppressed_gtin=True)
    except (ServiceError, ValueError):
        return None  # an HTTP URI of some other kind: kept as it is
    finest = next((ai for ai in _FINEST.get(link.primary_key, ()) if ai in link.qualifiers), None)
    qualifiers = {finest: link.qualifiers[finest]} if finest else {}
    return build_link("https://id.gs1.org", link.primary_key, link.key_value, qualifiers)
