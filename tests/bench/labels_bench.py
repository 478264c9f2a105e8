"""Label sheets: the fast path against plain `qrcode.make` images in the same run, and peak RSS.

    .venv/bin/python tests/bench/labels_bench.py [--labels 1000] [--memory-labels 10000]

The baseline draws the same sheet with the same text, but each QR comes from `qrcode.make(url)`
(qrcode's default version fit and 8-mask penalty search, rendered by Pillow) and is placed with
reportlab's drawImage. Targets from the issue: at least 5x faster, under 300 MB for 10,000.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import qrcode
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from ocop_trace import labels
from ocop_trace.digital_link import build_digital_link
from ocop_trace.serials import new_serial

NAME = "Trà Shan Tuyết cổ thụ Hà Giang – hộp quà 100 g"


def make_labels(count: int) -> Iterator[labels.Label]:
    for index in range(count):
        serial = new_serial()
        lot = f"L2025-{index // 500:03d}"
        url = build_digital_link("https://id.ocop.vn", "08936012345674", lot, serial.canonical)
        yield labels.Label(url, NAME, 4, lot, serial.human)


def plain_draw_qr(canvas: Canvas, url: Any, x: float, y: float, side: float) -> None:
    image = qrcode.make(url)  # default: best fit, all 8 masks scored, a Pillow image
    canvas.drawImage(ImageReader(image.get_image()), x, y, side, side)


def time_sheet(items: list[labels.Label], plain: bool) -> float:
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        if plain:
            # Same layout and text; only the QR path differs (the URL passes through as-is).
            with (
                mock.patch.object(labels, "qr_matrix", lambda url, *a, **k: url),
                mock.patch.object(labels, "_draw_qr", plain_draw_qr),
            ):
                labels.render_pdf_sheet(items, out)
        else:
            labels.render_pdf_sheet(items, out)
        return time.perf_counter() - start


def peak_rss_mb(count: int) -> float:
    """Peak RSS of a fresh interpreter writing a `count`-label sheet from a generator."""
    code = (
        "import resource, sys, tempfile\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from labels_bench import make_labels\n"
        "from ocop_trace.labels import render_pdf_sheet\n"
        "with tempfile.TemporaryFile() as out:\n"
        "    render_pdf_sheet(make_labels(int(sys.argv[1])), out)\n"
        "    print(out.tell())\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    here = str(Path(__file__).resolve().parent)
    result = subprocess.run(
        [sys.executable, "-c", code, str(count), here], capture_output=True, text=True, check=True
    )
    size, peak_kib = (int(line) for line in result.stdout.split())
    print(f"      {count} labels: PDF {size / 1e6:.1f} MB", flush=True)
    return peak_kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--memory-labels", type=int, default=10_000)
    args = parser.parse_args()
    items = list(make_labels(args.labels))
    with tempfile.TemporaryFile() as out:
        labels.render_pdf_sheet(items[:1], out)  # font load, imports
    fast = time_sheet(items, plain=False)
    plain = time_sheet(items, plain=True)
    ratio = plain / fast
    ok_speed = ratio >= 5
    print(
        f"{'PASS' if ok_speed else 'FAIL'}  {args.labels}-label sheet: fast {fast:.2f} s, "
        f"plain qrcode.make {plain:.2f} s, {ratio:.1f}x (target >= 5x)",
        flush=True,
    )
    peak = peak_rss_mb(args.memory_labels)
    ok_memory = peak < 300
    print(
        f"{'PASS' if ok_memory else 'FAIL'}  peak RSS for {args.memory_labels} labels: "
        f"{peak:.0f} MB (target < 300 MB); this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
        flush=True,
    )
    return 0 if ok_speed and ok_memory else 1


if __name__ == "__main__":
    sys.exit(main())
