"""`make bench`: ledger throughput and proof costs, each as a ratio to a baseline of the same run.

The machines are shared and noisy, so every figure is compared with a baseline measured
moments before in the same process (raw Ed25519 verification, hashlib), never with a
number from another day. Results go to stdout as a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign_open
from sqlalchemy import insert, update

from ledger import keys, merkle
from ledger.authority import KEY_REGISTERED
from ledger.note import (
    Checkpoint,
    NoteSigner,
    format_checkpoint,
    note_text,
    parse_checkpoint,
    sign_note,
)
from ledger.statement import GENESIS_PREV_HASH, Statement, make_entry, sign_statement
from ledger.store import CHECKPOINT, ENTRY, HEAD, NODE, LedgerStore, open_engine

ORIGIN = "bench.ocop-trace.local/ledger"
ROWS: list[tuple[str, str, str, str]] = []


def record(name: str, measured: str, target: str, ok: bool) -> None:
    ROWS.append((name, measured, target, "yes" if ok else "NO"))
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {measured} (target {target})", flush=True)


_SAMPLE: list[tuple[bytes, bytes, bytes]] = []


def raw_verify_rate(seconds: float = 2.0) -> float:
    """Single-core libsodium Ed25519 verifications per second through PyNaCl, nothing else:
    the signatures of the benchmark ledger's own statements when one was written (same
    message sizes), else a 400-byte message."""
    sample = [(public, signature + message) for public, signature, message in _SAMPLE] or [
        (public, signature + message) for public, signature, message in [_one_signature()]
    ]
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for public, signed in sample:
            crypto_sign_open(signed, public)
        count += len(sample)
    return count / (time.perf_counter() - start)


def raw_parallel_rate(processes: int, seconds: float = 2.0) -> float:
    """libsodium verifications per second of `processes` processes verifying at once: what
    that many cores deliver now. On idle cores it is the single-core rate × processes; on a
    shared machine it also feels the neighbours the verifier's workers feel."""
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.map(raw_verify_rate, [seconds] * processes))


def _one_signature() -> tuple[bytes, bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    message = os.urandom(400)
    return keys.public_bytes(key), key.sign(message), message


def sample_signatures(path: Path, limit: int = 2000) -> None:
    """Keep (public key, signature, signing input) of the first statements of a bundle."""
    from ledger.statement import parse_entry

    _SAMPLE.clear()
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b'{"index":'):
                entry = parse_entry(line.rstrip(b"\n"))
                statement = entry.statement
                _SAMPLE.append(
                    (bytes.fromhex(statement.key_id), statement.signature(), entry.signing_input())
                )
                if len(_SAMPLE) >= limit:
                    return


class Actors:
    def __init__(self) -> None:
        self.root, self.ledger, self.council, self.producer = (keys.generate() for _ in range(4))
        self.root_id = keys.key_id(keys.public_bytes(self.root))

    def registration(
        self,
        signer: Ed25519PrivateKey,
        key: Ed25519PrivateKey,
        role: str,
        kinds: list[str],
        may_grant: list[str] | None = None,
    ) -> Statement:
        body = {
            "key_id": keys.key_id(keys.public_bytes(key)),
            "role": role,
            "name": ORIGIN,
            "kinds": kinds,
            "may_grant": may_grant or [],
            "subject": role,
        }
        return sign_statement(KEY_REGISTERED, body, signer)

    def genesis(self) -> list[Statement]:
        return [
            self.registration(self.root, self.ledger, "ledger", []),
            self.registration(
                self.root, self.council, "council", [KEY_REGISTERED], may_grant=["batch.registered"]
            ),
            self.registration(self.council, self.producer, "producer", ["batch.registered"]),
        ]

    def batches(self, start: int, count: int) -> list[Statement]:
        return [
            sign_statement(
                "batch.registered",
                {
                    "batch_id": f"b-{i}",
                    "product_id": "mien-dong-tai-hoan",
                    "lot": f"L{i:08d}",
                    "produced_on": "2026-01-04",
                    "quantity": 1200,
                    "unit": "kg",
                    "origin": "thôn Chè Cọ, xã Côn Minh, tỉnh Thái Nguyên",
                },
                self.producer,
                "2026-01-05T09:00:00Z",
            )
            for i in range(start, start + count)
        ]


