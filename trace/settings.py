"""One settings object, read from TRACE_* environment variables (and a .env file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///trace.db",
        description="SQLAlchemy URL: sqlite:///FILE (default) or postgresql://USER@HOST/DB.",
    )
    origin: str = Field(
        default="ocop-trace.local/ledger",
        description="The checkpoint origin line, and the ledger key's name in signed notes.",
        pattern=r"^[^\s+]{1,64}$",
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

    def passphrase_bytes(self) -> bytes | None:
        if self.key_passphrase is None or not self.key_passphrase.get_secret_value():
            return None
        return self.key_passphrase.get_secret_value().encode("utf-8")
