"""Product and producer photos, stored once by the SHA-256 of their cleaned bytes, with sizes.

A photo is cleaned by `photos.clean` and kept under its hash: the same photo uploaded twice
is one row, and its address (/photos/{sha256}.jpg) never changes content, so it is served
with an immutable cache header. The hash is what a signed statement's `image_sha256`
names; a page says the photo is the signed one only after hashing the bytes it holds.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import lru_cache
from io import BytesIO

from PIL import Image
from sqlalchemy import Column, Connection, Engine, LargeBinary, insert, select
from sqlmodel import Field, SQLModel

from ocop_trace import photos
from ocop_trace.i18n import N_

# What a page says of a signed photo (see `state`), in the catalogue's words.
STATES = {
    "signed": N_("photo.state.signed"),
    "differs": N_("photo.state.differs"),
    "unchecked": N_("photo.state.unchecked"),
}
# The sizes pages ask for (longest side in pixels); "original" is the cleaned photo itself.
VARIANTS = {"thumb": 320, "page": 960}


class StoredPhoto(SQLModel, table=True):
    __tablename__ = "photo"
    sha256: str = Field(primary_key=True, max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    width: int
    height: int
    stored_at: str = Field(max_length=32)


PHOTO = StoredPhoto.__table__  # type: ignore[attr-defined]


def store(engine: Engine, data: bytes) -> photos.Photo:
    """Clean and keep an uploaded photo (PhotoError if it is not one); returns it, whose
    `sha256` goes into the product's or producer's statement."""
    return keep(engine, photos.clean(data))


def url(site: str, sha256: str) -> str:
    """The address this service serves a stored photo at (what a statement's image_url is)."""
    return f"{site.rstrip('/')}/photos/{sha256}.jpg"


def keep(engine: Engine, photo: photos.Photo) -> photos.Photo:
    """Keep a photo `photos.clean` made: a form cleans first, checks its other fields, and
    keeps the photo only when the statement will be signed."""
    with engine.begin() as conn:
        if conn.execute(select(PHOTO.c.sha256).where(PHOTO.c.sha256 == photo.sha256)).first():
            return photo  # stored once
        conn.execute(
            insert(PHOTO).values(
                sha256=photo.sha256,
                data=photo.data,
                width=photo.width,
                height=photo.height,
                stored_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    return photo


def original(conn: Connection, sha256: str) -> bytes | None:
    """The stored bytes, only if they still hash to their name."""
    data = conn.execute(select(PHOTO.c.data).where(PHOTO.c.sha256 == sha256)).scalar()
    if data is None or hashlib.sha256(data).hexdigest() != sha256:
        return None
    return bytes(data)


def state(conn: Connection, sha256: str) -> str:
    """What a page can say of a signed photo: "signed" (held here, its bytes hash to what
    the statement signed), "differs" (held, but its bytes no longer do) or "unchecked"
    (not held here: only its link is known)."""
    data = conn.execute(select(PHOTO.c.data).where(PHOTO.c.sha256 == sha256)).scalar()
    if data is None:
        return "unchecked"
    return "signed" if hashlib.sha256(data).hexdigest() == sha256 else "differs"


@lru_cache(maxsize=256)
def resized(data: bytes, side: int) -> bytes:
    """A smaller JPEG of a stored photo (never larger than the original)."""
    image = Image.open(BytesIO(data))
    image.thumbnail((side, side))
    out = BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()
