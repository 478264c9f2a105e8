"""OCOP's rules as data: producers, classification, stars, raters, validity, addresses, steps."""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from ocop_trace.errors import InvalidInput

# Facts follow /work/shared/OCOP.md (public news, not the decision texts): correct them here.


class RatingRuleError(InvalidInput, ValueError):
    """A rating that OCOP's rules do not allow; the message is meant for a council clerk."""


class ProducerType(StrEnum):
    """Stable ASCII codes (stored and signed); their words are in the catalogue (i18n.py)."""

    ENTERPRISE = "enterprise"
    COOPERATIVE = "cooperative"
    COOPERATIVE_GROUP = "cooperative_group"
    HOUSEHOLD = "household"

    @property
    def label_key(self) -> str:
        return f"producer_type.{self.value}"


PRODUCER_TYPES: Mapping[str, ProducerType] = MappingProxyType({t.value: t for t in ProducerType})


# ---- Classification of 148/QĐ-TTg: 6 sectors, 26 product sets (the leaves) ----


@dataclass(frozen=True)
class Sector:
    code: str
    number: int
    is_service: bool = False  # tourism: its "batch" is a season or an offer, its QR a sign

    @property
    def label_key(self) -> str:
        return f"sector.{self.code}"


@dataclass(frozen=True)
class ProductSet:
    code: str  # "<sector code>.<set>", stable: stored on products, never renamed

    @property
    def label_key(self) -> str:
        return f"product_set.{self.code}"

    @property
    def sector_code(self) -> str:
        return self.code.split(".", 1)[0]

    @property
    def sector(self) -> Sector:
        return SECTORS[self.sector_code]


# fmt: off
SECTORS: Mapping[str, Sector] = MappingProxyType({s.code: s for s in (
    Sector("food", 1),
    Sector("beverage", 2),
    Sector("herbal", 3),
    Sector("handicraft", 4),
    Sector("ornamental", 5),
    Sector("tourism", 6, is_service=True),
)})

PRODUCT_SETS: Mapping[str, ProductSet] = MappingProxyType({p.code: p for p in (
    # food: fresh (2); raw or pre-processed (2); processed (4); spices (2); tea (2); coffee (1)
    ProductSet("food.fresh_produce"),
    ProductSet("food.fresh_animal"),
    ProductSet("food.rice_cereals"),
    ProductSet("food.honey_syrups"),
    ProductSet("food.fast_food"),
    ProductSet("food.processed_cereals"),
    ProductSet("food.processed_produce"),
    ProductSet("food.processed_animal"),
    ProductSet("food.sauces"),
    ProductSet("food.other_spices"),
    ProductSet("food.tea"),
    ProductSet("food.tea_other_plants"),
    ProductSet("food.coffee_cocoa"),
    # beverages: alcoholic (2); non-alcoholic (2)
    ProductSet("beverage.white_spirit"),
    ProductSet("beverage.other_alcoholic"),
    ProductSet("beverage.bottled_water"),
    ProductSet("beverage.other_non_alcoholic"),
    ProductSet("herbal.functional_medicine"),
    ProductSet("herbal.cosmetics"),
    ProductSet("herbal.oils_other"),
    ProductSet("handicraft.household"),
    ProductSet("handicraft.textiles"),
    ProductSet("ornamental.flowers"),
    ProductSet("ornamental.plants"),
    ProductSet("ornamental.animals"),
    ProductSet("tourism.community_eco_sites"),
)})
# fmt: on


def sector_of(product_set: str) -> str:
    """The sector code of a product set code ("food.tea" -> "food")."""
    if product_set not in PRODUCT_SETS:
        raise ValueError(f"unknown OCOP product set {product_set!r}")
    return PRODUCT_SETS[product_set].sector_code


# ---- Stars: scores are integer hundredths of a point (signed data holds integers only) ----

MAX_SCORE = 10_000  # 100.00
# (stars, lowest score in hundredths): "2★ 30-49" means 30.00 up to 49.99, so 49.99 is 2★.
STAR_THRESHOLDS: tuple[tuple[int, int], ...] = ((1, 0), (2, 3000), (3, 5000), (4, 7000), (5, 9000))
CERTIFIED_MIN_STARS = 3  # 1-2★ are evaluation results only: no certificate, no number


class RatingLevel(StrEnum):
    NATIONAL = "national"
    PROVINCIAL = "provincial"
    DISTRICT = "district"


@dataclass(frozen=True)
class RatingBand:
    stars: int
    potential_five: bool = False  # 90+ below national level: 4★ until the ministry rates it

    @property
    def certified(self) -> bool:
        return self.stars >= CERTIFIED_MIN_STARS


