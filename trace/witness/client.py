"""The log's side of tlog-witness: send each checkpoint to every witness, keep what they sign.

One task per witness, so a witness that is down or slow delays only its own cosignature:
`WitnessClient.run()` runs them until cancelled (the app's lifespan starts it), `notify()`
wakes them when a checkpoint is published. `witness_once()` asks every witness once.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread
import httpx

from ledger.errors import LedgerError
from ledger.note import parse_checkpoint, split_note
from ledger.policy import Policy, PolicyWitness
from ledger.witness import MAX_PROOF_LINES

log = logging.getLogger("ocop_trace.witness.client")
MAX_RESPONSE_BYTES = 16 * 1024  # a few signature lines; refuse to buffer more
MAX_CONFLICTS = 3  # 409s in a row before giving up on this checkpoint
_SIZE_BODY = re.compile(rb"(0|[1-9][0-9]{0,19})\n")


class LogSource(Protocol):
    """What the client needs from the log; `ledger.store.LedgerStore` provides both."""

    def latest_checkpoint(self) -> str | None: ...

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]: ...


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature line of the log's checkpoint of `size` by `witness`."""

    witness: PolicyWitness
    size: int
    line: str
    timestamp: int


OnCosignature = Callable[[Cosignature], None]


class WitnessUnavailable(Exception):
    """The witness did not answer in time, or not over HTTP; try again later."""


class WitnessClient:
    """Asks the policy's witnesses (those with a URL) to cosign the log's checkpoints."""

    def __init__(
        self,
        policy: Policy,
        source: LogSource,
        on_cosignature: OnCosignature | None = None,
        *,
        timeout: float = 5.0,
        interval: float = 10.0,
        max_backoff: float = 300.0,
        known_sizes: Mapping[str, int] | None = None,
        mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        """`known_sizes`: {witness public key hex: size it last cosigned}, e.g.
        `CosignatureStore.witness_sizes()`, so a restart does not begin with a 409."""
        self.witnesses = [w for w in policy.witnesses if w.url]
        self.source = source
        self.on_cosignature = on_cosignature
        self.timeout = timeout
        self.interval = interval
        self.max_backoff = max_backoff
        known = known_sizes or {}
        # The size each witness holds, as far as the client knows, and the largest size
        # it has a cosignature of (what the run loop compares with the latest checkpoint).
        self.sizes = {w.name: known.get(w.key.public.hex(), 0) for w in self.witnesses}
        self.cosigned = {w.name: known.get(w.key.public.hex(), -1) for w in self.witnesses}
        self._wake: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Transports by URL prefix (httpx mounts): the demo reaches its witnesses in-process.
        self.mounts = dict(mounts or {})

    # -- one request --------------------------------------------------------------------
    async def submit(
        self, http: httpx.AsyncClient, witness: PolicyWitness, note: str
    ) -> Cosignature | None:
        """Ask one witness to cosign `note`, with the proof from the size it holds (learnt
        from a 409 if need be). None if it refused; WitnessUnavailable if it did not answer."""
        text, _ = split_note(note)
        size = _size_of(note)
        for _ in range(MAX_CONFLICTS):
            old = self.sizes[witness.name]
            if old > size:
                # It holds a larger tree than the log's latest checkpoint: the log went back.
                log.error("witness %s holds size %d > checkpoint %d", witness.name, old, size)
                return None
            proof = await anyio.to_thread.run_sync(self._proof, old, size)
            if proof is None:
                return None
            answer = await self._post(http, witness, old, proof, note)
            if answer.status_code == 409:
                held = _held_size(answer)
                if held is None:
                    log.error("witness %s: malformed 409 %r", witness.name, answer.content[:64])
                    return None
                self.sizes[witness.name] = held
                continue
            if answer.status_code != 200:
                body = answer.content[:300].decode(errors="replace").strip()
                # 422 means the witness holds a tree this checkpoint does not extend.
                level = logging.ERROR if answer.status_code == 422 else logging.WARNING
                log.log(
                    level,
                    "witness %s refused size %d: %d %s",
                    witness.name,
                    size,
                    answer.status_code,
                    body,
                )
                return None
            cosignature = _cosignature_in(answer.content, witness, text, size)
            if cosignature is None:
                log.error("witness %s answered 200 without a valid cosignature", witness.name)
                return None
            self.sizes[witness.name] = size
            return cosignature
        log.warning("witness %s: gave up after %d conflicts", witness.name, MAX_CONFLICTS)
        return None

    def _proof(self, old: int, size: int) -> list[bytes] | None:
        if old in (0, size):
            return []
        try:
            proof = self.source.consistency_proof(old, size)
        except LedgerError as exc:  # e.g. the witness claims a size the log never had
            log.error("no consistency proof from %d to %d: %s", old, size, exc)
            return None
        return proof if len(proof) <= MAX_PROOF_LINES else None

    async def _post(
        self,
        http: httpx.AsyncClient,
        witness: PolicyWitness,
        old: int,
        proof: list[bytes],
        note: str,
    ) -> _Answer:
        lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof)]
        body = ("".join(lines) + "\n" + note).encode()
        url = f"{(witness.url or '').rstrip('/')}/add-checkpoint"
        try:
            async with asyncio.timeout(self.timeout):
                async with http.stream("POST", url, content=body) as response:
                    content = b""
                    async for chunk in response.aiter_bytes():
                        content += chunk
                        if len(content) > MAX_RESPONSE_BYTES:
                            raise WitnessUnavailable(f"{witness.name}: answer too large")
                    return _Answer(response.status_code, response.headers, content)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise WitnessUnavailable(f"{witness.name}: {type(exc).__name__} {exc}") from None

    # -- every witness, once ------------------------------------------------------------
    async def witness_checkpoint(self, note: str) -> list[Cosignature]:
        """Ask every witness at once; the cosignatures of those that gave one."""
        async with httpx.AsyncClient(mounts=self.mounts) as http:
            results = await asyncio.gather(
                *(self.submit(http, w, note) for w in self.witnesses), return_exceptions=True
            )
        found = []
        for witness, result in zip(self.witnesses, results, strict=True):
            if isinstance(result, Cosignature):
                found.append(result)
                await self._keep(result)
            elif isinstance(result, BaseException):
                log.warning("witness %s: %s", witness.name, result)
        return found

    async def _keep(self, cosignature: Cosignature) -> None:
        name = cosignature.witness.name
        self.cosigned[name] = max(self.cosigned[name], cosignature.size)
        if self.on_cosignature is not None:
            await anyio.to_thread.run_sync(self.on_cosignature, cosignature)

    # -- in the background ----------------------------------------------------------------
    def notify(self) -> None:
        """A checkpoint was published: wake every witness's task (from any thread)."""
        loop = self._loop
        if loop is None:
            return
        for event in self._wake.values():
            loop.call_soon_threadsafe(event.set)

    async def run(self) -> None:
        """One loop per witness until cancelled: each sends the latest checkpoint when it
        is newer than what that witness cosigned, and backs off while it is unreachable."""
        self._loop = asyncio.get_running_loop()
        self._wake = {w.name: asyncio.Event() for w in self.witnesses}
        async with httpx.AsyncClient(mounts=self.mounts) as http:
            await asyncio.gather(*(self._follow(http, w) for w in self.witnesses))

    async def _follow(self, http: httpx.AsyncClient, witness: PolicyWitness) -> None:
        failures = 0
        wake = self._wake[witness.name]
        while True:
            # Cleared before the round, not after: a checkpoint published while this round
            # was under way wakes the next one at once instead of waiting out the interval.
            wake.clear()
            try:
                failures = 0 if await self._round(http, witness) else failures + 1
            except WitnessUnavailable as exc:
                failures += 1
                log.warning("witness unavailable (%d in a row): %s", failures, exc)
            except Exception:  # a bug or a database error must not end the loop
                failures += 1
                log.exception("witnessing with %s failed", witness.name)
            delay = min(self.max_backoff, self.interval * 2 ** min(failures, 16))
            if failures:
                wake.clear()  # a failing witness backs off from what was published meanwhile
            try:
                async with asyncio.timeout(delay if failures else self.interval):
                    await wake.wait()
            except TimeoutError:
                pass

    async def _round(self, http: httpx.AsyncClient, witness: PolicyWitness) -> bool:
        """False if the witness refused the latest checkpoint (so the loop backs off)."""
        note = await anyio.to_thread.run_sync(self.source.latest_checkpoint)
        if (
            note is None
            or parse_checkpoint(split_note(note)[0]).size <= self.cosigned[witness.name]
        ):
            return True
        cosignature = await self.submit(http, witness, note)
        if cosignature is None:
            return False
        await self._keep(cosignature)
        return True


