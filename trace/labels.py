"""QR labels from one module matrix: PNG, SVG and print-ready A4 PDF sheets (reportlab, DejaVu)."""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from io import BytesIO
from itertools import islice
from typing import Any, BinaryIO, Literal

import qrcode
from qrcode import util as qr_util
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ocop_trace.errors import InvalidInput
from ocop_trace.i18n import t

EcLevel = Literal["M", "Q", "H"]
_EC_LEVELS: dict[str, int] = {
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
QUIET_ZONE = 4  # modules of light margin the QR specification requires on every side
# qrcode's default scores all 8 masks with its penalty rules and was ~80% of a label's cost
# (8.7 ms of 11 ms for a 68-character Digital Link). Decoders read any mask, so a fixed one is
# valid QR; mask 0 had the smallest worst-case penalty excess over the best mask across 900
# sampled Digital Links (M and Q). mask=None asks for qrcode's exhaustive search instead.
FAST_MASK = 0
FONT_NAME = "OcopDejaVuSans"
FONT_FILE = "DejaVuSans.ttf"  # Vietnamese, ★ and … coverage; shipped in ocop_trace/fonts/
MIN_QR_MM = 10.0
MIN_TEXT_MM = 27.0  # the widest human serial still fits at MIN_PT (5 pt) in this width
PAD_MM = 2.0  # inside each label, around the text column
NAME_PT, STARS_PT, SMALL_PT, TINY_PT, MIN_PT, LEADING = 8.0, 8.0, 7.0, 6.0, 5.0, 1.2
_DARK_RUN = re.compile(b"\x01+")


class LabelError(InvalidInput, ValueError):
    """Label content or sheet geometry that cannot be printed; the message says what to change."""


@dataclass(frozen=True)
class Label:
    url: str
    product_name: str
    stars: int  # OCOP rating 1-5; 0 when unrated
    lot: str
    serial_human: str
    producer: str = ""  # who made it, printed under the name
    domain: str = ""  # the service's address, for anyone who types rather than scans

    def __post_init__(self) -> None:
        if not self.url:
            raise LabelError("a label needs the URL its QR code carries")
        if not 0 <= self.stars <= 5:
            raise LabelError(f"OCOP stars are 1 to 5, or 0 when unrated; got {self.stars}")


def _ec(ec: str) -> int:
    if ec not in _EC_LEVELS:
        raise LabelError(f"error correction {ec!r}: use 'M' (default), 'Q' or 'H'")
    return _EC_LEVELS[ec]


def _data_bits(chunk: Any) -> int:
    n = len(chunk)
    if chunk.mode == qr_util.MODE_NUMBER:
        return 10 * (n // 3) + (0, 4, 7)[n % 3]
    if chunk.mode == qr_util.MODE_ALPHA_NUM:
        return 11 * (n // 2) + 6 * (n % 2)
    return 8 * n


def _fit_version(chunks: Sequence[Any], level: int) -> int:
    """The smallest version holding the chunks: qrcode's best_fit, by arithmetic not bit writes."""
    for version in range(1, 41):
        sizes = qr_util.mode_sizes_for_version(version)
        bits = sum(4 + sizes[chunk.mode] + _data_bits(chunk) for chunk in chunks)
        if bits <= qr_util.BIT_LIMIT_TABLE[level][version]:
            return version
    raise LabelError("the URL is too long for a QR code: shorten it or lower the error correction")


def qr_matrix(url: str, ec: EcLevel = "M", *, mask: int | None = FAST_MASK) -> list[list[bool]]:
    """Rows of modules (True = dark), without the quiet zone."""
    level = _ec(ec)
    if mask is not None and mask not in range(8):
        raise LabelError(f"a QR mask is 0-7, or None for the penalty search; got {mask}")
    qr = qrcode.QRCode(error_correction=level, mask_pattern=mask, border=0)
    qr.add_data(url)  # optimised segments: the upper-case /01/.../21/... tail goes alphanumeric
    qr.version = _fit_version(qr.data_list, level)
    qr.make(fit=False)
    modules: list[list[bool]] = qr.modules
    return modules


def _runs(matrix: list[list[bool]]) -> Iterator[tuple[int, int, int]]:
    """(row, column, length) of each horizontal run of dark modules."""
    for y, row in enumerate(matrix):
        for run in _DARK_RUN.finditer(bytes(row)):
            yield y, run.start(), run.end() - run.start()


def _check_quiet_zone(quiet_zone: int) -> None:
    if quiet_zone < QUIET_ZONE:
        raise LabelError(f"the quiet zone must be at least {QUIET_ZONE} modules, got {quiet_zone}")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def render_png(
    url: str,
    ec: EcLevel = "M",
    *,
    module_px: int = 10,
    quiet_zone: int = QUIET_ZONE,
    mask: int | None = FAST_MASK,
) -> bytes:
    """A 1-bit greyscale PNG, `module_px` pixels per module, light quiet zone included."""
    _check_quiet_zone(quiet_zone)
    if module_px < 1:
        raise LabelError(f"module_px must be at least 1, got {module_px}")
    matrix = qr_matrix(url, ec, mask=mask)
    side = (len(matrix) + 2 * quiet_zone) * module_px
    pad_bits = -side % 8
    light = b"\x00" + b"\xff" * ((side + pad_bits) // 8)  # filter byte 0, then all light pixels
    raw = [light] * (quiet_zone * module_px)
    edge = "1" * (quiet_zone * module_px)
    for row in matrix:
        bits = edge + "".join("0" * module_px if dark else "1" * module_px for dark in row)
        packed = int(bits + edge + "0" * pad_bits, 2).to_bytes(len(light) - 1, "big")
        raw += [b"\x00" + packed] * module_px
    raw += [light] * (quiet_zone * module_px)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(b"".join(raw), 9)),
            _png_chunk(b"IEND", b""),
        ]
    )


def render_svg(
    url: str,
    ec: EcLevel = "M",
    *,
    quiet_zone: int = QUIET_ZONE,
    size_mm: float | None = None,
    mask: int | None = FAST_MASK,
) -> str:
    """A standalone SVG: a white square and one path of dark rects, one module per unit."""
    _check_quiet_zone(quiet_zone)
    matrix = qr_matrix(url, ec, mask=mask)
    side = len(matrix) + 2 * quiet_zone
    size = f' width="{size_mm:g}mm" height="{size_mm:g}mm"' if size_mm else ""
    path = "".join(f"M{x + quiet_zone} {y + quiet_zone}h{w}v1h-{w}z" for y, x, w in _runs(matrix))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}"{size}'
        ' shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/></svg>\n'
    )


