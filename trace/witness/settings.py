"""The witness's own settings: one folder holds its database, key, vkey and list of logs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.witness import MAX_BODY_BYTES


class WitnessSettings(BaseSettings):
    """TRACE_WITNESS_* environment variables; nothing is shared with the log's settings."""

    model_config = SettingsConfigDict(env_prefix="TRACE_WITNESS_", extra="ignore")

    dir: Path = Field(default=Path("witness"), description="Folder of the witness's files.")
    key_passphrase: SecretStr | None = Field(
        default=None, description="Decrypts the witness's private key file, if encrypted."
    )
    max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024, le=MAX_BODY_BYTES)

    @property
    def database(self) -> Path:
        """SQLite file: the latest cosigned checkpoint per log, and refused evidence."""
        return self.dir / "witness.db"

    @property
    def key_file(self) -> Path:
        """Ed25519 private key (PEM, mode 0600)."""
        return self.dir / "witness.pem"

    @property
    def vkey_file(self) -> Path:
        """The witness's name and public key as a cosigner vkey (type 0x04): publish it."""
        return self.dir / "witness.vkey"

    @property
    def logs_file(self) -> Path:
        """The logs witnessed: tlog-policy `log <vkey>` lines; the key name is the origin."""
        return self.dir / "logs.policy"

    def passphrase_bytes(self) -> bytes | None:
        if self.key_passphrase is None or not self.key_passphrase.get_secret_value():
            return None
        return self.key_passphrase.get_secret_value().encode()
