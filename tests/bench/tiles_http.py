"""`make bench`, tiles over HTTP: the C2SP tile endpoints' requests per second against the
bare FastAPI endpoint, same run (issue 14: at least 50 %).

Two servers run side by side, started as the scan-page benchmark starts its own
(`scan_bench.Server`: `uvicorn --workers 2`): the bare FastAPI JSON endpoint and the app on
the 10,000-entry benchmark ledger (`scan_ledger`). Before timing, every full tile is fetched
once and checked: 200, `Cache-Control` immutable, a hash tile of 256 hashes, a bundle whose
entries hash to its level-0 tile, and the root of the tiles equal to the checkpoint's. Then
wrk cycles over every full level-0 hash tile, every full entry bundle, and /checkpoint;
rounds alternate with the bare endpoint, and each figure is the median over rounds of its
ratio to the bare runs just before and after it. First, for information, the CPU time each
answer costs in process (an ASGI call, no network), which the host's load disturbs less.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bare_app import create_app as create_bare_app
from scan_bench import ROWS, Server, lua_script, record, wrk
from scan_ledger import bench_settings, ensure_ledger, environment_of

from ledger import merkle
from ledger.tiles import ENTRIES, WIDTH, Tile, TileHashes, decode_bundle
from ocop_trace.app import create_app
from ocop_trace.witness.tile_routes import CHECKPOINT_CACHE, IMMUTABLE

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGET = 0.5
CASES = {
    "hashes": "full level-0 hash tiles (8 KiB)",
    "bundles": "full entry bundles (256 entries)",
    "checkpoint": "/checkpoint",
}


def free_port() -> int:
    """A port nobody listens on now: the machine is shared, and another developer's
    benchmark may hold the fixed ports scan_bench uses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[bytes, str]:
    """The body and Cache-Control of a 200 answer; anything else stops the benchmark."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        if answer.status != 200:
            raise SystemExit(f"GET {path}: {answer.status}, expected 200")
        return answer.read(), answer.headers.get("Cache-Control", "")


def checked_paths(port: int) -> tuple[int, list[str], list[str]]:
    """The checkpoint's size and the paths of every full hash tile and entry bundle of
    level 0, each fetched and checked, so the timed answers are known to be right."""
    note, cache = get(port, "/checkpoint")
    lines = note.decode().split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    if cache != CHECKPOINT_CACHE:
        raise SystemExit(f"/checkpoint: Cache-Control {cache!r}, expected {CHECKPOINT_CACHE!r}")
    fetched: dict[str, bytes] = {}

    def fetch(path: str) -> bytes:
        body, cache = get(port, "/" + path)
        if cache != IMMUTABLE:  # partial tiles too: a wider tile has another path
            raise SystemExit(f"/{path}: Cache-Control {cache!r}, expected {IMMUTABLE!r}")
        fetched[path] = body
        return body

    if TileHashes(size, fetch).root() != root:
        raise SystemExit("the root of the served tiles is not the checkpoint's")
    full = size // WIDTH
    if full < 2:
        raise SystemExit(f"a tree of {size} leaves has fewer than two full tiles")
    hashes, bundles = [], []
    for n in range(full):
        tile, bundle = Tile(0, n), Tile(ENTRIES, n)
        leaves = fetched.get(tile.path) or fetch(tile.path)
        if len(leaves) != WIDTH * merkle.HASH_SIZE:
            raise SystemExit(f"/{tile.path}: {len(leaves)} bytes, expected a full tile")
        entries = decode_bundle(fetch(bundle.path), WIDTH)
        if b"".join(merkle.leaf_hash(e) for e in entries) != leaves:
            raise SystemExit(f"/{bundle.path}: entries do not hash to /{tile.path}")
        hashes.append("/" + tile.path)
        bundles.append("/" + bundle.path)
    return size, hashes, bundles


async def cpu_per_request(app: Any, path: str, count: int = 2000) -> float:
    """Microseconds of CPU (every thread of this process) per answer, best of five runs."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"GET {path}: {message['status']} in process, expected 200")

    for _ in range(200):  # warm: the tile read once and kept
        await app(dict(scope), receive, send)
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(count):
            await app(dict(scope), receive, send)
        best = min(best, (time.process_time() - started) / count * 1e6)
    return best


