"""Runs: a worker's summary of clean entries, taken by the walk at once, gives the same
report as walking the entries one by one, and is used wherever it can be."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from support import checkpoint_note, entries_for, write_bundle
from test_verifier import LEDGER, PRODUCER, ROOT_ID, base_statements
from test_worker_counts import FIXED, alter, honest, outcome, write

from ledger import merkle
from ledger.authority import KEY_REVOKED
from ledger.bundle import BundleSlice, read_records
from ledger.errors import ProofError
from ledger.keys import key_id, public_bytes
from ledger.statement import Statement, sign_statement
from ledger.verifier import Failure, Run, _Walker, check_entries, check_run, verify


def leaves(count: int, seed: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(f"{seed}:{i}".encode()) for i in range(count)]


@pytest.mark.parametrize(("start", "count"), [(0, 1), (0, 8), (1, 1), (3, 14), (8, 9), (5, 0)])
def test_a_range_extends_the_tree_as_its_leaves_would(start: int, count: int) -> None:
    before, after = leaves(start), leaves(count, seed=1)
    one_by_one, at_once = merkle.CompactRange(), merkle.CompactRange()
    for leaf in before + after:
        one_by_one.append(leaf)
    for leaf in before:
        at_once.append(leaf)
    at_once.extend(count, merkle.range_hashes(start, after))
    assert (at_once.size, at_once.frontier) == (one_by_one.size, one_by_one.frontier)
    assert at_once.root() == merkle.root_from_leaf_hashes(before + after)


def test_random_ranges_extend_the_tree_as_their_leaves_would() -> None:
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, 300), rng.randint(1, 6)))
        all_leaves = leaves(cuts[-1], seed=rng.randrange(1000))
        tree, start = merkle.CompactRange(), 0
        for end in cuts:
            tree.extend(end - start, merkle.range_hashes(start, all_leaves[start:end]))
            start = end
        assert tree.root() == merkle.root_from_leaf_hashes(all_leaves)


def test_a_range_with_the_wrong_hashes_is_refused() -> None:
    tree = merkle.CompactRange()
    tree.append(leaves(1)[0])
    hashes = merkle.range_hashes(1, leaves(6))  # [1,2) [2,4) [4,6) and [6,7)
    with pytest.raises(ProofError) as caught:
        tree.extend(6, hashes[:-1])
    assert (caught.value.expected, caught.value.found) == (len(hashes), len(hashes) - 1)
    with pytest.raises(ProofError):
        tree.extend(6, [*hashes[:-1], b"short"])


# -- the worker's side --------------------------------------------------------------------
def regular(count: int, first_lot: int = 100) -> list[Statement]:
    return [
        sign_statement("batch.registered", {"lot": f"L{i}", "product": "Chè"}, PRODUCER)
        for i in range(first_lot, first_lot + count)
    ]


STATEMENTS = [*base_statements(), *regular(40)]
ENTRIES = entries_for(STATEMENTS)


def test_clean_entries_make_a_run_that_carries_what_the_walk_needs() -> None:
    work = list(enumerate(ENTRIES))[10:30]
    run = check_run(work)
    assert isinstance(run, Run)
    facts = check_entries(work)
    assert not any(isinstance(f, Failure) for f in facts)
    assert (run.first, run.count) == (10, 20)
    assert (run.prev_hash, run.last_hash) == (facts[0][1], facts[-1][2])  # type: ignore[index]
    producer = key_id(public_bytes(PRODUCER))
    assert run.signers == {(producer, "batch.registered")}
    assert run.kinds == {"batch.registered": 20}
    assert run.nodes == merkle.range_hashes(10, [merkle.leaf_hash(d) for _, d in work])


@pytest.mark.parametrize(
    "case",
    ["a key registration", "a gap", "a broken link", "a bad signature", "an index changed"],
)
def test_entries_that_are_not_a_run_come_back_one_by_one(case: str) -> None:
    work = list(enumerate(ENTRIES))[10:30]
    if case == "a key registration":
        work = list(enumerate(ENTRIES))[:20]
    elif case == "a gap":
        del work[5]
    elif case == "a broken link":
        work[7] = (work[7][0], ENTRIES[40].replace(b'"index":40', b'"index":17'))
    elif case == "a bad signature":
        work[3] = (work[3][0], work[3][1].replace(b'"L103"', b'"L104"'))
    else:
        work[4] = (work[4][0], work[4][1].replace(b'"index":14', b'"index":15'))
    assert isinstance(check_run(work), list)


# -- the walk's side: the same reports with and without runs ------------------------------
TAKEN: list[Run] = []


def with_and_without_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The outcome with runs (1 and 2 workers) equals the one walked entry by entry."""
    take_run = _Walker.take_run

    def counted(walker: _Walker, run: Run) -> bool:
        took = take_run(walker, run)
        if took:
            TAKEN.append(run)
        return took

    TAKEN.clear()
    monkeypatch.setattr(_Walker, "take_run", counted)
    with_runs = {outcome(path, workers) for workers in (1, 2)}
    with monkeypatch.context() as patch:
        patch.setattr("ledger.verifier.check_run", check_entries)
        walked = outcome(path, 1)
    assert with_runs == {walked}
    return walked


