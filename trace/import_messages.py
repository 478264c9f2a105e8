"""The spreadsheet import's messages: catalogue keys `import.<key>` (trace/locale), in
Vietnamese with the English twin, both given to the council's dry-run report."""

from __future__ import annotations

from ocop_trace.i18n import LANGUAGES, t

# The keys the import uses; tests/test_i18n.py checks each has its words in both languages.
KEYS = (
    "required",
    "invalid",
    "too_long",
    "bad_number",
    "bad_date",
    "duplicate",
    "unknown_producer",
    "unknown_product",
    "fixed",
    "rating_changed",
    "gtin_labelled",
    "bad_header",
    "unknown_sheet",
    "too_many_rows",
    "not_a_sheet",
    "too_large",
    "refused",
)


def message(key: str, **values: object) -> dict[str, str]:
    """A message in both languages, its placeholders filled in."""
    if key not in KEYS:
        raise KeyError(key)
    return {lang: t(lang, f"import.{key}", **values) for lang in LANGUAGES}
