"""Per-entry CPU cost of verification, split into the signature and everything else.

Single process and CPU time (`time.process_time`), best of several interleaved rounds, so
the figures hold still on a shared machine where `make bench`'s wall-clock ratio does not.
The ratio printed last is what `make bench` approaches when the cores are not contended:
the raw verify cost over the whole cost of an entry (worker plus main process).
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from nacl.bindings import crypto_sign_open
from run import Actors, write_bundle

from ledger.bundle import BundleSlice, read_header, read_records
from ledger.statement import parse_entry
from ledger.verifier import CheckpointRecord, Run, _Walker, check_entries, check_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.jsonl"
        write_bundle(Actors(), args.entries, path)
        measure(path, args.rounds)


def measure(path: Path, rounds: int) -> None:
    header = read_header(path)
    records = list(read_records(path))
    slices = [r for r in records if isinstance(r, BundleSlice)]
    entries = [parse_entry(data) for s in slices for _, data in s.load()]
    signatures = [
        (bytes.fromhex(e.statement.key_id), e.statement.signature() + e.signing_input())
        for e in entries
    ]
    # What the workers send back, in stream order, for the main process to take in.
    sent = [
        r
        if isinstance(r, CheckpointRecord)
        else pickle.dumps(check_run(r), pickle.HIGHEST_PROTOCOL)
        for r in records
    ]

    def signature_only() -> None:  # raw libsodium through PyNaCl, as make bench's baseline
        for public, signed in signatures:
            crypto_sign_open(signed, public)

    def worker() -> None:  # what a worker process does with its slices
        for s in slices:
            pickle.dumps(check_run(s), pickle.HIGHEST_PROTOCOL)

    def main_process() -> None:  # what the main process does, short of the process pool
        walker = _Walker(header.root_key_id, None, None)
        for record, item in zip(read_records(path), sent, strict=True):
            if isinstance(item, CheckpointRecord):
                walker.checkpoint(item)
            else:
                result = pickle.loads(item)
                if not (isinstance(result, Run) and walker.take_run(result)):
                    walker.entries(check_entries(record) if isinstance(result, Run) else result)
        walker.finish(header.size)

    cases: dict[str, Callable[[], None]] = {
        "Ed25519 verify alone (libsodium)": signature_only,
        "worker (read, check, pickle)": worker,
        "main (read_records, unpickle, walk)": main_process,
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, case in cases.items():
            start = time.process_time()
            case()
            best[name] = min(best[name], (time.process_time() - start) / len(entries) * 1e6)
    for name, micros in best.items():
        print(f"{name:38} {micros:7.2f} µs/entry")
    raw, work, main_cost = best.values()
    print(f"{'worker beyond the signature':38} {work - raw:7.2f} µs/entry")
    print(f"ratio raw / (worker + main): {raw / (work + main_cost):.1%}")


if __name__ == "__main__":
    main()