def lines_with(statements: list[Statement], cut: int | None = None) -> list[bytes | str]:
    entries = entries_for(statements)
    if cut is None:
        return [*entries, checkpoint_note(entries, LEDGER)]
    return [*entries[:cut], checkpoint_note(entries, LEDGER, size=cut), *entries[cut:]]


LONG = [*base_statements(), *regular(3000)]


def test_a_long_clean_ledger_is_taken_in_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines_with(LONG))
    _, text = with_and_without_runs(bundle, monkeypatch)
    assert json.loads(text)["ok"] is True
    # Every slice after the first (which holds the key registrations) is taken as a run,
    # with one worker and with two.
    first = next(r for r in read_records(bundle) if isinstance(r, BundleSlice))
    assert sum(run.count for run in TAKEN) == 2 * (len(LONG) - first.count)
    assert first.count < len(LONG)


def test_a_trusted_checkpoint_inside_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = entries_for(STATEMENTS)
    # The stored checkpoint at 10 ends the slice with the key registrations: [10, 50) is
    # one run, and the trusted checkpoint's size falls inside it.
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines_with(STATEMENTS, cut=10))
    for size, root in ((25, None), (25, b"\x07" * 32)):
        trusted = checkpoint_note(entries, LEDGER, size=size, root=root)
        reports = set()
        for workers in (1, 2):
            report = verify(
                read_records(bundle), ROOT_ID, workers=workers, trusted_checkpoint=trusted
            )
            reports.add((report.ok, report.failure, report.entries))
        with monkeypatch.context() as patch:
            patch.setattr("ledger.verifier.check_run", check_entries)
            report = verify(read_records(bundle), ROOT_ID, workers=1, trusted_checkpoint=trusted)
        assert reports == {(report.ok, report.failure, report.entries)}
        assert report.ok is (root is None)
        if root is not None:
            assert report.failure is not None
            assert (report.failure.index, report.failure.reason) == (
                24,
                "fork",
            )  # a trusted checkpoint it contradicts


def test_a_revoked_signer_in_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    producer = key_id(public_bytes(PRODUCER))
    from test_verifier import COUNCIL

    statements = [
        *base_statements(),
        *regular(20),
        sign_statement(KEY_REVOKED, {"key_id": producer, "reason": "lost"}, COUNCIL),
        *regular(20, first_lot=300),
    ]
    # A checkpoint right after the revocation: the entries after it are a run of their own.
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines_with(statements, cut=31))
    _, text = with_and_without_runs(bundle, monkeypatch)
    failure = json.loads(text)["failure"]
    assert (failure["index"], failure["reason"]) == (31, "authority")


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_alterations(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with_and_without_runs(write(tmp_path / "b.jsonl", FIXED[name](honest())), monkeypatch)


@pytest.mark.parametrize("seed", range(24))
def test_random_alterations(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = alter(honest(), random.Random(1000 + seed))
    with_and_without_runs(write(tmp_path / "b.jsonl", lines), monkeypatch)
