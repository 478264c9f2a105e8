"""Keep docs/witnesses.md honest: every value of its worked example is what the code prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "witness_example.py"
DOC = ROOT / "docs" / "witnesses.md"


def test_every_printed_value_is_in_the_doc() -> None:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    doc = {line.strip() for line in DOC.read_text("utf-8").splitlines()}
    values = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.startswith("  ") and line.strip()
    ]
    assert len(values) > 30
    missing = [value for value in values if value not in doc]
    assert missing == []
    labels = [line for line in result.stdout.splitlines() if line.endswith(":")]
    assert all(label in doc for label in labels)