def format_score(score_hundredths: int) -> str:
    """9114 -> "91.14"."""
    return f"{score_hundredths // 100}.{score_hundredths % 100:02d}"


def _level(level: RatingLevel | str) -> RatingLevel:
    try:
        return RatingLevel(level)
    except ValueError:
        raise RatingRuleError(
            f"The rating level must be national, provincial or district, got {level!r}",
            field="level",
        ) from None


def stars_for_score(score_hundredths: int, level: RatingLevel | str) -> RatingBand:
    """The band of a score; only the national level gives 5★, elsewhere 90+ is 4★ potential 5★."""
    level = _level(level)
    if isinstance(score_hundredths, bool) or not isinstance(score_hundredths, int):
        raise RatingRuleError(
            "The score must be a whole number of hundredths (91.14 -> 9114)",
            field="score_hundredths",
        )
    if not 0 <= score_hundredths <= MAX_SCORE:
        raise RatingRuleError(
            f"The score must be 0 to 100 points, got {score_hundredths / 100}",
            field="score_hundredths",
        )
    stars = max(s for s, low in STAR_THRESHOLDS if score_hundredths >= low)
    if stars == 5 and level is not RatingLevel.NATIONAL:
        return RatingBand(4, potential_five=True)
    return RatingBand(stars)


# ---- Who rates, and since when ----


@dataclass(frozen=True)
class RatingAuthority:
    code: str  # its name is in the catalogue as authority.<code>
    level: RatingLevel
    stars: frozenset[int]  # results it may record, including the uncertified 1-2★
    valid_from: date | None  # None: since the programme began
    valid_until: date | None  # first day it no longer rates (exclusive); None: still rates

    def active_on(self, day: date) -> bool:
        started = self.valid_from is None or day >= self.valid_from
        return started and (self.valid_until is None or day < self.valid_until)


PROGRAMME_START = date(2018, 5, 7)  # 490/QĐ-TTg
# Resolution 176/2025/QH15 and Decree 35/2025/NĐ-CP: the merged ministry works from 1 Mar 2025.
MINISTRY_MERGER = date(2025, 3, 1)
DISTRICT_RATING_FROM = date(2023, 2, 24)  # 148/QĐ-TTg: district councils rate 3★
DISTRICT_RATING_UNTIL = date(2025, 7, 6)  # 1489/QĐ-TTg: district level removed
_NATIONAL, _PROVINCIAL, _DISTRICT = (
    RatingLevel.NATIONAL,
    RatingLevel.PROVINCIAL,
    RatingLevel.DISTRICT,
)

# fmt: off
RATING_AUTHORITIES: Mapping[str, RatingAuthority] = MappingProxyType({a.code: a for a in (
    # The Ministry of Agriculture and Rural Development, then (merged) and Environment.
    RatingAuthority("mard", _NATIONAL, frozenset({5}), None, MINISTRY_MERGER),
    RatingAuthority("mae", _NATIONAL, frozenset({5}), MINISTRY_MERGER, None),
    # 3★ and 4★ throughout (under 1048, 148 and 1489); 90+ is 4★ potential 5★.
    RatingAuthority("provincial_council", _PROVINCIAL, frozenset({1, 2, 3, 4}), None, None),
    RatingAuthority("district_council", _DISTRICT, frozenset({1, 2, 3}),
                    DISTRICT_RATING_FROM, DISTRICT_RATING_UNTIL),
)})
# fmt: on


def _vn(day: date) -> str:
    return f"{day.day}/{day.month}/{day.year}"


def rating_authority(level: RatingLevel | str, on: date) -> RatingAuthority:
    """The body that rated at this level on that day, or RatingRuleError."""
    level = _level(level)
    if on < PROGRAMME_START:
        raise RatingRuleError(
            f"OCOP ratings start with 490/QĐ-TTg ({_vn(PROGRAMME_START)})", field="decision_date"
        )
    for authority in RATING_AUTHORITIES.values():
        if authority.level is level and authority.active_on(on):
            return authority
    if on >= DISTRICT_RATING_UNTIL:
        raise RatingRuleError(
            f"District councils no longer rate OCOP products since {_vn(DISTRICT_RATING_UNTIL)}"
            " (1489/QĐ-TTg): the provincial council rates 3★ and 4★",
            field="level",
        )
    raise RatingRuleError(
        f"District councils rated OCOP products (3★) only from {_vn(DISTRICT_RATING_FROM)}"
        f" (148/QĐ-TTg); on {_vn(on)} the provincial council rated them",
        field="level",
    )


