"""The demo's two witnesses, named as two other provinces' OCOP councils and marked demo.

Each has its own folder (key, state database, the logs it witnesses) under the demo's
`witnesses/`, and the demo's policy (`witnesses/policy.txt`) requires both. The demo asks
them to cosign in-process over the same HTTP protocol (httpx mounts on their apps), so the
witness processes `make demo` starts carry on from the very same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger.cosign_store import CosignatureStore
from ledger.policy import Policy, parse_policy
from ledger.store import LedgerStore
from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.client import witness_once
from ocop_trace.witness.settings import WitnessSettings
from ocop_trace.witness.setup import init_witness


@dataclass(frozen=True)
class DemoWitness:
    label: str  # the policy's name for it, shown on pages
    name: str  # its key name
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


DEMO_WITNESSES = (
    DemoWitness("hoi-dong-ocop-cao-bang-demo", "witness.ocop-cao-bang.demo/ocop", 8701),
    DemoWitness("hoi-dong-ocop-lang-son-demo", "witness.ocop-lang-son.demo/ocop", 8702),
)


def witness_dir(folder: Path, witness: DemoWitness) -> Path:
    return folder / "witnesses" / witness.label


def setup(folder: Path, log_vkey: str) -> Path:
    """Create (or keep) the two witnesses and the policy requiring both; returns its path."""
    lines = [f"log {log_vkey}"]
    for witness in DEMO_WITNESSES:
        settings = WitnessSettings(dir=witness_dir(folder, witness))
        vkey = init_witness(settings, witness.name, [log_vkey])
        lines.append(f"witness {witness.label} {vkey} {witness.url}")
    lines.append("group demo-councils all " + " ".join(w.label for w in DEMO_WITNESSES))
    lines.append("quorum demo-councils")
    policy = folder / "witnesses" / "policy.txt"
    policy.write_text(
        "# The demo's witness policy (C2SP tlog-policy): both demo councils must cosign.\n"
        + "\n".join(lines)
        + "\n"
    )
    return policy


def cosign(folder: Path, policy_file: Path, store: LedgerStore) -> int:
    """Ask both witnesses to cosign the latest checkpoint; returns how many did."""
    policy: Policy = parse_policy(policy_file.read_bytes())
    cosignatures = CosignatureStore(store)
    mounts: dict[str, httpx.AsyncBaseTransport] = {
        witness.url: httpx.ASGITransport(
            app=create_witness_app(WitnessSettings(dir=witness_dir(folder, witness)))
        )
        for witness in DEMO_WITNESSES
    }
    done = witness_once(
        policy,
        store,
        lambda c: cosignatures.save(c.size, c.witness.key, c.line, c.timestamp),
        known_sizes=cosignatures.witness_sizes(),
        mounts=mounts,
    )
    return len(done)
