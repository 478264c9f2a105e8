"""Interoperability commands: EPCIS export, spreadsheet import and export, catalogue updates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ocop_trace.cli.common import DbOption, err, fail, out, settings_with, user_errors


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


def import_command(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The council's list: .xlsx (sheets producers, "
            "products, ratings) or .csv (one of them)."
        ),
    ] = None,
    apply: Annotated[bool, typer.Option(help="Append the statements (all or none).")] = False,
    template: Annotated[
        Path | None, typer.Option(help="Write the .xlsx template here instead, and stop.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Import producers, products and ratings from a spreadsheet: a dry run unless --apply."""
    if template is not None:
        from ocop_trace.catalogue_import import template_sheets
        from ocop_trace.sheets import write_xlsx

        with user_errors(), template.open("wb") as handle:
            write_xlsx(template_sheets(), handle)
        out.print(f"template -> {template}")
        return
    if file is None:
        fail("give the spreadsheet to import, or --template FILE to write the template")
    settings = settings_with(db)
    with user_errors():
        from ocop_trace.accounts import Principal
        from ocop_trace.catalogue_import import apply_import, plan_import
        from ocop_trace.ledger_setup import open_service

        service = open_service(settings)
        plan = plan_import(service, file.name, file.read_bytes())
        for action in plan.actions:
            out.print(
                f"{action.sheet} row {action.row}: {action.action} {action.id}", highlight=False
            )
        for error in plan.errors:
            err.print(
                f"{error.sheet} row {error.row}, column {error.column}: {error.vi} ({error.en})",
                highlight=False,
            )
        counts = plan.counts()
        out.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
        if not plan.ok:
            fail(f"{len(plan.errors)} errors: nothing was imported")
        if apply:
            receipts = apply_import(service, Principal(None, "cli", "council"), plan)
            out.print(f"imported: {sum(1 for r in receipts if not r.duplicate)} ledger entries")
        else:
            out.print("dry run: nothing was written (add --apply to import)")


def export_sheet(
    out_path: Annotated[Path, typer.Option("--out", help="FILE.xlsx (all lists) or FILE.csv")],
    sheet: Annotated[str, typer.Option(help="For CSV: batches, events or portal")] = "batches",
    db: DbOption = None,
) -> None:
    """Write every batch's key data, events and the portal's consumer fields as a spreadsheet."""
    from ocop_trace.sheets_out import SHEETS

    if sheet not in SHEETS:
        fail(f"--sheet must be one of {', '.join(SHEETS)}")
    if out_path.suffix.lower() not in (".xlsx", ".csv"):
        fail("--out must end in .xlsx or .csv")
    settings = settings_with(db)
    with user_errors():
        from ledger.store import open_engine
        from ocop_trace.sheets_out import write_sheet_csv, write_workbook

        engine = open_engine(settings.database_url)
        try:
            with engine.connect() as conn:
                if out_path.suffix.lower() == ".xlsx":
                    with out_path.open("wb") as binary:
                        write_workbook(conn, settings.public_url, binary)
                else:
                    with out_path.open("w", encoding="utf-8", newline="") as text:
                        write_sheet_csv(conn, sheet, settings.public_url, text)
        finally:
            engine.dispose()
    out.print(f"spreadsheet -> {out_path}")
