"""ocop_trace.serials: entropy, the Crockford forms and check symbol, the set commitment."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocop_trace import serials
from ocop_trace.digital_link import build_digital_link, parse_digital_link
from ocop_trace.serials import (
    Serial,
    SerialError,
    new_serial,
    parse_canonical,
    parse_human,
    serial_set_commitment,
)

SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_SYMBOLS = SYMBOLS + "*~$=U"
values = st.integers(min_value=0, max_value=2**80 - 1)


def test_entropy_comes_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def fake_randbits(k: int) -> int:
        asked.append(k)
        return (1 << k) - 1

    monkeypatch.setattr("ocop_trace.serials.secrets.randbits", fake_randbits)
    assert new_serial() == Serial(2**80 - 1)
    assert asked == [80]
    assert serials.SERIAL_BITS >= 64


def test_canonical_form_carries_80_bits() -> None:
    serial = new_serial()
    assert len(serial.canonical) == 16  # 16 symbols x 5 bits
    assert set(serial.canonical) <= set(SYMBOLS)
    assert str(serial) == serial.canonical
    assert Serial(0).canonical == "0" * 16
    assert Serial(2**80 - 1).canonical == "Z" * 16
    for bad in (-1, 2**80):
        with pytest.raises(SerialError):
            Serial(bad)


def test_ten_thousand_serials_are_distinct_and_use_every_bit() -> None:
    batch = [new_serial() for _ in range(10_000)]
    assert len({s.canonical for s in batch}) == len(batch)
    ones = 0
    zeros = 0
    for serial in batch:
        ones |= serial.value
        zeros |= ~serial.value & (2**80 - 1)
    # Every one of the 80 bit positions is seen both set and clear (a stuck bit would fail).
    assert ones == zeros == 2**80 - 1


@given(values)
def test_canonical_form_is_five_bit_groups_most_significant_first(value: int) -> None:
    groups = [(value >> shift) & 31 for shift in range(75, -1, -5)]
    assert Serial(value).canonical == "".join(SYMBOLS[g] for g in groups)


@given(st.text(alphabet=SYMBOLS + "ilou0Z-* \n\u0661", max_size=18))
def test_canonical_text_accepts_exactly_what_parse_canonical_reads(text: str) -> None:
    try:
        expected = parse_canonical(text).canonical
    except SerialError:
        with pytest.raises(SerialError):
            serials.canonical_text(text)
    else:
        assert serials.canonical_text(text) == expected == text


def test_the_commitment_of_url_forms_is_the_sets() -> None:
    batch = [new_serial() for _ in range(33)]
    texts = [s.canonical for s in reversed(batch)]
    assert serials.canonical_set_commitment(texts) == serial_set_commitment(batch)
    with pytest.raises(SerialError, match="twice"):
        serials.canonical_set_commitment([*texts, texts[0]])


def test_canonical_serial_is_a_valid_digital_link_serial() -> None:
    serial = new_serial()
    uri = build_digital_link("https://id.example.vn", "09520123456788", serial=serial.canonical)
    assert uri.endswith("/21/" + serial.canonical)  # nothing needed percent-encoding
    assert parse_canonical(parse_digital_link(uri).serial or "") == serial


@given(values)
def test_human_form_round_trip(value: int) -> None:
    serial = Serial(value)
    human = serial.human
    groups = human.split("-")
    assert [len(g) for g in groups] == [4, 4, 4, 4, 1]
    assert groups[-1] == CHECK_SYMBOLS[value % 37]
    assert parse_human(human) == serial
    assert parse_human(human.lower()) == serial
    assert parse_human(" " + human.replace("-", " ") + "\n") == serial
    assert parse_human(human.replace("-", "")) == serial
    assert parse_canonical(serial.canonical) == serial


def test_known_values() -> None:
    # 32 = "10" in base 32 and 32 % 37 = 32, Crockford's first extra check symbol "*".
    assert Serial(32).human == "0000-0000-0000-0010-*"
    assert Serial(36).human == "0000-0000-0000-0014-U"
    assert Serial(37).human == "0000-0000-0000-0015-0"
    assert parse_human("0000-0000-0000-0014-u") == Serial(36)


def test_confusables_are_read_as_digits() -> None:
    serial = Serial(int("10" * 8, 32))  # canonical "1010101010101010"
    human = serial.human
    assert human.startswith("1010-")
    typed = human.replace("1", "I", 2).replace("1", "l", 2).replace("0", "O", 2).replace("0", "o")
    assert typed != human
    assert parse_human(typed) == serial


def sample_serials() -> list[Serial]:
    rnd = random.Random(20240601)
    return [Serial(0), Serial(2**80 - 1), Serial(36)] + [
        Serial(rnd.getrandbits(80)) for _ in range(5)
    ]


def normalise(symbol: str) -> str:
    return {"I": "1", "L": "1", "O": "0"}.get(symbol.upper(), symbol.upper())


@pytest.mark.parametrize("serial", sample_serials(), ids=str)
def test_every_single_character_typo_is_detected(serial: Serial) -> None:
    code = serial.human.replace("-", "")
    typed_symbols = CHECK_SYMBOLS + "ILOilo" + SYMBOLS.lower()
    checked = 0
    for position, original in enumerate(code):
        for typo in typed_symbols:
            if normalise(typo) == normalise(original):
                continue  # the same symbol, however it is typed
            typed = code[:position] + typo + code[position + 1 :]
            with pytest.raises(SerialError):
                parse_human(typed)
            checked += 1
    assert checked > 17 * 30


@pytest.mark.parametrize("serial", sample_serials(), ids=str)
def test_every_adjacent_transposition_is_detected(serial: Serial) -> None:
    code = serial.human.replace("-", "")
    for position in range(len(code) - 1):
        a, b = code[position], code[position + 1]
        if a == b:
            continue
        swapped = code[:position] + b + a + code[position + 2 :]
        with pytest.raises(SerialError) as err:
            parse_human(swapped)
        # A check-only symbol (*~$=U) moved into the data is refused as not used; the rest
        # are caught by the mod-37 check.
        assert "mistyped" in str(err.value) or "not used" in str(err.value)


def test_wrong_check_symbol_says_mistyped() -> None:
    serial = Serial(123456789)
    wrong = CHECK_SYMBOLS[(serial.value + 1) % 37]
    with pytest.raises(SerialError, match="mistyped"):
        parse_human(serial.human[:-1] + wrong)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "should have 17"),
        ("0000-0000-0000-0000", "should have 17"),
        ("0000-0000-0000-0000-00", "should have 17"),
        ("000U-0000-0000-0000-0", "not used"),
        ("0000-0000-0000-0000-#", "not used"),
        ("0000-0000-0000-000ı-0", "not on the label"),
        ("ß000-0000-0000-000-0", "not on the label"),
    ],
)
def test_bad_human_codes(text: str, message: str) -> None:
    with pytest.raises(SerialError, match=message):
        parse_human(text)


@pytest.mark.parametrize(
    "text", ["", "0" * 15, "0" * 17, "000000000000000o", "000000000000000I", "000000000000000U"]
)
def test_parse_canonical_is_strict(text: str) -> None:
    with pytest.raises(SerialError):
        parse_canonical(text)


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 MTH, written out recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    left, right = reference_root(leaves[:k]), reference_root(leaves[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 8, 13, 100])
def test_commitment_matches_a_direct_recomputation(count: int) -> None:
    batch = [new_serial() for _ in range(count)]
    expected = reference_root(sorted(s.canonical.encode("ascii") for s in batch))
    assert serial_set_commitment(batch) == expected
    assert serial_set_commitment(reversed(batch)) == expected  # a set: order does not matter
    assert len(expected) == 32


def test_commitment_changes_when_any_serial_changes() -> None:
    batch = [new_serial() for _ in range(9)]
    root = serial_set_commitment(batch)
    roots = {root}
    for index in range(len(batch)):
        changed = list(batch)
        changed[index] = Serial(batch[index].value ^ 1)
        roots.add(serial_set_commitment(changed))
    roots.add(serial_set_commitment(batch[:-1]))
    roots.add(serial_set_commitment([*batch, new_serial()]))
    assert len(roots) == len(batch) + 3


def test_commitment_refuses_duplicates() -> None:
    serial = new_serial()
    with pytest.raises(SerialError, match="twice"):
        serial_set_commitment([serial, new_serial(), serial])
