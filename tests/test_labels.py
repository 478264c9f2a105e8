"""ocop_trace.labels: every output read back by an independent decoder (zxing-cpp, pdfium)."""

from __future__ import annotations

import io
import random
import re
import string
import unicodedata
from collections.abc import Iterator
from importlib import resources

import pypdfium2 as pdfium
import pytest
import qrcode
import zxingcpp
from PIL import Image, ImageDraw
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from ocop_trace import labels
from ocop_trace.digital_link import build_digital_link
from ocop_trace.labels import Label, LabelError, qr_matrix, render_pdf_sheet, render_png, render_svg
from ocop_trace.serials import Serial, new_serial

SERIAL = Serial(0xC0FFEE_0123_4567_89AB)
LONG_URL = build_digital_link(
    "https://id.ocop.vn/lien-ket",
    "8936012345674",
    lot="2025-07/A",
    serial=SERIAL.canonical,
    attributes={"17": "261231", "422": "704"},
)
SHORT_URL = "https://ocop.vn/s/K7Q2"
NAME = "Trà Shan Tuyết cổ thụ Hà Giang"
VIETNAMESE = "ĂÂĐÊÔƠƯăâđêôơư" + "".join(map(chr, range(0x1EA0, 0x1EFA)))  # all tone marks


def decode(image: Image.Image) -> list[zxingcpp.Barcode]:
    found = zxingcpp.read_barcodes(image.convert("L"))
    assert all(code.format == zxingcpp.BarcodeFormat.QRCode for code in found)
    return found


