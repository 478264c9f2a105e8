"""Issue 14's attack end to end: the operator rolls the database back to before a recall,
appends a longer future re-signed with the keys the server holds, and signs a checkpoint.
The witnesses refuse it, `verify` with the witness policy fails, the monitor raises the
alarm, and the pages say the ledger is not confirmed by independent witnesses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pages import link, scan
from support import Api, issue_labels, issued_serials
from test_witnessed_pages import _cosign, _witnessed
from typer.testing import CliRunner
from witness_support import serving

from ledger.bundle_export import export_bundle
from ledger.policy import parse_policy
from ocop_trace.cli import app as cli
from ocop_trace.ledger_setup import root_key_id
from ocop_trace.witness.monitor import monitor

NOT_CONFIRMED = "Chưa được nhân chứng độc lập xác nhận"


def _verify(api: Api, bundle: Path, *options: str) -> tuple[int, dict[str, object]]:
    export_bundle(api.service.store, bundle)
    root = root_key_id(api.settings)
    result = CliRunner().invoke(
        cli, ["verify", "--bundle", str(bundle), "--root-key", root, "--json", *options]
    )
    return result.exit_code, json.loads(result.stdout)


def _monitor(api: Api, state: Path, vkeys: list[str]) -> tuple[int, str]:
    said: list[str] = []
    with serving(api.client.app) as url:  # the whole app: its /checkpoint carries cosignatures
        code = monitor(url, vkeys, 2, state, root_key=root_key_id(api.settings), echo=said.append)
    return code, "\n".join(said)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rollback_and_resign_is_caught_by_witnesses_verify_monitor_and_pages(
    api: Api, tmp_path: Path
) -> None:
    issue_labels(api, 1)
    database = Path(api.settings.database_url.removeprefix("sqlite:///"))
    backup = tmp_path / "before-recall.db"
    with sqlite3.connect(database) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)

    # The honest history: the batch is recalled, and both witnesses cosign the checkpoint.
    api.post("/api/v1/batches/mien-2026-001/recall", {"reason": "Nấm mốc"}, "producer")
    api.service.store.publish_checkpoint()
    witnessed, policy_file = _witnessed(api, tmp_path / "witnesses")
    assert _cosign(tmp_path / "witnesses", policy_file, api) == 2
    vkeys = [w.key.vkey for w in parse_policy(policy_file.read_bytes()).witnesses]
    honest_size = api.service.store.size()
    witness_options = [o for key in vkeys for o in ("--witness", key)]
    code, report = _verify(api, tmp_path / "honest.jsonl", *witness_options, "--quorum", "2")
    assert code == 0, report
    assert report["witnessed_by"] == [key.split("+")[0] for key in vkeys]  # the keys' names
    state = tmp_path / "monitor.json"
    assert _monitor(witnessed, state, vkeys) == (0, "")
    serial_page = link(issued_serials(api)[0])
    _, page, _ = scan(witnessed, serial_page)
    assert page.verdict == "recalled"
    assert NOT_CONFIRMED not in page.fields["text:checked"]

    # The attack: restore the copy from before the recall, write a longer future, re-sign.
    with sqlite3.connect(backup) as src, sqlite3.connect(database) as dst:
        src.backup(dst)
    for step in ("packing", "shipping", "receiving", "inspecting"):
        api.post(
            "/api/v1/batches/mien-2026-001/events",
            {"biz_step": step, "at": "2026-11-01T02:00:00Z", "place": "Tài Hoan"},
            "producer",
        )
    api.service.store.publish_checkpoint()
    assert api.service.store.size() > honest_size

    # The witnesses refuse to cosign it...
    assert _cosign(tmp_path / "witnesses", policy_file, api) == 0
    # ...so verify with the policy fails, though the ledger alone is valid,
    code, report = _verify(api, tmp_path / "forged.jsonl", *witness_options)
    assert code == 1
    failure = report["failure"]
    assert isinstance(failure, dict)
    assert failure["reason"] == "witness_quorum"
    assert _verify(api, tmp_path / "forged-alone.jsonl")[0] == 0
    # the monitor that remembers the honest log raises the alarm,
    code, said = _monitor(witnessed, state, vkeys)
    assert code == 1
    assert said.startswith("ALARM"), said
    # and the page no longer says the ledger was confirmed, nor "recalled" as if witnessed.
    # The server that watched it happen cannot prove the entries it remembers (no 4xx/5xx);
    # one restarted on the restored database has no cosigned checkpoint to rest on.
    restarted, _ = _witnessed(api, tmp_path / "witnesses")
    for app in (witnessed, restarted):
        _, page, _ = scan(app, serial_page)
        assert NOT_CONFIRMED in page.fields["text:checked"]
        assert page.verdict != "recalled"  # the forged ledger hides it: only witnesses tell


def test_verify_witness_options_are_checked(tmp_path: Path) -> None:
    runner = CliRunner()
    bundle = tmp_path / "none.jsonl"
    cases = [
        (["--quorum", "1"], "--quorum needs the witnesses' keys"),
        (["--witness", "not-a-key"], "a key looks like name+1a2b3c4d+base64"),
        (["--witness-policy", str(tmp_path / "missing.txt")], "cannot read the witness policy"),
    ]
    for options, message in cases:
        result = runner.invoke(cli, ["verify", "--bundle", str(bundle), *options])
        assert result.exit_code == 2, result.output
        assert message in result.stderr, result.stderr
