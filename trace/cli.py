"""The ocop-trace command line: keys, ledger set-up, appends, export and verification."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ledger import keys
from ledger.bundle import (
    export_bundle,
    read_checkpoint_file,
    read_header,
    read_records,
    store_records,
)
from ledger.canonical import parse_json
from ledger.errors import LedgerError
from ledger.note import format_verifier_key
from ledger.statement import HEX64, parse_statement, sign_statement
from ledger.verifier import Report, verify
from ocop_trace import cli_service
from ocop_trace.cli_common import (
    DbOption,
    err,
    fail,
    out,
    passphrase_from,
    print_report,
    settings_with,
    user_errors,
)
from ocop_trace.ledger_setup import init_ledger, open_store, root_key_id
from ocop_trace.rebuild import check_projection, has_projection, rebuild

app = typer.Typer(
    name="ocop-trace",
    help="Traceability for OCOP products: a signed, hash-chained ledger you can verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def init(db: DbOption = None) -> None:
    """Create the database schema, keys (if missing) and the genesis entry. Safe to re-run."""
    settings = settings_with(db)
    with user_errors():
        result = init_ledger(settings)
    out.print(f"ledger ready at [bold]{settings.database_url}[/]")
    if result.created_keys:
        out.print(f"new keys written to {settings.key_dir}/ (keep root.pem offline)")
    if result.genesis_index is not None:
        out.print(f"genesis entry {result.genesis_index} registers the ledger key")
    out.print(f"root key (pin it as TRACE_ROOT_KEY): {result.root_key_id}")
    out.print(f"ledger verifier key: {result.ledger_vkey}")


@app.command()
def keygen(
    out_path: Annotated[Path, typer.Option("--out", help="Private key file to write (PEM).")],
    name: Annotated[str, typer.Option(help="Key name used in signed-note verifier keys.")] = "key",
    passphrase_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding a passphrase to encrypt with."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Generate an Ed25519 signing key; prints its key id and verifier key, never the secret."""
    passphrase = passphrase_from(passphrase_env)
    with user_errors():
        key = keys.generate()
        keys.save_private_key(key, out_path, passphrase, overwrite=force)
        public = keys.public_bytes(key)
        vkey = format_verifier_key(name, public)
    out.print(f"wrote {out_path} ({'encrypted' if passphrase else 'unencrypted'}, mode 0600)")
    out.print(f"key id: {keys.key_id(public)}")
    out.print(f"verifier key: {vkey}")


@app.command()
def sign(
    key_file: Annotated[Path, typer.Option("--key", help="Private key file (PEM).")],
    kind: Annotated[str, typer.Option(help="Statement kind, e.g. batch.registered.")],
    body: Annotated[str, typer.Option(help="Statement body as a JSON object, or @FILE.")],
    passphrase_env: Annotated[
        str | None, typer.Option(help="Env variable with the passphrase.")
    ] = None,
) -> None:
    """Sign a statement offline and print it as one JSON line, ready for `append`."""
    passphrase = passphrase_from(passphrase_env)
    with user_errors():
        text = Path(body[1:]).read_text("utf-8") if body.startswith("@") else body
        value = parse_json(text)
        if type(value) is not dict:
            fail("--body must be a JSON object")
        statement = sign_statement(kind, value, keys.load_private_key(key_file, passphrase))
    print(json.dumps(statement.to_json(), ensure_ascii=False))


