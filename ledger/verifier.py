"""Verify a whole ledger from a stream of entries and checkpoints, trusting only the root key.

Workers (separate processes) do everything that needs no history: parse each entry's
canonical bytes, check its statement signature, hash it. The main process then walks the
results in order and checks what does: index continuity, hash links, authority at that
point of the ledger, the Merkle root against each checkpoint, and the trusted checkpoint.
A slice of entries that pass, link up and change no key comes back as one Run, which the
walk takes at once when nothing in it needs a closer look. Given a witness policy, the
latest checkpoint must also carry the quorum's cosignatures.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledger import merkle
from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyRegistry, open_checkpoint_note
from ledger.errors import LedgerError, NoteError, VerifierError
from ledger.fastpath import Facts, prepare, signed
from ledger.note import Checkpoint, note_text, parse_checkpoint
from ledger.policy import Policy, check_quorum
from ledger.statement import GENESIS_PREV_HASH, Statement, parse_entry

CHUNK = 1024
TRUSTED = "trusted checkpoint"


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """An entry as stored: its claimed position (for error reports) and its bytes."""

    position: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    note: str
    source: str = "stored checkpoint"


class EntryBatch(Protocol):
    """Entries a worker process loads itself (a byte range of a file), so the main
    process neither reads nor forwards them. Must be picklable."""

    def load(self) -> list[tuple[int, bytes]]: ...


Record = EntryRecord | CheckpointRecord | EntryBatch


@dataclass(frozen=True, slots=True)
class Failure:
    index: int | None
    reason: str
    message: str
    expected: str | None = None
    found: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "reason": self.reason,
            "message": self.message,
            "expected": self.expected,
            "found": self.found,
        }

    def __str__(self) -> str:
        where = f"entry {self.index}: " if self.index is not None else ""
        text = f"{where}{self.message} [{self.reason}]"
        if self.expected is not None or self.found is not None:
            text += f"\n  expected: {self.expected}\n  found:    {self.found}"
        return text


@dataclass(slots=True)
class Report:
    ok: bool
    failure: Failure | None
    entries: int
    checkpoints: int
    root: str
    kinds: dict[str, int] = field(default_factory=dict)
    keys: int = 0
    revoked_keys: int = 0
    latest_checkpoint: int | None = None
    seconds: float = 0.0
    witnessed_by: tuple[str, ...] | None = None  # None: no witness policy was given

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failure": self.failure.to_json() if self.failure else None,
            "entries": self.entries,
            "checkpoints_verified": self.checkpoints,
            "root": self.root,
            "kinds": self.kinds,
            "keys": self.keys,
            "revoked_keys": self.revoked_keys,
            "latest_checkpoint": self.latest_checkpoint,
            "seconds": round(self.seconds, 3),
            "witnessed_by": None if self.witnessed_by is None else list(self.witnessed_by),
        }


class _Stop(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def check_entries(work: list[tuple[int, bytes]] | EntryBatch) -> list[Facts | Failure]:
    """Everything about these entries that does not depend on earlier ones.

    Two passes, parsing all entries and then checking all signatures, because alternating
    the JSON code and the Ed25519 code on every entry evicts each from the CPU caches (one
    pass was measured 15 % slower with libsodium). An entry the fast path does not settle
    is checked again by parse_entry, which names the failure.
    """
    records = work if isinstance(work, list) else work.load()
    prepared = [(position, data, prepare(data)) for position, data in records]
    out: list[Facts | Failure] = []
    for position, data, ready in prepared:
        if ready is not None and signed(ready):
            out.append(ready[0])
        else:
            out.append(_check_slowly(position, data))
    return out


@dataclass(frozen=True, slots=True)
class Run:
    """A worker's account of entries that passed every check needing no history, are linked
    to each other and change no key: what the sequential half needs of them, in a few
    hundred bytes instead of seven facts per entry (sending and walking those was the
    verifier's largest cost after the signatures)."""

    first: int  # its index; the entries are first, first + 1, … in order
    count: int
    prev_hash: str  # the first entry's
    last_hash: str  # the last entry's own hash
    signers: frozenset[tuple[str, str]]  # each (key_id, kind) that signs in it
    kinds: dict[str, int]
    nodes: list[bytes]  # merkle.range_hashes(first, the leaf hashes)


def check_run(work: list[tuple[int, bytes]] | EntryBatch) -> Run | list[Facts | Failure]:
    """check_entries' results as a Run when they make one, else as they are."""
    results = check_entries(work)
    # A failure, a gap, a broken link or a key's registration or revocation (the only facts
    # with a body) is left to the walk, which words it or applies it in order. Compared a
    # column at a time: the per-entry cost here is the verifier's own overhead.
    if not results or any(type(facts) is not tuple for facts in results):
        return results
    indices, prev, hashes, leaves, key_ids, kinds, bodies = zip(*results, strict=True)
    start = indices[0]
    if (
        indices != tuple(range(start, start + len(results)))
        or prev[1:] != hashes[:-1]
        or bodies.count(None) != len(bodies)
    ):
        return results
    return Run(
        start,
        len(results),
        prev[0],
        hashes[-1],
        frozenset(zip(key_ids, kinds, strict=True)),
        dict(Counter(kinds)),
        merkle.range_hashes(start, leaves),
    )


def _check_slowly(position: int, data: bytes) -> Facts | Failure:
    try:
        entry = parse_entry(data)
        st = entry.statement
        st.verify(entry.signing_input())
    except LedgerError as exc:
        return _failure(position, exc)
    body = st.body if st.kind in (KEY_REGISTERED, KEY_REVOKED) else None
    return (
        entry.index,
        entry.prev_hash,
        hashlib.sha256(data).hexdigest(),
        merkle.leaf_hash(data),
        st.key_id,
        st.kind,
        body,
    )


def _failure(position: int, exc: LedgerError) -> Failure:
    return Failure(position, exc.reason, exc.message, _text(exc.expected), _text(exc.found))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class _Walker:
    """The sequential half: chain, authority, Merkle state and checkpoints."""

    def __init__(self, root_key_id: str, trusted: str | None, origin: str | None) -> None:
        self.origin = origin
        self.registry = KeyRegistry(root_key_id)
        self.tree = merkle.CompactRange()
        self.prev_hash = GENESIS_PREV_HASH
        self.kinds: Counter[str] = Counter()
        self.checkpoints = 0
        self.latest_checkpoint: int | None = None
        self.last_verified: Checkpoint | None = None
        # Every verified note of the largest size: one may carry cosignatures another lacks.
        self.latest_notes: list[str] = []
        self.pending: deque[tuple[Checkpoint, CheckpointRecord]] = deque()
        if trusted is not None:
            record = CheckpointRecord(trusted, TRUSTED)
            self.pending.append((self._parse(record), record))

    def entries(self, results: list[Facts | Failure]) -> None:
        """The sequential checks of each entry a worker checked, in ledger order."""
        # Hoisted for the loop every entry takes: the registry updates `grants` in place, and
        # `pending` is replaced only by checkpoint(), between batches.
        tree, kinds, pending = self.tree, self.kinds, self.pending
        grants = self.registry.grants
        for facts in results:
            if isinstance(facts, Failure):
                raise _Stop(facts)
            index, prev_hash, entry_hash, leaf, key_id, kind, body = facts
            if index != tree.size or prev_hash != self.prev_hash:
                self._check_link(index, prev_hash)
            grant = grants.get(key_id) if body is None else None
            # The common case, a registered unrevoked key signing a kind it holds, is
            # settled by one lookup; anything else takes the full check, which words the
            # failure.
            if grant is None or grant.revoked_index is not None or kind not in grant.kinds:
                self._check_authority(index, key_id, kind, body)
            tree.append(leaf)
            self.prev_hash = entry_hash
            kinds[kind] += 1
            # Only == can hold here: a smaller one failed checkpoint_order when it was read.
            if pending and pending[0][0].size <= tree.size:
                self._settle()

    def take_run(self, run: Run) -> bool:
        """Apply a run at once when each check entries() would make of it passes at the
        first lookup and no checkpoint falls inside it; False (nothing applied) otherwise,
        and the caller walks its entries one by one, which reports as entries() does."""
        tree, pending, grants = self.tree, self.pending, self.registry.grants
        end = run.first + run.count
        if run.first != tree.size or run.prev_hash != self.prev_hash:
            return False
        if pending and pending[0][0].size < end:
            return False
        for key_id, kind in run.signers:
            grant = grants.get(key_id)
            if grant is None or grant.revoked_index is not None or kind not in grant.kinds:
                return False
        tree.extend(run.count, run.nodes)
        self.prev_hash = run.last_hash
        self.kinds.update(run.kinds)
        if pending and pending[0][0].size == end:
            self._settle()
        return True

    def _check_link(self, index: int, prev_hash: str) -> None:
        expected = self.tree.size
        if index != expected:
            raise _Stop(
                Failure(
                    expected, "index", "entry index breaks the sequence", str(expected), str(index)
                )
            )
        if prev_hash != self.prev_hash:
            raise _Stop(
                Failure(
                    index,
                    "hash_link",
                    "prev_hash does not match the previous entry",
                    self.prev_hash,
                    prev_hash,
                )
            )

    def _check_authority(
        self, index: int, key_id: str, kind: str, body: dict[str, Any] | None
    ) -> None:
        try:
            self.registry.check_and_apply(Statement(kind, key_id, "", body or {}, ""), index)
        except LedgerError as exc:
            raise _Stop(
                Failure(index, exc.reason, exc.message, _text(exc.expected), _text(exc.found))
            ) from None

    def checkpoint(self, record: CheckpointRecord) -> None:
        cp = self._parse(record)
        # Keep the queue in size order so each checkpoint is checked when its size is reached.
        self.pending.append((cp, record))
        self.pending = deque(sorted(self.pending, key=lambda item: item[0].size))
        self._settle()

    def finish(self, expected_size: int | None) -> None:
        self._settle()
        if expected_size is not None and expected_size != self.tree.size:
            raise _Stop(
                Failure(
                    min(expected_size, self.tree.size),
                    "truncated" if expected_size > self.tree.size else "size",
                    f"the ledger's head says {expected_size} entries, {self.tree.size} were found",
                    str(expected_size),
                    str(self.tree.size),
                )
            )
        if self.pending:
            cp, record = self.pending[0]
            reason = "rollback" if record.source == TRUSTED else "truncated"
            raise _Stop(
                Failure(
                    self.tree.size,
                    reason,
                    f"{record.source} covers {cp.size} entries but the ledger "
                    f"holds only {self.tree.size}",
                    f"at least {cp.size} entries",
                    str(self.tree.size),
                )
            )

    def _settle(self) -> None:
        while self.pending and self.pending[0][0].size <= self.tree.size:
            cp, record = self.pending.popleft()
            where = cp.size - 1 if cp.size else None
            if cp.size < self.tree.size:
                raise _Stop(
                    Failure(
                        where,
                        "checkpoint_order",
                        f"{record.source} of size {cp.size} came after entry {self.tree.size - 1}",
                        "checkpoints in size order",
                        str(cp.size),
                    )
                )
            self._check_signature(cp, record)
            for other, other_record in self.pending:
                # A fork is a fork whichever of two validly signed checkpoints comes first.
                if other.size == cp.size and other.root_hash != cp.root_hash:
                    self._check_signature(other, other_record)
                    raise _Stop(
                        Failure(
                            where,
                            "fork",
                            f"two checkpoints of size {cp.size} disagree",
                            cp.root_hash.hex(),
                            other.root_hash.hex(),
                        )
                    )
            self._check_root(cp, record)

    def _parse(self, record: CheckpointRecord) -> Checkpoint:
        try:
            record.note.encode("utf-8")  # a lone surrogate (a JSON escape) has no UTF-8 form
            cp = parse_checkpoint(note_text(record.note))
        except (NoteError, ValueError) as exc:
            raise _Stop(
                Failure(None, "checkpoint_malformed", f"{record.source} is not a checkpoint: {exc}")
            ) from None
        if self.origin is not None and cp.origin != self.origin:
            raise _Stop(
                Failure(
                    cp.size - 1 if cp.size else None,
                    "checkpoint_origin",
                    f"{record.source} is for another log",
                    self.origin,
                    cp.origin,
                )
            )
        return cp

    def _check_signature(self, cp: Checkpoint, record: CheckpointRecord) -> None:
        try:
            open_checkpoint_note(record.note, self.registry.grants.values())
        except LedgerError as exc:  # a note error, or two ledger keys whose note ids collide
            raise _Stop(
                Failure(
                    cp.size - 1 if cp.size else None,
                    "checkpoint_signature",
                    f"{record.source} of size {cp.size} is not signed by a ledger "
                    f"key valid at that size: {exc.message}",
                    _text(exc.expected),
                    _text(exc.found),
                )
            ) from None

    def _check_root(self, cp: Checkpoint, record: CheckpointRecord) -> None:
        # Checkpoints arrive in size order, so two of one size are neighbours: remembering
        # the last one verified is enough to name a fork, in constant memory.
        last = self.last_verified
        if last is not None and last.size == cp.size and last.root_hash != cp.root_hash:
            raise _Stop(
                Failure(
                    cp.size - 1 if cp.size else None,
                    "fork",
                    f"two checkpoints of size {cp.size} disagree",
                    last.root_hash.hex(),
                    cp.root_hash.hex(),
                )
            )
        root = self.tree.root()
        if cp.root_hash != root:
            trusted = record.source == TRUSTED
            raise _Stop(
                Failure(
                    cp.size - 1 if cp.size else None,
                    "fork" if trusted else "checkpoint_root",
                    f"{record.source} root does not match the entries",
                    root.hex(),
                    cp.root_hash.hex(),
                )
            )
        self.last_verified = cp
        if record.source != TRUSTED:
            self.checkpoints += 1
            if self.latest_checkpoint is None or cp.size > self.latest_checkpoint:
                self.latest_checkpoint = cp.size
                self.latest_notes = []
            if cp.size == self.latest_checkpoint:
                self.latest_notes.append(record.note)

    def witnesses(self, policy: Policy) -> tuple[tuple[str, ...], Failure | None]:
        """Who cosigned the latest checkpoint, and the failure if that is not the quorum."""
        if self.latest_checkpoint is None:
            return (), Failure(
                None,
                "witness_quorum",
                "the ledger has no checkpoint for the witnesses to have cosigned",
                policy.describe(),
                "no checkpoint",
            )
        where = self.latest_checkpoint - 1 if self.latest_checkpoint else None
        cosigned: set[str] = set()
        for note in self.latest_notes:
            result = check_quorum(note, policy)
            if result.invalid:
                return (), Failure(
                    where,
                    "witness_quorum",
                    f"the checkpoint of size {self.latest_checkpoint} carries a cosignature "
                    "that does not verify",
                    "valid cosignatures",
                    ", ".join(result.invalid),
                )
            cosigned.update(result.cosigned)
        names = tuple(w.name for w in policy.witnesses if w.name in cosigned)
        if policy.satisfied(names):
            return names, None
        return names, Failure(
            where,
            "witness_quorum",
            f"the latest checkpoint (size {self.latest_checkpoint}) is not cosigned by "
            "enough witnesses: the log may have rewritten its history",
            policy.describe(),
            ", ".join(names) or "no witness",
        )


Chunk = list[tuple[int, bytes]] | EntryBatch
Work = Chunk | CheckpointRecord
Checked = Run | list[Facts | Failure]


def _chunks(records: Iterable[Record]) -> Iterator[Work]:
    """Group entries for the workers; a checkpoint ends a group and travels on its own,
    so the walker queues it before it sees any entry that follows it in the stream."""
    chunk: list[tuple[int, bytes]] = []
    for record in records:
        if isinstance(record, EntryRecord):
            chunk.append((record.position, record.data))
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        elif not isinstance(record, CheckpointRecord):
            if chunk:
                yield chunk
                chunk = []
            yield record
        else:
            if chunk:
                yield chunk
                chunk = []
            yield record
    if chunk:
        yield chunk


def verify(
    records: Iterable[Record],
    root_key_id: str,
    *,
    workers: int | None = None,
    trusted_checkpoint: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    expected_size: int | None = None,
    origin: str | None = None,
    extra_checks: Callable[[], Failure | None] | None = None,
    witnesses: Policy | None = None,
) -> Report:
    """Check every record; stop at the first failure. Memory stays constant in ledger size.

    `expected_size` is the entry count the source claims (bundle header, head row);
    `origin`, when given, is the only checkpoint origin accepted; `witnesses`, when given,
    is the policy whose quorum must have cosigned the latest checkpoint. A report is a verdict;
    where there is none, a LedgerError is raised instead: BundleError for a file that is
    not a bundle (whatever else is wrong with it), VerifierError for an internal error.
    """
    started = time.perf_counter()
    workers = os.cpu_count() or 1 if workers is None else max(1, workers)
    source = iter(records)
    walker: _Walker | None = None
    witnessed_by: tuple[str, ...] | None = None
    try:
        try:
            walker = _Walker(root_key_id, trusted_checkpoint, origin)
        except _Stop as stop:
            failure: Failure | None = stop.failure
        else:
            failure = _walk(walker, source, workers, on_progress, expected_size)
        if failure is not None:
            # A file that is not a bundle gets no verdict, whatever else is wrong with it:
            # the rest of its framing is read, and a BundleError raised where it breaks.
            for _ in source:
                pass
        if failure is None and witnesses is not None and walker is not None:
            witnessed_by, failure = walker.witnesses(witnesses)
        if failure is None and extra_checks is not None:
            failure = extra_checks()
    except LedgerError:
        raise
    except Exception as exc:
        raise VerifierError(
            "verification stopped by an internal error; this is not a verdict on the ledger",
            expected="no internal error",
            found=f"{type(exc).__name__}: {exc}",
        ) from exc
    if walker is None:
        return Report(
            False, failure, 0, 0, merkle.EMPTY_ROOT.hex(), seconds=time.perf_counter() - started
        )
    grants = walker.registry.grants.values()
    return Report(
        ok=failure is None,
        failure=failure,
        entries=walker.tree.size,
        checkpoints=walker.checkpoints,
        root=walker.tree.root().hex(),
        kinds=dict(sorted(walker.kinds.items())),
        keys=len(walker.registry.grants),
        revoked_keys=sum(1 for g in grants if g.revoked_index is not None),
        latest_checkpoint=walker.latest_checkpoint,
        seconds=time.perf_counter() - started,
        witnessed_by=witnessed_by,
    )


def _walk(
    walker: _Walker,
    source: Iterator[Record],
    workers: int,
    on_progress: Callable[[int], None] | None,
    expected_size: int | None,
) -> Failure | None:
    """The first failure of the records, or None when the ledger is valid."""
    try:
        for result, work in _checked(source, walker, workers):
            if not (isinstance(result, Run) and walker.take_run(result)):
                # A run the walker cannot take at once is checked again here, entry by
                # entry: rare (a checkpoint inside it, a key revoked, a failure), and what
                # the walk then reports does not depend on how entries were grouped.
                walker.entries(check_entries(work) if isinstance(result, Run) else result)
            if on_progress is not None:
                on_progress(walker.tree.size)
        walker.finish(expected_size)
    except _Stop as stop:
        return stop.failure
    return None


def _checked(
    records: Iterable[Record], walker: _Walker, workers: int
) -> Iterator[tuple[Checked, Chunk]]:
    """Worker results in ledger order, each with the work it came from, with a bounded
    number of chunks in flight.

    The main process keeps to the sequential checks (about a tenth of a core); giving it a
    share of the signature work as well was measured to make it the bottleneck.
    """
    if workers == 1:
        for work in _chunks(records):
            if isinstance(work, CheckpointRecord):
                walker.checkpoint(work)
            else:
                yield check_run(work), work
        return
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    in_flight: deque[tuple[Future[Checked], Chunk] | CheckpointRecord] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for work in _chunks(records):
            if isinstance(work, CheckpointRecord):
                in_flight.append(work)
            else:
                in_flight.append((pool.submit(check_run, work), work))
            # A checkpoint at the head is queued at once; the queue may then be empty.
            while in_flight and (
                len(in_flight) > workers * 4 or isinstance(in_flight[0], CheckpointRecord)
            ):
                yield from _drain_one(in_flight, walker)
        while in_flight:
            yield from _drain_one(in_flight, walker)


def _drain_one(
    in_flight: deque[tuple[Future[Checked], Chunk] | CheckpointRecord], walker: _Walker
) -> Iterator[tuple[Checked, Chunk]]:
    head = in_flight.popleft()
    if isinstance(head, CheckpointRecord):
        walker.checkpoint(head)
    else:
        future, work = head
        yield future.result(), work