def write_bundle(actors: Actors, size: int, path: Path) -> None:
    """An honest ledger of `size` entries with a checkpoint every 10,000, straight to a file.

    The statements are signed by a process per core (signing is most of the cost; ten
    million entries for verify_at_size.py), the chain of entries made here in order."""
    signer = NoteSigner(ORIGIN, actors.ledger)
    tree = merkle.CompactRange()
    prev = GENESIS_PREV_HASH
    genesis = actors.genesis()
    seed = keys.private_seed(actors.producer)
    jobs = ((seed, start, min(2000, size - start)) for start in range(len(genesis), size, 2000))
    with path.open("wb") as out, multiprocessing.get_context("fork").Pool() as pool:
        header = {
            "format": "ocop-trace-bundle/1",
            "origin": ORIGIN,
            "root_key_id": actors.root_id,
            "size": size,
            "exported_at": "x",
        }
        out.write(json.dumps(header).encode() + b"\n")
        done = 0
        for statements in itertools.chain([genesis], pool.imap(_signed_batches, jobs, 4)):
            for statement in statements[: size - done]:
                entry = make_entry(done, prev, "2026-01-05T09:00:01Z", statement)
                out.write(entry.data + b"\n")
                tree.append(merkle.leaf_hash(entry.data))
                prev = entry.hash.hex()
                done += 1
                if done % 10_000 == 0 or done == size:
                    note = sign_note(
                        format_checkpoint(Checkpoint(ORIGIN, done, tree.root())), [signer]
                    )
                    out.write(json.dumps({"checkpoint": note}).encode() + b"\n")


def _signed_batches(job: tuple[bytes, int, int]) -> list[Statement]:
    seed, start, count = job
    actors = Actors.__new__(Actors)  # only the producer signs batches
    actors.producer = Ed25519PrivateKey.from_private_bytes(seed)
    return actors.batches(start, count)