def in_process(ledger: Path) -> None:
    app, bare = create_app(bench_settings(ledger)), create_bare_app()

    async def measure() -> dict[str, float]:
        return {
            "bare": await cpu_per_request(bare, "/json"),
            "hash tile": await cpu_per_request(app, "/" + Tile(0, 7).path),
            "entry bundle": await cpu_per_request(app, "/" + Tile(ENTRIES, 7).path),
            "/checkpoint": await cpu_per_request(app, "/checkpoint"),
        }

    cpu = asyncio.run(measure())
    record(
        "tiles: CPU per answer in process (ASGI call, no network; best of 5 × 2,000)",
        ", ".join(f"{name} {us:.0f} µs" for name, us in cpu.items()),
        "(information)",
        None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=REPO / ".bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("the tiles benchmark needs wrk: apt-get install wrk")
    print(f"load average at start: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    ledger, _ = ensure_ledger(args.cache, args.entries)
    in_process(ledger)
    app, bare = free_port(), free_port()
    servers = {
        "bare": Server("bare FastAPI", "bare_app:create_app", bare, {}),
        "app": Server(
            "app, tiles", "ocop_trace.app:app_from_environment", app, environment_of(ledger)
        ),
    }
    try:
        servers["bare"].wait_ready("/json")
        servers["app"].wait_ready("/healthz")
        size, hashes, bundles = checked_paths(app)
        print(
            f"checked: /checkpoint (size {size:,}), {len(hashes)} full hash tiles and "
            f"{len(bundles)} full entry bundles (200, immutable, root and leaf hashes match)",
            flush=True,
        )
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {
                "hashes": lua_script(hashes, Path(tmp) / "hashes"),
                "bundles": lua_script(bundles, Path(tmp) / "bundles"),
                "checkpoint": None,
            }
            results = run_rounds(args, app, bare, scripts)
    finally:
        for server in servers.values():
            server.stop()
    report(args, results)
    print(f"load average at end: {'/'.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print("\n| benchmark | measured | target | met |\n|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    sys.exit(0 if all(row[3] != "NO" for row in ROWS) else 1)


def run_rounds(
    args: argparse.Namespace, app: int, bare: int, scripts: dict[str, Path | None]
) -> dict[str, list[tuple[float, float, int]]]:
    def url(name: str) -> str:
        if name == "bare":
            return f"http://127.0.0.1:{bare}/json"
        return f"http://127.0.0.1:{app}{'/checkpoint' if name == 'checkpoint' else '/'}"

    for name in ("bare", *CASES):  # warm-up: every worker has read (and cached) every tile
        wrk(url(name), 2, args.connections, scripts.get(name))
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in ("bare", *CASES)}

    def measure(name: str) -> tuple[float, float, int]:
        measured = wrk(url(name), args.seconds, args.connections, scripts.get(name))
        results[name].append(measured)
        return measured

    # Short runs, tightly interleaved: the host's noise comes in bursts, and each tile figure
    # is compared with the bare endpoint measured in the same round, before and after.
    measure("bare")
    for round_no in range(1, args.rounds + 1):
        tiles = {name: measure(name) for name in CASES}
        after = measure("bare")
        print(
            f"  round {round_no}: "
            + ", ".join(f"{name} {r[0]:,.0f}/s (p99 {r[1]:.1f} ms)" for name, r in tiles.items())
            + f", bare {after[0]:,.0f}/s",
            flush=True,
        )
    return results


def report(args: argparse.Namespace, results: dict[str, list[tuple[float, float, int]]]) -> None:
    bare = [r[0] for r in results["bare"]]
    around = [(before + after) / 2 for before, after in itertools.pairwise(bare)]
    for name, label in CASES.items():
        rps = [r[0] for r in results[name]]
        ratios = [t / b for t, b in zip(rps, around, strict=True)]
        ratio = statistics.median(ratios)
        p99 = statistics.median(r[1] for r in results[name])
        record(
            f"tiles: {label} rps against a bare FastAPI JSON endpoint (2 workers each, "
            f"{args.connections} connections, median of {args.rounds} rounds, each against "
            "the bare runs just before and after)",
            f"{statistics.median(rps):,.0f}/s against {statistics.median(bare):,.0f}/s = "
            f"{ratio:.0%}, p99 {p99:.1f} ms (rounds: {', '.join(f'{r:.0%}' for r in ratios)})",
            "≥ 50 %",
            ratio >= TARGET,
        )
    failed = sum(r[2] for name in CASES for r in results[name])
    record("tiles: answers that were not 200 or timed out", str(failed), "0", failed == 0)


if __name__ == "__main__":
    main()
