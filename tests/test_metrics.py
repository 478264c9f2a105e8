"""/metrics: only with its token, in the Prometheus text format, route templates not paths."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pages import link, scan
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError
from support import Api, issue_labels, issued_serials

from ledger import keys
from ledger.cosign_store import CosignatureStore
from ledger.note import format_verifier_key
from ledger.policy import parse_policy
from ocop_trace import demo_witnesses
from ocop_trace.app import create_app
from ocop_trace.ledger_setup import LEDGER_KEY_FILE, load_key
from ocop_trace.settings import Settings
from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.client import witness_once
from ocop_trace.witness.settings import WitnessSettings

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"
TOKEN = "a-metrics-token-of-at-least-32-characters"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _metered(api: Api, **update: object) -> Api:
    """The same ledger served by an app that has a metrics token (fresh counters)."""
    settings = api.settings.model_copy(update={"metrics_token": SecretStr(TOKEN), **update})
    return Api(TestClient(create_app(settings)), api.service, api.tokens, settings)


def _scrape(api: Api) -> tuple[str, Samples]:
    answer = api.client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return answer.text, samples


def _requests(samples: Samples, method: str, route: str, status: str) -> float:
    key = (
        "ocop_trace_http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )
    return samples.get(key, 0.0)


def test_without_a_token_there_is_no_metrics_page(api: Api) -> None:
    answer = api.client.get("/metrics", headers=BEARER)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert "/metrics" not in api.client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_a_wrong_or_missing_token_is_refused_in_the_one_error_shape(
    api: Api, headers: dict[str, str]
) -> None:
    metered = _metered(api)
    answer = metered.client.get("/metrics", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "not_authenticated"
    assert TOKEN not in answer.text


def test_requests_are_counted_by_route_template_and_no_serial_is_shown(api: Api) -> None:
    metered = _metered(api)
    _, before = _scrape(metered)
    issue_labels(metered, 2)  # API appends: product, rating, batch, labels
    serials = issued_serials(metered)
    for serial in serials:
        status, page, _ = scan(metered, f"/l/{serial}")
        assert status == 200, page
    assert scan(metered, link(serials[0]))[0] == 200
    assert metered.client.get("/no/such/page/anywhere").status_code == 404
    assert metered.client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert metered.client.get("/checkpoint").status_code == 200
    text, after = _scrape(metered)
    scanned = _requests(after, "GET", "/l/{code}", "2xx") - _requests(
        before, "GET", "/l/{code}", "2xx"
    )
    assert scanned == len(serials)
    assert _requests(after, "POST", "/api/v1/batches", "2xx") == 1
    assert _requests(after, "GET", "other", "4xx") >= 1  # the unmatched path
    assert _requests(after, "GET", "/docs/assets/{path}", "2xx") == 1  # a mount
    assert _requests(after, "GET", "/checkpoint", "2xx") == 1  # a plain route behind others
    for serial in serials:
        assert serial not in text
        assert serial.upper() not in text
    assert "mien-2026-001" not in text  # ids in paths are not label values either
    assert "/no/such" not in text
    routes = {dict(labels).get("route") for _, labels in after}
    assert "/l/{code}" in routes
    latency = ("ocop_trace_http_request_duration_seconds_count", (("route", "/l/{code}"),))
    assert after[latency] >= len(serials)


def test_ledger_figures_match_the_store(api: Api) -> None:
    metered = _metered(api)
    issue_labels(metered, 1)
    metered.service.store.publish_checkpoint()
    issue_labels(metered, 1)  # one more label set, after the checkpoint
    _, samples = _scrape(metered)
    size, checkpoint_size = metered.service.store.state()
    assert checkpoint_size < size
    assert samples[("ocop_trace_ledger_appends_total", ())] == size
    assert samples[("ocop_trace_ledger_size", ())] == size
    assert samples[("ocop_trace_checkpoint_size", ())] == checkpoint_size
    assert samples[("ocop_trace_database_up", ())] == 1
    age = samples[("ocop_trace_checkpoint_age_seconds", ())]
    assert 0 <= age < 600
    # No policy, no witness figures.
    assert not any(name.startswith("ocop_trace_witness") for name, _ in samples)


def test_witness_lag_is_size_minus_what_each_witness_cosigned(api: Api, tmp_path: Path) -> None:
    ledger_key = load_key(api.settings, LEDGER_KEY_FILE)
    vkey = format_verifier_key(api.settings.origin, keys.public_bytes(ledger_key))
    policy_file = demo_witnesses.setup(tmp_path, vkey)
    metered = _metered(api, witness_policy=policy_file)
    issue_labels(metered, 1)
    cosigned_size = metered.service.store.publish_checkpoint().split("\n")[1]
    first = demo_witnesses.DEMO_WITNESSES[0]
    _cosign(metered, tmp_path, policy_file, first)
    issue_labels(metered, 1)  # the ledger grows past what was cosigned
    text, samples = _scrape(metered)
    size = metered.service.store.size()
    policy = parse_policy(policy_file.read_bytes())
    assert len(policy.witnesses) == 2
    for witness in policy.witnesses:
        done = int(cosigned_size) if witness.key.name == first.name else 0
        labels = (("witness", witness.name),)
        assert samples[("ocop_trace_witness_cosigned_size", labels)] == done
        assert samples[("ocop_trace_witness_lag_entries", labels)] == size - done
    assert size > int(cosigned_size) > 0
    # Every metric docs/deploy.md lists is served (with a policy, all of them are).
    served = {name for name, _ in samples} | set(re.findall(r"^# TYPE (\S+)", text, re.M))
    documented = set(re.findall(r"^\| `(ocop_trace_[a-z_]+)", DEPLOY.read_text(), re.M))
    assert len(documented) >= 9
    assert documented - served == set()


def _cosign(api: Api, folder: Path, policy_file: Path, witness: demo_witnesses.DemoWitness) -> None:
    app = create_witness_app(WitnessSettings(dir=demo_witnesses.witness_dir(folder, witness)))
    store = CosignatureStore(api.service.store)
    done = witness_once(
        parse_policy(policy_file.read_bytes()),
        api.service.store,
        lambda c: store.save(c.size, c.witness.key, c.line, c.timestamp),
        known_sizes=store.witness_sizes(),
        mounts={witness.url: httpx.ASGITransport(app=app)},
    )
    assert len(done) == 1


def test_a_short_metrics_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="TRACE_METRICS_TOKEN"):
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", metrics_token=SecretStr("short"))
    unset = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", metrics_token=SecretStr(""))
    assert unset.metrics_secret is None  # an empty variable (compose's default) means off


WORKER = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from pydantic import SecretStr
    from ocop_trace.app import create_app
    from ocop_trace.settings import Settings

    settings = Settings(
        database_url=sys.argv[1], key_dir=sys.argv[2], metrics_token=SecretStr(sys.argv[3])
    )
    client = TestClient(create_app(settings))
    for _ in range(int(sys.argv[4])):
        assert client.get("/api/v1/checkpoint").status_code in (200, 404)
    if sys.argv[5] == "scrape":
        print(client.get("/metrics", headers={"Authorization": "Bearer " + sys.argv[3]}).text)
    """
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workers_share_their_counters_in_multiprocess_mode(api: Api, tmp_path: Path) -> None:
    """As under `serve --workers N`: what one process counted is in another's scrape."""
    folder = tmp_path / "multiproc"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    args = [api.settings.database_url, str(api.settings.key_dir), TOKEN]

    def worker(count: int, then: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, *args, str(count), then],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    worker(3, "exit")
    text = worker(2, "scrape")
    counted = {
        s.labels["route"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "ocop_trace_http_requests_total" and s.labels["status"] in ("2xx", "4xx")
    }
    assert counted["/api/v1/checkpoint"] == 5
    assert "ocop_trace_ledger_size " in text  # the ledger's figures are there too
