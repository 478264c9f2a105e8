"""Follow a log through its tiles and check every new entry; alarm on a fork or a rollback.

Each run reads the log's checkpoint, checks it against the state kept from the last run
(size, root, last entry hash, the Merkle frontier and the key registry), fetches the entry
bundles of the new entries, checks each one as the verifier does (canonical bytes,
signature, hash chain, authority), recomputes the root and compares it with the signed
checkpoint, then checks the witnesses' cosignatures. Only then is the new state saved.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ledger import merkle
from ledger.authority import KeyGrant, KeyRegistry, checkpoint_verifiers
from ledger.cosignature import parse_cosigner_vkey
from ledger.errors import LedgerError
from ledger.fastpath import Facts
from ledger.note import NoteVerifier, open_note, parse_checkpoint, split_note
from ledger.policy import Policy, PolicyWitness, QuorumResult, check_quorum
from ledger.statement import GENESIS_PREV_HASH, Statement
from ledger.tiles import ENTRIES, MAX_ENTRY_BYTES, Tile, TileHashes, decode_bundle, tile_width
from ledger.verifier import Failure, check_entries

STATE_FORMAT = "ocop-trace-monitor/1"
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_TILE_BYTES = 256 * (MAX_ENTRY_BYTES + 6)  # a bundle of the largest entries, framed
MAX_STATE_BYTES = 256 * 1024 * 1024
Fetch = Callable[[str], bytes]


class Alarm(LedgerError):
    """Something a monitor exists to catch; `reason` names it: fork, rollback, bad_entry,
    bad_checkpoint, no_quorum."""

    def __init__(self, reason: str, message: str, **facts: Any) -> None:
        super().__init__(message, reason=reason, **facts)


@dataclass
class MonitorState:
    """What a run leaves for the next: enough to check the log's growth without its past."""

    origin: str
    root_key_id: str
    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    prev_hash: str = GENESIS_PREV_HASH
    frontier: tuple[bytes, ...] = ()
    grants: dict[str, KeyGrant] = field(default_factory=dict)
    checkpoint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "origin": self.origin,
            "root_key_id": self.root_key_id,
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "prev_hash": self.prev_hash,
            "frontier": [base64.b64encode(h).decode() for h in self.frontier],
            "grants": [_grant_json(g) for g in self.grants.values()],
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> MonitorState:
        if value.get("format") != STATE_FORMAT:
            raise LedgerError(
                "not a monitor state file", expected=STATE_FORMAT, found=value.get("format")
            )
        grants = [
            KeyGrant(
                **{**g, "kinds": frozenset(g["kinds"]), "may_grant": frozenset(g["may_grant"])}
            )
            for g in value["grants"]
        ]
        state = cls(
            origin=value["origin"],
            root_key_id=value["root_key_id"],
            size=int(value["size"]),
            root=base64.b64decode(value["root"]),
            prev_hash=value["prev_hash"],
            frontier=tuple(base64.b64decode(h) for h in value["frontier"]),
            grants={g.key_id: g for g in grants},
            checkpoint=value["checkpoint"],
        )
        # A state whose frontier does not give its root was not written by a finished run.
        if state.tree().root() != state.root:
            raise LedgerError(
                "monitor state is inconsistent",
                expected="frontier matching root",
                found="another root",
            )
        return state

    def tree(self) -> merkle.CompactRange:
        nodes = dict(zip(merkle.complete_nodes(0, self.size), self.frontier, strict=True))
        return merkle.CompactRange.from_store(self.size, lambda level, i: nodes[(level, i)])


def _grant_json(grant: KeyGrant) -> dict[str, Any]:
    value = dataclasses.asdict(grant)
    value["kinds"], value["may_grant"] = sorted(grant.kinds), sorted(grant.may_grant)
    return value


@dataclass
class Outcome:
    """A run's result: the state to save, how many entries were new, the quorum check."""

    state: MonitorState
    new_entries: int
    quorum: QuorumResult | None