def check_rating(
    stars: int,
    level: RatingLevel | str,
    decision_date: date,
    *,
    score_hundredths: int | None = None,
    certificate_number: str | None = None,
) -> RatingAuthority:
    """Refuse a rating the rules forbid; return the body that issues it."""
    level = _level(level)
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise RatingRuleError(
            f"Stars must be a whole number from 1 to 5, got {stars!r}", field="score_hundredths"
        )
    if stars == 5 and level is not RatingLevel.NATIONAL:
        raise RatingRuleError(
            "5★ can only be awarded at national level (the Ministry); below it a score of"
            " 90 or more is recorded as 4★, potential 5★",
            field="level",
        )
    authority = rating_authority(level, decision_date)
    if stars not in authority.stars:
        if level is RatingLevel.NATIONAL:
            raise RatingRuleError(
                "The national level awards only 5★; 3★ and 4★ are rated by the provincial council",
                field="level",
            )
        raise RatingRuleError(
            f"A {level.value} council awards at most {max(authority.stars)}★;"
            f" {stars}★ is rated by the provincial council",
            field="level",
        )
    if score_hundredths is not None:
        band = stars_for_score(score_hundredths, level)
        if band.stars != stars:
            raise RatingRuleError(
                f"A score of {format_score(score_hundredths)} gives {band.stars}★ at"
                f" {level.value} level, not {stars}★",
                field="score_hundredths",
            )
    if certificate_number and stars < CERTIFIED_MIN_STARS:
        raise RatingRuleError(
            f"{stars}★ is an evaluation result only: OCOP certificates (and their numbers)"
            " are issued from 3★ up",
            field="certificate_no",
        )
    return authority


# ---- Legal bases and criteria versions (each rating stores the version it was scored under) ----


@dataclass(frozen=True)
class LegalBasis:
    code: str
    signed_on: date  # public news; 1048's day is reported as both 20 and 21 Aug 2019
    en: str
    criteria_set: bool  # scores are given under it (stored as a rating's criteria version)


LEGAL_BASES: tuple[LegalBasis, ...] = (
    LegalBasis("490/QĐ-TTg", date(2018, 5, 7), "OCOP programme 2018-2020", False),
    LegalBasis("1048/QĐ-TTg", date(2019, 8, 21), "First criteria set", True),
    LegalBasis("781/QĐ-TTg", date(2020, 6, 8), "Amends the 1048 criteria", True),
    LegalBasis("919/QĐ-TTg", date(2022, 8, 1), "OCOP programme 2021-2025", False),
    LegalBasis("148/QĐ-TTg", date(2023, 2, 24), "Current criteria set and procedure", True),
    LegalBasis("1489/QĐ-TTg", date(2025, 7, 6), "Amends the procedure: no district level", False),
)
CRITERIA_VERSIONS: tuple[str, ...] = tuple(b.code for b in LEGAL_BASES if b.criteria_set)
CURRENT_CRITERIA = "148/QĐ-TTg"


def criteria_in_force(on: date) -> str | None:
    """The newest criteria set signed on or before `on`; None before 1048 (provisional rules)."""
    signed = [b.code for b in LEGAL_BASES if b.criteria_set and b.signed_on <= on]
    return signed[-1] if signed else None


# ---- Certificate validity ----

CERTIFICATE_MONTHS = 36
EXPIRING_WINDOW = timedelta(days=30)  # the issuer must warn at least 30 days before expiry


