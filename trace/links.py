"""Where a label's QR code points, and the links a resolver offers for a product or batch."""

from __future__ import annotations

from ocop_trace.digital_link import DigitalLinkError, build_digital_link
from ocop_trace.errors import InvalidInput


def label_url(base: str, gtin: str, lot: str, serial: str) -> str:
    """A GS1 Digital Link when the product has a GTIN, the service's own short link if not.

    A lot registered before lots were checked may be one no link can carry: refused here,
    before any serial is issued for it, saying what to do."""
    if gtin:
        try:
            return build_digital_link(base, gtin, lot=lot, serial=serial)
        except DigitalLinkError as exc:
            raise InvalidInput(
                f"{exc}: this lot cannot be printed in a GS1 Digital Link; register the "
                "goods as a new batch whose lot uses only GS1 CSET 82",
                field="lot",
            ) from None
    return f"{base.rstrip('/')}/l/{serial}"
