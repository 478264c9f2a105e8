"""Pages rest on the newest checkpoint a quorum of witnesses cosigned, and say by whom."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pages import link, scan
from support import Api, issue_labels, issued_serials

from ledger import keys
from ledger.cosign_store import CosignatureStore
from ledger.note import format_verifier_key
from ledger.policy import parse_policy
from ocop_trace import demo_witnesses
from ocop_trace.app import create_app
from ocop_trace.ledger_setup import LEDGER_KEY_FILE, load_key
from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.client import witness_once
from ocop_trace.witness.settings import WitnessSettings


def _witnessed(api: Api, folder: Path) -> tuple[Api, Path]:
    """The same ledger served by an app with the demo's two-witness policy."""
    ledger_key = load_key(api.settings, LEDGER_KEY_FILE)
    vkey = format_verifier_key(api.settings.origin, keys.public_bytes(ledger_key))
    policy = demo_witnesses.setup(folder, vkey)
    settings = api.settings.model_copy(update={"witness_policy": policy})
    return Api(TestClient(create_app(settings)), api.service, api.tokens, settings), policy


def _cosign(folder: Path, policy_file: Path, api: Api, only: int | None = None) -> int:
    witnesses = demo_witnesses.DEMO_WITNESSES[:only]
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        w.url: httpx.ASGITransport(
            app=create_witness_app(WitnessSettings(dir=demo_witnesses.witness_dir(folder, w)))
        )
        for w in witnesses
    }
    store = CosignatureStore(api.service.store)
    done = witness_once(
        parse_policy(policy_file.read_bytes()),
        api.service.store,
        lambda c: store.save(c.size, c.witness.key, c.line, c.timestamp),
        known_sizes=store.witness_sizes(),
        mounts=mounts,
    )
    return len(done)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_page_says_who_confirmed_its_checkpoint(api: Api, tmp_path: Path) -> None:
    issue_labels(api, 1)
    api.service.store.publish_checkpoint()
    witnessed, policy = _witnessed(api, tmp_path)
    path = link(issued_serials(api)[0])
    _, page, _ = scan(witnessed, path)
    assert "Chưa được nhân chứng độc lập xác nhận" in page.fields["text:checked"]
    assert page.verdict == "genuine"  # no quorum yet is not a failure
    assert _cosign(tmp_path, policy, api, only=1) == 1  # one of two: still no quorum
    _, page, _ = scan(witnessed, path)
    assert "Chưa được nhân chứng độc lập xác nhận" in page.fields["text:checked"]
    assert _cosign(tmp_path, policy, api) == 2  # both now (the first one again)
    _, page, _ = scan(witnessed, path + "?lang=en")
    said = page.fields["text:checked"]
    assert "Confirmed by independent witnesses: hoi-dong-ocop-cao-bang-demo" in said
    assert "hoi-dong-ocop-lang-son-demo" in said
    served = witnessed.client.get("/api/v1/checkpoint").text
    assert served.count("— witness.ocop-") == 2  # the cosignatures travel with the note
    assert witnessed.client.get("/checkpoint").text == served
