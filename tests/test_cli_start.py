"""The command line starts light, and `append` streams through the same use case as the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from support import BATCH, CLI, PRODUCER, PRODUCT
from test_cli import invoke, root_key

from ledger.statement import sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.ledger_setup import open_service
from ocop_trace.models import BatchCreate, ProducerCreate, ProductCreate
from ocop_trace.settings import Settings

HEAVY = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "jinja2", "uvicorn")
# Run the command in a fresh interpreter, then list the heavy packages it imported.
PROBE = """
import json, sys
from typer.testing import CliRunner
from ocop_trace.cli import app
result = CliRunner().invoke(app, sys.argv[2:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1].split(",")))
print(json.dumps({"code": result.exit_code, "heavy": heavy}))
"""


def _probe(env: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(HEAVY), *args],
        cwd=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_light_commands_import_no_web_framework_orm_or_templates(env: Path) -> None:
    root = root_key(env)
    assert invoke("export", "--out", "ledger.jsonl")[0] == 0
    body = json.dumps({"key_id": "ab" * 32, "role": "inspector", "name": "i", "kinds": []})
    for args in (
        ("--help",),
        ("keygen", "--out", "k.pem"),
        ("sign", "--key", "keys/root.pem", "--kind", "key.registered", "--body", body),
        ("verify", "--bundle", "ledger.jsonl", "--root-key", root, "--workers", "1"),
    ):
        probed = _probe(env, *args)
        assert probed == {"code": 0, "heavy": []}, args


@pytest.fixture
def producer_ledger(env: Path) -> Settings:
    root_key(env)
    settings = Settings()
    service = open_service(settings)
    service.register_producer(CLI, ProducerCreate.model_validate(PRODUCER))
    service.register_product(CLI, ProductCreate.model_validate(PRODUCT))
    producer = Principal(None, "cli", "producer", PRODUCER["id"])
    service.register_batch(producer, BatchCreate.model_validate(BATCH))
    service.engine.dispose()
    return settings


def _events(settings: Settings, count: int, note_chars: int = 0) -> list[str]:
    key = open_service(settings).producer_key(PRODUCER["id"])
    return [
        json.dumps(
            sign_statement(
                "batch.event",
                {
                    "batch_id": BATCH["id"],
                    "biz_step": "shipping",
                    "at": f"2026-01-05T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
                    "place": f"kho {n}",
                    "note": "x" * note_chars,
                },
                key,
            ).to_json(),
            ensure_ascii=False,
        )
        for n in range(count)
    ]


def _size(settings: Settings) -> int:
    with open_service(settings).engine.connect() as conn:
        return int(conn.execute(text("SELECT size FROM ledger_head")).scalar_one())


def test_append_refuses_what_the_projection_refuses_with_its_line(
    producer_ledger: Path, env: Path
) -> None:
    lines = _events(producer_ledger, 3)
    bad = json.loads(lines[1])
    key = open_service(producer_ledger).producer_key(PRODUCER["id"])
    # Signed correctly, by an authorised key, but for a batch that does not exist.
    lines[1] = json.dumps(
        sign_statement("batch.event", {**bad["body"], "batch_id": "no-such-batch"}, key).to_json()
    )
    (env / "st.jsonl").write_text("\n" + "\n".join(lines) + "\n", "utf-8")
    before = _size(producer_ledger)
    code, out, err = invoke("append", "st.jsonl")
    assert code == 2
    assert "st.jsonl:3" in err  # the blank first line counts
    assert "no batch with id 'no-such-batch'" in err
    assert "nothing was appended" in err
    assert out == ""
    assert _size(producer_ledger) == before  # all or none


def test_append_memory_stays_flat_in_the_file_size(producer_ledger: Settings, env: Path) -> None:
    # Each statement ~2.5 KB: holding the file, or every statement, would grow by tens of MB.
    peak = {}
    for count in (600, 6000):
        path = env / f"st-{count}.jsonl"
        path.write_text("\n".join(_events(producer_ledger, count, 2000)) + "\n", "utf-8")
        # The peak from VmHWM: ru_maxrss keeps the parent's (this test's) peak across exec.
        measure = (
            "import sys\n"
            "from ocop_trace.cli import main\n"
            "sys.argv = ['ocop-trace', 'append', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(peak.split()[1], file=sys.stderr)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", measure, str(path)],
            cwd=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(done.stdout.splitlines()) == count  # one receipt per statement
        peak[count] = int(done.stderr.strip().splitlines()[-1]) // 1024  # MiB
    file_growth = (6000 - 600) * 2.5 / 1024  # ~13 MiB of file, ~40 MiB as Python objects
    assert peak[6000] - peak[600] < file_growth, peak
