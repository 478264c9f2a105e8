"""Request bodies bounded while they stream in: 413 before a byte past the limit is read.

An ASGI middleware, so the bound holds for every route, the pages' forms included, and a
declared Content-Length over the limit is refused before the body is read at all. A body
without one (chunked) is counted as it arrives; at the limit the app's own answer is
dropped and the 413 sent instead. A browser gets that 413 as a page (the `html` the app
passes in, as its error handlers do), not as JSON.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocop_trace import photos
from ocop_trace.errors import HtmlErrors, PayloadTooLarge, asgi_answer

JSON_BYTES = 1024 * 1024  # any body but a multipart upload
# multipart/form-data: a form with a photo. Above the photo's own limit, so a photo just
# over it reaches the form, which says so on its page and keeps what was typed.
UPLOAD_BYTES = photos.MAX_BYTES + 1024 * 1024


def limit_for(content_type: bytes) -> int:
    return UPLOAD_BYTES if content_type.startswith(b"multipart/form-data") else JSON_BYTES


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the body is larger than this request accepts ({limit // (1024 * 1024)} MB)",
        details={"limit_bytes": limit},
    )


class BodyLimit:
    def __init__(self, app: ASGIApp, html: HtmlErrors | None = None) -> None:
        self.app = app
        self.html = html

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        limit = limit_for(headers.get(b"content-type", b""))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, _too_large(limit))
            return
        state: dict[str, Any] = {"received": 0, "exceeded": False, "started": False}

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["exceeded"] = True
                    raise _too_large(limit)
            return message

        async def guarded(message: Message) -> None:
            if state["exceeded"] and not state["started"]:
                return  # the app's answer to a body it could not read: the 413 replaces it
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except PayloadTooLarge:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._refuse(scope, send, _too_large(limit))

    async def _refuse(self, scope: Scope, send: Send, error: PayloadTooLarge) -> None:
        """The 413: a page for a browser's form, else the API's JSON error."""
        if self.html is not None:
            page = await self.html(Request(scope), error.status, error)
            if page is not None:
                page.headers["connection"] = "close"  # the body was not read

                async def nothing() -> Message:
                    return {"type": "http.disconnect"}

                await page(scope, nothing, send)
                return
        await _send_error(send, error)


async def _send_error(send: Send, error: PayloadTooLarge) -> None:
    status, headers, body = asgi_answer(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
