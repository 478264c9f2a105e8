"""`ocop-trace witness init|serve`, as plain typer-compatible functions and a sub-app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from ledger import keys
from ledger.cosignature import Cosigner, parse_cosigner_vkey
from ledger.errors import LedgerError
from ledger.policy import parse_policy
from ocop_trace.cli.common import user_errors
from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.monitor import monitor_command
from ocop_trace.witness.settings import WitnessSettings

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="The witness's folder. Default: $TRACE_WITNESS_DIR or ./witness."),
]
LOGS_HEADER = (
    "# Logs this witness cosigns, one per line: log <vkey of the log's checkpoint key>\n"
    "# The key name is the log's checkpoint origin (C2SP tlog-policy `log` lines).\n"
)


def settings_for(directory: Path | None) -> WitnessSettings:
    with user_errors():
        settings = WitnessSettings()
    return settings.model_copy(update={"dir": directory}) if directory else settings


def witness_init(
    name: Annotated[
        str | None,
        typer.Option(help="The witness's key name, a schema-less URL (needed the first time)."),
    ] = None,
    log: Annotated[
        list[str] | None,
        typer.Option("--log", help="A log to witness: the vkey of its checkpoint key. Repeatable."),
    ] = None,
    directory: DirOption = None,
) -> None:
    """Create the witness's key, vkey file and list of logs; add logs. Safe to re-run."""
    settings = settings_for(directory)
    with user_errors():
        vkey = init_witness(settings, name, log or [])
    typer.echo(vkey)


def init_witness(settings: WitnessSettings, name: str | None, logs: list[str]) -> str:
    """The work of `witness init`; returns the witness's vkey (what log operators pin)."""
    settings.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.key_file.exists():
        vkey = settings.vkey_file.read_text().strip()
        if name is not None and parse_cosigner_vkey(vkey).name != name:
            raise LedgerError(
                "this witness already has another name; a new name needs a new key",
                expected=parse_cosigner_vkey(vkey).name,
                found=name,
            )
    else:
        if name is None:
            raise LedgerError("a new witness needs --name", expected="--name NAME", found="none")
        cosigner = Cosigner(name, keys.generate())
        keys.save_private_key(cosigner.key, settings.key_file, settings.passphrase_bytes())
        vkey = cosigner.public_key.vkey
        settings.vkey_file.write_text(vkey + "\n")
    text = settings.logs_file.read_text() if settings.logs_file.exists() else LOGS_HEADER
    for entry in logs:
        if f"log {entry}\n" not in text:
            text += f"log {entry}\n"
    parse_policy(text, require_quorum=False)  # refuse a bad vkey before writing anything
    tmp = settings.logs_file.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, settings.logs_file)
    return vkey


def serve_witness(
    directory: DirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8700,
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness), GET / and GET /<origin hash>/checkpoint."""
    settings = settings_for(directory)
    with user_errors():
        app = create_witness_app(settings)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=30)


def witness_typer() -> typer.Typer:
    """The `witness` command group, for `app.add_typer(witness_typer(), name="witness")`."""
    group = typer.Typer(help="Run a C2SP tlog-witness for other logs.", no_args_is_help=True)
    group.command("init")(witness_init)
    group.command("serve")(serve_witness)
    return group


def main() -> None:
    """`python -m ocop_trace.witness init|serve|monitor`, until `ocop-trace` has them."""
    group = witness_typer()
    group.command("monitor")(monitor_command)
    group(prog_name="python -m ocop_trace.witness")
