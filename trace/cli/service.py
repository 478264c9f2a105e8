"""The service's commands: serve, labels, labels-void, verify-label, user-add, demo."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from ledger.bundle import read_header
from ledger.statement import HEX64
from ocop_trace.cli.common import (
    DbOption,
    err,
    fail,
    out,
    print_report,
    settings_with,
    user_errors,
)
from ocop_trace.settings import Settings, development_warning


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
    warning = development_warning(settings)
    if warning:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    out.print(f"serving on http://{host}:{port}/  (API docs at /docs)")
    with _metrics_folder(workers):
        uvicorn.run(
            "ocop_trace.app:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            # uvicorn restarts a worker that misses a 5 s health check, resetting every
            # connection it holds; a busy two-core machine can be that slow to answer.
            timeout_worker_healthcheck=30,
        )


@contextmanager
def _metrics_folder(workers: int) -> Iterator[None]:
    """With several workers, one fresh folder where each keeps its request counters, so
    /metrics, whichever worker answers it, sums them all (prometheus_client's multiprocess
    mode). Fresh each run: figures left by an earlier run would be added in."""
    from ocop_trace.metrics import MULTIPROC_ENV

    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ocop-trace-metrics-") as folder:
        os.environ[MULTIPROC_ENV] = folder  # the workers, started after this, inherit it
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]


def labels_command(
    batch: Annotated[str, typer.Option("--batch", help="The batch the labels are for.")],
    count: Annotated[int, typer.Option(min=1, max=10_000, help="How many labels.")],
    out_path: Annotated[Path, typer.Option("--out", help="PDF file, or a folder for svg/png.")],
    fmt: Annotated[str, typer.Option("--format", help="pdf, svg or png")] = "pdf",
    ec: Annotated[str, typer.Option(help="QR error correction: M or Q")] = "M",
    label_mm: Annotated[str, typer.Option(help="Label size WIDTHxHEIGHT in mm")] = "63.5x38.1",
    grid: Annotated[str, typer.Option(help="Labels per page COLUMNSxROWS")] = "3x7",
    qr_mm: Annotated[float, typer.Option(help="QR side in mm, quiet zone included")] = 30.0,
    offline: Annotated[bool, typer.Option(help="Sign each link for offline checking.")] = False,
    db: DbOption = None,
) -> None:
    """Issue serialised labels for a batch, signed with its producer's key, and print them."""
    from pydantic import ValidationError

    from ocop_trace import labels
    from ocop_trace.accounts import Principal
    from ocop_trace.ledger_setup import open_service
    from ocop_trace.models import LabelIssue

    try:
        width, height = (float(v) for v in label_mm.lower().split("x"))
        columns, rows = (int(v) for v in grid.lower().split("x"))
        request = LabelIssue(
            count=count,
            format=fmt,  # type: ignore[arg-type]
            ec=ec,  # type: ignore[arg-type]
            offline=offline,
            label_width_mm=width,
            label_height_mm=height,
            columns=columns,
            rows=rows,
            qr_mm=qr_mm,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except ValueError as exc:
        fail(f"--label-mm WIDTHxHEIGHT and --grid COLUMNSxROWS: {exc}")
    settings = settings_with(db)
    with user_errors():
        service = open_service(settings)
        operator = Principal(None, "cli", "producer", service.batch_owner(batch))
        issued = service.issue_labels(operator, batch, request, settings.public_url)
        if request.format == "pdf":
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_bytes(labels.render(issued.labels, "pdf", request.ec, request.layout()))
        else:
            # One file per label: the same renderer, a label at a time.
            out_path.mkdir(parents=True, exist_ok=True)
            for label, serial in zip(issued.labels, issued.serials, strict=True):
                content = labels.render([label], request.format, request.ec, request.layout())
                (out_path / f"{serial.canonical}.{request.format}").write_bytes(content)
    index = issued.receipt.index
    out.print(f"issued {count} labels for {batch} (ledger entry {index}) -> {out_path}")


def labels_void_command(
    label_set: Annotated[
        int, typer.Option("--set", min=1, help="The label set: its labels.issued entry's index.")
    ],
    reason: Annotated[str, typer.Option(help="Why it is voided (3 to 200 characters).")],
    db: DbOption = None,
) -> None:
    """Void a misprinted label set, signed with its producer's key: its serials then scan
    as not registered, with the reason."""
    from pydantic import ValidationError

    from ocop_trace.accounts import Principal
    from ocop_trace.ledger_setup import open_service
    from ocop_trace.models import LabelVoid

    try:
        data = LabelVoid(reason=reason)
    except ValidationError as exc:
        fail(f"--reason: {exc.errors()[0]['msg']}")
    settings = settings_with(db)
    with user_errors():
        service = open_service(settings)
        owner = service.batch_owner(service.label_set_batch(label_set))
        receipt = service.void_labels(
            Principal(None, "cli", "producer", owner), label_set, data.reason
        )
    out.print(f"voided label set {label_set} (ledger entry {receipt.index})")


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
        from ocop_trace.ledger_setup import open_service

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
    from ocop_trace.ledger_setup import root_key_id

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
    out.print(
        "\nOpen (after `ocop-trace serve`, which `make demo` starts) — a scan page per verdict:"
    )
    for state, link in result.links.items():
        out.print(f"  {state}: {link}")
    out.print(f"  the API: {url}/docs   the ten products: {url}/api/v1/products")
    out.print(
        f"\nThe staff app: sign in at {url}/app/login as council-demo (the council), "
        f"htx-tai-hoan (a producer) or inspector-demo, with the passwords in {result.credentials}"
    )
    out.print("\nThe public site (catalogue, search, code entry, product pages, the ledger):")
    for what, link in result.site.items():
        out.print(f"  {what}: {link}")
    out.print("\nInteroperability (EPCIS 2.0, spreadsheets, edits as statements):")
    for what, path in (
        ("a batch's EPCIS events", "/api/v1/batches/mien-dong-tai-hoan-b1/epcis"),
        ("a product with a GTIN, in EPCIS", "/api/v1/products/tra-hoa-vang/epcis"),
        ("every batch as a spreadsheet", "/api/v1/exports/batches.xlsx"),
        ("the import template for a council", "/api/v1/imports/template"),
        ("a producer moved by the 2025 reform", "/api/v1/producers/htx-tai-hoan/history"),
        ("a product given a GTIN", "/api/v1/products/tra-hoa-vang/history"),
    ):
        out.print(f"  {what}: {url}{path}")
    out.print(
        f"  the whole ledger in EPCIS: .venv/bin/ocop-trace export-epcis --out epcis.jsonld "
        f"--db {settings.database_url}"
    )
    out.print("\nCheck it yourself:")
    out.print(f"  .venv/bin/ocop-trace verify --bundle {result.bundle} --root-key {root}")
    if result.witness_policy is not None:
        # The two demo councils cosigned the latest checkpoint; this refuses a rewritten one.
        out.print(
            f"  .venv/bin/ocop-trace verify --bundle {result.bundle} --root-key {root} "
            f"--witness-policy {result.witness_policy}"
        )
    out.print(
        f"  TRACE_KEY_DIR={settings.key_dir} .venv/bin/ocop-trace verify "
        f"--db {settings.database_url}"
    )
    out.print("  (demo certificate numbers, GTINs, lots and dates are invented: 'DEMO-')")
    out.print(
        "\n[bold yellow]This is a demonstration:[/] invented data, demo logins and the "
        "public development secret. Do not use it, or its keys, for real products."
    )
