"""Photos people upload: checked by their content, downscaled, re-encoded, stripped of metadata.

A file is a photo if Pillow can open it as JPEG, PNG or WebP, whatever it is called or
labelled. What is kept is a new JPEG of at most MAX_SIDE pixels a side, turned upright as
the camera said, with no EXIF (GPS, camera), ICC or text chunks carried over.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from ocop_trace.errors import InvalidInput, PayloadTooLarge
from ocop_trace.i18n import N_

MAX_BYTES = 10 * 1024 * 1024
MAX_SIDE = 1600
MAX_PIXELS = 50_000_000  # a bigger image is a decompression bomb, not a phone photo
FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
MEDIA_TYPE = "image/jpeg"


class PhotoError(InvalidInput):
    """Not a photo we keep; `key` names the catalogue message for a page."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message, field="photo")
        self.key = key


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    width: int
    height: int
    sha256: str  # of the cleaned file, as stored
    media_type: str = MEDIA_TYPE


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"a photo may be at most {MAX_BYTES // 2**20} MB", field="photo")


def clean(data: bytes) -> Photo:
    """The photo, cleaned; PhotoError when the bytes are not a JPEG, PNG or WebP image."""
    if len(data) > MAX_BYTES:
        raise too_large()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data), formats=sorted(FORMATS))
            if image.width * image.height > MAX_PIXELS:
                raise PhotoError("the image has too many pixels to be a photo", N_("photo.too_big"))
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoError(
            "the file is not a JPEG, PNG or WebP photo", N_("photo.not_image")
        ) from None
    except (OSError, SyntaxError, ValueError):  # a truncated or corrupt image
        raise PhotoError("the photo file is damaged", N_("photo.damaged")) from None
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGBA", "LA", "P"):
        flat = Image.new("RGB", upright.size, "white")
        flat.paste(upright.convert("RGBA"), mask=upright.convert("RGBA").getchannel("A"))
        upright = flat
    upright = upright.convert("RGB")
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    out = BytesIO()
    upright.save(out, "JPEG", quality=85, optimize=True)  # no exif=, icc_profile=: none kept
    cleaned = out.getvalue()
    return Photo(cleaned, upright.width, upright.height, hashlib.sha256(cleaned).hexdigest())
