"""The command line's service commands: serve, labels, verify-label, user-add, demo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from ledger.bundle import read_header
from ledger.statement import HEX64
from ocop_trace.cli_common import DbOption, fail, out, print_report, settings_with, user_errors
from ocop_trace.ledger_setup import open_service, root_key_id
from ocop_trace.settings import Settings


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
    print_report(result.report)
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