def follow(
    fetch: Fetch, state: MonitorState | None, root_key_id: str, policy: Policy | None
) -> Outcome:
    """One run over the log behind `fetch` (path -> bytes). Raises Alarm when the log
    misbehaves; the returned state is safe to save only when no alarm was raised."""
    note = _text(fetch("checkpoint"), "checkpoint", MAX_CHECKPOINT_BYTES)
    try:
        cp = parse_checkpoint(split_note(note)[0])
    except LedgerError as exc:
        raise Alarm(
            "bad_checkpoint",
            f"the log's checkpoint is malformed: {exc.message}",
            expected=exc.expected,
            found=exc.found,
        ) from None
    if state is None:
        state = MonitorState(cp.origin, root_key_id)
    if cp.origin != state.origin:
        raise Alarm(
            "bad_checkpoint",
            "the checkpoint is for another log",
            expected=state.origin,
            found=cp.origin,
        )
    registry = KeyRegistry(state.root_key_id, state.grants)
    if cp.size < state.size:
        _require_signed(note, registry, cp.size)
        raise Alarm(
            "rollback",
            f"the log signed a checkpoint of {cp.size} entries after one of {state.size}",
            expected=f">= {state.size} entries",
            found=cp.size,
        )
    if cp.size == state.size:
        _require_signed(note, registry, cp.size)
        if cp.root_hash != state.root:
            raise Alarm(
                "fork",
                f"two signed checkpoints of size {cp.size} differ",
                expected=state.root.hex(),
                found=cp.root_hash.hex(),
            )
        new = dataclasses.replace(state, checkpoint=note)
        return Outcome(new, 0, _quorum(note, policy))
    # Checked before any entry is fetched when the keys known so far can check the
    # signature; a checkpoint signed by a ledger key registered in the new entries is
    # checked after them.
    if state.size > 0 and _signed(note, registry, cp.size):
        _check_consistency(fetch, state, cp.size, cp.root_hash)
    tree, prev_hash = state.tree(), state.prev_hash
    for first, data in _new_entries(fetch, state.size, cp.size):
        prev_hash = _check(
            check_entries(list(enumerate(data, first))), tree, registry, prev_hash, state.size
        )
    _require_signed(note, registry, cp.size)
    if tree.root() != cp.root_hash:
        raise Alarm(
            "bad_entry",
            "the entries served do not give the checkpoint's root",
            expected=cp.root_hash.hex(),
            found=tree.root().hex(),
        )
    new = MonitorState(
        state.origin,
        state.root_key_id,
        cp.size,
        cp.root_hash,
        prev_hash,
        tree.frontier,
        dict(registry.grants),
        note,
    )
    return Outcome(new, cp.size - state.size, _quorum(note, policy))


def _ledger_keys(registry: KeyRegistry, size: int) -> list[NoteVerifier]:
    """Ledger keys valid at `size`: the verifier's own rule (ledger.authority)."""
    return checkpoint_verifiers(registry.grants.values(), size)


def _signed(note: str, registry: KeyRegistry, size: int) -> bool:
    try:
        open_note(note, _ledger_keys(registry, size))
    except LedgerError:
        return False
    return True


def _require_signed(note: str, registry: KeyRegistry, size: int) -> None:
    try:
        open_note(note, _ledger_keys(registry, size))
    except LedgerError as exc:
        raise Alarm(
            "bad_checkpoint",
            f"the checkpoint of size {size} is not signed by a "
            f"ledger key valid at that size: {exc.message}",
            expected=exc.expected,
            found=exc.found,
        ) from None


def _check_consistency(fetch: Fetch, state: MonitorState, size: int, root: bytes) -> None:
    """The signed checkpoint must extend the saved tree: a consistency proof built from the
    log's tiles must hold between the saved root and the new one."""
    try:
        proof = TileHashes(size, lambda path: _bytes(fetch(path), path, 8192)).consistency_proof(
            state.size
        )
        merkle.verify_consistency(state.size, size, proof, state.root, root)
    except LedgerError as exc:
        raise Alarm(
            "fork",
            f"the signed checkpoint of size {size} does not extend the tree of size "
            f"{state.size} seen before: history was rewritten (or the log's tiles are corrupt)",
            expected=f"size {state.size} (root {state.root.hex()}) extended to size {size} "
            f"(root {root.hex()})",
            found=f"no valid consistency proof: {exc.message}",
        ) from None


