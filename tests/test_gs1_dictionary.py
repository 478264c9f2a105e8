"""Every AI of the GS1 Barcode Syntax Dictionary is in AI_TABLE, with its flags and lengths.

The dictionary's rows are kept in tests/data/gs1_syntax_dictionary_ais.tsv (its source and
commit named there); a release that adds or changes an AI fails here until the table follows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocop_trace.digital_link import PRIMARY_KEYS, DigitalLinkError, parse_digital_link
from ocop_trace.gs1_ai import AI_TABLE, _expand, parse_spec

ROWS = [
    line.split("\t")
    for line in (Path(__file__).parent / "data" / "gs1_syntax_dictionary_ais.tsv")
    .read_text()
    .splitlines()[6:]
]
DICTIONARY = {ai: row for row in ROWS for ai in _expand(row[0])}


def test_every_ai_of_the_dictionary_and_no_other() -> None:
    assert len(DICTIONARY) == 541
    assert set(AI_TABLE) == set(DICTIONARY)


@pytest.mark.parametrize("ai", sorted(DICTIONARY))
def test_flags_and_lengths_match_the_dictionary(ai: str) -> None:
    _, flags, components, _ = DICTIONARY[ai]
    parts = parse_spec(components)
    spec = AI_TABLE[ai]
    assert spec.fixed_length == ("*" in flags)
    assert spec.dl_attribute == ("?" in flags)
    assert spec.min_len == sum(p.min_len for p in parts if not p.optional)
    assert spec.max_len == sum(p.max_len for p in parts)


def test_primary_keys_and_their_qualifier_paths() -> None:
    keys = {ai: row[3] for ai, row in DICTIONARY.items() if row[3]}
    assert set(PRIMARY_KEYS) == set(keys)
    for ai, paths in keys.items():
        want = {()} if paths == "-" else {tuple(p.split(",")) for p in paths.split("|")}
        assert set(PRIMARY_KEYS[ai]) == want, ai


@pytest.mark.parametrize(
    "query",
    ["8008=26010112", "7003=2601011230", "4321=1", "8008=2601011230&7003=2601011230&4321=0"],
)
def test_attributes_retailers_send_are_read(query: str) -> None:
    link = parse_digital_link(f"https://a.example/01/08936012345674?{query}")
    assert link.attributes == dict(item.split("=") for item in query.split("&"))


@pytest.mark.parametrize("ai", ["8040", "8041", "8042", "8043"])
def test_ais_the_dictionary_keeps_out_of_links_are_refused(ai: str) -> None:
    value = "1" * AI_TABLE[ai].min_len
    with pytest.raises(DigitalLinkError, match="not allowed as a GS1 Digital Link attribute"):
        parse_digital_link(f"https://a.example/01/08936012345674?{ai}={value}")
