"""The verdict does not depend on the number of workers: every golden tamper case and
dozens of altered bundles give identical outcomes with 1, 2 and 4 workers."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import ORIGIN, checkpoint_note, entries_for, write_bundle
from test_verifier import CASES, LEDGER, ROOT_ID, base_statements

from ledger.bundle import read_header, read_records
from ledger.errors import BundleError
from ledger.verifier import verify

WORKERS = (1, 2, 4)
Lines = list[bytes]  # a bundle's lines without their LF, the header first


def outcome(path: Path, workers: int) -> tuple[str, str]:
    """What the CLI would say: a report (exit 0 or 1) or why the file is no bundle (exit 2)."""
    try:
        header = read_header(path)
        report = verify(
            read_records(path),
            ROOT_ID,
            workers=workers,
            expected_size=header.size,
            origin=header.origin,
        )
    except BundleError as exc:
        return ("not a bundle", str(exc))
    data = report.to_json()
    del data["seconds"]
    return ("report", json.dumps(data, sort_keys=True))


def same_everywhere(path: Path) -> tuple[str, str]:
    results = {workers: outcome(path, workers) for workers in WORKERS}
    assert len(set(results.values())) == 1, results
    return results[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases(tmp_path: Path, case: str) -> None:
    build, index, reason = CASES[case]
    kind, text = same_everywhere(write_bundle(tmp_path / "b.jsonl", ROOT_ID, build()))
    assert kind == "report"
    failure = json.loads(text)["failure"]
    assert (failure["index"], failure["reason"]) == (index, reason)


# -- altered bundles ---------------------------------------------------------------------
# 24 entries with a checkpoint after every third: more pieces of work than 4 workers keep
# in flight, so the read-ahead and the ordering of results are exercised.
LONG = entries_for([*base_statements(), *base_statements()[3:], *base_statements()[3:]])


def header(size: int = len(LONG), **changes: Any) -> bytes:
    value = {
        "exported_at": "2026-01-01T00:00:00Z",
        "format": "ocop-trace-bundle/1",
        "origin": ORIGIN,
        "root_key_id": ROOT_ID,
        "size": size,
        **changes,
    }
    return json.dumps(value, sort_keys=True).encode()


def cp_line(note: str) -> bytes:
    return json.dumps({"checkpoint": note}, ensure_ascii=False).encode()


def honest() -> Lines:
    lines = [header()]
    for index, entry in enumerate(LONG):
        lines.append(entry)
        if index % 3 == 2:
            lines.append(cp_line(checkpoint_note(LONG, LEDGER, size=index + 1)))
    return lines


def checkpoints(lines: Lines) -> Lines:
    return [line for line in lines[1:] if line.startswith(b'{"checkpoint":')]


def entries(lines: Lines) -> Lines:
    return [line for line in lines[1:] if line.startswith(b'{"index":')]


FIXED: dict[str, Callable[[Lines], Lines]] = {
    "honest": lambda b: b,
    "reversed": lambda b: [b[0], *reversed(b[1:])],
    "last checkpoint first": lambda b: [b[0], checkpoints(b)[-1], *b[1:-1]],
    "first checkpoint first": lambda b: [b[0], checkpoints(b)[0], *b[1:]],
    "every checkpoint first": lambda b: [b[0], *checkpoints(b), *entries(b)],
    "every checkpoint last": lambda b: [b[0], *entries(b), *checkpoints(b)],
    "checkpoints only": lambda b: [b[0], *checkpoints(b)],
    "checkpoints only, size 0": lambda b: [header(0), *checkpoints(b)],
    "size 0 and one checkpoint": lambda b: [header(0), checkpoints(b)[0]],
    "size 0, nothing else": lambda b: [header(0)],
    "entries only": lambda b: [b[0], *entries(b)],
    "every line twice": lambda b: [b[0], *(line for line in b[1:] for _ in range(2))],
    "every checkpoint twice": lambda b: [
        b[0],
        *(x for line in b[1:] for x in ([line] * (2 if line.startswith(b'{"c') else 1))),
    ],
    "size one more": lambda b: [header(len(LONG) + 1), *b[1:]],
    "size one less": lambda b: [header(len(LONG) - 1), *b[1:]],
    "other origin": lambda b: [header(origin="elsewhere.example/log"), *b[1:]],
    "checkpoint of size 0 first": lambda b: [
        b[0],
        cp_line(checkpoint_note(LONG, LEDGER, size=0)),
        *b[1:],
    ],
    "checkpoint beyond the end first": lambda b: [
        b[0],
        cp_line(checkpoint_note([*LONG, LONG[0]], LEDGER)),
        *b[1:],
    ],
    "empty line after the header": lambda b: [b[0], b"", *b[1:]],
    "junk line near the end": lambda b: [*b[:-2], b"junk", *b[-2:]],
    "bad entry early, junk line late": lambda b: [b[0], b[1][:-1] + b" }", *b[2:], b"{}"],
    "bad checkpoint early, junk line late": lambda b: [b[0], b[1], cp_line("x\n"), *b[2:], b"x"],
    "checkpoint line not JSON": lambda b: [*b[:4], b'{"checkpoint": nope', *b[4:]],
    "checkpoint line with two fields": lambda b: [*b[:4], b'{"checkpoint":"a","b":1}', *b[4:]],
    "surrogate bytes in an entry": lambda b: [
        b[0],
        b[1].replace(b'"name":"', b'"name":"\xed\xa0\x80', 1),
        *b[2:],
    ],
    "surrogate bytes in a checkpoint line": lambda b: [
        *b[:4],
        b[4].replace(b"\\u2014", b"\xed\xa0\x80").replace("—".encode(), b"\xed\xa0\x80"),
        *b[5:],
    ],
    "escaped surrogate in a checkpoint's signature line": lambda b: [
        *b[:4],
        b[4].replace("—".encode(), b"\\ud800"),
        *b[5:],
    ],
}


def alter(lines: Lines, rng: random.Random) -> Lines:
    """One to three random edits of whole lines or bytes."""
    out = list(lines)
    for _ in range(rng.randint(1, 3)):
        body = len(out) - 1
        if body < 2:
            break
        i, j = rng.randrange(1, len(out)), rng.randrange(1, len(out))
        op = rng.choice(["swap", "drop", "duplicate", "move", "flip", "truncate", "replace"])
        if op == "swap":
            out[i], out[j] = out[j], out[i]
        elif op == "drop":
            del out[i]
        elif op == "duplicate":
            out.insert(j, out[i])
        elif op == "move":
            out.insert(j, out.pop(i))
        elif op == "flip":
            line = bytearray(out[i])
            at = rng.randrange(len(line))
            line[at] ^= 1 << rng.randrange(8)
            out[i] = bytes(line)
        elif op == "truncate":
            out = out[: max(1, i)]
        else:
            out[i] = out[j]
    return out


def write(path: Path, lines: Lines, tail: bytes = b"\n") -> Path:
    path.write_bytes(b"\n".join(lines) + tail)
    return path


RANDOM = 48


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_alterations(tmp_path: Path, name: str) -> None:
    same_everywhere(write(tmp_path / "b.jsonl", FIXED[name](honest())))


@pytest.mark.parametrize("seed", range(RANDOM))
def test_random_alterations(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = alter(honest(), rng)
    # Every fourth file is also cut off somewhere in its last line (a framing error).
    tail = b"" if seed % 4 == 3 else b"\n"
    same_everywhere(write(tmp_path / "b.jsonl", lines, tail))


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("honest", None),
        ("reversed", "index"),
        ("last checkpoint first", None),
        ("every checkpoint first", None),
        ("every checkpoint last", "checkpoint_order"),
        ("checkpoints only", "truncated"),
        ("size 0 and one checkpoint", "truncated"),
        ("checkpoint of size 0 first", "checkpoint_signature"),
        ("checkpoint beyond the end first", "truncated"),
        ("surrogate bytes in an entry", "encoding"),
        ("escaped surrogate in a checkpoint's signature line", "checkpoint_malformed"),
    ],
)
def test_what_the_fixed_alterations_give(tmp_path: Path, name: str, verdict: str | None) -> None:
    kind, text = outcome(write(tmp_path / "b.jsonl", FIXED[name](honest())), 2)
    assert kind == "report", text
    failure = json.loads(text)["failure"]
    assert (failure and failure["reason"]) == verdict, failure


@pytest.mark.parametrize(
    "name",
    [
        "empty line after the header",
        "junk line near the end",
        "bad entry early, junk line late",
        "bad checkpoint early, junk line late",
        "checkpoint line not JSON",
        "checkpoint line with two fields",
        "surrogate bytes in a checkpoint line",
    ],
)
def test_a_framing_error_wins_over_any_verdict(tmp_path: Path, name: str) -> None:
    kind, _ = outcome(write(tmp_path / "b.jsonl", FIXED[name](honest())), 2)
    assert kind == "not a bundle"