@lru_cache(maxsize=1)
def _font() -> str:
    data = resources.files("ocop_trace").joinpath("fonts", FONT_FILE).read_bytes()
    pdfmetrics.registerFont(TTFont(FONT_NAME, BytesIO(data)))
    return FONT_NAME


def _width(text: str, size: float) -> float:
    return float(pdfmetrics.stringWidth(text, FONT_NAME, size))


def _truncate(text: str, width: float, size: float) -> str:
    if _width(text, size) <= width:
        return text
    while text and _width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(text: str, width: float, size: float, max_lines: int) -> list[str]:
    lines: list[str] = []
    words = text.split()
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and _width(f"{line} {words[0]}", size) <= width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:  # more than fits: the last line ends in an ellipsis
        lines[-1] = _truncate(f"{lines[-1]} {' '.join(words)}", width, size)
    return [_truncate(line, width, size) for line in lines]


def _fitted(text: str, width: float, size: float) -> tuple[str, float]:
    """Shrink to fit the width down to MIN_PT, then truncate."""
    natural = _width(text, size)
    if natural > width:
        size = max(MIN_PT, size * width / natural)
    return _truncate(text, width, size), size


def check_sheet(
    label_mm: tuple[float, float] = (63.5, 38.1),
    grid: tuple[int, int] = (3, 7),
    gap_mm: tuple[float, float] = (2.5, 0.0),
    margin_mm: float = 5.0,
    qr_mm: float = 30.0,
) -> None:
    """Raise LabelError, saying what to change, unless the layout fits on A4.

    Callers that issue serials check the layout first, so a refused sheet issues nothing.
    """
    (width, height), (cols, rows), (gap_x, gap_y) = label_mm, grid, gap_mm
    if cols < 1 or rows < 1:
        raise LabelError(f"the grid needs at least 1 column and 1 row, got {cols}×{rows}")
    if min(width, height) <= 0 or min(gap_x, gap_y, margin_mm) < 0:
        raise LabelError("label sizes must be positive, gaps and margins zero or more")
    for axis, count, size, gap, page in (
        ("across", cols, width, gap_x, 210),
        ("down", rows, height, gap_y, 297),
    ):
        need = count * size + (count - 1) * gap
        if need > page - 2 * margin_mm + 1e-6:
            raise LabelError(
                f"{count} labels of {size:g} mm {axis} with {gap:g} mm gaps need {need:g} mm, "
                f"but A4 leaves {page - 2 * margin_mm:g} mm inside {margin_mm:g} mm margins: "
                "use fewer labels, smaller labels, gaps or margins"
            )
    if not MIN_QR_MM <= qr_mm <= height:
        raise LabelError(
            f"qr_mm (the code with its quiet zone) must be {MIN_QR_MM:g} mm to the label "
            f"height {height:g} mm, got {qr_mm:g}"
        )
    if width - qr_mm - PAD_MM < MIN_TEXT_MM:
        raise LabelError(
            f"a {width:g} mm label with a {qr_mm:g} mm QR leaves {width - qr_mm - PAD_MM:g} mm "
            f"for the text, which needs {MIN_TEXT_MM:g} mm: widen the label or reduce qr_mm"
        )
    text_mm = (NAME_PT + STARS_PT + 2 * SMALL_PT + 3 * TINY_PT) * LEADING / mm + 2 * PAD_MM
    if height < text_mm:
        raise LabelError(f"labels must be at least {text_mm:.1f} mm high for the text lines")


