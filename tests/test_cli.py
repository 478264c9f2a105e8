"""The ocop-trace command line, run in-process: exit status 0 valid, 1 invalid, 2 usage/I-O."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from ocop_trace.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def root_key(env: Path) -> str:
    code, out, _ = invoke("init")
    assert code == 0
    return next(line.split(": ")[1] for line in out.splitlines() if line.startswith("root key"))


def test_init_is_idempotent(env: Path) -> None:
    code, out, _ = invoke("init")
    assert code == 0
    assert "genesis entry 0" in out
    assert (env / "keys" / "root.pem").stat().st_mode & 0o777 == 0o600
    code, out, _ = invoke("init")
    assert code == 0
    assert "genesis" not in out


def test_keygen_never_prints_the_secret_and_refuses_to_overwrite(env: Path) -> None:
    code, out, _ = invoke("keygen", "--out", "k.pem", "--name", "htx-tai-hoan")
    assert code == 0
    assert "key id: " in out
    assert "htx-tai-hoan+" in out
    assert "PRIVATE" not in out
    code, _, err = invoke("keygen", "--out", "k.pem")
    assert code == 2
    assert "k.pem" in err


def test_sign_append_export_verify(env: Path) -> None:
    root = root_key(env)
    code, out, _ = invoke(
        "sign",
        "--key",
        "keys/root.pem",
        "--kind",
        "key.registered",
        "--body",
        json.dumps(
            {
                "key_id": "ab" * 32,
                "role": "inspector",
                "name": "inspector-1",
                "kinds": [],
                "subject": "",
            }
        ),
    )
    assert code == 0
    (env / "st.jsonl").write_text(out, "utf-8")
    code, out, _ = invoke("append", "st.jsonl")
    assert code == 0
    assert json.loads(out)["index"] == 2  # after genesis and the council key
    code, out, _ = invoke("append", "st.jsonl")
    assert json.loads(out)["duplicate"] is True
    code, _, _ = invoke("export", "--out", "ledger.jsonl")
    assert code == 0
    code, out, _ = invoke("verify", "--bundle", "ledger.jsonl", "--root-key", root, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["entries"] == 3
    code, out, _ = invoke("verify", "--json", "--workers", "2")
    assert code == 0
    assert json.loads(out)["entries"] == 3


def test_unauthorised_append_is_a_clear_error(env: Path) -> None:
    root_key(env)
    invoke("keygen", "--out", "stranger.pem")
    code, out, _ = invoke(
        "sign", "--key", "stranger.pem", "--kind", "batch.registered", "--body", '{"lot": "L1"}'
    )
    (env / "st.jsonl").write_text(out, "utf-8")
    code, _, err = invoke("append", "st.jsonl")
    assert code == 2
    assert "unregistered key" in err
    assert "Traceback" not in err


def test_tampered_bundle_exits_1_naming_the_entry(env: Path) -> None:
    root = root_key(env)
    invoke("export", "--out", "ledger.jsonl")
    text = (env / "ledger.jsonl").read_text("utf-8")
    (env / "ledger.jsonl").write_text(text.replace('"role":"ledger"', '"role":"council"'), "utf-8")
    code, out, _ = invoke("verify", "--bundle", "ledger.jsonl", "--root-key", root)
    assert code == 1
    assert "INVALID" in out
    assert "entry 0" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "ledger.jsonl:1: the header line is cut off"),
        ("nonsense\n", "ledger.jsonl:1: the first line is not a bundle header"),
        ('{"format":"other"}\n', "ledger.jsonl:1: field 'format' is wrong"),
        (
            '{"format":"ocop-trace-bundle/1","origin":"o","root_key_id":"'
            + "a" * 64
            + '","size":1}\n{"index":0',
            "ledger.jsonl:2: the file is cut off",
        ),
        (
            '{"format":"ocop-trace-bundle/1","origin":"o","root_key_id":"'
            + "a" * 64
            + '","size":1}\nhello\n',
            "ledger.jsonl:2: neither an entry nor a checkpoint",
        ),
    ],
)
def test_malformed_bundle_exits_2_naming_the_line(env: Path, content: str, message: str) -> None:
    (env / "ledger.jsonl").write_text(content, "utf-8")
    code, _, err = invoke("verify", "--bundle", "ledger.jsonl", "--root-key", "a" * 64)
    assert code == 2
    assert message in " ".join(err.split())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_checkpoint_before_every_entry_is_a_verdict_not_a_crash(env: Path, workers: str) -> None:
    root = root_key(env)
    invoke("checkpoint")
    invoke("export", "--out", "ledger.jsonl")
    header, *rest = (env / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    first = sorted(rest, key=lambda line: not line.startswith(b'{"checkpoint":'))
    assert first[0].startswith(b'{"checkpoint":')
    (env / "first.jsonl").write_bytes(header + b"".join(first))
    (env / "reversed.jsonl").write_bytes(header + b"".join(reversed(rest)))
    verify = ("verify", "--root-key", root, "--workers", workers, "--bundle")
    code, out, err = invoke(*verify, "first.jsonl")
    assert (code, err) == (0, ""), out + err
    code, out, err = invoke(*verify, "reversed.jsonl")
    assert (code, err) == (1, ""), out + err
    assert "entry index breaks the sequence" in out


def test_an_internal_error_exits_2_and_is_never_a_verdict(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = root_key(env)
    invoke("export", "--out", "ledger.jsonl")

    def broken(*_args: object) -> None:
        raise IndexError("deque index out of range")

    # Stands for any bug in the sequential half (the crash of issue 9 was one).
    monkeypatch.setattr("ledger.verifier._Walker.finish", broken)
    code, out, err = invoke("verify", "--bundle", "ledger.jsonl", "--root-key", root)
    assert code == 2
    assert "INVALID" not in out
    assert "not a verdict" in err
    assert "IndexError: deque index out of range" in " ".join(err.split())


def test_usage_errors_exit_2(env: Path) -> None:
    assert invoke("verify", "--bundle", "missing.jsonl", "--root-key", "a" * 64)[0] == 2
    assert invoke("verify", "--bundle", "x", "--db", "sqlite:///x.db")[0] == 2
    assert invoke("verify", "--workers", "0")[0] == 2
    code, _, err = invoke("verify", "--db", "nonsense://")
    assert code == 2
    assert "Traceback" not in err


def test_demo_builds_and_reruns_without_duplicates(env: Path) -> None:
    code, out, _ = invoke("demo", "--dir", "d")
    assert code == 0, out
    assert "VALID" in out
    assert "This is a demonstration" in out
    for kind in (
        "producer.registered: 9",
        "product.registered: 10",
        "rating.recorded: 10",
        "rating.revoked: 1",
        "batch.recalled: 1",
        "labels.voided: 1",
    ):
        assert kind in out
    for state in (
        "genuine",
        "rating_revoked",
        "rating_expired",
        "genuine_rating_expiring",
        "recalled",
        "recalled_upstream",
        "possible_copy",
        "genuine_signed_offline",
        "bad_signature",
        "product_info",
        "not_registered",
        "not_registered_voided",
        "bad_link",
    ):
        assert f"  {state}: http://" in out
    engine = create_engine(f"sqlite:///{env / 'd' / 'trace.db'}")
    with engine.connect() as conn:
        spirit = conn.execute(
            text("SELECT recall_source FROM batch WHERE id = 'ruou-men-la-thanh-tam-b1'")
        ).scalar_one()
        inputs = conn.execute(
            text("SELECT input_id FROM batchinput WHERE batch_id = 'ruou-men-la-thanh-tam-b1'")
        ).all()
    engine.dispose()
    assert spirit == "gao-nep-tan-son-b1"  # recalled upstream, through the lineage
    assert [row[0] for row in inputs] == ["gao-nep-tan-son-b1"]
    code, out, _ = invoke("demo", "--dir", "d")
    assert code == 0
    assert "0 added by this run" in out


def test_verify_names_a_projection_row_edited_with_sql(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("demo", "--dir", "d")[0] == 0
    monkeypatch.setenv("TRACE_KEY_DIR", str(env / "d" / "keys"))
    url = f"sqlite:///{env / 'd' / 'trace.db'}"
    assert invoke("verify", "--db", url)[0] == 0
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE batch SET quantity = 1 WHERE id = 'mien-dong-tai-hoan-b1'"))
    engine.dispose()
    code, out, _ = invoke("verify", "--db", url, "--json")
    assert code == 1
    failure = json.loads(out)["failure"]
    assert failure["reason"] == "projection"
    assert "batch row mien-dong-tai-hoan-b1, column quantity" in failure["message"]
    assert failure["found"] == "1"


def test_labels_command_issues_and_prints(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("demo", "--dir", "d")[0] == 0
    monkeypatch.setenv("TRACE_KEY_DIR", str(env / "d" / "keys"))
    monkeypatch.setenv("TRACE_DATABASE_URL", f"sqlite:///{env / 'd' / 'trace.db'}")
    code, _, err = invoke(
        "labels", "--batch", "mien-dong-tai-hoan-b1", "--count", "4", "--out", "sheet.pdf"
    )
    assert code == 0, err
    assert (env / "sheet.pdf").read_bytes().startswith(b"%PDF")
    code, _, _ = invoke(
        "labels",
        "--batch",
        "mien-dong-tai-hoan-b1",
        "--count",
        "2",
        "--format",
        "svg",
        "--out",
        "svgs",
    )
    assert code == 0
    assert len(list((env / "svgs").glob("*.svg"))) == 2
    assert invoke("verify")[0] == 0  # the kept serials match the ledger's commitments
    code, _, err = invoke("labels", "--batch", "nope", "--count", "1", "--out", "x.pdf")
    assert code == 2
    assert "no batch with id 'nope'" in err
    code, _, err = invoke(
        "labels",
        "--batch",
        "mien-dong-tai-hoan-b1",
        "--count",
        "1",
        "--grid",
        "9x9",
        "--out",
        "x.pdf",
    )
    assert code == 2
    assert "A4" in " ".join(err.split())


def test_offline_signed_label_checks_out_without_a_database(env: Path) -> None:
    from ledger import keys
    from ocop_trace.offline import sign_label_url

    producer = keys.generate()
    public = keys.key_id(keys.public_bytes(producer))
    link = "https://id.example.invalid/01/08936012345674/10/L2601/21/7K3Q9XWZM2PAR5TV"
    signed = sign_label_url(link, producer)
    assert signed.startswith(link + "?k=")
    assert invoke("verify-label", signed, "--key", public)[0] == 0
    # The host is not covered, so the same label checks out on a mirror.
    mirrored = signed.replace("id.example.invalid", "mirror.example.invalid")
    assert invoke("verify-label", mirrored, "--key", public)[0] == 0
    forged = signed.replace("/21/7K3Q9XWZM2PAR5TV", "/21/7K3Q9XWZM2PAR5TW")
    code, out, _ = invoke("verify-label", forged, "--key", public)
    assert code == 1
    assert "altered or forged" in out
    code, _, err = invoke("verify-label", link, "--key", public)
    assert code == 2
    assert "no signature" in err


def test_offline_labels_from_the_api_verify_against_the_bundle(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from ocop_trace.accounts import Principal
    from ocop_trace.app import create_app
    from ocop_trace.ledger_setup import open_service
    from ocop_trace.settings import Settings

    assert invoke("demo", "--dir", "d")[0] == 0
    monkeypatch.setenv("TRACE_KEY_DIR", str(env / "d" / "keys"))
    settings = Settings(
        database_url=f"sqlite:///{env / 'd' / 'trace.db'}", key_dir=env / "d" / "keys"
    )
    service = open_service(settings)
    service.create_user(
        Principal(None, "t", "council"),
        "tai-hoan-2",
        "a-long-enough-password",
        "producer",
        "htx-tai-hoan",
    )
    client = TestClient(create_app(settings))
    token = client.post(
        "/api/v1/auth/token", json={"username": "tai-hoan-2", "password": "a-long-enough-password"}
    )
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    answer = client.post(
        "/api/v1/batches/mien-dong-tai-hoan-b1/labels",
        headers=headers,
        json={"count": 1, "format": "png", "offline": True},
    )
    assert answer.status_code == 201, answer.text
    # Read the printed code back with an independent decoder, as a phone would.
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(answer.content)))
    assert len(decoded) == 1
    signed = decoded[0].text
    assert "?k=" in signed
    assert "&s=" in signed
    resolved = client.get(signed.removeprefix("http://127.0.0.1:8000"))
    assert resolved.json()["label_signature"] == "valid"
    tampered = client.get(signed.removeprefix("http://127.0.0.1:8000")[:-3] + "AAA")
    assert tampered.json()["label_signature"] == "invalid"
    assert invoke("export", "--db", settings.database_url, "--out", "b.jsonl")[0] == 0
    assert invoke("verify-label", signed, "--bundle", "b.jsonl")[0] == 0


def test_demo_prints_a_scan_url_for_every_verdict(env: Path) -> None:
    from fastapi.testclient import TestClient
    from pages import HTML, Page

    from ocop_trace.app import create_app
    from ocop_trace.settings import Settings
    from ocop_trace.verdict import Verdict

    code, out, _ = invoke("demo", "--dir", "d")
    assert code == 0
    assert "sign in at http://127.0.0.1:8000/app/login as council-demo" in out
    links = {
        line.split(": ", 1)[0].strip(): line.split(": ", 1)[1].strip()
        for line in out.splitlines()
        if any(f": http://127.0.0.1:8000{p}" in line for p in ("/l/", "/01/", "/b/"))
    }
    settings = Settings(
        database_url=f"sqlite:///{env / 'd' / 'trace.db'}", key_dir=env / "d" / "keys"
    )
    client = TestClient(create_app(settings))
    shown = set()
    for name, url in links.items():
        path = url.removeprefix("http://127.0.0.1:8000")
        for lang in ("vi", "en"):
            answer = client.get(f"{path}{'&' if '?' in path else '?'}lang={lang}", headers=HTML)
            opened = Page(answer.text)
            assert opened.lang == lang
            verdict = Verdict(opened.verdict)
            assert name.startswith(str(verdict)), (name, verdict)
            shown.add(verdict)
        if name == "genuine_rating_expiring":
            assert opened.fields["status"] == "expiring"
    assert shown == set(Verdict) - {Verdict.NO_RATING, Verdict.UNVERIFIED}
