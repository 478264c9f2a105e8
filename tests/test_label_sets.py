"""Label sets and their serials stay together: a SIGKILL while issuing, offline label sets sent
with (or without) their serials, and `repair-labels` for ledgers already missing some."""

from __future__ import annotations

import inspect
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from servers import seed
from sqlalchemy import func, select, text
from support import BATCH, CLI, PRODUCER, PRODUCT, RATING, Api, issued_serials
from test_api import assert_error
from typer.testing import CliRunner

from ledger import keys
from ledger.bundle_export import store_records
from ledger.statement import sign_statement
from ledger.store import ENTRY
from ledger.verifier import verify
from ocop_trace.cli import app as cli
from ocop_trace.ledger_setup import open_service
from ocop_trace.models import BatchCreate
from ocop_trace.rebuild import check_projection
from ocop_trace.serials import Serial, new_serial, parse_canonical, serial_set_commitment

runner = CliRunner()

# Issues label sets in a loop and says so after each; killed at a random moment.
CHILD = textwrap.dedent("""
    import inspect, sys
    from ocop_trace.accounts import Principal
    from ocop_trace.ledger_setup import open_service
    from ocop_trace.settings import Settings
    url, key_dir, batch, producer = sys.argv[1:5]
    service = open_service(Settings(database_url=url, key_dir=key_dir))
    who = Principal(None, "cli", "producer", producer)
    modern = "request" in inspect.signature(service.issue_labels).parameters
    print("ready", flush=True)
    while True:
        if modern:
            from ocop_trace.models import LabelIssue
            service.issue_labels(who, batch, LabelIssue(count=3000), "http://x")
        else:  # the code before issue 9, which stored the serials after the entry
            service.issue_labels(who, batch, producer, 3000)
        print("issued", flush=True)
""")


@pytest.mark.slow
def test_sigkill_while_issuing_labels_never_leaves_a_set_without_its_serials(
    db_url: str, tmp_path: Path
) -> None:
    settings = seed(db_url, tmp_path / "keys")
    service = open_service(settings)
    operator = CLI.__class__(None, "cli", "producer", PRODUCER["id"])
    batch = BatchCreate.model_validate(BATCH)
    if "producer_id" in inspect.signature(service.register_batch).parameters:
        # The code before issue 9, which this test must fail on, took the producer apart.
        service.register_batch(operator, batch, PRODUCER["id"])  # type: ignore[call-arg]
    else:
        service.register_batch(operator, batch)
    rng = random.Random(11)
    issued = 0
    for _ in range(8):
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                db_url,
                str(settings.key_dir),
                BATCH["id"],
                PRODUCER["id"],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read()  # type: ignore[union-attr]
        time.sleep(rng.uniform(0.3, 2.0))
        os.kill(child.pid, signal.SIGKILL)
        stdout, _ = child.communicate(timeout=60)
        issued += stdout.count("issued")
    with service.engine.connect() as conn:
        sets = conn.execute(
            select(func.count()).select_from(ENTRY).where(ENTRY.c.kind == "labels.issued")
        ).scalar_one()
    assert sets >= 3, "too few label sets were issued for the kills to prove anything"
    failure = check_projection(service.store)  # what `verify --db` checks besides the ledger
    assert failure is None, failure
    report = verify(store_records(service.store), service.store.root_key_id, workers=1)
    assert report.ok, report.failure
    service.engine.dispose()


def _offline_key(api: Api) -> keys.Ed25519PrivateKey:  # type: ignore[name-defined]
    key = keys.generate()
    public = keys.key_id(keys.public_bytes(key))
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/ratings", RATING, "council")
    api.post(
        "/api/v1/producers/htx-tai-hoan/keys", {"key_id": public, "name": "offline"}, "council"
    )
    assert api.post("/api/v1/batches", BATCH, "producer").status_code == 201
    return key


def _label_set(key: object, count: int) -> tuple[dict[str, object], list[str]]:
    serials = [new_serial() for _ in range(count)]
    body = {
        "batch_id": BATCH["id"],
        "count": count,
        "commitment": serial_set_commitment(serials).hex(),
    }
    statement = sign_statement("labels.issued", body, key).to_json()  # type: ignore[arg-type]
    return statement, [s.canonical for s in serials]


