"""One settings object, read from TRACE_* environment variables (and a .env file)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Refused outside development (see the validator below); never a real secret.
PLACEHOLDER_SECRET = "change-me-development-only"  # noqa: S105
DEVELOPMENT_URL = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///trace.db",
        description="SQLAlchemy URL: sqlite:///FILE (default) or postgresql://USER@HOST/DB.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="A read replica of database_url (postgresql://USER@HOST/DB): public "
        "reads (scan pages, proofs, tiles, /checkpoint) go there, writes stay on the primary.",
    )
    database_connections: int = Field(
        default=48,
        ge=4,
        le=1000,
        description="Database connections one server process may hold, never more; it runs "
        "about half as many request threads (a thread may hold two). A fleet needs servers "
        "x workers x this within PostgreSQL's max_connections (docs/deploy.md).",
    )
    origin: str = Field(
        default="ocop-trace.local/ledger",
        description="The checkpoint origin line, and the ledger key's name in signed notes.",
        pattern=r"^[!-*,-~]{1,64}$",  # also the ledger key's name: printable ASCII, no '+'
    )
    key_dir: Path = Field(default=Path("keys"), description="Where init keeps its key files.")
    key_passphrase: SecretStr | None = Field(
        default=None, description="Encrypts the private key files written by init and keygen."
    )
    root_key: str | None = Field(
        default=None,
        description="Pinned root authority public key (64 hex digits) that verify trusts.",
        pattern=r"^[0-9a-f]{64}$",
    )
    checkpoint_interval: float = Field(default=2.0, gt=0, le=3600)
    environment: Literal["development", "test", "production"] = Field(
        default="development", description="Outside development a real secret is required."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(PLACEHOLDER_SECRET),
        description="Encrypts custodial signing keys at rest. At least 32 characters.",
    )
    copy_networks: int = Field(
        default=5,
        ge=2,
        le=10_000,
        description="A serial scanned from this many distinct networks may be a copy",
    )
    copy_days: int = Field(
        default=30, ge=1, le=366, description="...within this many days (Vietnam dates)"
    )
    witness_policy: Path | None = Field(
        default=None,
        description="A C2SP tlog-policy file naming the witnesses (name, key, URL) that cosign "
        "the ledger's checkpoints, and the quorum pages and verifiers require",
    )
    witness_interval: float = Field(
        default=10.0, gt=0, le=3600, description="Seconds between asking an idle witness again"
    )
    page_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a cached scan page or /checkpoint may lag behind the ledger "
        "(0: never)",
    )
    page_checkpoint_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a cached scan page goes on naming an older checkpoint before "
        "a scan has it renewed in the background (0: rebuilt by the scan at each new "
        "checkpoint or cosignature); an entry about what the page shows rebuilds it at once",
    )
    page_cache_size: int = Field(
        default=2048, ge=0, le=1_000_000, description="Rendered scan pages kept per worker"
    )
    public_url: str = Field(
        default="",
        description="Base URL printed in links and QR codes, e.g. https://truyxuat.example.vn "
        "(required outside development; there it defaults to http://127.0.0.1:8000).",
        pattern=r"^(https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?)?$",
    )
    token_days: int = Field(
        default=30, ge=1, le=3650, description="An API token expires after this many days unused"
    )
    session_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="A staff app session ends after this long idle"
    )
    login_concurrency: int = Field(
        default=1, ge=1, le=16, description="Password hashes one server process runs at once"
    )
    report_bytes_per_day: int = Field(
        default=200 * 1024 * 1024,
        ge=0,
        description="Storage fake reports (photos included) may take per day, in bytes",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus sends to read /metrics (at least 32 characters); "
        "unset, /metrics answers 404",
    )

    @property
    def metrics_secret(self) -> str | None:
        """The metrics token, or None when /metrics is not served (unset or empty)."""
        if self.metrics_token is None:
            return None
        return self.metrics_token.get_secret_value() or None

    @property
    def request_threads(self) -> int:
        """Threads a server process runs blocking work in, and requests that may hold a
        connection across awaits (api.deps.get_connection). A thread that waits for a
        connection holds at most one, so with S holding requests and T threads all waiting,
        S + T connections are taken: a pool of S + T + 1 always has one left."""
        return (self.database_connections - 1) // 2

    @property
    def is_development(self) -> bool:
        """Running as a development or demo server: pages show a banner, `serve` warns."""
        return self.environment == "development"

    @property
    def placeholder_secret(self) -> bool:
        """The secret is the public placeholder: anyone with the database can open its keys."""
        return self.secret_key.get_secret_value() == PLACEHOLDER_SECRET

    @field_validator("witness_policy", "root_key", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        # An empty variable (docker compose's `${TRACE_ROOT_KEY:-}`) means not set.
        return None if value == "" else value

    @model_validator(mode="after")
    def _real_values_outside_development(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.environment != "development" and (secret == PLACEHOLDER_SECRET or len(secret) < 32):
            raise ValueError(
                "TRACE_SECRET_KEY must be set to a random value of at least 32 characters "
                f"when TRACE_ENVIRONMENT is {self.environment}"
            )
        token = self.metrics_secret
        if token is not None and len(token) < 32:
            raise ValueError("TRACE_METRICS_TOKEN must be at least 32 characters (or unset)")
        if not self.public_url:
            if self.environment != "development":
                # Labels are printed with it: a sheet must never carry a localhost link.
                raise ValueError(
                    "TRACE_PUBLIC_URL must be set to the address shoppers reach the service at "
                    "(e.g. https://truyxuat.example.vn) when TRACE_ENVIRONMENT is "
                    + self.environment
                )
            self.public_url = DEVELOPMENT_URL
        return self

    def passphrase_bytes(self) -> bytes | None:
        if self.key_passphrase is None or not self.key_passphrase.get_secret_value():
            return None
        return self.key_passphrase.get_secret_value().encode("utf-8")


DEVELOPMENT_WARNING = (
    "DEVELOPMENT MODE (TRACE_ENVIRONMENT=development): not for real products. "
    "{secret}Set TRACE_ENVIRONMENT=production and a random TRACE_SECRET_KEY to run for real."
)
PLACEHOLDER_WARNING = (
    "The secret key is the public placeholder, so anyone with a copy of the database can "
    "decrypt every custodial signing key. "
)


def development_warning(settings: Settings) -> str | None:
    """What `serve` and each server process log when not running in production."""
    if not settings.is_development:
        return None
    return DEVELOPMENT_WARNING.format(
        secret=PLACEHOLDER_WARNING if settings.placeholder_secret else ""
    )


def warn_if_development(settings: Settings) -> None:
    warning = development_warning(settings)
    if warning:
        logging.getLogger("ocop_trace").warning(warning)
