"""Keep docs/ledger-format.md honest: its worked example and failure reasons match the code."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785

from ledger import authority, canonical, errors, keys, note, statement
from ledger.store import LedgerStore, open_engine
from ocop_trace.ledger_setup import init_ledger
from ocop_trace.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "worked_example.py"
DOC = ROOT / "docs" / "ledger-format.md"
VERIFIER = ROOT / "ledger" / "verifier.py"

HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
SIG88 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==")
ROOT44 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?!=)")
NOTE_SIGNATURE_LINE = re.compile(r"^\s*\u2014 \S+ [A-Za-z0-9+/]+=*$", re.MULTILINE)
VERIFIER_KEY = re.compile(r"\S+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}")  # base64(0x01 || key)
REASON_ROW = re.compile(r"^\| `([a-z_]+)` \|", re.MULTILINE)


@pytest.fixture(scope="module")
def output() -> str:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text("utf-8")


def test_every_digest_signature_and_note_line_is_in_the_doc(output: str, doc: str) -> None:
    values: set[str] = set()
    for pattern in (HEX64, SIG88, ROOT44, VERIFIER_KEY, NOTE_SIGNATURE_LINE):
        found = {match.strip() for match in pattern.findall(output)}
        assert found, f"the worked example printed nothing matching {pattern.pattern}"
        values |= found
    missing = sorted(v for v in values if v not in doc)
    assert not missing, f"worked example values missing from {DOC.name}: {missing}"
    # Keys, hashes, leaf hashes, roots, signatures, note lines: far more than 8 distinct values.
    assert len(values) >= 8, values


def test_every_printed_value_line_is_a_line_of_the_doc(output: str, doc: str) -> None:
    doc_lines = {line.strip() for line in doc.splitlines()}
    printed = [line.strip() for line in output.splitlines() if line.startswith("  ")]
    missing = [line for line in printed if line and line not in doc_lines]
    assert not missing, f"lines of the worked example missing from {DOC.name}: {missing}"
    assert len(printed) >= 30


def test_printed_entries_are_rfc8785(output: str) -> None:
    entries = [line.strip() for line in output.splitlines() if line.strip().startswith('{"index":')]
    assert len(entries) == 4  # each entry once on its own and once in the bundle
    for line in entries:
        assert rfc8785.dumps(json.loads(line)) == line.encode("utf-8")


def test_example_genesis_is_the_body_init_writes(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TRACE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    origin = "ocop-trace.local/ledger"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        key_dir=tmp_path / "keys",
        origin=origin,
    )
    result = init_ledger(settings)
    store = LedgerStore(
        open_engine(settings.database_url), origin=origin, root_key_id=result.root_key_id
    )
    data = store.entry(0)
    assert data is not None
    written = statement.parse_entry(data).statement.body
    example_line = next(
        line.strip() for line in output.splitlines() if line.strip().startswith('{"index":0,')
    )
    example = json.loads(example_line)["statement"]["body"]
    assert {**written, "key_id": None} == {**example, "key_id": None}


def _reasons_in_failure_calls(source: str) -> set[str]:
    """Every string that can reach Failure's `reason` argument in verifier.py."""
    tree = ast.parse(source)
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    reasons: set[str] = set()

    def collect(expr: ast.expr) -> None:
        # Only value positions: a constant, either branch of `a if test else b`, or a name's
        # assigned values. An attribute such as `exc.reason` is covered by the error classes.
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            reasons.add(expr.value)
        elif isinstance(expr, ast.IfExp):
            collect(expr.body)
            collect(expr.orelse)
        elif isinstance(expr, ast.Name):
            for value in assigned.get(expr.id, []):
                collect(value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Failure":
            args = [kw.value for kw in node.keywords if kw.arg == "reason"]
            if len(node.args) > 1:
                args.append(node.args[1])
            for arg in args:
                collect(arg)
    return reasons


def test_every_failure_reason_is_documented(doc: str) -> None:
    from_calls = _reasons_in_failure_calls(VERIFIER.read_text("utf-8"))
    # Failures built from a LedgerError use its `reason`: these reach the verifier's Failure.
    from_errors = {
        errors.EncodingError.reason,
        errors.SignatureError.reason,
        errors.AuthorityError.reason,
    }
    code = from_calls | from_errors
    assert all(re.fullmatch(r"[a-z_]+", reason) for reason in code), code
    assert len(code) >= 12, code
    section = doc[doc.index("### 8.6 Failure reasons") : doc.index("### 8.7")]
    documented = set(REASON_ROW.findall(section))
    assert code - documented == set(), "reasons the verifier reports but 8.6 does not list"
    assert documented - code == set(), "reasons 8.6 lists but the verifier never reports"


def test_documented_limits_match_the_code(doc: str) -> None:
    for value in (
        canonical.MAX_CANONICAL_BYTES,
        statement.MAX_STATEMENT_BYTES,
        canonical.MAX_STRING_CHARS,
    ):
        assert f"{value:,}".replace(",", " ") in doc, value
    assert statement.MAX_STATEMENT_BYTES == canonical.MAX_CANONICAL_BYTES - 1024
    assert statement.STATEMENT_DOMAIN.hex() in doc


def test_the_doc_names_no_machine_specific_path(doc: str) -> None:
    assert "/work/" not in doc
    assert not re.search(r"\bcd /", doc)


def test_note_limits_and_white_space_match_the_code(doc: str) -> None:
    section = doc[doc.index("### 5.2 Signed note") : doc.index("### 5.3")]
    assert f"at most\n  {note._MAX_SIGNATURES} signature lines" in section
    line = section[section.index("White space is exactly") :].split(". Other")[0]
    listed: set[int] = set()
    for first, last in re.findall(r"U\+([0-9A-F]{4})(?:–U\+([0-9A-F]{4}))?", line):
        listed |= set(range(int(first, 16), int(last or first, 16) + 1))
    in_code = {c for c in range(0x3001) if re.fullmatch(f"[{note.WHITE_SPACE}]", chr(c))}
    assert listed == in_code, sorted(listed ^ in_code)


def test_kind_limit_and_small_order_points_match_the_code(doc: str) -> None:
    assert statement.MAX_KIND_CHARS == 64
    assert "the pattern and at most 64 characters" in doc
    policy = doc[doc.index("### 2.4") : doc.index("## 3.")]
    for y in keys._SMALL_ORDER_Y:
        # Written in full, or shortened to its first and last two bytes with an ellipsis.
        assert y in policy or f"`{y[:4]}…{y[-4:]}`" in policy, y
    assert "14 byte strings" in policy
    assert len(keys.SMALL_ORDER) == 14


def test_the_checkpoint_key_rule_is_named_where_the_code_has_it(doc: str) -> None:
    section = doc[doc.index("### 5.3") : doc.index("## 6.")]
    for name in ("checkpoint_verifiers", "open_checkpoint_note"):
        assert f"`{name}" in section
        assert callable(getattr(authority, name))
