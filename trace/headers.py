"""Security headers on every answer: what a page may load, framing, sniffing, referrers, HSTS.

Pages load nothing from elsewhere but product images (https only), run no script but the
API docs' own files, and may not be framed. No referrer is sent: label links carry serials.
Every GET and HEAD may be read from any origin (CORS `*`), so browser-based scanner apps
can resolve labels: `*` never lets a browser send cookies, so only what anyone may read is
shared, and writes (which need a preflight) stay same-origin.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # The pages style themselves inline (and set no script), so inline styles are safe.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' https: data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HSTS = "max-age=31536000"


def security_headers(public_url: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if public_url.startswith("https://"):
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


# The resolver's Link header (linkset, owl:sameAs) is for scanner apps to read.
CORS_READS = [(b"access-control-allow-origin", b"*"), (b"access-control-expose-headers", b"Link")]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, public_url: str) -> None:
        self.app = app
        self.headers = security_headers(public_url)
        self.names = {name for name, _ in self.headers}
        self.reads = self.headers + CORS_READS
        self.read_names = {name for name, _ in self.reads}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        read = scope["method"] in ("GET", "HEAD")
        headers, names = (self.reads, self.read_names) if read else (self.headers, self.names)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n not in names]
                message["headers"] = kept + headers
            await send(message)

        await self.app(scope, receive, with_headers)
