"""docker-compose.yml and docs/deploy.md name only settings, services and commands that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from ocop_trace.cli import app as cli_app
from ocop_trace.settings import Settings
from ocop_trace.witness.settings import WitnessSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "docs" / "deploy.md"
TRACE_VARIABLE = re.compile(r"\bTRACE_[A-Z_]*[A-Z]\b")
# Read by commands from the environment, not settings: user-add's and rotate-secret's.
COMMAND_VARIABLES = {"TRACE_NEW_USER_PASSWORD", "TRACE_NEW_SECRET_KEY"}


def _known_variables() -> set[str]:
    app = {f"TRACE_{name.upper()}" for name in Settings.model_fields}
    witness = {f"TRACE_WITNESS_{name.upper()}" for name in WitnessSettings.model_fields}
    return app | witness | COMMAND_VARIABLES


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_stack_has_its_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"db", "app1", "app2", "witness", "proxy", "migrate"} <= set(services)
    assert services["db"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["db"]
    assert any(v.startswith("pgdata:") for v in services["db"]["volumes"])
    for name in ("app1", "app2"):
        app = services[name]
        assert app["build"] == "."
        assert app["command"][:2] == ["ocop-trace", "serve"]  # init is migrate's alone
        env = app["environment"]
        assert env["TRACE_DATABASE_URL"].startswith("postgresql://")
        assert "@db:5432/" in env["TRACE_DATABASE_URL"]
        assert env["TRACE_ENVIRONMENT"] == "production"
        assert ":?" in env["TRACE_SECRET_KEY"]  # required, never a default
        assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["ocop-trace", "init"]
    assert services["witness"]["command"][:3] == ["ocop-trace", "witness", "serve"]


def test_the_proxy_config_is_committed_and_round_robins_both_servers(
    compose: dict[str, Any],
) -> None:
    mounts = compose["services"]["proxy"]["volumes"]
    config = next(m.split(":")[0] for m in mounts if m.endswith("/etc/caddy/Caddyfile:ro"))
    text = (ROOT / config).read_text("utf-8")
    assert "reverse_proxy app1:8000 app2:8000" in text
    assert "lb_policy round_robin" in text
    assert "respond /metrics 404" in text
    # The apps trust X-Forwarded-For from the proxy's fixed address only.
    address = compose["services"]["proxy"]["networks"]["internal"]["ipv4_address"]
    assert compose["services"]["app1"]["environment"]["FORWARDED_ALLOW_IPS"] == address


def test_every_policy_file_the_stack_mounts_exists(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                # A missing file would be created by Docker as an empty folder.
                assert (ROOT / source).is_file(), source


def test_every_trace_variable_named_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = _known_variables()
    named = set(TRACE_VARIABLE.findall(DEPLOY.read_text("utf-8")))
    named |= set(TRACE_VARIABLE.findall(COMPOSE.read_text("utf-8")))
    assert {"TRACE_METRICS_TOKEN", "TRACE_SECRET_KEY", "TRACE_WITNESS_POLICY"} <= named
    assert named - known == set()


def test_every_documented_command_exists() -> None:
    group = typer.main.get_command(cli_app)
    commands = set(group.commands)  # type: ignore[attr-defined]
    named = set(re.findall(r"ocop-trace ([a-z][a-z-]+)", DEPLOY.read_text("utf-8")))
    named |= set(re.findall(r'"ocop-trace", "([a-z-]+)"', COMPOSE.read_text("utf-8")))
    assert {"init", "serve", "export", "verify", "user-add", "witness"} <= named
    assert named - commands == set()


def test_empty_compose_defaults_mean_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `${TRACE_WITNESS_POLICY:-}` and the like arrive as empty strings.
    for name in ("TRACE_WITNESS_POLICY", "TRACE_ROOT_KEY", "TRACE_METRICS_TOKEN"):
        monkeypatch.setenv(name, "")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert settings.witness_policy is None
    assert settings.root_key is None
    assert settings.metrics_secret is None
