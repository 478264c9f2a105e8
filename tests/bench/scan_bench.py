"""`make bench`, scan page: requests per second against a bare FastAPI endpoint, same run.

Servers run side by side, each `uvicorn --workers N` with the same options: a bare FastAPI
JSON endpoint (the baseline), the app on a 10,000-entry ledger and the app on a
1,000,000-entry ledger. wrk (a C load generator, 32 connections) scans the ledgers' label
URLs in turn, as a phone does (Accept: text/html). Rounds alternate between the servers and
each figure is the median of its rounds, because these machines are shared and noisy.

One worker per server by default, on a two-core machine: one core serves, the other runs
wrk. With two workers, asyncio's accept loop lets whichever worker wakes first take most of
wrk's 32 keep-alive connections, at random, so a round measured one worker or two by chance
(a page server's one-second rates went 6,000/s, 13,000/s, 7,000/s… on an idle host) and
the workers fought wrk for the cores. `--workers 2` still runs it that way.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from scan_ledger import ensure_ledger, environment_of

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ROWS: list[tuple[str, str, str, str]] = []
WARM_UP = 10  # seconds per server before the rounds


def record(name: str, measured: str, target: str, ok: bool | None) -> None:
    met = "—" if ok is None else "yes" if ok else "NO"
    ROWS.append((name, measured, target, met))
    status = "INFO" if ok is None else "PASS" if ok else "FAIL"
    print(f"{status}  {name}: {measured} (target {target})", flush=True)


class Server:
    def __init__(self, name: str, app: str, port: int, env: dict[str, str], workers: int) -> None:
        self.name, self.port = name, port
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env, "PYTHONPATH": str(HERE)},
            start_new_session=True,
        )

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"{self.name} did not start on port {self.port}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> tuple[float, float, int]:
    """(requests per second, p99 latency in ms, responses that were not 2xx/3xx)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*timeout (\d+)", out)
    return rps, p99, (int(bad.group(1)) if bad else 0) + (int(errors.group(1)) if errors else 0)


