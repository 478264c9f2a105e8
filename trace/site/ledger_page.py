"""The ledger in the open: its size, latest checkpoint and cosigners, the pinned root key,
the whole ledger as a bundle to download, the commands that verify it, recent entries.

    /ledger               the page (?page=N for older entries)
    /ledger/bundle.jsonl  the bundle, streamed a slice at a time (memory flat at any size)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from ledger.bundle_export import bundle_chunks
from ledger.statement import parse_entry
from ledger.store import LedgerStore
from ocop_trace.site.pages import finish, language, render

router = APIRouter(include_in_schema=False)
PER_PAGE = 20
BUNDLE_NAME = "ocop-trace-bundle.jsonl"


@router.get("/ledger")
async def ledger_page(request: Request) -> Response:
    lang = language(request)
    asked = request.query_params.get("page", "1")
    page_no = int(asked) if asked.isdigit() and 0 < int(asked) < 10**9 else 1
    facts = await run_in_threadpool(_facts, request, page_no)
    site = request.app.state.settings.public_url.rstrip("/")
    key = facts["root_key"]
    commands = [
        f"curl -o ledger.jsonl {site}/ledger/bundle.jsonl",
        f"curl -o checkpoint.txt {site}/checkpoint",
        f"ocop-trace verify --bundle ledger.jsonl --root-key {key} "
        "--trusted-checkpoint checkpoint.txt",
    ]
    previous = page_no - 1 if page_no > 1 else 0
    following = page_no + 1 if page_no * PER_PAGE < facts["size"] else 0
    page = render(
        request,
        lang,
        "site/ledger.html",
        **facts,
        commands=commands,
        page_no=page_no,
        previous_url=f"/ledger?page={previous}&lang={lang}" if previous else "",
        next_url=f"/ledger?page={following}&lang={lang}" if following else "",
        canonical="/ledger",
    )
    return finish(request, page, None, {})


def _facts(request: Request, page_no: int) -> dict[str, Any]:
    store: LedgerStore = request.app.state.service.store
    with store.engine.connect() as conn:
        note = request.app.state.witnessing.served(conn)
        grants = store.grants(conn)
        size = store.size()
        at = store.checkpoint_time(int(note.split("\n")[1]), conn) if note else None
    names = {g.key_id: g.name for g in grants.values()}
    last = size - (page_no - 1) * PER_PAGE  # newest first: this page ends before `last`
    first = max(0, last - PER_PAGE)
    entries = []
    for index, data in store.entries(first, PER_PAGE) if last > 0 else ():
        if index >= last:
            break
        entry = parse_entry(data)
        st = entry.statement
        entries.append(
            {
                "index": index,
                "kind": st.kind,
                "at": st.issued_at,
                "by": names.get(st.key_id, st.key_id[:16]),
                "hash": entry.hash.hex()[:16],
            }
        )
    entries.reverse()
    return {
        "size": size,
        "root_key": store.root_key_id,
        "origin": store.origin,
        "checkpoint": _read_note(note, store.origin) if note else None,
        "checkpoint_at": at,
        "entries": entries,
    }


def _read_note(note: str, origin: str) -> dict[str, Any]:
    """A checkpoint note's size and root, and who signed it: the log, then its witnesses."""
    body, _, signatures = note.partition("\n\n")
    lines = body.split("\n")
    signers = [line.split(" ")[1] for line in signatures.splitlines() if line.startswith("— ")]
    return {
        "text": note,
        "size": int(lines[1]),
        "root": lines[2],
        "cosigners": [name for name in signers if name != origin],
    }


@router.get("/ledger/bundle.jsonl")
def bundle(request: Request) -> StreamingResponse:
    """The ledger as a bundle that `ocop-trace verify --bundle` checks with no database."""
    store: LedgerStore = request.app.state.service.store
    headers = {"Content-Disposition": f'attachment; filename="{BUNDLE_NAME}"'}
    chunks = bundle_chunks(store, store.size())
    return StreamingResponse(chunks, media_type="application/jsonl", headers=headers)
