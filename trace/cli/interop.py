"""Interoperability commands: EPCIS export, spreadsheet import and export, catalogue updates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ocop_trace.cli.common import DbOption, out, settings_with, user_errors


def export_epcis(
    out_path: Annotated[Path, typer.Option("--out", help="The EPCIS 2.0 JSON-LD file to write.")],
    db: DbOption = None,
) -> None:
    """Write every supply-chain event in the ledger as one EPCIS 2.0 document (streamed)."""
    settings = settings_with(db)
    with user_errors():
        from ocop_trace.epcis.export import write_ledger
        from ocop_trace.ledger_setup import open_store

        # Reading only: no key is checked, so no root key needs pinning to export.
        store = open_store(settings, signing=False, root_key="0" * 64)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with out_path.open("w", encoding="utf-8") as handle:
            count = write_ledger(store, settings.public_url, handle)
    out.print(f"{count} EPCIS events -> {out_path}")
