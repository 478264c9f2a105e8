"""Setting a witness up: its key, the vkey that names it, the logs it witnesses."""

from __future__ import annotations

import os

from ledger import keys
from ledger.cosignature import Cosigner, parse_cosigner_vkey
from ledger.errors import LedgerError
from ledger.policy import parse_policy
from ocop_trace.witness.settings import WitnessSettings

LOGS_HEADER = (
    "# Logs this witness cosigns, one per line: log <vkey of the log's checkpoint key>\n"
    "# The key name is the log's checkpoint origin (C2SP tlog-policy `log` lines).\n"
)


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