VERIFY_CHILD = """
import json, resource, sys, time
from pathlib import Path
from ledger.bundle import read_header, read_records
from ledger.bundle_export import store_records
from ledger.store import LedgerStore, open_engine
from ledger.verifier import verify
source, workers, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = time.perf_counter()
if source.startswith(("sqlite:", "postgresql")):  # `verify --db`, short of the projection
    store = LedgerStore(open_engine(source), origin="-", root_key_id=root)
    size = store.size()
    records, origin = store_records(store, size), None
else:
    header = read_header(Path(source))
    records, size, origin = read_records(Path(source)), header.size, header.origin
report = verify(records, root, workers=workers, expected_size=size, origin=origin)
seconds = time.perf_counter() - start
# VmHWM is this process's own peak; ru_maxrss can carry the peak of the process that
# started it (Linux keeps the larger across exec).
status = Path("/proc/self/status")
lines = status.read_text().splitlines() if status.exists() else []
hwm = [line for line in lines if line.startswith("VmHWM")]
self_kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ok": report.ok, "entries": report.entries, "seconds": seconds,
                  "self_kb": self_kb,
                  "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def verify_in_child(source: str, workers: int, root: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", VERIFY_CHILD, source, str(workers), root],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    if not result["ok"]:
        raise SystemExit(f"benchmark ledger did not verify: {done.stdout}")
    return result


def bundle_to_database(path: Path, url: str, root_key_id: str) -> None:
    """The bundle's entries and checkpoints as the store keeps them (no Merkle nodes or
    keys: verification reads neither), for `verify --db` on the same ledger; SQLite, or
    PostgreSQL through COPY (ten million rows in minutes)."""
    store = LedgerStore(open_engine(url), origin=ORIGIN, root_key_id=root_key_id)
    store.create_schema()
    columns = ("idx", "entry_hash", "statement_hash", "kind", "key_id", "integrated_at", "data")
    size = 0
    with store.engine.begin() as conn, path.open("rb") as handle:
        handle.readline()
        copying = store.engine.dialect.name == "postgresql"
        if copying:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            copy_into = f"COPY {ENTRY.name} ({', '.join(columns)}) FROM STDIN"
        rows: list[tuple[object, ...]] = []

        def flush() -> None:
            if copying:
                with cursor.copy(copy_into) as copy:
                    for row in rows:
                        copy.write_row(row)
            elif rows:
                conn.execute(insert(ENTRY), [dict(zip(columns, row, strict=True)) for row in rows])
            rows.clear()

        for line in handle:
            data = line.rstrip(b"\n")
            if data.startswith(b'{"checkpoint":'):
                note = json.loads(data)["checkpoint"]
                root = parse_checkpoint(note_text(note)).root_hash
                conn.execute(
                    insert(CHECKPOINT),
                    [
                        {
                            "size": size,
                            "root": root,
                            "note": note,
                            "created_at": "2026-01-05T09:00:02Z",
                        }
                    ],
                )
                continue
            statement = orjson.loads(data)["statement"]
            rows.append(
                (
                    size,
                    hashlib.sha256(data).digest(),
                    hashlib.sha256(data[data.index(b',"statement":') + 13 : -1]).digest(),
                    statement["kind"],
                    statement["key_id"],
                    "2026-01-05T09:00:01Z",
                    data,
                )
            )
            size += 1
            if len(rows) == 20_000:
                flush()
        flush()
        conn.execute(update(HEAD).values(size=size))
    store.engine.dispose()


def median_index(values: list[float]) -> int:
    return sorted(range(len(values)), key=lambda i: values[i])[len(values) // 2]


def bench_verify(actors: Actors, work: Path, size: int, workers: int, rounds: int) -> None:
    small, large = work / "small.jsonl", work / "large.jsonl"
    database = f"sqlite:///{work / 'verify.db'}"
    root = actors.root_id
    t0 = time.perf_counter()
    write_bundle(actors, size, large)
    write_bundle(actors, size // 4, small)
    bundle_to_database(large, database, root)
    print(
        f"      (wrote {size:,} + {size // 4:,} signed entries and a SQLite copy of the first "
        f"in {time.perf_counter() - t0:.0f}s)"
    )
    sample_signatures(large)
    # Alternate baseline and measurements and keep the median ratio: on a shared machine
    # the speed drifts from minute to minute, and a ratio of neighbours cancels the drift.
    ratios, rates, raws, singles, db_ratios, db_rates = [], [], [], [], [], []
    peak = db_peak = 0.0
    for _ in range(rounds):
        before, single = raw_parallel_rate(workers), raw_verify_rate()
        big = verify_in_child(str(large), workers, root)
        from_db = verify_in_child(database, workers, root)
        raw = (before + raw_parallel_rate(workers)) / 2  # the baseline on both sides
        rate = big["entries"] / big["seconds"]
        ratios.append(rate / raw)
        rates.append(rate)
        raws.append(raw)
        singles.append(single)
        db_rates.append(from_db["entries"] / from_db["seconds"])
        db_ratios.append(db_rates[-1] / rate)
        peak = max(peak, big["self_kb"] / 1024, big["children_kb"] / 1024)
        db_peak = max(db_peak, from_db["self_kb"] / 1024, from_db["children_kb"] / 1024)
    middle = median_index(ratios)
    record(
        f"verify {size:,} entries, {workers} workers (median of {rounds})",
        f"{rates[middle]:,.0f} entries/s = {ratios[middle]:.0%} of raw libsodium verify rate "
        f"{raws[middle]:,.0f}/s of {workers} processes at once (one alone: "
        f"{singles[middle]:,.0f}/s; all rounds: " + ", ".join(f"{r:.0%}" for r in ratios) + ")",
        ">= 80%",
        ratios[middle] >= 0.80,
    )
    middle = median_index(db_ratios)
    record(
        f"verify --db (SQLite) against verify --bundle, same {size:,} entries (median of {rounds})",
        f"{db_rates[middle]:,.0f} entries/s = {db_ratios[middle]:.0%} of the bundle's "
        f"(all rounds: " + ", ".join(f"{r:.0%}" for r in db_ratios) + ")",
        ">= 80%",
        db_ratios[middle] >= 0.80,
    )
    little = verify_in_child(str(small), workers, root)
    peak_small = max(little["self_kb"], little["children_kb"]) / 1024
    record(
        "verify peak memory (largest process)",
        f"{peak:.0f} MB at {size:,} entries, {peak_small:.0f} MB at {size // 4:,}; "
        f"--db {db_peak:.0f} MB at {size:,}",
        "< 200 MB, flat in size",
        max(peak, db_peak) < 200 and peak < peak_small * 1.2 + 5,
    )
    single = verify_in_child(str(large), 1, root)
    raw1 = raw_verify_rate()
    rate1 = single["entries"] / single["seconds"]
    record(
        "verify, 1 process (all checks in one process)",
        f"{rate1:,.0f} entries/s = {rate1 / raw1:.0%} of raw {raw1:,.0f}/s",
        "information",
        True,
    )


def bench_append(actors: Actors, work: Path, count: int, batch: int) -> None:
    url = f"sqlite:///{work / 'append.db'}"
    store = LedgerStore(
        open_engine(url),
        origin=ORIGIN,
        root_key_id=actors.root_id,
        signer=NoteSigner(ORIGIN, actors.ledger),
        checkpoint_interval=2.0,
    )
    store.create_schema()
    store.append(actors.genesis())
    statements = actors.batches(0, count)
    raw = raw_verify_rate()
    start = time.perf_counter()
    for offset in range(0, count, batch):
        store.append(statements[offset : offset + batch])  # verifies every signature once
    rate = count / (time.perf_counter() - start)
    ratio = rate / raw
    record(
        f"durable append (SQLite, synchronous=FULL, batches of {batch})",
        f"{rate:,.0f} statements/s = {ratio:.0%} of raw libsodium verify rate {raw:,.0f}/s",
        ">= 50%",
        ratio >= 0.5,
    )


def bench_proofs(actors: Actors, work: Path, size: int) -> None:
    # The proof reads only the node table and the head; filling them directly from the
    # leaf hashes of `size` synthetic entries builds the same tables an append would.
    url = f"sqlite:///{work / 'proofs.db'}"
    store = LedgerStore(open_engine(url), origin=ORIGIN, root_key_id=actors.root_id)
    store.create_schema()
    leaves = [hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest() for i in range(size)]
    tree = merkle.CompactRange()
    rows = []
    for leaf in leaves:
        rows += [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in tree.append_with_nodes(leaf)]
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 50_000):
            conn.execute(insert(NODE), rows[start : start + 50_000])
        conn.execute(update(HEAD).values(size=size))
    del rows
    root = merkle.root_from_leaf_hashes(leaves)
    rng = random.Random(7)
    indices = [rng.randrange(size) for _ in range(300)]
    store.inclusion_proof(indices[0])  # warm the connection pool
    timings = []
    for index in indices:
        t = time.perf_counter()
        proof_size, proof = store.inclusion_proof(index)
        timings.append(time.perf_counter() - t)
        merkle.verify_inclusion(leaves[index], index, proof_size, proof, root)
    timings.sort()
    median, p99 = timings[len(timings) // 2] * 1000, timings[int(len(timings) * 0.99)] * 1000
    record(
        f"inclusion proof from a {size:,}-entry ledger (SQLite)",
        f"median {median:.2f} ms, p99 {p99:.2f} ms",
        "< 5 ms",
        p99 < 5,
    )

    data = [i.to_bytes(8, "big") * 4 for i in range(size)]
    sha = hashlib.sha256
    t = time.perf_counter()
    for item in data:
        sha(b"\x00" + item).digest()
    baseline = time.perf_counter() - t
    t = time.perf_counter()
    merkle.root_from_leaf_hashes([merkle.leaf_hash(item) for item in data])
    full = time.perf_counter() - t
    t = time.perf_counter()
    merkle.root_from_leaf_hashes(leaves)
    interior = time.perf_counter() - t
    record(
        f"Merkle root of {size:,} leaf hashes",
        f"{interior / baseline:.2f}× hashlib hashing the {size:,} leaves "
        f"({full / baseline:.2f}× including the leaf hashing itself)",
        "< 2×",
        interior / baseline < 2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=["verify", "append", "proofs"], action="append")
    args = parser.parse_args()
    actors = Actors()
    chosen = args.only or ["verify", "append", "proofs"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "verify" in chosen:
            bench_verify(actors, work, args.entries, args.workers, args.rounds)
        if "append" in chosen:
            bench_append(actors, work, args.appends, args.batch)
        if "proofs" in chosen:
            bench_proofs(actors, work, args.proof_size)
    print("\n| benchmark | measured | target | met |\n|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"\n(peak RSS of this process: {peak} MB)")
    sys.exit(0 if all(row[3] == "yes" for row in ROWS) else 1)


if __name__ == "__main__":
    main()
