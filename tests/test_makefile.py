"""The README's commands are Makefile recipes: each must at least be valid shell.

`make demo`'s serving line once lost its closing quote (when the witnesses joined it), and
the command failed at once with "Unterminated quoted string" while every test passed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", ["demo", "test", "bench", "wheel-check"])
def test_the_recipe_is_valid_shell(target: str) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is needed to read the Makefile (apt-get install make)")
    printed = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert printed.strip(), f"make -n {target} printed nothing"
    checked = subprocess.run(["sh", "-n"], input=printed, capture_output=True, text=True)
    assert checked.returncode == 0, f"make {target}: {checked.stderr}"