@app.command()
def append(
    statements_file: Annotated[Path, typer.Argument(help="JSON Lines file of signed statements.")],
    db: DbOption = None,
) -> None:
    """Append pre-signed statements (all or none) and print one receipt per statement."""
    settings = settings_with(db)
    with user_errors():
        statements = []
        for number, line in enumerate(statements_file.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                statements.append(parse_statement(line))
            except LedgerError as exc:
                fail(f"{statements_file}:{number}: {exc}")
        receipts = open_store(settings).append(statements)
    for receipt in receipts:
        print(
            json.dumps(
                {
                    "index": receipt.index,
                    "entry_hash": receipt.entry_hash,
                    "duplicate": receipt.duplicate,
                }
            )
        )


@app.command()
def checkpoint(db: DbOption = None) -> None:
    """Sign and store a checkpoint of the ledger now, and print it (a C2SP signed note)."""
    settings = settings_with(db)
    with user_errors():
        note = open_store(settings).publish_checkpoint()
    sys.stdout.write(note)


@app.command()
def export(
    out_path: Annotated[Path, typer.Option("--out", help="Bundle file to write (JSON Lines).")],
    db: DbOption = None,
) -> None:
    """Export the ledger to a self-contained bundle that verifies with no database."""
    settings = settings_with(db)
    with user_errors():
        count = export_bundle(open_store(settings, signing=False), out_path)
    out.print(f"exported {count} entries to {out_path}")


@app.command("verify")
def verify_command(
    db: DbOption = None,
    bundle: Annotated[Path | None, typer.Option(help="Verify this bundle file instead.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    trusted_checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="A checkpoint saved earlier: refuse a ledger that rolled back or forked."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes checking signatures.")] = (
        os.cpu_count() or 1
    ),
    root_key: Annotated[
        str | None, typer.Option(help="Pinned root key (64 hex). Default: $TRACE_ROOT_KEY.")
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(help="The log's checkpoint origin. Default: the bundle's or $TRACE_ORIGIN."),
    ] = None,
) -> None:
    """Verify the whole ledger. Exit 0 valid, 1 invalid (first failure shown), 2 usage/I-O."""
    if db and bundle:
        fail("give either --db or --bundle, not both")
    if root_key is not None and not HEX64.fullmatch(root_key):
        fail("--root-key must be the root public key as 64 lower-case hex digits")
    settings = settings_with(db)
    with user_errors():
        trusted = read_checkpoint_file(trusted_checkpoint) if trusted_checkpoint else None
        pinned = root_key or settings.root_key
        if bundle is not None:
            header = read_header(bundle)
            if pinned is None:
                err.print(
                    "warning: no root key pinned (--root-key or TRACE_ROOT_KEY); "
                    "trusting the one the bundle names",
                    highlight=False,
                )
            pinned = pinned or header.root_key_id
            records: Any = read_records(bundle)
            options = {"expected_size": header.size, "origin": origin or header.origin}
        else:
            pinned = pinned or root_key_id(settings)
            store = open_store(settings, signing=False, root_key=pinned)
            # A snapshot: entries appended while this runs are for the next verification.
            size = store.size()
            options = {"expected_size": size, "origin": origin or store.origin}
            if has_projection(store.engine):
                options["extra_checks"] = lambda: check_projection(store)
            records = store_records(store, size)
        report = _run_verify(
            records,
            pinned,
            show=not as_json,
            workers=workers,
            trusted_checkpoint=trusted,
            **options,
        )
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print_report(report)
    raise typer.Exit(0 if report.ok else 1)


def _run_verify(records: Any, root: str, *, show: bool, **options: Any) -> Report:
    if not (show and sys.stderr.isatty()):
        return verify(records, root, **options)
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("verify", total=options["expected_size"])
        update: Callable[[int], None] = lambda n: progress.update(task, completed=n)  # noqa: E731
        return verify(records, root, on_progress=update, **options)


@app.command("rebuild")
def rebuild_command(db: DbOption = None) -> None:
    """Recreate the producer, product, rating and batch tables from the ledger alone."""
    settings = settings_with(db)
    with user_errors():
        count = rebuild(open_store(settings, signing=False))
    out.print(f"projection rebuilt from {count:,} ledger entries")


# The service's commands live in cli_service; registered here so `app` has them all.
app.command()(cli_service.serve)
app.command("labels")(cli_service.labels_command)
app.command("verify-label")(cli_service.verify_label)
app.command("user-add")(cli_service.user_add)
app.command()(cli_service.demo)


def main() -> None:
    app()
