"""What our EPCIS documents say and how: the context, our namespace, URIs, units and times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from urllib.parse import quote, unquote

from ocop_trace.digital_link import build_digital_link
from ocop_trace.ocop import BIZ_STEPS, VIETNAM_TIME

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Our extension fields and ILMD entries, as `ocop:name` (docs/epcis.md lists each one).
OCOP_NS = "urn:ocop-trace:epcis:"
CBVMDA_NS = "urn:epcglobal:cbv:mda:"
# Declared again inline (with the EPCIS context's own value) so that a reader that only
# looks at the inline context, as some hash tools do, still expands `cbvmda:` keys.
CONTEXT: list[object] = [EPCIS_CONTEXT, {"ocop": OCOP_NS, "cbvmda": CBVMDA_NS}]
PLACE_PREFIX = "urn:ocop-trace:place:"  # a place as the producer wrote it, percent-encoded
OFFSET = "+07:00"  # Vietnam; events are written in its local time
LEDGER_ENTRY = "ocop:ledgerEntry"

# Our base units and their UN/ECE Recommendation 20 codes (EPCIS `uom`); a unit not listed
# is a count of the class's instances (no `uom`) and travels in the ILMD as `ocop:unit`.
UNIT_CODES = MappingProxyType(
    {"g": "GRM", "kg": "KGM", "t": "TNE", "ml": "MLT", "l": "LTR", "m": "MTR", "m2": "MTK"}
)
UNIT_NAMES = MappingProxyType({code: unit for unit, code in UNIT_CODES.items()})
COUNT_UNIT = "each"  # what a quantity without a uom or an ocop:unit is counted in

# Our event steps in EPCIS, and back: a CBV 2.0 word, or our own URI where CBV has none.
STEP_URIS = MappingProxyType({code: step.biz_step for code, step in BIZ_STEPS.items()})
STEP_CODES = MappingProxyType({uri: code for code, uri in STEP_URIS.items()})
REGISTRATION_STEP = "commissioning"
INSPECTION_DISPOSITIONS = MappingProxyType({"pass": "conformant", "fail": "non_conformant"})


def batch_class(base: str, gtin: str, lot: str, batch_id: str) -> str:
    """A batch's class-level identifier: the GS1 Digital Link /01/{GTIN}/10/{lot} when its
    product has a GTIN, the service's own batch page otherwise."""
    if gtin:
        return build_digital_link(base, gtin, lot=lot)
    return f"{base.rstrip('/')}/b/{batch_id}"


def producer_location(base: str, producer_id: str) -> str:
    """A producer's premises as a business location: its record in the service."""
    return f"{base.rstrip('/')}/api/v1/producers/{producer_id}"


def certification(base: str, product_id: str, certificate_no: str) -> str:
    """An OCOP certificate: the product's ratings, at that certificate."""
    return f"{base.rstrip('/')}/api/v1/products/{product_id}/ratings#{quote(certificate_no, '')}"


def place_uri(place: str) -> str:
    return PLACE_PREFIX + quote(place, safe="")


def place_of(uri: str) -> str | None:
    return unquote(uri.removeprefix(PLACE_PREFIX)) if uri.startswith(PLACE_PREFIX) else None


def local_time(utc: str) -> str:
    """A ledger time (UTC, `...Z`) as an EPCIS eventTime in Vietnam's local time."""
    moment = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(VIETNAM_TIME)
    return moment.isoformat()


def day_start(day: str) -> str:
    """A date as the start of that day in Vietnam (a batch's production date)."""
    return datetime.combine(date.fromisoformat(day), time(), VIETNAM_TIME).isoformat()


def ledger_time(moment: datetime) -> str:
    """An aware time as the ledger writes times: UTC with microseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_time(moment: datetime) -> str:
    """An aware time as an event's `at`: UTC, seconds, a fraction only when it has one."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def vietnam_day(moment: datetime) -> str:
    return moment.astimezone(VIETNAM_TIME).date().isoformat()


def offset_of(moment: datetime) -> str:
    delta = moment.utcoffset() or timedelta()
    sign = "-" if delta < timedelta() else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