def lua_script(paths: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "scan.lua"
    quoted = ",".join(f'"{p}"' for p in paths)
    script.write_text(
        f"paths = {{{quoted}}}\n"
        "n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", paths[(n % #paths) + 1], {["Accept"] = "text/html"})\n'
        "end\n"
    )
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--cache", type=Path, default=REPO / ".bench")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("the scan-page benchmark needs wrk: apt-get install wrk")
    print(f"ledgers under {args.cache} (built once, then reused)", flush=True)
    small, small_paths = ensure_ledger(args.cache, args.small)
    large, large_paths = ensure_ledger(args.cache, args.large)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        servers = {
            "bare": Server("bare FastAPI", "bare_app:create_app", 8811, {}, args.workers),
            "small": Server(
                "app, small ledger",
                "ocop_trace.app:app_from_environment",
                8812,
                environment_of(small),
                args.workers,
            ),
            "large": Server(
                "app, large ledger",
                "ocop_trace.app:app_from_environment",
                8813,
                environment_of(large),
                args.workers,
            ),
            # The same pages with no page cache: every scan reads and renders (information).
            "small_uncached": Server(
                "app, small ledger, no page cache",
                "ocop_trace.app:app_from_environment",
                8814,
                {**environment_of(small), "TRACE_PAGE_CACHE_SIZE": "0"},
                args.workers,
            ),
            "large_uncached": Server(
                "app, large ledger, no page cache",
                "ocop_trace.app:app_from_environment",
                8815,
                {**environment_of(large), "TRACE_PAGE_CACHE_SIZE": "0"},
                args.workers,
            ),
        }
        try:
            run_rounds(args, servers, small_paths, large_paths, folder)
        finally:
            for server in servers.values():
                server.stop()
    print("\n| benchmark | measured | target | met |\n|---|---|---|---|")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    sys.exit(0 if all(row[3] != "NO" for row in ROWS) else 1)


def run_rounds(
    args: argparse.Namespace,
    servers: dict[str, Server],
    small_paths: list[str],
    large_paths: list[str],
    folder: Path,
) -> None:
    for name, server in servers.items():
        server.wait_ready("/json" if name == "bare" else "/healthz")
    small_script = lua_script(small_paths, folder / "small")
    large_script = lua_script(large_paths, folder / "large")
    scripts = {
        "small": small_script,
        "large": large_script,
        "small_uncached": small_script,
        "large_uncached": large_script,
    }
    # Warm-up: every label scanned at least once, so each worker has read the serials. A
    # label's first scan reads its check and counts, and each batch's first builds its page:
    # about 4 s for the 1,000 labels on a slow host, so 3 s left the first rounds warming.
    for name, script in scripts.items():
        wrk(f"http://127.0.0.1:{servers[name].port}/", WARM_UP, args.connections, script)
    wrk(f"http://127.0.0.1:{servers['bare'].port}/json", 2, args.connections, None)
    results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in servers}

    def measure(name: str, seconds: int) -> tuple[float, float, int]:
        url = f"http://127.0.0.1:{servers[name].port}{'/json' if name == 'bare' else '/'}"
        measured = wrk(url, seconds, args.connections, scripts.get(name))
        results[name].append(measured)
        return measured

    # Short measurements, tightly interleaved: the host's noise comes in bursts, and each
    # page figure is compared with the bare endpoint measured just before and just after.
    measure("bare", args.seconds)
    for round_no in range(1, args.rounds + 1):
        small = measure("small", args.seconds)
        large = measure("large", args.seconds)
        bare = measure("bare", args.seconds)
        print(
            f"  round {round_no}: page {small[0]:,.0f}/s (p99 {small[1]:.1f} ms), at "
            f"{args.large:,} entries {large[0]:,.0f}/s (p99 {large[1]:.1f} ms), "
            f"bare {bare[0]:,.0f}/s",
            flush=True,
        )
    # Then the same pages with no page cache, fewer rounds (information).
    for _ in range(max(1, args.rounds // 3)):
        measure("small_uncached", args.seconds)
        measure("large_uncached", args.seconds)
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[tuple[float, float, int]]]) -> None:
    bare = [r[0] for r in results["bare"]]
    small = [r[0] for r in results["small"]]
    large = [r[0] for r in results["large"]]
    around = [(before + after) / 2 for before, after in itertools.pairwise(bare)]
    ratios = [s / b for s, b in zip(small, around, strict=True)]
    ratio = statistics.median(ratios)
    record(
        f"scan page rps against a bare FastAPI JSON endpoint ({args.workers} worker(s) each, "
        f"{args.connections} connections, median of {args.rounds} rounds, each against the "
        "bare runs just before and after)",
        f"{statistics.median(small):,.0f}/s against {statistics.median(bare):,.0f}/s = "
        f"{ratio:.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)})",
        "≥ 50 %",
        ratio >= 0.5,
    )
    p99 = statistics.median(r[1] for r in results["small"])
    worst = max(r[1] for r in results["small"] + results["large"])
    record(
        f"scan page p99 latency, {args.connections} concurrent clients (median of rounds)",
        f"{p99:.1f} ms at {args.small:,} entries (worst round of either ledger: {worst:.1f} ms)",
        "≤ 50 ms",
        p99 <= 50,
    )
    scale = [g / s for g, s in zip(large, small, strict=True)]
    record(
        f"scan page rps at {args.large:,} entries against {args.small:,} (same run)",
        f"{statistics.median(large):,.0f}/s against {statistics.median(small):,.0f}/s = "
        f"{statistics.median(scale):.0%} (rounds: {', '.join(f'{r:.0%}' for r in scale)})",
        "≥ 90 % (no more than 10 % slower)",
        statistics.median(scale) >= 0.9,
    )
    uncached_small = statistics.median(r[0] for r in results["small_uncached"])
    uncached_large = statistics.median(r[0] for r in results["large_uncached"])
    uncached_p99 = statistics.median(r[1] for r in results["large_uncached"])
    record(
        "scan page with no page cache (every scan reads the projection, checks the entries "
        "and renders)",
        f"{uncached_small:,.0f}/s at {args.small:,} entries, {uncached_large:,.0f}/s at "
        f"{args.large:,} ({uncached_large / uncached_small:.0%}); "
        f"{uncached_small / statistics.median(bare):.0%} of the bare endpoint; "
        f"p99 {uncached_p99:.1f} ms at {args.large:,}",
        "(information)",
        None,
    )
    failed = sum(r[2] for k in results if k != "bare" for r in results[k])
    record("scan page answers that were not 200 or timed out", str(failed), "0", failed == 0)


if __name__ == "__main__":
    main()