def _size_of(note: str) -> int:
    return parse_checkpoint(split_note(note)[0]).size


@dataclass(frozen=True)
class _Answer:
    status_code: int
    headers: httpx.Headers
    content: bytes


def _held_size(answer: _Answer) -> int | None:
    content_type = answer.headers.get("content-type", "").split(";")[0].strip()
    match = _SIZE_BODY.fullmatch(answer.content)
    if content_type != "text/x.tlog.size" or match is None:
        return None
    return int(match.group(1))


def _cosignature_in(
    content: bytes, witness: PolicyWitness, text: str, size: int
) -> Cosignature | None:
    """The witness's valid cosignature among the response's signature lines, if any; the
    lines of keys the policy does not name for this witness are ignored."""
    try:
        lines = content.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return None
    if lines[-1] != "":
        return None
    for line in lines[:-1]:
        try:
            timestamp = witness.key.verify(text, line)
        except LedgerError:
            continue
        return Cosignature(witness, size, line + "\n", timestamp)
    return None


def witness_once(
    policy: Policy,
    source: LogSource,
    on_cosignature: OnCosignature | None = None,
    *,
    timeout: float = 5.0,
    known_sizes: Mapping[str, int] | None = None,
    mounts: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> list[Cosignature]:
    """Send the log's latest checkpoint to every witness once (e.g. from a command)."""
    note = source.latest_checkpoint()
    if note is None:
        return []
    client = WitnessClient(
        policy, source, on_cosignature, timeout=timeout, known_sizes=known_sizes, mounts=mounts
    )
    coroutine = client.witness_checkpoint(note)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from code already inside an event loop (a notebook, a test browser):
    # asyncio.run refuses there, so the round runs on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