def svg_to_image(svg: str, px: int = 6) -> Image.Image:
    """Rasterise our own SVG: the viewBox square, then each rect of the single path."""
    side = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))  # type: ignore[union-attr]
    image = Image.new("L", (side * px, side * px), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", svg):
        x0, y0 = int(x) * px, int(y) * px
        draw.rectangle((x0, y0, x0 + int(w) * px - 1, y0 + px - 1), fill=0)
    return image


def pdf_pages(data: bytes, dpi: int = 300) -> Iterator[tuple[Image.Image, str]]:
    pdf = pdfium.PdfDocument(data)
    for page in pdf:
        text = " ".join(page.get_textpage().get_text_range().split())  # wrapped lines joined
        yield page.render(scale=dpi / 72).to_pil(), text


def sheet(items: list[Label], **kwargs: object) -> bytes:
    out = io.BytesIO()
    assert render_pdf_sheet(items, out, **kwargs) == len(items)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("ec", ["M", "Q"])
@pytest.mark.parametrize("url", [LONG_URL, SHORT_URL])
def test_png_and_svg_decode_to_the_url(url: str, ec: labels.EcLevel) -> None:
    png = Image.open(io.BytesIO(render_png(url, ec, module_px=4)))
    svg = render_svg(url, ec, size_mm=20)
    assert 'width="20mm"' in svg
    assert svg.count("<path") == 1
    assert "href" not in svg
    for image in (png, svg_to_image(svg)):
        (found,) = decode(image)
        assert found.text == url
        assert found.ec_level == ec
        assert dict(found.extra)["DataMask"] == labels.FAST_MASK  # type: ignore[call-overload]


def test_quiet_zone_is_four_modules() -> None:
    matrix = qr_matrix(LONG_URL)
    count, px = len(matrix), 3
    assert all(len(row) == count for row in matrix)
    assert matrix[0][0]  # finder pattern corners are the matrix edges
    assert matrix[-1][0]
    assert matrix[0][-1]
    image = Image.open(io.BytesIO(render_png(LONG_URL, module_px=px)))
    assert image.size == ((count + 8) * px,) * 2
    left, top, right, bottom = image.convert("L").point(lambda v: 255 - v).getbbox()  # type: ignore[misc]
    assert (left, top) == (4 * px, 4 * px)
    assert (image.width - right, image.height - bottom) == (4 * px, 4 * px)
    wider = render_svg(LONG_URL, quiet_zone=6)
    assert f'viewBox="0 0 {count + 12} {count + 12}"' in wider
    with pytest.raises(LabelError, match="at least 4 modules"):
        render_png(LONG_URL, quiet_zone=2)
    with pytest.raises(LabelError, match="module_px must be at least 1"):
        render_png(LONG_URL, module_px=0)


def test_error_correction_level_is_honoured() -> None:
    sizes = {ec: len(qr_matrix(LONG_URL, ec)) for ec in ("M", "Q", "H")}
    assert sizes["M"] < sizes["Q"] < sizes["H"]
    with pytest.raises(LabelError, match="'M' \\(default\\), 'Q' or 'H'"):
        qr_matrix(LONG_URL, "L")  # type: ignore[arg-type]


def test_versions_match_qrcode_and_mask_none_is_qrcode_default() -> None:
    rng = random.Random(7)
    alphabets = [string.ascii_lowercase, string.ascii_uppercase + string.digits + "/-.", "0123"]
    for length in [*range(1, 120, 7), 200, 500, 1200]:
        text = "".join(rng.choice(rng.choice(alphabets)) for _ in range(length))
        levels: list[tuple[int, labels.EcLevel]] = [
            (qrcode.ERROR_CORRECT_M, "M"),
            (qrcode.ERROR_CORRECT_Q, "Q"),
        ]
        for level, ec in levels:
            qr = qrcode.QRCode(error_correction=level)
            qr.add_data(text)
            qr.make()
            assert len(qr_matrix(text, ec)) == qr.modules_count, (length, ec)
            if length < 60:
                assert qr_matrix(text, ec, mask=None) == qr.modules
    with pytest.raises(LabelError, match="too long"):
        qr_matrix("x" * 3000, "Q")
    with pytest.raises(LabelError, match="mask is 0-7"):
        qr_matrix(SHORT_URL, mask=8)


def test_pdf_sheet_decodes_every_code_and_embeds_vietnamese() -> None:
    serials = [new_serial() for _ in range(30)]
    urls = [
        build_digital_link("https://id.ocop.vn", "08936012345674", "L7", s.canonical)
        for s in serials
    ]
    items = [
        Label(u, NAME, 4, "L7", s.human, "HTX Tài Hoan", "id.ocop.vn")
        for u, s in zip(urls, serials, strict=True)
    ]
    data = sheet(items, label_mm=(66, 36), grid=(3, 8), gap_mm=(0, 0), margin_mm=4, qr_mm=28)
    assert b"/FontFile2" in data  # the TrueType program is embedded
    pages = list(pdf_pages(data))
    assert len(pages) == 2
    for (image, text), expected in zip(pages, (urls[:24], urls[24:]), strict=True):
        assert sorted(found.text for found in decode(image)) == sorted(expected)
        assert text.count(NAME) == len(expected)
        assert text.count("Lô: L7") == text.count("OCOP ★★★★☆") == len(expected)
        # What to do with it, in both languages; who made it; where to type the code
        assert text.count("Quét để kiểm tra · Scan to check") == len(expected)
        assert text.count("HTX Tài Hoan") == text.count("id.ocop.vn") == len(expected)
    assert all(s.human in pages[0][1] + pages[1][1] for s in serials)


@pytest.mark.parametrize("ec", ["M", "Q"])
def test_a_2_cm_code_decodes_at_300_dpi(ec: labels.EcLevel) -> None:
    item = Label(LONG_URL, NAME, 3, "2025-07/A", SERIAL.human)
    data = sheet([item], label_mm=(60, 25), grid=(1, 1), qr_mm=20, ec=ec)
    ((image, _),) = pdf_pages(data)
    (found,) = decode(image)
    assert found.text == LONG_URL
    assert found.ec_level == ec


def test_pdf_text_wraps_truncates_and_normalises() -> None:
    long_name = "Nước mắm cá cơm truyền thống Phú Quốc đặc biệt " * 4 + "CUỐI"
    nfd = unicodedata.normalize("NFD", NAME)
    items = [Label(SHORT_URL, long_name, 0, "", SERIAL.human), Label(SHORT_URL, nfd, 5, "A", "X")]
    ((_, text),) = pdf_pages(sheet(items, grid=(2, 1), outline=True), dpi=10)
    assert "Nước mắm cá cơm" in text
    assert "…" in text
    assert "CUỐI" not in text
    assert NAME in text  # NFC again, so the precomposed glyphs were used
    assert "★★★★★" in text
    assert text.count("OCOP") == 1  # the unrated product shows no stars
    assert text.count("Lô:") == 1  # nor an empty lot


def test_font_is_shipped_with_full_vietnamese_coverage() -> None:
    fonts = resources.files("ocop_trace").joinpath("fonts")
    assert "Bitstream Vera" in fonts.joinpath("LICENSE").read_text()
    face = TTFont("check", io.BytesIO(fonts.joinpath(labels.FONT_FILE).read_bytes())).face
    missing = [
        c for c in VIETNAMESE + string.printable.strip() + "★☆…" if ord(c) not in face.charToGlyph
    ]
    assert missing == []


def test_pages_are_filled_from_the_iterable_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    pulled: list[int] = []
    seen_at_page: list[int] = []

    def items() -> Iterator[Label]:
        for index in range(5):
            pulled.append(index)
            yield Label(SHORT_URL, NAME, 3, "L", "X")

    original = Canvas.showPage

    def show_page(self: Canvas) -> None:
        seen_at_page.append(len(pulled))
        original(self)

    monkeypatch.setattr(Canvas, "showPage", show_page)
    out = io.BytesIO()
    assert render_pdf_sheet(items(), out, grid=(1, 2)) == 5
    assert seen_at_page == [2, 4, 5]


def test_a_failure_writes_nothing() -> None:
    def items() -> Iterator[Label]:
        yield Label(SHORT_URL, NAME, 3, "L", "X")
        raise RuntimeError("database went away")

    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        render_pdf_sheet(items(), out)
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": (0, 3)}, "at least 1 column and 1 row"),
        ({"label_mm": (63.5, 37), "grid": (3, 8)}, "8 labels of 37 mm down .* need 296 mm"),
        ({"label_mm": (70, 37), "grid": (4, 1)}, "4 labels of 70 mm across"),
        ({"label_mm": (-1, 30)}, "must be positive"),
        ({"qr_mm": 40}, "qr_mm .* to the label height 38.1 mm"),
        ({"qr_mm": 5}, "qr_mm"),
        ({"label_mm": (50, 38.1)}, "widen the label or reduce qr_mm"),
        ({"label_mm": (63.5, 12), "qr_mm": 12}, "at least 24.3 mm high"),
        ({"ec": "L"}, "error correction"),
    ],
)
def test_sheet_arguments_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(LabelError, match=message):
        render_pdf_sheet([Label(SHORT_URL, NAME, 3, "L", "X")], io.BytesIO(), **kwargs)  # type: ignore[arg-type]


def test_label_content_is_checked() -> None:
    with pytest.raises(LabelError, match="1 to 5, or 0"):
        Label(SHORT_URL, NAME, 6, "L", "X")
    with pytest.raises(LabelError, match="URL"):
        Label("", NAME, 3, "L", "X")
    with pytest.raises(LabelError, match="no labels"):
        render_pdf_sheet(iter(()), io.BytesIO())
