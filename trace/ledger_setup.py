"""Wiring the ledger from settings: key files, the pinned root key, schema and genesis."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.authority import KEY_REGISTERED
from ledger.errors import KeyFormatError
from ledger.note import NoteSigner, format_verifier_key
from ledger.statement import sign_statement
from ledger.store import LedgerStore, open_engine, refresh_statistics
from ocop_trace import schema
from ocop_trace.custody import Custody
from ocop_trace.service import TraceService, attach_projection
from ocop_trace.settings import Settings

ROOT_KEY_FILE = "root.pem"
ROOT_PUBLIC_FILE = "root.pub.pem"
LEDGER_KEY_FILE = "ledger.pem"


@dataclass(frozen=True)
class InitResult:
    root_key_id: str
    ledger_vkey: str
    created_keys: bool
    genesis_index: int | None


def root_key_id(settings: Settings) -> str:
    """The pinned root key: TRACE_ROOT_KEY, else the public key file init wrote."""
    if settings.root_key:
        return settings.root_key
    public_file = settings.key_dir / ROOT_PUBLIC_FILE
    if not public_file.exists():
        raise KeyFormatError(
            "no root key is pinned: set TRACE_ROOT_KEY to its 64 hex digits or run "
            "'ocop-trace init' to create one",
            expected=f"TRACE_ROOT_KEY or {public_file}",
            found="neither",
        )
    return keys.key_id(keys.load_public_key(public_file))


def load_key(settings: Settings, filename: str) -> Ed25519PrivateKey:
    return keys.load_private_key(settings.key_dir / filename, settings.passphrase_bytes())


def open_store(
    settings: Settings, *, signing: bool = True, root_key: str | None = None
) -> LedgerStore:
    """A LedgerStore on the configured database; it signs checkpoints when it has the key."""
    signer = None
    ledger_file = settings.key_dir / LEDGER_KEY_FILE
    if signing and ledger_file.exists():
        signer = NoteSigner(settings.origin, load_key(settings, LEDGER_KEY_FILE))
    return LedgerStore(
        open_engine(settings.database_url, settings.database_connections),
        origin=settings.origin,
        root_key_id=root_key or root_key_id(settings),
        signer=signer,
        checkpoint_interval=settings.checkpoint_interval,
    )


def open_service(settings: Settings) -> TraceService:
    """The use cases on the configured database, keeping the projection with each append."""
    store = attach_projection(open_store(settings))
    return TraceService(store, Custody(store.engine, settings.secret_key.get_secret_value()))


def init_ledger(settings: Settings) -> InitResult:
    """Create keys (if missing), the schema, and the genesis entry registering the ledger key.

    Safe to run again: existing keys are kept and genesis is appended only to an empty ledger.
    """
    key_dir: Path = settings.key_dir
    created = False
    if not (key_dir / LEDGER_KEY_FILE).exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        key_dir.chmod(0o700)  # the private keys' folder: its owner's alone
        passphrase = settings.passphrase_bytes()
        if not settings.root_key:
            root = keys.generate()
            keys.save_private_key(root, key_dir / ROOT_KEY_FILE, passphrase)
            keys.save_public_key(keys.public_bytes(root), key_dir / ROOT_PUBLIC_FILE)
        keys.save_private_key(keys.generate(), key_dir / LEDGER_KEY_FILE, passphrase)
        created = True
    store = open_store(settings)
    schema.upgrade(store.engine)
    store.create_schema()  # the head row; the tables exist by now
    refresh_statistics(store.engine)  # and again hourly while serving (trace/background.py)
    ledger_key = load_key(settings, LEDGER_KEY_FILE)
    ledger_public = keys.public_bytes(ledger_key)
    genesis = None
    if store.size() == 0:
        root = load_key(settings, ROOT_KEY_FILE)
        statement = sign_statement(
            KEY_REGISTERED,
            {
                "key_id": keys.key_id(ledger_public),
                "role": "ledger",
                "name": settings.origin,
                "kinds": [],
                "subject": settings.origin,
            },
            root,
        )
        genesis = store.append([statement])[0].index
        store.publish_checkpoint()
    service = open_service(settings)
    root_file = key_dir / ROOT_KEY_FILE
    if root_file.exists():
        service.ensure_council_key(load_key(settings, ROOT_KEY_FILE))
    return InitResult(
        store.root_key_id, format_verifier_key(settings.origin, ledger_public), created, genesis
    )