def _new_entries(fetch: Fetch, start: int, end: int) -> Iterator[tuple[int, list[bytes]]]:
    """(index of the first, entries) of each bundle covering [start, end), in order."""
    for index in range(start // 256, (end - 1) // 256 + 1):
        tile = Tile(ENTRIES, index, tile_width(ENTRIES, index, end))
        try:
            entries = decode_bundle(_bytes(fetch(tile.path), tile.path, MAX_TILE_BYTES), tile.width)
        except LedgerError as exc:
            raise Alarm(
                "bad_entry", f"{tile.path}: {exc.message}", expected=exc.expected, found=exc.found
            ) from None
        skip = max(start - index * 256, 0)
        yield index * 256 + skip, entries[skip:]


def _check(
    results: Sequence[Facts | Failure],
    tree: merkle.CompactRange,
    registry: KeyRegistry,
    prev_hash: str,
    seen: int,
) -> str:
    """The verifier's sequential checks of one bundle's entries; returns the last hash."""
    for facts in results:
        if isinstance(facts, Failure):
            raise Alarm(
                "bad_entry",
                facts.message,
                index=facts.index,
                expected=facts.expected,
                found=facts.found,
            )
        index, entry_prev, entry_hash, leaf, key_id, kind, body = facts
        if index != tree.size:
            raise Alarm(
                "bad_entry",
                "entry index breaks the sequence",
                index=tree.size,
                expected=tree.size,
                found=index,
            )
        if entry_prev != prev_hash:
            # At the first new entry, the log changed an entry the monitor had already seen.
            reason = "fork" if index == seen > 0 else "bad_entry"
            raise Alarm(
                reason,
                "prev_hash does not match the previous entry",
                index=index,
                expected=prev_hash,
                found=entry_prev,
            )
        try:
            registry.check_and_apply(Statement(kind, key_id, "", body or {}, ""), index)
        except LedgerError as exc:
            raise Alarm(
                "bad_entry", exc.message, index=index, expected=exc.expected, found=exc.found
            ) from None
        tree.append(leaf)
        prev_hash = entry_hash
    return prev_hash


def _quorum(note: str, policy: Policy | None) -> QuorumResult | None:
    return None if policy is None else check_quorum(note, policy)


def _bytes(data: bytes, what: str, limit: int) -> bytes:
    if len(data) > limit:
        raise LedgerError(f"{what} is too large", expected=f"<= {limit} bytes", found=len(data))
    return data


def _text(data: bytes, what: str, limit: int) -> str:
    try:
        return _bytes(data, what, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise Alarm(
            "bad_checkpoint", f"{what} is not UTF-8", expected="UTF-8", found="other"
        ) from None


# -- files, HTTP and the command ------------------------------------------------------------
def load_state(path: Path) -> MonitorState | None:
    if not path.exists():
        return None
    if path.stat().st_size > MAX_STATE_BYTES:
        raise LedgerError(
            "monitor state file too large", expected=MAX_STATE_BYTES, found=path.stat().st_size
        )
    try:
        return MonitorState.from_json(json.loads(path.read_bytes()))
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerError(
            "unreadable monitor state file", expected=STATE_FORMAT, found=str(exc)[:80]
        ) from None


def save_state(path: Path, state: MonitorState) -> None:
    """Write the state atomically (temporary file, fsync, rename): a crash leaves the old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(state.to_json(), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def http_fetch(client: httpx.Client, prefix: str) -> Fetch:
    """GET <prefix>/<path>, refusing an error status and bodies beyond the largest tile."""

    def fetch(path: str) -> bytes:
        chunks, total = [], 0
        with client.stream("GET", f"{prefix.rstrip('/')}/{path}") as response:
            if response.status_code != 200:
                raise LedgerError(f"GET {path}", expected="200", found=response.status_code)
            for chunk in response.iter_bytes():  # decompressed, so the limit is real
                total += len(chunk)
                if total > MAX_TILE_BYTES:
                    raise LedgerError(
                        f"GET {path}: too large", expected=MAX_TILE_BYTES, found=total
                    )
                chunks.append(chunk)
        return b"".join(chunks)

    return fetch


def monitor(
    url: str,
    witnesses: Sequence[str],
    quorum: int,
    state_file: Path,
    *,
    root_key: str | None = None,
    timeout: float = 30.0,
    echo: Callable[[str], None] = print,
) -> int:
    """One cron run: 0 and silent when all is well, 1 with a report on an alarm, 2 when it
    could not check (usage, network, state file). The state advances only on success or
    when the one fault is a missing quorum (the entries themselves were checked)."""
    try:
        state = load_state(state_file)
        if state is None and root_key is None:
            raise LedgerError(
                "the first run needs --root-key", expected="64 hex digits", found="none"
            )
        if state is not None and root_key is not None and root_key != state.root_key_id:
            raise LedgerError(
                "--root-key differs from the one in the state file",
                expected=state.root_key_id,
                found=root_key,
            )
        policy = _policy(witnesses, quorum)
        pinned = root_key or (state.root_key_id if state else "")
        with httpx.Client(
            timeout=timeout, follow_redirects=True, headers={"Accept-Encoding": "gzip, identity"}
        ) as client:
            outcome = follow(http_fetch(client, url), state, pinned, policy)
    except Alarm as alarm:
        echo(_report(alarm, url, state_file))
        return 1
    except (LedgerError, httpx.HTTPError, OSError) as exc:
        echo(f"monitor: could not check {url}: {exc}")
        return 2
    save_state(state_file, outcome.state)
    if outcome.quorum is not None and not outcome.quorum.met:
        echo(_quorum_report(outcome, url))
        return 1
    return 0


def _policy(witnesses: Sequence[str], quorum: int) -> Policy | None:
    if not witnesses:
        if quorum:
            raise LedgerError("--quorum needs --witness keys", expected=">= quorum", found=0)
        return None
    keys = [parse_cosigner_vkey(v) for v in witnesses]
    return Policy.k_of_n([PolicyWitness(k.name, k) for k in keys], quorum)


def _report(alarm: Alarm, url: str, state_file: Path) -> str:
    where = f" at entry {alarm.index}" if alarm.index is not None else ""
    lines = [
        f"ALARM {alarm.reason.upper()}{where}: {alarm.message}",
        f"  log:      {url}",
        f"  expected: {alarm.expected}",
        f"  found:    {alarm.found}",
        f"  state:    {state_file} (left unchanged: it is the evidence to compare with)",
    ]
    return "\n".join(lines)


def _quorum_report(outcome: Outcome, url: str) -> str:
    q = outcome.quorum
    assert q is not None
    return "\n".join(
        [
            f"ALARM NO_QUORUM: the checkpoint of size {outcome.state.size} lacks the witnesses' "
            "quorum",
            f"  log:      {url}",
            f"  expected: {q.required}",
            f"  found:    cosigned by {', '.join(q.cosigned) or 'nobody'}"
            + (f"; invalid cosignatures by {', '.join(q.invalid)}" if q.invalid else ""),
        ]
    )


def monitor_command(
    url: Annotated[str, typer.Argument(help="The log's tile prefix (serves /checkpoint).")],
    state: Annotated[Path, typer.Option("--state", help="State file kept between runs.")],
    witness: Annotated[
        list[str] | None,
        typer.Option("--witness", help="A witness's cosigner vkey (type 0x04). Repeatable."),
    ] = None,
    quorum: Annotated[int, typer.Option(min=0, help="Cosignatures required.")] = 0,
    root_key: Annotated[
        str | None, typer.Option(help="Pinned root key (64 hex); needed on the first run.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds per HTTP request.")] = 30.0,
) -> None:
    """Follow a log through its tiles; exit 0 silently, 1 with a report, 2 if it cannot."""
    raise typer.Exit(
        monitor(
            url,
            witness or [],
            quorum,
            state,
            root_key=root_key,
            timeout=timeout,
            echo=lambda text: typer.echo(text, err=False),
        )
    )
