"""ocop_trace.ocop: classification, star bands, who rates when, validity, addresses, steps."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections import Counter
from datetime import date, timedelta

import pytest

from ocop_trace import ocop
from ocop_trace.i18n import t
from ocop_trace.ocop import (
    BIZ_STEPS,
    DEMO_PRODUCTS,
    PRODUCT_SETS,
    SECTORS,
    CertifiedAddress,
    CurrentAddress,
    EpcisEventType,
    ProducerType,
    RatingBand,
    RatingLevel,
    RatingRuleError,
    RatingStatus,
    certificate_expiry,
    check_rating,
    rating_status,
    stars_for_score,
)

NATIONAL, PROVINCIAL, DISTRICT = RatingLevel.NATIONAL, RatingLevel.PROVINCIAL, RatingLevel.DISTRICT


# -- producer types and classification ---------------------------------------------------


def test_producer_types_have_codes_and_both_labels() -> None:
    assert list(ocop.PRODUCER_TYPES) == [
        "enterprise",
        "cooperative",
        "cooperative_group",
        "household",
    ]
    for code, kind in ocop.PRODUCER_TYPES.items():
        assert kind is ProducerType(code)
        assert t("vi", kind.label_key) != t("en", kind.label_key)
    assert t("vi", ProducerType.COOPERATIVE.label_key) == "Hợp tác xã"
    assert t("vi", ProducerType.COOPERATIVE_GROUP.label_key) == "Tổ hợp tác"


def test_six_sectors_and_twenty_six_product_sets() -> None:
    assert len(SECTORS) == 6
    assert [s.number for s in SECTORS.values()] == [1, 2, 3, 4, 5, 6]
    assert len(PRODUCT_SETS) == 26
    per_sector = Counter(p.sector_code for p in PRODUCT_SETS.values())
    # OCOP.md: food 2+2+4+2+2+1, beverages 2+2, herbs 3, handicrafts 2, ornamental 3, tourism 1
    assert per_sector == {
        "food": 13,
        "beverage": 4,
        "herbal": 3,
        "handicraft": 2,
        "ornamental": 3,
        "tourism": 1,
    }


def test_codes_are_stable_ascii_unique_and_labelled() -> None:
    assert all(code == s.code for code, s in SECTORS.items())
    assert all(code == p.code for code, p in PRODUCT_SETS.items())
    for p in PRODUCT_SETS.values():
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", p.code), p.code
        assert p.sector.code == p.sector_code == p.code.split(".")[0]
        for lang in ("vi", "en"):  # their words are in the catalogue, trimmed
            assert t(lang, p.label_key).strip() == t(lang, p.label_key)
    for s in SECTORS.values():
        assert re.fullmatch(r"[a-z]+", s.code)
        assert t("vi", s.label_key)
    for lang in ("vi", "en"):
        assert len({t(lang, p.label_key) for p in PRODUCT_SETS.values()}) == 26
    assert "food.fresh_produce" in PRODUCT_SETS


def test_only_tourism_is_a_service() -> None:
    assert [s.code for s in SECTORS.values() if s.is_service] == ["tourism"]
    assert PRODUCT_SETS["tourism.community_eco_sites"].sector.is_service


def test_sector_of() -> None:
    assert ocop.sector_of("food.tea") == "food"
    assert ocop.sector_of("beverage.white_spirit") == "beverage"
    with pytest.raises(ValueError, match="unknown OCOP product set"):
        ocop.sector_of("food")


# -- stars --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "stars"),
    [
        (0, 1),
        (2999, 1),
        (3000, 2),
        (4999, 2),
        (5000, 3),
        (6999, 3),
        (7000, 4),
        (8999, 4),
        (9000, 5),
        (9114, 5),
        (10000, 5),
    ],
)
def test_star_band_boundaries_at_national_level(score: int, stars: int) -> None:
    assert stars_for_score(score, NATIONAL) == RatingBand(stars)


def test_ninety_below_national_is_four_stars_potential_five() -> None:
    for level in (PROVINCIAL, DISTRICT, "provincial"):
        assert stars_for_score(9000, level) == RatingBand(4, potential_five=True)
        assert stars_for_score(8999, level) == RatingBand(4, potential_five=False)
    assert stars_for_score(4999, PROVINCIAL) == RatingBand(2)
    assert not RatingBand(2).certified
    assert RatingBand(3).certified


@pytest.mark.parametrize("bad", [-1, 10001, True, 91.14, "9114"])
def test_scores_outside_range_or_not_integers_are_refused(bad: object) -> None:
    with pytest.raises(RatingRuleError):
        stars_for_score(bad, NATIONAL)  # type: ignore[arg-type]


def test_unknown_level_is_refused_whatever_the_score() -> None:
    with pytest.raises(RatingRuleError, match="national, provincial or district"):
        stars_for_score(1000, "commune")


def test_format_score() -> None:
    assert ocop.format_score(9114) == "91.14"
    assert ocop.format_score(5000) == "50.00"
    assert ocop.format_score(7) == "0.07"


# -- who rates ----------------------------------------------------------------------------


def test_five_stars_only_at_national_level() -> None:
    for level in (PROVINCIAL, DISTRICT):
        with pytest.raises(RatingRuleError, match="5★ can only be awarded at national level"):
            check_rating(5, level, date(2024, 1, 10))
    # The real example: 2890/QĐ-BNN-VPĐP, 30 Jun 2021, 91.14 points, by the former ministry.
    body = check_rating(5, NATIONAL, date(2021, 6, 30), score_hundredths=9114)
    assert body.code == "mard"


def test_ministry_name_changes_on_the_merger_date() -> None:
    assert check_rating(5, NATIONAL, date(2025, 2, 28)).code == "mard"
    assert check_rating(5, NATIONAL, date(2025, 3, 1)).code == "mae"
    body = ocop.rating_authority(NATIONAL, date(2026, 1, 1))
    assert t("en", f"authority.{body.code}") == "Ministry of Agriculture and Environment"


@pytest.mark.parametrize("stars", [1, 2, 3, 4])
def test_national_level_awards_only_five(stars: int) -> None:
    with pytest.raises(RatingRuleError, match="national level awards only 5★"):
        check_rating(stars, NATIONAL, date(2024, 1, 10))


def test_provincial_council_rates_three_and_four_before_and_after_1489() -> None:
    for day in (date(2020, 5, 1), date(2024, 1, 10), date(2025, 7, 6), date(2026, 1, 1)):
        assert check_rating(4, PROVINCIAL, day).code == "provincial_council"
        assert check_rating(3, "provincial", day).code == "provincial_council"


def test_district_council_window() -> None:
    assert check_rating(3, DISTRICT, date(2023, 2, 24)).code == "district_council"
    assert check_rating(3, DISTRICT, date(2025, 7, 5)).code == "district_council"
    with pytest.raises(RatingRuleError, match=r"no longer rate.*1489"):
        check_rating(3, DISTRICT, date(2025, 7, 6))
    with pytest.raises(RatingRuleError, match="148/QĐ-TTg"):
        check_rating(3, DISTRICT, date(2023, 2, 23))
    with pytest.raises(RatingRuleError, match="at most 3★"):
        check_rating(4, DISTRICT, date(2024, 1, 10))


def test_before_the_programme_nothing_is_rated() -> None:
    with pytest.raises(RatingRuleError, match="490/QĐ-TTg"):
        check_rating(3, PROVINCIAL, date(2018, 5, 6))
    assert check_rating(3, PROVINCIAL, ocop.PROGRAMME_START)


def test_certificate_number_only_from_three_stars() -> None:
    for stars in (1, 2):
        with pytest.raises(RatingRuleError, match="evaluation result only"):
            check_rating(stars, PROVINCIAL, date(2024, 1, 10), certificate_number="01/OCOP")
        check_rating(stars, PROVINCIAL, date(2024, 1, 10), certificate_number="")
    check_rating(3, PROVINCIAL, date(2024, 1, 10), certificate_number="01/OCOP")


def test_score_must_match_the_stars() -> None:
    day = date(2024, 1, 10)
    assert check_rating(4, PROVINCIAL, day, score_hundredths=9500)  # potential 5★
    assert check_rating(3, PROVINCIAL, day, score_hundredths=5000)
    with pytest.raises(RatingRuleError, match=r"49\.99 gives 2★"):
        check_rating(3, PROVINCIAL, day, score_hundredths=4999)
    with pytest.raises(RatingRuleError, match=r"89\.99 gives 4★ at national level"):
        check_rating(5, NATIONAL, day, score_hundredths=8999)


@pytest.mark.parametrize("stars", [0, 6, True, 3.0])
def test_stars_must_be_one_to_five(stars: object) -> None:
    with pytest.raises(RatingRuleError, match="1 to 5"):
        check_rating(stars, PROVINCIAL, date(2024, 1, 10))  # type: ignore[arg-type]


def test_rating_rule_error_is_a_value_error() -> None:
    assert issubclass(RatingRuleError, ValueError)


# -- legal bases --------------------------------------------------------------------------


def test_legal_bases_in_order() -> None:
    codes = [b.code for b in ocop.LEGAL_BASES]
    assert codes == [
        "490/QĐ-TTg",
        "1048/QĐ-TTg",
        "781/QĐ-TTg",
        "919/QĐ-TTg",
        "148/QĐ-TTg",
        "1489/QĐ-TTg",
    ]
    days = [b.signed_on for b in ocop.LEGAL_BASES]
    assert days == sorted(days)
    assert len(set(days)) == len(days)
    assert ocop.CURRENT_CRITERIA == "148/QĐ-TTg" == ocop.CRITERIA_VERSIONS[-1]
    assert ocop.LEGAL_BASES[-1].signed_on == ocop.DISTRICT_RATING_UNTIL


def test_criteria_in_force() -> None:
    assert ocop.criteria_in_force(date(2019, 1, 1)) is None
    assert ocop.criteria_in_force(date(2019, 8, 21)) == "1048/QĐ-TTg"
    assert ocop.criteria_in_force(date(2021, 6, 30)) == "781/QĐ-TTg"
    assert ocop.criteria_in_force(date(2023, 2, 23)) == "781/QĐ-TTg"
    assert ocop.criteria_in_force(date(2023, 2, 24)) == "148/QĐ-TTg"
    assert ocop.criteria_in_force(date(2026, 1, 1)) == "148/QĐ-TTg"


# -- certificate validity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (date(2023, 3, 15), date(2026, 3, 15)),
        (date(2023, 2, 28), date(2026, 2, 28)),
        (date(2024, 2, 29), date(2027, 2, 28)),  # no 29 Feb in 2027: clamped
        (date(2022, 11, 30), date(2025, 11, 30)),  # no end-of-month snapping to the 31st
        (date(2021, 12, 31), date(2024, 12, 31)),
        (date(2022, 1, 1), date(2025, 1, 1)),
    ],
)
def test_certificate_expiry(issued: date, expires: date) -> None:
    assert certificate_expiry(issued) == expires


def test_add_months_wraps_years_and_clamps() -> None:
    assert ocop.add_months(date(2023, 12, 15), 1) == date(2024, 1, 15)
    assert ocop.add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert ocop.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert ocop.add_months(date(2023, 5, 31), 36) == date(2026, 5, 31)


def test_status_at_every_boundary() -> None:
    issued = date(2023, 3, 15)
    expires = certificate_expiry(issued)

    def status(today: date) -> RatingStatus:
        return rating_status(issued, expires, revoked=False, today=today)

    assert status(issued) is RatingStatus.VALID
    assert status(expires - timedelta(days=31)) is RatingStatus.VALID
    assert status(expires - timedelta(days=30)) is RatingStatus.EXPIRING
    assert ocop.expiring_from(expires) == date(2026, 2, 13)
    assert status(expires - timedelta(days=1)) is RatingStatus.EXPIRING
    assert status(expires) is RatingStatus.EXPIRED
    assert status(expires + timedelta(days=1)) is RatingStatus.EXPIRED
    assert status(date(2030, 1, 1)) is RatingStatus.EXPIRED


def test_leap_day_certificate_last_valid_day() -> None:
    issued = date(2024, 2, 29)
    expires = certificate_expiry(issued)
    assert rating_status(issued, expires, False, date(2027, 2, 27)) is RatingStatus.EXPIRING
    assert rating_status(issued, expires, False, date(2027, 2, 28)) is RatingStatus.EXPIRED


def test_revoked_wins_over_dates() -> None:
    issued = date(2023, 3, 15)
    expires = certificate_expiry(issued)
    for today in (issued, expires - timedelta(days=10), expires + timedelta(days=10)):
        assert rating_status(issued, expires, True, today) is RatingStatus.REVOKED


def test_status_edge_inputs() -> None:
    issued = date(2023, 3, 15)
    with pytest.raises(ValueError, match="not after issue"):
        rating_status(issued, issued, False, issued)
    # A clock a day behind must not fail a public page.
    assert rating_status(issued, date(2026, 3, 15), False, date(2023, 3, 14)) is RatingStatus.VALID


def test_status_codes_and_labels() -> None:
    assert [s.value for s in RatingStatus] == ["valid", "expiring", "expired", "revoked"]
    assert t("vi", RatingStatus.EXPIRING.label_key) == "Sắp hết hiệu lực"


# -- addresses ----------------------------------------------------------------------------

CON_MINH = CertifiedAddress(
    province="tỉnh Bắc Kạn", district="huyện Na Rì", commune="xã Côn Minh", line="thôn Chè Cọ"
)


def test_historical_note_after_the_merge() -> None:
    current = CurrentAddress(province="tỉnh Thái Nguyên", commune="xã Côn Minh", line="thôn Chè Cọ")
    assert ocop.addresses_differ(CON_MINH, current)
    note = ocop.address_before_reform(CON_MINH, current)
    assert note == "xã Côn Minh, huyện Na Rì, tỉnh Bắc Kạn"
    assert ocop.format_address(current) == "thôn Chè Cọ, xã Côn Minh, tỉnh Thái Nguyên"


def test_historical_note_repeats_a_changed_line() -> None:
    current = CurrentAddress(province="tỉnh Thái Nguyên", commune="xã Côn Minh", line="thôn Mới")
    assert ocop.address_before_reform(CON_MINH, current) == (
        "thôn Chè Cọ, xã Côn Minh, huyện Na Rì, tỉnh Bắc Kạn"
    )


def test_district_alone_makes_a_difference() -> None:
    certified = CertifiedAddress(
        province="tỉnh Cao Bằng", district="huyện Hà Quảng", commune="xã A"
    )
    assert ocop.addresses_differ(
        certified, CurrentAddress(province="tỉnh Cao Bằng", commune="xã A")
    )


def test_same_address_after_the_reform_shows_no_note() -> None:
    nfd = unicodedata.normalize("NFD", "xã Quang Sơn")
    certified = CertifiedAddress(province="tỉnh Thái Nguyên", commune=nfd)
    current = CurrentAddress(province="tỉnh  Thái Nguyên ", commune="xã Quang Sơn")
    assert not ocop.addresses_differ(certified, current)
    assert ocop.address_before_reform(certified, current) is None


def test_province_merges_are_data_and_partial() -> None:
    assert date(2025, 7, 1) == ocop.REFORM_DATE
    assert ocop.current_province("tỉnh Bắc Kạn") == "tỉnh Thái Nguyên"
    assert ocop.current_province(unicodedata.normalize("NFD", "tỉnh Bắc Kạn")) == "tỉnh Thái Nguyên"
    assert ocop.current_province("tỉnh Hà Giang") is None  # not in the partial table


def test_addresses_are_frozen_and_keyword_only() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        CON_MINH.province = "tỉnh Thái Nguyên"  # type: ignore[misc]
    with pytest.raises(TypeError):
        CurrentAddress("tỉnh Thái Nguyên", "xã Côn Minh")  # type: ignore[call-arg]


# -- EPCIS business steps -----------------------------------------------------------------

CBV_BIZ_STEPS = {"commissioning", "packing", "shipping", "receiving", "inspecting"}


def test_business_steps() -> None:
    assert list(BIZ_STEPS) == [
        "commissioning",
        "harvesting",
        "processing",
        "packing",
        "shipping",
        "receiving",
        "inspecting",
    ]
    for code, step in BIZ_STEPS.items():
        assert step.code == code
        assert t("vi", f"step.{code}") != t("en", f"step.{code}")
        if step.is_cbv:
            assert step.biz_step in CBV_BIZ_STEPS  # CBV 2.0 has no harvesting or transforming
        else:
            assert step.biz_step == ocop.OCOP_BIZSTEP_PREFIX + code
        is_transformation = step.event_type is EpcisEventType.TRANSFORMATION
        assert (step.action is None) == is_transformation
    assert {c for c, s in BIZ_STEPS.items() if not s.is_cbv} == {"harvesting", "processing"}
    assert BIZ_STEPS["processing"].event_type.value == "ObjectEvent"  # lineage transforms
    assert BIZ_STEPS["harvesting"].event_type.value == "ObjectEvent"
    assert BIZ_STEPS["commissioning"].action == "ADD"
    assert len({t("vi", f"step.{c}") for c in BIZ_STEPS}) == len(BIZ_STEPS)


# -- demo data ----------------------------------------------------------------------------


def test_demo_products() -> None:
    assert len(DEMO_PRODUCTS) == 10
    assert len({p.name for p in DEMO_PRODUCTS}) == 10
    assert Counter(p.stars for p in DEMO_PRODUCTS) == {5: 1, 4: 5, 3: 4}
    kinds = Counter(p.producer_type for p in DEMO_PRODUCTS)
    assert kinds == {
        ProducerType.COOPERATIVE: 5,
        ProducerType.ENTERPRISE: 3,
        ProducerType.COOPERATIVE_GROUP: 1,
        ProducerType.HOUSEHOLD: 1,
    }
    for p in DEMO_PRODUCTS:
        assert p.product_set in PRODUCT_SETS
        assert p.place.province == "tỉnh Bắc Kạn"
        assert ocop.current_province(p.place.province) == "tỉnh Thái Nguyên"
        level = NATIONAL if p.stars == 5 else PROVINCIAL
        check_rating(p.stars, level, date(2023, 6, 1))
    first = DEMO_PRODUCTS[0]
    assert first.name == "Miến dong Tài Hoan"
    assert first.stars == 5
    assert first.place == CON_MINH
    assert DEMO_PRODUCTS[-1].sector.is_service
    assert sum(p.sector.is_service for p in DEMO_PRODUCTS) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.stars = 4  # type: ignore[misc]