def test_an_offline_label_set_is_refused_without_its_serials(api: Api) -> None:
    key = _offline_key(api)
    statement, serials = _label_set(key, 3)
    size = api.service.store.size()
    error = assert_error(
        api.post("/api/v1/statements", [statement], "producer"), 422, "invalid_input"
    )
    assert error["field"] == "serials"
    assert "needs its 3 serials" in error["message"]
    wrong, _ = _label_set(key, 3)
    for body, status in (
        ({"statements": [statement], "serials": [serials[:2]]}, 422),  # not its root
        ({"statements": [statement], "serials": [serials, serials[:1]]}, 422),  # an extra set
        ({"statements": [statement, wrong], "serials": [serials]}, 422),  # one set lacks its own
        ({"statements": [statement], "serials": [["not a serial"]]}, 422),
    ):
        assert api.post("/api/v1/statements", body, "producer").status_code == status, body
    assert api.service.store.size() == size, "a refused label set reached the ledger"
    assert check_projection(api.service.store) is None


def test_an_offline_label_set_with_its_serials_is_kept_whole(api: Api) -> None:
    key = _offline_key(api)
    statement, serials = _label_set(key, 3)
    # Serials may come in their printed form too (groups, check character).
    printed = [serials[0], *(_parse(s).human for s in serials[1:])]
    answer = api.post(
        "/api/v1/statements", {"statements": [statement], "serials": [printed]}, "producer"
    )
    assert answer.status_code == 201, answer.text
    assert sorted(issued_serials(api)) == sorted(serials)
    assert api.client.get(f"/l/{serials[0]}").json()["verdict"] == "genuine"
    assert check_projection(api.service.store) is None
    again = api.post("/api/v1/statements", [statement], "producer")  # a resend needs none
    assert again.status_code == 201
    assert again.json()["receipts"][0]["duplicate"] is True
    # A serial already issued cannot be claimed by a second set.
    reused = sign_statement(
        "labels.issued",
        {
            "batch_id": BATCH["id"],
            "count": 1,
            "commitment": serial_set_commitment([_parse(serials[0])]).hex(),
        },
        key,
    ).to_json()
    taken = api.post(
        "/api/v1/statements", {"statements": [reused], "serials": [serials[:1]]}, "producer"
    )
    assert_error(taken, 409, "conflict")


def _parse(serial: str) -> Serial:
    return parse_canonical(serial)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_repair_labels_fills_in_or_marks_sets_already_missing_serials(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACE_DATABASE_URL", api.settings.database_url)
    monkeypatch.setenv("TRACE_KEY_DIR", str(api.settings.key_dir))
    key = _offline_key(api)
    # The state of older ledgers: label sets appended with no serials stored.
    first, first_serials = _label_set(key, 2)
    second, _ = _label_set(key, 4)
    from ledger.statement import statement_from_json

    api.service.store.append([statement_from_json(first), statement_from_json(second)])
    invalid = runner.invoke(cli, ["verify", "--workers", "1"])
    assert invalid.exit_code == 1
    assert "label_serials" in invalid.output
    listed = runner.invoke(cli, ["repair-labels"])
    assert listed.exit_code == 1
    assert listed.output.count("serials not held") == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert runner.invoke(cli, ["repair-labels", "--serials", str(bad)]).exit_code == 2
    file = tmp_path / "serials.jsonl"
    file.write_text(json.dumps(first_serials) + "\n")
    filled = runner.invoke(cli, ["repair-labels", "--serials", str(file)])
    assert filled.exit_code == 1, filled.output  # the second set is still missing
    assert api.client.get(f"/l/{first_serials[0]}").json()["verdict"] == "genuine"
    marked = runner.invoke(cli, ["repair-labels", "--mark-unheld"])
    assert marked.exit_code == 0, marked.output
    valid = runner.invoke(cli, ["verify", "--workers", "1", "--json"])
    assert valid.exit_code == 0, valid.output
    report = json.loads(valid.output)
    assert report["ok"] is True
    assert len(report["notes"]) == 1
    assert "not held by this service" in report["notes"][0]
    # Marking hides nothing else: a serial edited behind the ledger's back still fails.
    with api.service.engine.begin() as conn:
        conn.execute(
            text("UPDATE label_serial SET serial = '0000000000000000' WHERE serial = :s"),
            {"s": first_serials[0]},
        )
    assert runner.invoke(cli, ["verify", "--workers", "1"]).exit_code == 1
