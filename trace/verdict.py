"""The one verdict a scan page, its JSON and the staff app's label check show.

First that applies wins (docs/scan-page.md):

    not_registered, bad_link     the code is unknown, or cannot be read (answered 404, 400)
                                 (a serial of a set its producer voided is unknown)
    bad_signature                an offline label signature that does not verify
    recalled, recalled_upstream  the batch, or one it was made from, is recalled
    possible_copy                the serial was scanned from too many networks
    rating_revoked, rating_expired, no_rating
                                 the product has no valid OCOP rating to show as current
    unverified                   a fact shown does not match its signed entry, or the serial
                                 is not proven in a signed label set
    genuine                      a known serial in a signed label set, every fact matching
                                 its entry, a valid rating. Only this one is green.
    product_info                 what a link without a serial (GTIN, lot, batch) gets
                                 instead of genuine: information, never a confirmation
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ocop_trace.i18n import N_


class Verdict(StrEnum):
    NOT_REGISTERED = "not_registered"
    BAD_LINK = "bad_link"
    BAD_SIGNATURE = "bad_signature"
    RECALLED = "recalled"
    RECALLED_UPSTREAM = "recalled_upstream"
    POSSIBLE_COPY = "possible_copy"
    RATING_REVOKED = "rating_revoked"
    RATING_EXPIRED = "rating_expired"
    NO_RATING = "no_rating"
    UNVERIFIED = "unverified"
    GENUINE = "genuine"
    PRODUCT_INFO = "product_info"

    @property
    def tone(self) -> str:
        """ok (green, genuine only), info, warn or bad: the verdict box's colour."""
        return _TONES.get(self, "bad")

    @property
    def headline(self) -> str:
        return _WORDS[self][0]

    @property
    def advice(self) -> str:
        return _WORDS[self][1]


_TONES = {
    Verdict.GENUINE: "ok",
    Verdict.PRODUCT_INFO: "info",
    Verdict.POSSIBLE_COPY: "warn",
    Verdict.RATING_REVOKED: "warn",
    Verdict.RATING_EXPIRED: "warn",
    Verdict.NO_RATING: "warn",
}
# One plain headline and one sentence on what to do, per verdict (catalogue keys).
_WORDS = {v: (N_(f"verdict.{v}.headline"), N_(f"verdict.{v}.advice")) for v in Verdict}


@dataclass(frozen=True, slots=True)
class Findings:
    """What the page knows about a registered code, each fact checked against the ledger."""

    has_serial: bool  # a label's link (a serial) rather than a GTIN, lot or batch link
    serial_proven: bool  # the serial is proven in a label set the ledger committed to
    signature: str | None  # offline label signature: "valid", "invalid", "unreadable" or None
    recall: str | None  # "self", "upstream" or None, as the ledger's entries say
    copied: bool
    rating: str | None  # the current rating's status (valid, expiring, expired, revoked)
    mismatched: bool  # some fact shown differs from its signed entry


def decide(found: Findings) -> Verdict:
    if found.signature in ("invalid", "unreadable"):
        return Verdict.BAD_SIGNATURE
    if found.recall == "self":
        return Verdict.RECALLED
    if found.recall == "upstream":
        return Verdict.RECALLED_UPSTREAM
    if found.has_serial and found.copied:
        return Verdict.POSSIBLE_COPY
    if found.rating is None:
        return Verdict.NO_RATING
    if found.rating == "revoked":
        return Verdict.RATING_REVOKED
    if found.rating == "expired":
        return Verdict.RATING_EXPIRED
    if found.mismatched or (found.has_serial and not found.serial_proven):
        return Verdict.UNVERIFIED
    return Verdict.GENUINE if found.has_serial else Verdict.PRODUCT_INFO
