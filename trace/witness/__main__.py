"""`python -m ocop_trace.witness init|serve|monitor`, until the lead wires `ocop-trace`."""

from ocop_trace.witness.cli import main

main()
