"""The ledger's commands: keys, set-up, signing, appends, checkpoints, export, verification."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ledger import keys
from ledger.bundle import read_checkpoint_file, read_header, read_records
from ledger.canonical import parse_json
from ledger.cosignature import parse_cosigner_vkey
from ledger.errors import LedgerError
from ledger.note import format_verifier_key
from ledger.policy import Policy, PolicyWitness, parse_policy
from ledger.statement import HEX64, Statement, parse_statement, sign_statement
from ledger.verifier import Report, verify

if TYPE_CHECKING:
    from ledger.store import Receipt
from ocop_trace.cli.common import (
    DbOption,
    err,
    fail,
    out,
    passphrase_from,
    print_report,
    settings_with,
    user_errors,
)

# Commands that need the database import it (and the service) when they run, so that
# `--help`, `keygen`, `sign` and `verify --bundle` start without the web stack or the ORM.
APPEND_CHUNK = 500  # statements held in memory at once by `append`

SerialsOption = Annotated[
    Path | None,
    typer.Option(
        "--serials",
        help="JSON Lines: one label set's serials per line, as a JSON list; each list is "
        "matched to the labels.issued entry whose signed root it has",
    ),
]


def serial_sets(path: Path) -> list[list[str]]:
    """The label sets' serials in a JSON Lines file: one JSON list of serials a line."""
    sets = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            fail(f"{path}:{number}: expected a JSON list of serials")
        sets.append(value)
    return sets


def init(db: DbOption = None) -> None:
    """Create the database schema, keys (if missing) and the genesis entry. Safe to re-run."""
    from ocop_trace.ledger_setup import init_ledger

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


def append(
    statements_file: Annotated[Path, typer.Argument(help="JSON Lines file of signed statements.")],
    serials: SerialsOption = None,
    db: DbOption = None,
) -> None:
    """Append pre-signed statements (all or none), through the projection like the API does,
    and print one receipt per statement. The file is read a chunk at a time."""
    from ocop_trace.accounts import Principal
    from ocop_trace.errors import as_service_error
    from ocop_trace.ledger_setup import open_service

    settings = settings_with(db)
    given = serial_sets(serials) if serials is not None else []  # labels.issued need theirs
    lines: list[int] = []  # the file's line number of each statement in the current chunk
    first = 0  # the position of the current chunk's first statement

    def chunks(handle: BinaryIO) -> Iterator[list[Statement]]:
        nonlocal first
        chunk: list[Statement] = []
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                chunk.append(parse_statement(line))
            except LedgerError as exc:
                fail(f"{statements_file}:{number}: {exc}")
            lines.append(number)
            if len(chunk) == APPEND_CHUNK:
                yield chunk
                first += len(chunk)
                chunk = []
                lines.clear()
        if chunk:
            yield chunk

    with user_errors(), tempfile.TemporaryFile("w+") as receipts:
        service = open_service(settings)
        operator = Principal(None, "cli", "council")  # the ledger's rules still apply

        def spool(done: list[Receipt]) -> None:
            for r in done:  # printed once the whole file is in (all or none)
                receipts.write(
                    json.dumps(
                        {"index": r.index, "entry_hash": r.entry_hash, "duplicate": r.duplicate}
                    )
                    + "\n"
                )

        try:
            with statements_file.open("rb") as handle:
                service.submit_signed(operator, chunks(handle), on_chunk=spool, serials=given)
        except Exception as exc:
            error = as_service_error(exc)
            position = getattr(exc, "position", None)
            if error is None or position is None or not 0 <= position - first < len(lines):
                raise
            fail(
                f"{statements_file}:{lines[position - first]}: refused, nothing was "
                f"appended: {error.message}"
            )
        receipts.seek(0)
        for line in receipts:
            sys.stdout.write(line)


def checkpoint(db: DbOption = None) -> None:
    """Sign and store a checkpoint of the ledger now, and print it (a C2SP signed note)."""
    from ocop_trace.ledger_setup import open_store

    settings = settings_with(db)
    with user_errors():
        note = open_store(settings).publish_checkpoint()
    sys.stdout.write(note)


