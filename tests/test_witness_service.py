"""The witness service over HTTP: tlog-witness statuses and bodies, its state, restarts, races."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient
from typer.testing import CliRunner
from witness_support import LOG, ORIGIN, Tree, add_checkpoint_body, free_port

from ledger.cosignature import parse_cosigner_vkey
from ledger.keys import public_bytes
from ledger.note import NoteSigner, format_verifier_key, open_note
from ledger.policy import Policy, PolicyWitness, check_quorum
from ocop_trace.witness.app import SIZE_TYPE, create_witness_app, origin_hash
from ocop_trace.witness.cli import init_witness, witness_typer
from ocop_trace.witness.settings import WitnessSettings

NAME = "witness.example/w1"
TREE = Tree.of(300)


def log_vkey(signer: NoteSigner = LOG) -> str:
    return format_verifier_key(signer.name, public_bytes(signer.key))


def make_witness(directory: Path, *logs: str) -> WitnessSettings:
    settings = WitnessSettings(dir=directory)
    init_witness(settings, NAME, list(logs) or [log_vkey()])
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> WitnessSettings:
    return make_witness(tmp_path / "witness")


@pytest.fixture
def client(settings: WitnessSettings) -> Iterator[TestClient]:
    with TestClient(create_witness_app(settings)) as c:
        yield c


def post(client: TestClient | httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/add-checkpoint", content=body)


def vkey(settings: WitnessSettings) -> str:
    return settings.vkey_file.read_text().strip()


# -- the protocol --------------------------------------------------------------------------
def test_cosigns_and_the_line_verifies(client: TestClient, settings: WitnessSettings) -> None:
    answer = post(client, TREE.body(0, 10))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith(f"\u2014 {NAME} ")
    assert answer.text.count("\n") == 1
    assert answer.text.endswith("\n")
    # As the spec suggests a client do: append the lines to the checkpoint and open it.
    note = TREE.note(10) + answer.text
    assert open_note(note, [LOG.verifier()]).text == TREE.text(10)
    witness = PolicyWitness("w1", parse_cosigner_vkey(vkey(settings)))
    assert check_quorum(note, Policy.k_of_n([witness], 1)).met


def test_409_carries_the_held_size(client: TestClient) -> None:
    assert post(client, TREE.body(0, 10)).status_code == 200
    answer = post(client, TREE.body(5, 20))
    assert answer.status_code == 409
    assert answer.headers["content-type"] == SIZE_TYPE
    assert answer.content == b"10\n"
    assert post(client, TREE.body(10, 20)).status_code == 200


@pytest.mark.parametrize(
    ("make_body", "status"),
    [
        (lambda: TREE.body(10, 20, proof=TREE.proof(10, 20)[:-1]), 422),
        (lambda: Tree.of(30, b"fork").body(10, 20), 422),
        (lambda: TREE.body(20, 10), 400),
        (lambda: b"old 10\n" + TREE.note(20).encode(), 400),
        (lambda: TREE.body(10, 20).replace(b"old 10", b"old 010"), 400),
    ],
)
def test_refusals(client: TestClient, make_body: object, status: int) -> None:
    assert post(client, TREE.body(0, 10)).status_code == 200
    answer = post(client, make_body())  # type: ignore[operator]
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert client.get("/").json()["logs"][0]["size"] == 10  # nothing changed


def test_unknown_origin_is_404_and_a_foreign_key_403(client: TestClient) -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    note = TREE.note(10, other, "other.example/log")
    assert post(client, add_checkpoint_body(0, [], note)).status_code == 404
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    assert post(client, add_checkpoint_body(0, [], TREE.note(10, impostor))).status_code == 403


def test_a_refused_fork_is_kept_as_evidence(client: TestClient, settings: WitnessSettings) -> None:
    assert post(client, TREE.body(0, 10)).status_code == 200
    fork = Tree.of(30, b"fork").body(10, 20)
    assert post(client, fork).status_code == 422
    store = client.app.state.store  # type: ignore[attr-defined]
    evidence = store.evidence(ORIGIN)
    assert [body for _, body in evidence] == [fork]
    assert "consistency proof fails" in evidence[0][0]


def test_size_limits(client: TestClient) -> None:
    assert post(client, b"old 0\n\n" + b"x" * (70 * 1024)).status_code == 413
    assert client.get("/add-checkpoint").status_code == 405


def test_status_and_monitoring_checkpoint(client: TestClient, settings: WitnessSettings) -> None:
    status = client.get("/").json()
    assert status["vkey"] == vkey(settings)
    assert status["name"] == NAME
    assert status["logs"] == [
        {"origin": ORIGIN, "origin_hash": origin_hash(ORIGIN), "size": None, "timestamp": None}
    ]
    assert client.get(f"/{origin_hash(ORIGIN)}/checkpoint").status_code == 404
    cosignature = post(client, TREE.body(0, 10)).text
    served = client.get(f"/{origin_hash(ORIGIN)}/checkpoint")
    assert served.status_code == 200
    assert served.text == TREE.note(10) + cosignature
    assert client.get("/").json()["logs"][0]["size"] == 10
    assert client.get(f"/{'0' * 64}/checkpoint").status_code == 404


def test_state_survives_a_new_app(settings: WitnessSettings) -> None:
    with TestClient(create_witness_app(settings)) as first:
        assert post(first, TREE.body(0, 10)).status_code == 200
    with TestClient(create_witness_app(settings)) as second:
        assert post(second, TREE.body(0, 10)).content == b"10\n"


def test_a_key_that_does_not_match_its_vkey_is_refused(settings: WitnessSettings) -> None:
    other = make_witness(settings.dir.parent / "other")
    settings.vkey_file.write_text(other.vkey_file.read_text())
    with pytest.raises(Exception, match="does not match"):
        create_witness_app(settings)


# -- real processes: kill -9 and concurrent forks -------------------------------------------
def start(settings: WitnessSettings, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "ocop_trace.witness", "serve", "--dir", str(settings.dir)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(process.stderr.read().decode() if process.stderr else "no start")


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_cosignature(settings: WitnessSettings) -> None:
    port = free_port()
    acknowledged = 0
    process = start(settings, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            # Killed a random few milliseconds after a random acknowledged size, so the kill
            # lands part-way whatever the machine's speed (a timer alone once fired after
            # all 299 on a quiet machine), and at any moment of a request.
            kill_after = random.randint(20, 250)
            killer = threading.Timer(
                random.uniform(0.0, 0.005), os.kill, (process.pid, signal.SIGKILL)
            )
            for size in range(1, 300):
                if size == kill_after:
                    killer.start()
                try:
                    answer = post(http, TREE.body(acknowledged, size))
                except httpx.TransportError:
                    break
                assert answer.status_code == 200, answer.text
                acknowledged = size
            killer.join()
    finally:
        process.kill()
        process.wait()
    assert 0 < acknowledged < 299  # killed part-way
    process = start(settings, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            held = http.get("/").json()["logs"][0]["size"]
            # The request in flight may or may not have been saved; nothing acknowledged is lost.
            assert held in (acknowledged, acknowledged + 1)
            assert post(http, TREE.body(max(held - 1, 0), 299)).content == f"{held}\n".encode()
            fork = Tree(TREE.leaves[: held - 1]).grown(6, b"fork")  # rewrites the last leaf
            assert post(http, fork.body(held, held + 5)).status_code == 422
            assert post(http, TREE.body(held, 299)).status_code == 200
    finally:
        process.kill()
        process.wait()


def race(clients: list[httpx.Client], bodies: list[bytes]) -> list[httpx.Response]:
    """Send bodies[i] to clients[i], all released at the same moment."""
    barrier = threading.Barrier(len(clients))
    answers: list[httpx.Response | None] = [None] * len(clients)

    def send(side: int) -> None:
        barrier.wait()
        answers[side] = post(clients[side], bodies[side])

    threads = [threading.Thread(target=send, args=(side,)) for side in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [a for a in answers if a is not None]


@pytest.mark.slow
def test_two_processes_never_cosign_two_forks(settings: WitnessSettings) -> None:
    """Two servers on one database, sent two forks at the same moment: one is cosigned."""
    ports = [free_port(), free_port()]
    processes = [start(settings, port) for port in ports]
    witness = PolicyWitness("w1", parse_cosigner_vkey(vkey(settings)))
    policy = Policy.k_of_n([witness], 1)
    try:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        tree = TREE
        assert post(clients[0], tree.body(0, 3)).status_code == 200
        size = 3
        for round_ in range(25):
            forks = [
                Tree(tree.leaves[:size]).grown(4, b"%d-%d-" % (round_, side)) for side in (0, 1)
            ]
            # Odd rounds: both forks to one process (its threads race); even: one each.
            targets = [clients[0], clients[1 - round_ % 2]]
            answers = race(targets, [fork.body(size, size + 4) for fork in forks])
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [200, 409], statuses
            winner = next(side for side in (0, 1) if answers[side].status_code == 200)
            tree, size = forks[winner], size + 4
            note = tree.note(size) + answers[winner].text
            assert check_quorum(note, policy).met
        held = clients[0].get("/").json()["logs"][0]["size"]
        assert held == size
    finally:
        for c in clients:
            c.close()
        for p in processes:
            p.kill()
            p.wait()


def test_init_command(tmp_path: Path) -> None:
    runner = CliRunner()
    group = witness_typer()
    folder = str(tmp_path / "w")
    refused = runner.invoke(group, ["init", "--dir", folder])
    assert refused.exit_code == 2
    assert "needs --name" in refused.output
    first = runner.invoke(group, ["init", "--dir", folder, "--name", NAME, "--log", log_vkey()])
    assert first.exit_code == 0, first.output
    vkey_line = first.output.strip()
    assert parse_cosigner_vkey(vkey_line).name == NAME
    other = log_vkey(NoteSigner("other.example/log", Ed25519PrivateKey.generate()))
    again = runner.invoke(group, ["init", "--dir", folder, "--log", other, "--log", log_vkey()])
    assert (again.exit_code, again.output.strip()) == (0, vkey_line)  # same key, kept
    logs = (tmp_path / "w" / "logs.policy").read_text()
    assert logs.count(f"log {log_vkey()}\n") == 1
    assert f"log {other}\n" in logs
    renamed = runner.invoke(group, ["init", "--dir", folder, "--name", "another.example/w"])
    assert renamed.exit_code == 2
    bad = runner.invoke(group, ["init", "--dir", folder, "--log", "not-a-vkey"])
    assert bad.exit_code == 2
    assert (tmp_path / "w" / "logs.policy").read_text() == logs  # nothing written
    assert oct((tmp_path / "w" / "witness.pem").stat().st_mode & 0o777) == "0o600"
