"""The ocop-trace command line: keys, ledger set-up, appends, export and verification."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ledger import keys
from ledger.bundle import export_bundle, read_header, read_records, store_records
from ledger.canonical import parse_json
from ledger.errors import LedgerError
from ledger.note import format_verifier_key
from ledger.statement import HEX64, parse_statement, sign_statement
from ledger.verifier import Report, verify
from ocop_trace.errors import ServiceError
from ocop_trace.ledger_setup import init_ledger, open_service, open_store, root_key_id
from ocop_trace.rebuild import check_projection, has_projection, rebuild
from ocop_trace.settings import Settings

app = typer.Typer(
    name="ocop-trace",
    help="Traceability for OCOP products: a signed, hash-chained ledger you can verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)  # long hashes and keys stay on one line, copyable
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL. Default: $TRACE_DATABASE_URL or sqlite:///trace.db."),
]


def fail(message: str) -> NoReturn:
    """A usage or input problem: say what to fix and exit with status 2."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into a message and exit status 2, never a traceback."""
    try:
        yield
    except LedgerError as exc:
        fail(str(exc))
    except ServiceError as exc:
        fail(exc.message)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid setting: {problems}")
    except OSError as exc:
        fail(f"{exc.filename or 'file'}: {exc.strerror or exc}")
    except SQLAlchemyError as exc:
        # The driver's own first line says what went wrong (refused, no such database...).
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"database error: {reason}")


def settings_with(db: str | None) -> Settings:
    with user_errors():
        settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


def passphrase_from(env_name: str | None) -> bytes | None:
    if env_name is None:
        return None
    value = os.environ.get(env_name)
    if not value:
        fail(f"--passphrase-env {env_name}: that environment variable is empty or unset")
    return value.encode("utf-8")


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
        trusted = trusted_checkpoint.read_text("utf-8") if trusted_checkpoint else None
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
        _print_report(report)
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


def _print_report(report: Report) -> None:
    if report.ok:
        out.print(
            f"[bold green]VALID[/] {report.entries:,} entries, "
            f"{report.checkpoints} checkpoints verified, {report.keys} keys "
            f"({report.revoked_keys} revoked), {report.seconds:.2f}s"
        )
        out.print(f"root {report.root}")
        for kind, count in report.kinds.items():
            out.print(f"  {kind}: {count:,}")
        return
    out.print(f"[bold red]INVALID[/] after {report.entries:,} good entries", highlight=False)
    out.print(str(report.failure), highlight=False, markup=False)


@app.command("rebuild")
def rebuild_command(db: DbOption = None) -> None:
    """Recreate the producer, product, rating and batch tables from the ledger alone."""
    settings = settings_with(db)
    with user_errors():
        count = rebuild(open_store(settings, signing=False))
    out.print(f"projection rebuilt from {count:,} ledger entries")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes.")] = 1,
    db: DbOption = None,
) -> None:
    """Serve the web app and API (uvicorn). Run `ocop-trace init` first."""
    import uvicorn

    settings = settings_with(db)
    if db:
        os.environ["TRACE_DATABASE_URL"] = db  # each worker process reads its settings
    with user_errors():
        from ocop_trace.app import create_app

        create_app(settings)  # fail here, readably, if the schema is missing or stale
    out.print(f"serving on http://{host}:{port}/  (API docs at /docs)")
    uvicorn.run(
        "ocop_trace.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@app.command("labels")
def labels_command(
    batch: Annotated[str, typer.Option("--batch", help="The batch the labels are for.")],
    count: Annotated[int, typer.Option(min=1, max=10_000, help="How many labels.")],
    out_path: Annotated[Path, typer.Option("--out", help="PDF file, or a folder for svg/png.")],
    fmt: Annotated[str, typer.Option("--format", help="pdf, svg or png")] = "pdf",
    ec: Annotated[str, typer.Option(help="QR error correction: M or Q")] = "M",
    label_mm: Annotated[str, typer.Option(help="Label size WIDTHxHEIGHT in mm")] = "63.5x38.1",
    grid: Annotated[str, typer.Option(help="Labels per page COLUMNSxROWS")] = "3x7",
    qr_mm: Annotated[float, typer.Option(help="QR side in mm, quiet zone included")] = 30.0,
    db: DbOption = None,
) -> None:
    """Issue serialised labels for a batch, signed with its producer's key, and print them."""
    from ocop_trace import labels
    from ocop_trace.accounts import Principal
    from ocop_trace.api.label_routes import label_url
    from ocop_trace.projection import BATCH, PRODUCT, RATING

    if fmt not in ("pdf", "svg", "png") or ec not in ("M", "Q"):
        fail("--format must be pdf, svg or png, and --ec M or Q")
    try:
        width, height = (float(v) for v in label_mm.lower().split("x"))
        columns, rows = (int(v) for v in grid.lower().split("x"))
        layout: dict[str, Any] = {
            "label_mm": (width, height),
            "grid": (columns, rows),
            "qr_mm": qr_mm,
        }
        labels.check_sheet(**layout)  # before any serial is issued
    except ValueError as exc:  # LabelError is one; so is a malformed WxH
        fail(f"label layout: {exc}")
    settings = settings_with(db)
    with user_errors():
        service = open_service(settings)
        with service.engine.connect() as conn:
            row = conn.execute(select(BATCH).where(BATCH.c.id == batch)).first()
            if row is None:
                fail(f"--batch {batch}: no such batch")
            product = conn.execute(select(PRODUCT).where(PRODUCT.c.id == row.product_id)).one()
            stars = (
                conn.execute(
                    select(RATING.c.stars)
                    .where(RATING.c.product_id == product.id)
                    .order_by(RATING.c.id.desc())
                    .limit(1)
                ).scalar()
                or 0
            )
        operator = Principal(None, "cli", "producer", row.producer_id)
        receipt, serials = service.issue_labels(operator, batch, row.producer_id, count)
        sheet = [
            labels.Label(
                label_url(settings.public_url, product.gtin, row.lot, s.canonical),
                product.name_vi,
                stars,
                row.lot,
                s.human,
            )
            for s in serials
        ]
        if fmt == "pdf":
            out_path.parent.mkdir(parents=True, exist_ok=True)
            with out_path.open("wb") as handle:
                labels.render_pdf_sheet(sheet, handle, ec=ec, **layout)  # type: ignore[arg-type]
        else:
            out_path.mkdir(parents=True, exist_ok=True)
            for label, serial in zip(sheet, serials, strict=True):
                target = out_path / f"{serial.canonical}.{fmt}"
                if fmt == "svg":
                    target.write_text(labels.render_svg(label.url, ec), "utf-8")  # type: ignore[arg-type]
                else:
                    target.write_bytes(labels.render_png(label.url, ec))  # type: ignore[arg-type]
    out.print(f"issued {count} labels for {batch} (ledger entry {receipt.index}) -> {out_path}")


@app.command("verify-label")
def verify_label(
    url: Annotated[str, typer.Argument(help="The link read from the label's QR code.")],
    key: Annotated[
        str | None, typer.Option(help="The producer's public key (64 hex digits).")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="A ledger bundle: its registered producer keys are used.")
    ] = None,
    root_key: Annotated[
        str | None, typer.Option(help="Pinned root key for --bundle. Default: $TRACE_ROOT_KEY.")
    ] = None,
) -> None:
    """Check a label signed offline, with no database: exit 0 genuine, 1 not, 2 usage."""
    from ocop_trace.offline import LabelSignatureError, producer_keys_from_bundle, verify_label_url

    if (key is None) == (bundle is None):
        fail("give the producer's --key, or a --bundle to take the keys from")
    for value, name in ((key, "--key"), (root_key, "--root-key")):
        if value is not None and not HEX64.fullmatch(value):
            fail(f"{name} must be 64 lower-case hex digits")
    with user_errors():
        if key is not None:
            known = {key: bytes.fromhex(key)}
        else:
            assert bundle is not None
            pinned = root_key or settings_with(None).root_key or read_header(bundle).root_key_id
            known = producer_keys_from_bundle(bundle, pinned)
        try:
            check = verify_label_url(url, known)
        except LabelSignatureError as exc:
            fail(str(exc))
    if check.valid:
        out.print(f"[bold green]GENUINE[/] signed by producer key {check.key_id}")
        raise typer.Exit(0)
    out.print(f"[bold red]NOT GENUINE[/] {check.reason}", highlight=False)
    raise typer.Exit(1)


