"""`ocop-trace witness init|serve`, as plain typer-compatible functions and a sub-app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ocop_trace.witness.monitor import monitor_command
from ocop_trace.witness.settings import WitnessSettings
from ocop_trace.witness.setup import init_witness

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="The witness's folder. Default: $TRACE_WITNESS_DIR or ./witness."),
]


def user_errors() -> Any:
    # Imported when a command runs: the `ocop-trace` app imports this module to register it.
    from ocop_trace.cli.common import user_errors as errors

    return errors()


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


def serve_witness(
    directory: DirOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8700,
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness), GET / and GET /<origin hash>/checkpoint."""
    import uvicorn

    from ocop_trace.witness.app import create_witness_app

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
