"""The `ocop-trace` command line: the ledger's commands and the service's, on one app.

cli/
├── common.py   consoles, the --db option, errors that exit 2
├── ledger.py   init, keygen, sign, append, checkpoint, export, verify, rebuild,
│               repair-labels
├── service.py  serve, labels, labels-void, verify-label, user-add, demo
├── accounts.py users, tokens, keys and the secret
└── interop.py  export-epcis, import, export-sheet
"""

from __future__ import annotations

import typer

from ocop_trace.cli import accounts, interop, ledger, service
from ocop_trace.witness.cli import witness_typer
from ocop_trace.witness.monitor import monitor_command

app = typer.Typer(
    name="ocop-trace",
    help="Traceability for OCOP products: a signed, hash-chained ledger you can verify.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for name, command in (
    ("init", ledger.init),
    ("keygen", ledger.keygen),
    ("sign", ledger.sign),
    ("append", ledger.append),
    ("checkpoint", ledger.checkpoint),
    ("export", ledger.export),
    ("verify", ledger.verify_command),
    ("rebuild", ledger.rebuild_command),
    ("repair-labels", ledger.repair_labels),
    ("serve", service.serve),
    ("labels", service.labels_command),
    ("labels-void", service.labels_void_command),
    ("verify-label", service.verify_label),
    ("user-add", service.user_add),
    ("demo", service.demo),
    ("monitor", monitor_command),
    ("export-epcis", interop.export_epcis),
    ("import", interop.import_command),
    ("export-sheet", interop.export_sheet),
    ("user-disable", accounts.user_disable),
    ("user-enable", accounts.user_enable),
    ("user-tokens", accounts.user_tokens),
    ("user-revoke-tokens", accounts.user_revoke_tokens),
    ("key-revoke", accounts.key_revoke),
    ("key-rotate", accounts.key_rotate),
    ("rotate-secret", accounts.rotate_secret),
):
    app.command(name)(command)
app.add_typer(witness_typer(), name="witness")


def main() -> None:
    app()
