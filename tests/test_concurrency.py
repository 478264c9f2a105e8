"""Concurrent appenders yield one linear chain; kill -9 loses nothing acknowledged."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import LedgerKit

from ledger import keys
from ledger.bundle_export import store_records
from ledger.statement import parse_entry
from ledger.verifier import verify

# The child appends signed statements one at a time and acknowledges each receipt on stdout
# only after append() returned; whatever it acknowledged must be in the ledger afterwards.
CHILD = textwrap.dedent("""
    import sys, json
    from ledger import keys
    from ledger.note import NoteSigner
    from ledger.statement import sign_statement
    from ledger.store import LedgerStore, open_engine
    url, root_id, producer_pem, ledger_pem, tag, count = sys.argv[1:7]
    producer = keys.private_key_from_pem(producer_pem.encode())
    ledger = keys.private_key_from_pem(ledger_pem.encode())
    store = LedgerStore(open_engine(url), origin="test.ocop-trace.local/ledger",
                        root_key_id=root_id,
                        signer=NoteSigner("test.ocop-trace.local/ledger", ledger),
                        checkpoint_interval=0.05)
    print("ready", flush=True)
    for i in range(int(count)):
        st = sign_statement("batch.registered", {"lot": f"{tag}-{i}"}, producer)
        receipt = store.append([st])[0]
        print(json.dumps([receipt.index, receipt.statement_hash]), flush=True)
""")


def start_child(kit: LedgerKit, tag: str, count: int) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-c",
        CHILD,
        kit.url,
        kit.root_key_id,
        keys.private_key_to_pem(kit.producer).decode(),
        keys.private_key_to_pem(kit.ledger_key).decode(),
        tag,
        str(count),
    ]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_ledger_valid(kit: LedgerKit) -> None:
    report = verify(
        store_records(kit.store), kit.root_key_id, workers=2, expected_size=kit.store.size()
    )
    assert report.ok, report.failure


@pytest.mark.slow
def test_four_processes_append_one_linear_chain(kit: LedgerKit) -> None:
    children = [start_child(kit, f"p{n}", 40) for n in range(4)]
    acknowledged: list[int] = []
    for child in children:
        stdout, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        acknowledged += [json.loads(line)[0] for line in stdout.splitlines()[1:]]
    # No gap and no duplicate: the indices handed out are exactly 3..162.
    assert sorted(acknowledged) == list(range(3, 3 + 160))
    assert kit.store.size() == 163
    assert_ledger_valid(kit)
    # Checkpoints were published by several processes concurrently; none may disagree.
    assert len(list(kit.store.checkpoints())) >= 2


@pytest.mark.slow
def test_sigkill_during_appends_loses_nothing_acknowledged(kit: LedgerKit) -> None:
    rng = random.Random(20261129)
    acknowledged: dict[int, str] = {}
    rounds = 12 if kit.url.startswith("sqlite") else 8
    for round_number in range(rounds):
        child = start_child(kit, f"k{round_number}", 10_000)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        stdout, _ = child.communicate(timeout=60)
        for line in stdout.splitlines():
            try:
                index, statement_hash = json.loads(line)
            except ValueError:
                continue  # the kill cut this acknowledgement off: it does not count
            acknowledged[index] = statement_hash
    assert acknowledged, "no append was acknowledged before the kills; the test proved nothing"
    size = kit.store.size()
    assert max(acknowledged) < size
    stored = {
        index: parse_entry(data).statement.hash().hex() for index, data in kit.store.entries()
    }
    assert len(stored) == size
    for index, statement_hash in acknowledged.items():
        assert stored[index] == statement_hash, f"acknowledged entry {index} changed or lost"
    assert_ledger_valid(kit)
    # The ledger still accepts appends after all those kills.
    child = start_child(kit, "after", 3)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert kit.store.size() == size + 3
