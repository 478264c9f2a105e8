"""Photos for product and producer statements: uploaded once, kept by their SHA-256.

The answer's `image_url` and `image_sha256` go into a product.registered or
product.updated statement (or a producer's); the public pages then serve the photo from
here and say it is the one that was signed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from ocop_trace import photo_store, photos
from ocop_trace.api.deps import PrincipalDep, ServiceDep
from ocop_trace.service import require_role

router = APIRouter(prefix="/api/v1", tags=["catalog"])


class StoredPhotoOut(BaseModel):
    image_sha256: str
    image_url: str
    width: int
    height: int


@router.post(
    "/photos",
    status_code=201,
    summary="Store a photo (checked by content, cleaned); its URL and SHA-256 to sign",
    response_model=StoredPhotoOut,
    openapi_extra={
        "requestBody": {
            "content": {"multipart/form-data": {"example": {"file": "(a JPEG, PNG or WebP)"}}}
        }
    },
)
async def upload_photo(
    file: UploadFile, request: Request, service: ServiceDep, principal: PrincipalDep
) -> StoredPhotoOut:
    require_role(principal, "council", "producer")
    data = await file.read(photos.MAX_BYTES + 1)
    if len(data) > photos.MAX_BYTES:
        raise photos.too_large()
    photo = await run_in_threadpool(photo_store.store, service.engine, data)
    site = request.app.state.settings.public_url
    return StoredPhotoOut(
        image_sha256=photo.sha256,
        image_url=photo_store.url(site, photo.sha256),
        width=photo.width,
        height=photo.height,
    )
