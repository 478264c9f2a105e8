"""`python -m ocop_trace.witness init|serve`, until the lead wires `ocop-trace witness`."""

from ocop_trace.witness.cli import witness_typer

witness_typer()(prog_name="ocop-trace witness")