@app.command("user-add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name: a-z, 0-9, '.', '_', '-'")],
    role: Annotated[str, typer.Option(help="council, producer or inspector")],
    producer_id: Annotated[str, typer.Option(help="For producer users: their producer")] = "",
    password_env: Annotated[
        str, typer.Option(help="Environment variable holding the password (never an argument)")
    ] = "TRACE_NEW_USER_PASSWORD",  # noqa: S107  (the name of a variable, not a password)
    db: DbOption = None,
) -> None:
    """Create a user (the first council user is created this way)."""
    password = os.environ.get(password_env, "")
    if not password:
        fail(f"set {password_env} to the new user's password (at least 12 characters)")
    settings = settings_with(db)
    with user_errors():
        from ocop_trace.accounts import Principal

        service = open_service(settings)
        operator = Principal(None, "cli", "council")
        user_id = service.create_user(operator, username, password, role, producer_id)
    out.print(f"user {username} ({role}) created with id {user_id}")


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo database, keys and bundle.")
    ] = Path("demo"),
    url: Annotated[str, typer.Option(help="Base URL the printed links use.")] = (
        "http://127.0.0.1:8000"
    ),
) -> None:
    """Seed the Bắc Kạn OCOP demo through the real use cases, export and verify it. Idempotent."""
    from ocop_trace.demo import run_demo

    settings = Settings(
        database_url=f"sqlite:///{directory / 'trace.db'}",
        key_dir=directory / "keys",
        public_url=url,
    )
    with user_errors():
        result = run_demo(settings)
    out.print(
        f"demo ledger: {settings.database_url} ({result.report.entries} entries, "
        f"{result.created} added by this run)"
    )
    out.print(f"bundle: {result.bundle}   logins: {result.credentials}")
    _print_report(result.report)
    root = root_key_id(settings)
    out.print("\nOpen (after `ocop-trace serve`, which `make demo` starts) — scan pages:")
    for state, link in result.links.items():
        out.print(f"  {state.replace('_', ' ')}: {link}")
    out.print(f"  the API: {url}/docs   the ten products: {url}/api/v1/products")
    out.print("\nCheck it yourself:")
    out.print(f"  .venv/bin/ocop-trace verify --bundle {result.bundle} --root-key {root}")
    out.print(
        f"  TRACE_KEY_DIR={settings.key_dir} .venv/bin/ocop-trace verify "
        f"--db {settings.database_url}"
    )
    out.print("  (demo certificate numbers, GTINs, lots and dates are invented: 'DEMO-')")


def main() -> None:
    app()