def _draw_qr(canvas: Canvas, matrix: list[list[bool]], x: float, y: float, side: float) -> None:
    """The code as filled rects in one path, in module units, quiet zone left blank."""
    count = len(matrix)
    module = side / (count + 2 * QUIET_ZONE)
    ops = [f"q 0 g {module:.5f} 0 0 {module:.5f} {x:.3f} {y:.3f} cm"]
    top = count + QUIET_ZONE - 1  # PDF y grows upwards; matrix rows go down
    ops += [f"{c + QUIET_ZONE} {top - r} {w} 1 re" for r, c, w in _runs(matrix)]
    ops.append("f Q")
    canvas.addLiteral("\n".join(ops))


def _draw_label(
    canvas: Canvas, label: Label, matrix: list[list[bool]], box: tuple[float, ...]
) -> None:
    x, y, width, height, qr_side = box
    _draw_qr(canvas, matrix, x, y + (height - qr_side) / 2, qr_side)
    pad = PAD_MM * mm
    text_x, text_w = x + qr_side, width - qr_side - pad
    lines: list[tuple[str, float]] = []
    if label.stars:
        stars = "★" * label.stars + "☆" * (5 - label.stars)
        lines.append(_fitted(f"OCOP {stars}", text_w, STARS_PT))
    if label.producer:
        lines.append(_fitted(unicodedata.normalize("NFC", label.producer), text_w, TINY_PT))
    if label.lot:
        lines.append(_fitted(t("vi", "label.lot", lot=label.lot), text_w, SMALL_PT))
    lines.append(_fitted(label.serial_human, text_w, SMALL_PT))
    # Printed in Vietnamese with its English twin: a label serves every reader.
    hint = t("vi", "label.scan") + " · " + t("en", "label.scan")
    lines.append(_fitted(hint, text_w, TINY_PT))
    if label.domain:
        lines.append(_fitted(label.domain, text_w, TINY_PT))
    spare = height - 2 * pad - sum(size for _, size in lines) * LEADING
    name_lines = max(1, min(3, int(spare // (NAME_PT * LEADING))))
    name = unicodedata.normalize("NFC", label.product_name)
    lines[:0] = [(line, NAME_PT) for line in _wrap(name, text_w, NAME_PT, name_lines)]
    used = sum(size for _, size in lines) * LEADING
    cursor = y + (height + used) / 2  # the text block centred beside the code
    for text, size in lines:
        cursor -= size * LEADING
        canvas.setFont(FONT_NAME, size)
        canvas.drawString(text_x, cursor + 0.25 * size, text)


def render_pdf_sheet(
    labels: Iterable[Label],
    out: BinaryIO,
    *,
    label_mm: tuple[float, float] = (63.5, 38.1),
    grid: tuple[int, int] = (3, 7),
    gap_mm: tuple[float, float] = (2.5, 0.0),
    margin_mm: float = 5.0,
    qr_mm: float = 30.0,
    ec: EcLevel = "M",
    outline: bool = False,
    mask: int | None = FAST_MASK,
    page_mm: tuple[float, float] | None = None,
) -> int:
    """Write A4 pages of labels, the grid centred on the page, and return the label count.

    The defaults fit Avery L7160-style sheets (3×7 of 63.5×38.1 mm). `qr_mm` is the side of
    the code including its 4-module quiet zone. Labels are read lazily, one page at a time;
    reportlab writes `out` only when the document is complete, so a failure writes nothing.
    `page_mm`: a page of that size instead of A4 (one label per page, for roll printers).
    """
    _ec(ec)
    check_sheet(label_mm, grid, gap_mm, margin_mm, qr_mm)
    _font()
    (cols, rows), per_page = grid, grid[0] * grid[1]
    width, height = label_mm[0] * mm, label_mm[1] * mm
    gap_x, gap_y = gap_mm[0] * mm, gap_mm[1] * mm
    size = A4 if page_mm is None else (page_mm[0] * mm, page_mm[1] * mm)
    left = (size[0] - cols * width - (cols - 1) * gap_x) / 2
    top = size[1] - (size[1] - rows * height - (rows - 1) * gap_y) / 2
    canvas = Canvas(out, pagesize=size, pageCompression=1, invariant=1)
    canvas.setTitle("OCOP trace labels")
    count, stream = 0, iter(labels)
    while page := list(islice(stream, per_page)):
        for index, label in enumerate(page):
            row, col = divmod(index, cols)
            x = left + col * (width + gap_x)
            y = top - row * (height + gap_y) - height
            if outline:
                canvas.setStrokeGray(0.75)
                canvas.setLineWidth(0.25)
                canvas.rect(x, y, width, height, stroke=1, fill=0)
            matrix = qr_matrix(label.url, ec, mask=mask)
            _draw_label(canvas, label, matrix, (x, y, width, height, qr_mm * mm))
        count += len(page)
        canvas.showPage()
    if not count:
        raise LabelError("no labels to print: the sheet would be empty")
    canvas.save()
    return count


def render(
    labels: Sequence[Label], fmt: Literal["pdf", "svg", "png"], ec: EcLevel, layout: dict[str, Any]
) -> bytes:
    """A sheet of labels as a PDF, or the first label alone as SVG or PNG."""
    if fmt == "svg":
        return render_svg(labels[0].url, ec).encode("utf-8")
    if fmt == "png":
        return render_png(labels[0].url, ec)
    out = BytesIO()
    render_pdf_sheet(labels, out, ec=ec, **layout)
    return out.getvalue()
