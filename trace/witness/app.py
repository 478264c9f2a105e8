"""The witness's HTTP service: POST /add-checkpoint (tlog-witness), its state, its checkpoints."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ledger import keys
from ledger.cosignature import Cosigner, parse_cosigner_vkey
from ledger.errors import KeyFormatError, LedgerError
from ledger.note import NoteVerifier
from ledger.policy import parse_policy
from ledger.witness import WitnessRefusal, authenticate, parse_add_checkpoint
from ocop_trace.witness.settings import WitnessSettings
from ocop_trace.witness.state import WitnessStore

log = logging.getLogger("ocop_trace.witness")
TEXT = "text/plain; charset=utf-8"
SIZE_TYPE = "text/x.tlog.size"  # the 409 body's type, fixed by tlog-witness


@dataclass(frozen=True)
class WitnessConfig:
    cosigner: Cosigner
    logs: dict[str, list[NoteVerifier]]  # origin -> the keys trusted to sign its checkpoints


def load_config(settings: WitnessSettings) -> WitnessConfig:
    """The key, its published vkey (which names the witness) and the logs; each checked
    against the others, so a witness never starts with a key its vkey does not describe."""
    try:
        vkey = settings.vkey_file.read_text().strip()
        key = keys.load_private_key(settings.key_file, settings.passphrase_bytes())
        policy = parse_policy(settings.logs_file.read_bytes(), require_quorum=False)
    except FileNotFoundError as exc:
        raise LedgerError(
            "witness files missing: run `ocop-trace witness init`",
            expected=str(exc.filename),
            found="nothing",
        ) from None
    public = parse_cosigner_vkey(vkey)
    cosigner = Cosigner(public.name, key)
    if cosigner.public_key != public:
        raise KeyFormatError(
            "the witness key does not match its vkey file",
            expected=public.vkey,
            found=cosigner.public_key.vkey,
        )
    logs: dict[str, list[NoteVerifier]] = {}
    for entry in policy.logs:
        same = logs.setdefault(entry.origin, [])
        if any(v.key_id == entry.key.key_id for v in same):
            # Two keys one note signature line could name: open_note would refuse both.
            raise KeyFormatError(
                "two log keys with the same name and key id",
                expected="distinct key ids",
                found=f"{entry.origin}+{entry.key.key_id:08x}",
            )
        same.append(entry.key)
    return WitnessConfig(cosigner, logs)


def origin_hash(origin: str) -> str:
    """The monitoring path element of tlog-witness: lowercase hex SHA-256 of the origin."""
    return hashlib.sha256(origin.encode()).hexdigest()


def create_witness_app(settings: WitnessSettings) -> Starlette:
    """The witness as an ASGI app; its database is created if missing."""
    config = load_config(settings)
    store = WitnessStore(settings.database)
    store.create()
    by_hash = {origin_hash(origin): origin for origin in config.logs}

    def add(body: bytes) -> Response:
        try:
            request = parse_add_checkpoint(body)
            log_signed = authenticate(request, config.logs)
        except WitnessRefusal as refusal:
            return _refused(refusal)
        origin, size = request.checkpoint.origin, request.checkpoint.size
        try:
            held = store.add_checkpoint(request, log_signed, config.cosigner)
        except WitnessRefusal as refusal:
            if refusal.evidence:
                log.warning("refused a signed checkpoint of %s at %d: %s", origin, size, refusal)
                store.save_evidence(origin, refusal, body)
            return _refused(refusal)
        log.info("cosigned %s at size %d", origin, size)
        return PlainTextResponse(held.cosignature, media_type=TEXT)

    async def add_checkpoint(request: Request) -> Response:
        body = await _read_limited(request, settings.max_body_bytes)
        if body is None:
            return PlainTextResponse("request body too large\n", 413, media_type=TEXT)
        return await run_in_threadpool(add, body)

    async def status(_: Request) -> Response:
        held = await run_in_threadpool(store.all_held)
        return JSONResponse(
            {
                "name": config.cosigner.name,
                "vkey": config.cosigner.public_key.vkey,
                "logs": [
                    {
                        "origin": origin,
                        "origin_hash": origin_hash(origin),
                        "size": held[origin].size if origin in held else None,
                        "timestamp": held[origin].timestamp if origin in held else None,
                    }
                    for origin in sorted(config.logs)
                ],
            }
        )

    async def checkpoint(request: Request) -> Response:
        origin = by_hash.get(request.path_params["origin_hash"])
        held = None if origin is None else await run_in_threadpool(store.held, origin)
        if held is None:
            return PlainTextResponse("no checkpoint cosigned for that log\n", 404, media_type=TEXT)
        return PlainTextResponse(held.note, media_type=TEXT, headers={"Cache-Control": "max-age=5"})

    app = Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/", status, methods=["GET"]),
            Route("/{origin_hash:str}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )
    app.state.store = store
    app.state.config = config
    return app


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit`: a huge upload is never buffered."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(refusal: WitnessRefusal) -> Response:
    if refusal.status == 409 and refusal.latest_size is not None:
        # Set by hand: Starlette would add a charset to a text/* media type.
        headers = {"Content-Type": SIZE_TYPE}
        return Response(f"{refusal.latest_size}\n", 409, headers=headers)
    return PlainTextResponse(f"{refusal}\n", refusal.status, media_type=TEXT)