def export(
    out_path: Annotated[Path, typer.Option("--out", help="Bundle file to write (JSON Lines).")],
    db: DbOption = None,
) -> None:
    """Export the ledger to a self-contained bundle that verifies with no database."""
    from ledger.bundle_export import export_bundle
    from ocop_trace.ledger_setup import open_store

    settings = settings_with(db)
    with user_errors():
        count = export_bundle(open_store(settings, signing=False), out_path)
    out.print(f"exported {count} entries to {out_path}")


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
    witness: Annotated[
        list[str] | None,
        typer.Option(
            help="A witness's cosigner key (name+id+key, as `witness init` prints); repeat "
            "for each. The latest checkpoint must carry --quorum of their cosignatures."
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(min=1, help="How many of the --witness keys must cosign. Default: all."),
    ] = None,
    witness_policy: Annotated[
        Path | None,
        typer.Option(help="A witness policy file (C2SP format) instead of --witness/--quorum."),
    ] = None,
) -> None:
    """Verify the whole ledger. Exit 0 valid, 1 invalid (first failure shown), 2 usage/I-O."""
    if db and bundle:
        fail("give either --db or --bundle, not both")
    if root_key is not None and not HEX64.fullmatch(root_key):
        fail("--root-key must be the root public key as 64 lower-case hex digits")
    policy = _witness_policy(witness or [], quorum, witness_policy)
    settings = settings_with(db)
    notes: list[str] = []  # information about the database, not failures
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
            from ledger.bundle_export import store_records
            from ocop_trace.label_repair import notes as label_notes
            from ocop_trace.ledger_setup import open_store, root_key_id
            from ocop_trace.rebuild import check_projection, has_projection

            pinned = pinned or root_key_id(settings)
            store = open_store(settings, signing=False, root_key=pinned)
            # A snapshot: entries appended while this runs are for the next verification.
            size = store.size()
            options = {"expected_size": size, "origin": origin or store.origin}
            if has_projection(store.engine):
                options["extra_checks"] = lambda: check_projection(store)
            records = store_records(store, size)
            notes = label_notes(store.engine) if has_projection(store.engine) else []
        report = _run_verify(
            records,
            pinned,
            show=not as_json,
            workers=workers,
            trusted_checkpoint=trusted,
            witnesses=policy,
            **options,
        )
    if as_json:
        print(json.dumps({**report.to_json(), "notes": notes}, ensure_ascii=False))
    else:
        print_report(report)
        for note in notes:
            out.print(f"note: {note}", highlight=False)
    raise typer.Exit(0 if report.ok else 1)


def _witness_policy(keys: list[str], quorum: int | None, path: Path | None) -> Policy | None:
    """The policy `verify` checks the latest checkpoint against, from the options."""
    if path is not None:
        if keys or quorum is not None:
            fail("give either --witness-policy or --witness/--quorum, not both")
        try:
            return parse_policy(path.read_bytes())
        except OSError as exc:
            fail(f"cannot read the witness policy {path}: {exc.strerror}")
        except LedgerError as exc:
            fail(f"the witness policy {path} is not valid: {exc}")
    if not keys:
        if quorum is not None:
            fail("--quorum needs the witnesses' keys: give --witness KEY for each")
        return None
    try:
        witnesses = [PolicyWitness(k.name, k) for k in map(parse_cosigner_vkey, keys)]
        return Policy.k_of_n(witnesses, len(keys) if quorum is None else quorum)
    except LedgerError as exc:
        fail(f"--witness/--quorum: {exc} (a key looks like name+1a2b3c4d+base64…)")


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


def rebuild_command(db: DbOption = None) -> None:
    """Recreate the producer, product, rating and batch tables from the ledger alone."""
    from ocop_trace.ledger_setup import open_store
    from ocop_trace.rebuild import rebuild

    settings = settings_with(db)
    with user_errors():
        count = rebuild(open_store(settings, signing=False))
    out.print(f"projection rebuilt from {count:,} ledger entries")


def repair_labels(
    serials: SerialsOption = None,
    mark_unheld: Annotated[
        bool,
        typer.Option(
            help="Mark the label sets still without serials as not held by this service: "
            "verify then reports them as information, and their serials scan as unknown"
        ),
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, kept with the mark")] = (
        "serials lost before they were stored"
    ),
    db: DbOption = None,
) -> None:
    """Repair label sets whose serials the service does not hold (a crash between the
    entry and its serials, or an offline set sent without them). Exit 0 when none is left,
    1 when some still lack their serials (listed), 2 on a usage or input error."""
    from ocop_trace import label_repair
    from ocop_trace.ledger_setup import open_store

    settings = settings_with(db)
    with user_errors():
        engine = open_store(settings, signing=False).engine
        if serials is not None:
            filled = label_repair.fill_in(engine, serial_sets(serials))
            out.print(f"serials stored for label sets {', '.join(map(str, filled)) or 'none'}")
        if mark_unheld:
            marked = label_repair.mark_unheld(engine, reason)
            out.print(
                f"marked as not held here: label sets {', '.join(map(str, marked)) or 'none'}"
            )
        left = label_repair.missing(engine)
    for state in left:
        out.print(
            f"label set {state.id} (batch {state.batch_id}): {state.count} serials not held; "
            "give them with --serials, or --mark-unheld",
            highlight=False,
        )
    if not left:
        out.print("every label set has its serials, or is marked as not held here")
    raise typer.Exit(1 if left else 0)