class RatingStatus(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @property
    def label_key(self) -> str:
        return f"status.{self.value}"


def add_months(day: date, months: int) -> date:
    """Same day number `months` later, clamped to the month's last day (no end-of-month snap)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def certificate_expiry(issued_on: date) -> date:
    """First day the certificate is no longer valid: issue date + 36 months.

    2023-03-15 -> 2026-03-15 (valid through 2026-03-14); 2024-02-29 -> 2027-02-28 (clamped).
    """
    return add_months(issued_on, CERTIFICATE_MONTHS)


def expiring_from(expires_on: date) -> date:
    """First day shown as "expiring": exactly 30 days before the expiry date counts."""
    return expires_on - EXPIRING_WINDOW


def rating_status(issued_on: date, expires_on: date, revoked: bool, today: date) -> RatingStatus:
    """Status on `today`, which should be the Vietnam calendar date (UTC+7).

    revoked wins; expired: today >= expires_on (the expiry date itself is not valid);
    expiring: expires_on - 30 days <= today < expires_on; valid: before that. A certificate
    dated after `today` (clock or time-zone skew) counts as valid rather than failing a page.
    """
    if expires_on <= issued_on:
        raise ValueError(f"expiry {expires_on} is not after issue {issued_on}")
    if revoked:
        return RatingStatus.REVOKED
    if today >= expires_on:
        return RatingStatus.EXPIRED
    if today >= expiring_from(expires_on):
        return RatingStatus.EXPIRING
    return RatingStatus.VALID


# ---- Addresses after the 2025 reform (Resolution 202/2025/QH15: province and commune only) ----

REFORM_DATE = date(2025, 7, 1)
# Partial: only merges the demo needs; a province missing here is unknown, not unchanged.
PROVINCE_MERGES: Mapping[str, str] = MappingProxyType(
    {"tỉnh Bắc Kạn": "tỉnh Thái Nguyên", "tỉnh Thái Nguyên": "tỉnh Thái Nguyên"}
)


# Names keep their unit word ("xã Côn Minh", "thành phố Bắc Kạn"): the kind of unit varies.
@dataclass(frozen=True, kw_only=True)
class CertifiedAddress:
    """As printed on the certificate; never rewritten. "" means not recorded."""

    province: str
    district: str | None = None
    commune: str
    line: str = ""


@dataclass(frozen=True, kw_only=True)
class CurrentAddress:
    province: str
    commune: str
    line: str = ""


def current_province(old_province: str) -> str | None:
    return PROVINCE_MERGES.get(_norm(old_province))


def _norm(text: str) -> str:
    # Vietnamese text arrives both precomposed and decomposed; compare it in one form.
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()


def format_address(address: CertifiedAddress | CurrentAddress) -> str:
    district = address.district if isinstance(address, CertifiedAddress) else None
    parts = (address.line, address.commune, district or "", address.province)
    return ", ".join(_norm(p) for p in parts if _norm(p))


def addresses_differ(certified: CertifiedAddress, current: CurrentAddress) -> bool:
    return format_address(certified) != format_address(current)


def address_before_reform(certified: CertifiedAddress, current: CurrentAddress) -> str | None:
    """The certified address where it differs from the current one ("xã Côn Minh, huyện Na
    Rì, tỉnh Bắc Kạn"), for pages to show as it was before REFORM_DATE; None when equal.

    The line (village, street) is repeated only when it changed too.
    """
    if not addresses_differ(certified, current):
        return None
    same_line = _norm(certified.line) == _norm(current.line)
    return format_address(replace(certified, line="") if same_line else certified)


# ---- Units a batch's quantity is counted in (codes; their words are in the catalogue) ----

UNITS: tuple[str, ...] = (
    "pack",
    "bag",
    "box",
    "bottle",
    "jar",
    "can",
    "piece",
    "set",
    "kg",
    "g",
    "l",
    "ml",
    "ticket",
    "night",  # tourism: a season's or an offer's places
)


# ---- EPCIS 2.0 business steps for batch events ----


class EpcisEventType(StrEnum):
    OBJECT = "ObjectEvent"
    TRANSFORMATION = "TransformationEvent"


@dataclass(frozen=True)
class BizStep:
    code: str  # its words are in the catalogue as step.<code>
    event_type: EpcisEventType
    biz_step: str  # as written in EPCIS JSON-LD: a bare CBV 2.0 word, or our own URI
    action: str | None  # ObjectEvent action; TransformationEvent has none

    @property
    def is_cbv(self) -> bool:
        return ":" not in self.biz_step


OCOP_BIZSTEP_PREFIX = "urn:ocop-trace:bizstep:"
# CBV 2.0 has neither "harvesting" nor "transforming" (nor "processing"). CBV folds harvesting
# into `commissioning`, but a batch is commissioned once and may have several harvests, so we
# keep both apart with our own URIs; a CBV-only reader sees a valid but unknown step.
# Processing a batch in place changes no identity, so it is an ObjectEvent; making one batch
# from others (lineage) is the TransformationEvent (trace/epcis/export.py).
# fmt: off
BIZ_STEPS: Mapping[str, BizStep] = MappingProxyType({b.code: b for b in (
    BizStep("commissioning", EpcisEventType.OBJECT,
            "commissioning", "ADD"),
    BizStep("harvesting", EpcisEventType.OBJECT,
            OCOP_BIZSTEP_PREFIX + "harvesting", "ADD"),
    BizStep("processing", EpcisEventType.OBJECT, OCOP_BIZSTEP_PREFIX + "processing", "OBSERVE"),
    BizStep("packing", EpcisEventType.OBJECT, "packing", "OBSERVE"),
    BizStep("shipping", EpcisEventType.OBJECT, "shipping", "OBSERVE"),
    BizStep("receiving", EpcisEventType.OBJECT, "receiving", "OBSERVE"),
    BizStep("inspecting", EpcisEventType.OBJECT, "inspecting", "OBSERVE"),
)})
# fmt: on


# ---- Demo data: old Bắc Kạn province, stars as last found 2019-2023 (OCOP.md) ----


@dataclass(frozen=True)
class DemoProduct:
    name: str
    name_en: str
    producer: str
    producer_type: ProducerType
    place: CertifiedAddress  # old units, as given (some rows give no commune)
    stars: int
    product_set: str  # our assignment; the sources do not state the set

    @property
    def sector(self) -> Sector:
        return PRODUCT_SETS[self.product_set].sector


def _bk(district: str | None, commune: str = "", line: str = "") -> CertifiedAddress:
    return CertifiedAddress(province="tỉnh Bắc Kạn", district=district, commune=commune, line=line)


_E, _C = ProducerType.ENTERPRISE, ProducerType.COOPERATIVE
_G, _H = ProducerType.COOPERATIVE_GROUP, ProducerType.HOUSEHOLD
_BK_CITY = "thành phố Bắc Kạn"
# fmt: off
DEMO_PRODUCTS: tuple[DemoProduct, ...] = (
    DemoProduct("Miến dong Tài Hoan", "Arrowroot noodles", "HTX Tài Hoan", _C,
                _bk("huyện Na Rì", "xã Côn Minh", "thôn Chè Cọ"), 5, "food.processed_produce"),
    DemoProduct("Trà hoa vàng", "Golden camellia tea", "Công ty TNHH Hà Diệp", _E,
                _bk(_BK_CITY), 4, "food.tea_other_plants"),  # not Camellia sinensis
    DemoProduct("Trà nụ vối", "Vối bud tea", "Công ty TNHH Hà Diệp", _E,
                _bk(_BK_CITY), 4, "food.tea_other_plants"),
    DemoProduct("Tinh bột nghệ nếp đỏ", "Red turmeric starch", "HTX nông nghiệp Tân Thành", _C,
                _bk(_BK_CITY, "xã Nông Thượng"), 4, "food.processed_produce"),
    # As given: no district, although row 4 puts xã Nông Thượng in thành phố Bắc Kạn.
    DemoProduct("Trà giảo cổ lam núi đá", "Mountain jiaogulan tea", "Công ty CP Curcumin Bắc Hà",
                _E, _bk(None, "xã Nông Thượng"), 4, "food.tea_other_plants"),
    DemoProduct("Rượu men lá Thanh Tâm", "Leaf-yeast rice spirit", "HTX Rượu men lá Thanh Tâm",
                _C, _bk("huyện Chợ Đồn", "xã Bằng Phúc"), 4, "beverage.white_spirit"),
    DemoProduct("Trà cà gai leo", "Cà gai leo herbal tea", "HTX Bảo Châu", _C,
                _bk("huyện Na Rì", "xã Văn Lang"), 3, "food.tea_other_plants"),
    DemoProduct("Gạo nếp Tân Sơn", "Tân Sơn sticky rice", "HTX nông nghiệp sạch Tân Sơn", _C,
                _bk("huyện Chợ Mới", "xã Tân Sơn"), 3, "food.rice_cereals"),
    DemoProduct("Trà hoa đu đủ đực", "Male papaya flower tea", "Tổ hợp tác Quân Hà", _G,
                _bk("huyện Bạch Thông"), 3, "food.tea_other_plants"),
    # The source names no household; the producer is labelled after the homestay.
    DemoProduct("Homestay Quỳnh Mai", "Quỳnh Mai homestay (community tourism)",
                "Hộ kinh doanh Homestay Quỳnh Mai", _H, _bk("huyện Ba Bể", "xã Nam Mẫu"), 3,
                "tourism.community_eco_sites"),
)
# fmt: on


VIETNAM_TIME = timezone(timedelta(hours=7))  # Indochina Time; Vietnam keeps no summer time


def today_in_vietnam(now: datetime | None = None) -> date:
    """The calendar day in Vietnam, which certificate validity is counted in."""
    return (now or datetime.now(UTC)).astimezone(VIETNAM_TIME).date()


def today_in_vietnam_cached() -> date:
    """`today_in_vietnam`, worked out at most once per ten seconds: every scan asks."""
    return _day_at(int(time.time()) // 10)


@lru_cache(maxsize=2)
def _day_at(ten_seconds: int) -> date:
    return today_in_vietnam(datetime.fromtimestamp(ten_seconds * 10, UTC))
