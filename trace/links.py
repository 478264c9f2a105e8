"""Where a label's QR code points, and the links a resolver offers for a product or batch."""

from __future__ import annotations

from ocop_trace.digital_link import build_digital_link


def label_url(base: str, gtin: str, lot: str, serial: str) -> str:
    """A GS1 Digital Link when the product has a GTIN, the service's own short link if not."""
    if gtin:
        return build_digital_link(base, gtin, lot=lot, serial=serial)
    return f"{base.rstrip('/')}/l/{serial}"
