"""The ledger on a SQL database: durable, database-serialised appends, proofs and checkpoints."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlmodel import SQLModel

from ledger import merkle, pg_append
from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyGrant, KeyRegistry
from ledger.cosign_tables import LedgerCosignatureRow
from ledger.errors import AppendError, LedgerError, ProofError
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note
from ledger.statement import (
    GENESIS_PREV_HASH,
    Statement,
    entry_bytes,
    signing_input_of,
    utc_now,
)
from ledger.tables import (
    LedgerCheckpointRow,
    LedgerEntryRow,
    LedgerHeadRow,
    LedgerKeyRow,
    LedgerNodeRow,
    insert_sql,
)

ENTRY = LedgerEntryRow.__table__  # type: ignore[attr-defined]
NODE = LedgerNodeRow.__table__  # type: ignore[attr-defined]
CHECKPOINT = LedgerCheckpointRow.__table__  # type: ignore[attr-defined]
KEY = LedgerKeyRow.__table__  # type: ignore[attr-defined]
HEAD = LedgerHeadRow.__table__  # type: ignore[attr-defined]
# The witnesses' cosignatures live beside the checkpoints they sign (ledger.cosign_store).
COSIGNATURE = LedgerCosignatureRow.__table__  # type: ignore[attr-defined]
LEDGER_TABLES = [ENTRY, NODE, CHECKPOINT, KEY, HEAD, COSIGNATURE]

# A pooled PostgreSQL connection unused this long is checked before it is lent again.
IDLE_PING_SECONDS = 1.0

# The statements an append runs while it holds the head row, built once: building one
# (and its cache key) took more CPU than the database took to run it, and under load that
# CPU is time the lock is held (docs/performance.md, the fleet's appends).
_HEAD_LOCKED = select(HEAD.c.size, HEAD.c.head_hash).where(HEAD.c.id == 1).with_for_update()
_ALREADY_IN = select(
    ENTRY.c.idx, ENTRY.c.entry_hash, ENTRY.c.statement_hash, ENTRY.c.integrated_at
).where(ENTRY.c.statement_hash.in_(bindparam("hashes", expanding=True)))
_GRANTS_OF = select(KEY).where(KEY.c.key_id.in_(bindparam("ids", expanding=True)))
_HEAD_MOVED = (
    update(HEAD)
    .where(HEAD.c.id == 1)
    .values(size=bindparam("new_size"), head_hash=bindparam("new_hash"))
)


def open_engine(url: str, connections: int = 48, ping_after: float = IDLE_PING_SECONDS) -> Engine:
    """An engine for a SQLite file (WAL, fully synchronous) or a PostgreSQL URL that holds at
    most `connections` PostgreSQL connections at once, each checked before use when it sat
    unused for `ping_after` seconds."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # A request may hold one connection while a helper takes a second; a pool that can
        # run dry while every holder waits for another would deadlock. SQLite connections
        # are cheap file handles, so that pool never runs dry; a PostgreSQL pool is a budget
        # (the server's max_connections is shared by every process), and an app worker runs
        # half as many threads (Settings.request_threads).
        if parsed.get_backend_name() == "sqlite":
            _create_private(parsed.database)
            engine = create_engine(
                # Kept open for every thread an app worker runs: a connection opened past
                # the pool was closed on return, and reopening one costs PRAGMAs on the
                # hot path while holding the GIL.
                parsed,
                connect_args={"timeout": 60},
                pool_size=32,
                max_overflow=-1,
            )
            _configure_sqlite(engine)
            return engine
        # No overflow: connections past the pool were closed on return and reopened on the
        # next burst, and a fleet could open more than the server admits.
        engine = create_engine(parsed, pool_size=connections, max_overflow=0, pool_timeout=30)
        _ping_when_idle(engine, ping_after)
        return engine
    except ArgumentError:  # NoSuchModuleError (an unknown database kind) is one too
        raise LedgerError(
            "not a database URL this service can use",
            expected="sqlite:///FILE or postgresql://USER@HOST/DB",
            found=url.split("@")[-1],  # never echo a password
        ) from None


def _ping_when_idle(engine: Engine, seconds: float) -> None:
    """Check a pooled connection before lending it only when it sat unused `seconds`.

    SQLAlchemy's `pool_pre_ping` checks at every check-out, and a signed-in request checks
    out three times: three of its ten round trips. A busy worker reuses its connections
    within milliseconds; one that broke since (the server restarted) is found by its next
    statement instead, which SQLAlchemy answers by dropping the whole pool, so a process
    answers one request 503 (try again) and then reconnects. A connection that sat idle
    and fails its check is replaced before anyone uses it (the pool's DisconnectionError).
    """

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _lent(dbapi: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < seconds:
            return  # new, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc).splitlines()[0] if str(exc) else "") from exc


def one_snapshot(engine: Engine) -> Engine:
    """The same pool, each connection reading one snapshot of the database until it is
    returned (PostgreSQL REPEATABLE READ; a SQLite read transaction already is one). A page
    then reads a checkpoint and the entries it proves from one state of the ledger, which
    on a replica that is still replaying is what keeps them consistent."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


@contextmanager
def one_read(engine: Engine) -> Iterator[Connection]:
    """A connection for one read statement, outside a transaction. On PostgreSQL a
    transaction costs two round trips of its own (BEGIN, then ROLLBACK on return), more
    than the query, and every signed-in request reads its token and its key this way.
    SQLite begins its transactions itself (`_configure_sqlite`), so it reads as before."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@dataclass(frozen=True, slots=True)
class StoreSlice:
    """Entries [start, stop) of a ledger database, read by the worker process that checks
    them, so the main process neither reads nor forwards them. Picklable: it holds the
    database URL (password included, never shown: repr hides it) and the range."""

    url: str = field(repr=False)
    start: int
    stop: int

    def load(self) -> list[tuple[int, bytes]]:
        with _engine_of_this_process(self.url).connect() as conn:
            rows = conn.execute(
                select(ENTRY.c.idx, ENTRY.c.data)
                .where(ENTRY.c.idx >= self.start, ENTRY.c.idx < self.stop)
                .order_by(ENTRY.c.idx)
            )
            return [(int(index), _as_bytes(data)) for index, data in rows]


def _as_bytes(data: object) -> bytes:
    # SQLite keeps whatever type was written: a row edited to TEXT behind the ledger's back
    # must be judged as the bytes it now holds, not crash the worker.
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    return bytes(data) if isinstance(data, bytes | bytearray | memoryview) else str(data).encode()


_ENGINES: dict[tuple[int, str], Engine] = {}


def _engine_of_this_process(url: str) -> Engine:
    # One engine per process and URL, kept for the process's life. Keyed by pid too: a
    # worker forked from a process that had one must not share its pooled connections.
    key = (os.getpid(), url)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = open_engine(url)
    return engine


def reopenable_url(engine: Engine) -> str | None:
    """The URL another process can open to reach the same database; None for SQLite in
    memory, which only this connection pool can see."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return None
        if not url.database.startswith("file:"):
            # Absolute: a relative path names another file once the working folder
            # changes, and engines are kept per URL for reuse.
            url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


def _create_private(database: str | None) -> None:
    """Create a new SQLite file readable by its owner only (SQLite gives its -wal and -shm
    files the same mode): it holds the encrypted custodial keys and the users' hashes."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # an existing file keeps its mode; a missing folder is SQLite's error to report
    with suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that returned is on disk, so an acknowledged append survives.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # An appender must hold the write lock from its first read of the head, or two
        # processes could read the same head; SQLite's way to say so is BEGIN IMMEDIATE.
        immediate = conn.get_execution_options().get("ledger_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def unsynced_writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that a power cut may lose whole but never leave half-applied,
    for what can be fetched again (a witness's cosignature): its commit does not wait for
    the disk, so it holds SQLite's write lock for a fraction of a durable commit, and the
    appends queued behind it do not wait for a second fsync. SQLite: synchronous=NORMAL for
    this commit (in WAL mode the next durable commit syncs its frames too); PostgreSQL:
    synchronous_commit off for this transaction."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield conn
            return
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=NORMAL")
        try:
            with _one_writer(engine), conn.begin():
                yield conn
        finally:
            raw.execute("PRAGMA synchronous=FULL")  # the pool's connections stay durable


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction that takes the write lock up front (SQLite: BEGIN IMMEDIATE, with
    the busy timeout to wait for it), so it never fails half-way because another writer
    committed after its first read. PostgreSQL takes row locks as it goes."""
    with (
        _one_writer(engine),
        engine.connect().execution_options(ledger_write=True) as conn,
        conn.begin(),
    ):
        yield conn


def refresh_statistics(engine: Engine) -> None:
    """Give SQLite's query planner the tables' statistics (PostgreSQL's autovacuum keeps
    its own). Without them it guesses, and it guessed a big producer's 200,000 batches as
    the cheap side of a join: the dashboard's scan chart read 29 ms instead of 1 ms on a
    1,000,000-entry ledger. analysis_limit samples each index, so this takes milliseconds
    on a gigabyte file."""
    if engine.dialect.name != "sqlite":
        return
    with _one_writer(engine), engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA analysis_limit=400")
        raw.execute("ANALYZE")


# One lock per SQLite pool (an engine's execution_options copies share it): this process's
# writers queue here, and the next one starts the moment the last commits. Left to SQLite,
# a writer finding the file locked sleeps in its busy handler (1 ms, then 2, 5, …), so an
# append arriving during a cosignature's 0.1 ms commit waited a millisecond or more. Other
# processes still meet the busy handler: this only removes the wait within one.
_WRITERS: WeakKeyDictionary[Any, threading.RLock] = WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


@contextmanager
def _one_writer(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    with _WRITERS_GUARD:
        lock = _WRITERS.setdefault(engine.pool, threading.RLock())
    with lock:
        yield


# Called inside the append transaction with each new (index, statement, signer's grant;
# None for the root key): whatever it writes commits with the entries, and if it raises,
# nothing of the append is written. The service keeps its projection tables this way.
OnAppend = Callable[[Connection, list[tuple[int, Statement, KeyGrant | None]]], None]
# Names what a statement is about, for the entry's `subject` column (None: nothing).
SubjectOf = Callable[[Statement], "str | None"]
# Writes what must commit with an append, given its receipts, in the same transaction.
Also = Callable[[Connection, list["Receipt"]], None]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What an append returns: where the statement now lives in the ledger."""

    index: int
    entry_hash: str
    statement_hash: str
    integrated_at: str
    duplicate: bool = False


class LedgerStore:
    """Appends statements and answers proofs; all state lives in the database."""

    def __init__(
        self,
        engine: Engine,
        *,
        origin: str,
        root_key_id: str,
        signer: NoteSigner | None = None,
        checkpoint_interval: float = 2.0,
        on_append: OnAppend | None = None,
        subject_of: SubjectOf | None = None,
    ) -> None:
        self.engine = engine
        self.on_append = on_append
        self.subject_of = subject_of
        self.origin = origin
        self.root_key_id = root_key_id
        self.signer = signer
        self.checkpoint_interval = checkpoint_interval
        self._last_checkpoint_check = 0.0
        # Called (from any thread) after a checkpoint is stored, e.g. to wake witnesses.
        self.on_checkpoint: Callable[[], None] | None = None

    # -- schema -------------------------------------------------------------------------
    def create_schema(self) -> None:
        SQLModel.metadata.create_all(self.engine, tables=LEDGER_TABLES)
        with self.engine.begin() as conn:
            stmt = _insert_ignore(conn, HEAD).values(id=1, size=0, head_hash=GENESIS_PREV_HASH)
            conn.execute(stmt)

    # -- reading --------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(select(HEAD.c.size, HEAD.c.head_hash).where(HEAD.c.id == 1)).one()
        return int(row.size), str(row.head_hash)

    def size(self) -> int:
        return self.head()[0]

    @contextmanager
    def reading(self, conn: Connection | None = None) -> Iterator[Connection]:
        """The caller's connection if it has one, else a pooled one for this read.

        A request that already holds a connection passes it down: taking a second one from
        the pool while holding the first can deadlock once every request does so at once.
        """
        if conn is not None:
            yield conn
            return
        with self.engine.connect() as own:
            yield own

    def entry(self, index: int, conn: Connection | None = None) -> bytes | None:
        with self.reading(conn) as c:
            data = c.execute(select(ENTRY.c.data).where(ENTRY.c.idx == index)).scalar()
        return bytes(data) if data is not None else None

    def entries(self, start: int = 0, page: int = 2000) -> Iterator[tuple[int, bytes]]:
        """Every entry from `start` in index order, a page at a time (constant memory)."""
        after = start - 1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ENTRY.c.idx, ENTRY.c.data)
                    .where(ENTRY.c.idx > after)
                    .order_by(ENTRY.c.idx)
                    .limit(page)
                ).all()
            if not rows:
                return
            for row in rows:
                yield int(row.idx), bytes(row.data)
            after = int(rows[-1].idx)

    def entries_about(
        self, subject: str, kinds: Sequence[str], conn: Connection | None = None
    ) -> list[tuple[int, str]]:
        """(index, kind) of every entry about `subject` of these kinds, in ledger order."""
        with self.reading(conn) as c:
            rows = c.execute(
                select(ENTRY.c.idx, ENTRY.c.kind)
                .where(ENTRY.c.subject == subject, ENTRY.c.kind.in_(kinds))
                .order_by(ENTRY.c.idx)
            ).all()
        return [(int(r.idx), str(r.kind)) for r in rows]

    def touched(
        self, start: int, stop: int, conn: Connection | None = None
    ) -> list[tuple[str, str | None]]:
        """(kind, subject) of the entries from `start` to `stop` (exclusive): what a cache of
        things built from the ledger drops when the ledger grows."""
        with self.reading(conn) as c:
            rows = c.execute(
                select(ENTRY.c.kind, ENTRY.c.subject).where(
                    ENTRY.c.idx >= start, ENTRY.c.idx < stop
                )
            ).all()
        return [(str(r.kind), r.subject) for r in rows]

    def subjects(self, start: int = 0, page: int = 2000) -> Iterator[tuple[int, str | None]]:
        """(index, subject) of every entry from `start`, in order, a page at a time."""
        after = start - 1
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(ENTRY.c.idx, ENTRY.c.subject)
                    .where(ENTRY.c.idx > after)
                    .order_by(ENTRY.c.idx)
                    .limit(page)
                ).all()
            if not rows:
                return
            for row in rows:
                yield int(row.idx), row.subject
            after = int(rows[-1].idx)

    def checkpoints(self, after_size: int = -1) -> Iterator[tuple[int, str]]:
        """Every stored checkpoint as (size, note), by size."""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(CHECKPOINT.c.size, CHECKPOINT.c.note)
                    .where(CHECKPOINT.c.size > after_size)
                    .order_by(CHECKPOINT.c.size)
                    .limit(1000)
                ).all()
            if not rows:
                return
            for row in rows:
                yield int(row.size), str(row.note)
            after_size = int(rows[-1].size)

    def state(self, conn: Connection | None = None) -> tuple[int, int]:
        """(size, size of the latest checkpoint or -1), in one query: what a cache of
        pages built from the ledger is keyed on."""
        with self.reading(conn) as c:
            row = c.execute(
                select(
                    select(HEAD.c.size).where(HEAD.c.id == 1).scalar_subquery(),
                    select(func.max(CHECKPOINT.c.size)).scalar_subquery(),
                )
            ).one()
        return int(row[0]), int(row[1]) if row[1] is not None else -1

    def checkpoint_time(self, size: int, conn: Connection | None = None) -> str | None:
        """When the checkpoint of this size was signed (UTC), if there is one."""
        with self.reading(conn) as c:
            at = c.execute(
                select(CHECKPOINT.c.created_at).where(CHECKPOINT.c.size == size)
            ).scalar()
        return str(at) if at is not None else None

    def latest_checkpoint(self, conn: Connection | None = None) -> str | None:
        with self.reading(conn) as c:
            note = c.execute(
                select(CHECKPOINT.c.note).order_by(CHECKPOINT.c.size.desc()).limit(1)
            ).scalar()
        return str(note) if note is not None else None

    def grants(self, conn: Connection | None = None) -> dict[str, KeyGrant]:
        with self.reading(conn) as c:
            return {g.key_id: g for g in map(_grant_of, c.execute(select(KEY)))}

    def _node_getter(
        self, conn: Connection, wanted: Sequence[tuple[int, int]]
    ) -> Callable[[int, int], bytes]:
        found: dict[tuple[int, int], bytes] = {}
        by_level: dict[int, list[int]] = {}
        for level, index in set(wanted):
            by_level.setdefault(level, []).append(index)
        if by_level:
            # This is the proof hot path, and building the equivalent SQLAlchemy expression
            # costs more than the query itself. Every value is an int we computed, so the
            # literal SQL below cannot carry anything a caller typed. One primary-key probe
            # per (level, idx): SQLite uses the index for this OR, not for a row-value IN.
            condition = " OR ".join(
                f"(level = {int(level)} AND idx IN ({','.join(str(int(i)) for i in indices)}))"
                for level, indices in by_level.items()
            )
            rows = conn.exec_driver_sql(
                f"SELECT level, idx, hash FROM ledger_node WHERE {condition}"  # noqa: S608
            )
            found.update({(int(r[0]), int(r[1])): bytes(r[2]) for r in rows})
        return _getter(found)

    def root(self, size: int | None = None) -> bytes:
        with self.engine.connect() as conn:
            size = self._size_in(conn) if size is None else size
            return merkle.root_at(size, self._node_getter(conn, merkle.complete_nodes(0, size)))

    def inclusion_proof(
        self, index: int, size: int | None = None, conn: Connection | None = None
    ) -> tuple[int, list[bytes]]:
        """(tree size, audit path) for entry `index`, reading O(log n) nodes in one query."""
        with self.reading(conn) as conn:
            size = self._size_in(conn) if size is None else size
            return size, self.inclusion_proofs([index], size, conn)[index]

    def inclusion_proofs(
        self, indices: Sequence[int], size: int, conn: Connection | None = None
    ) -> dict[int, list[bytes]]:
        """The audit paths of several entries in the tree of `size`, all their nodes read
        in one query (a scan page proves a dozen entries against each new checkpoint)."""
        for index in indices:
            if not 0 <= index < size:
                raise ProofError(
                    "no entry at that index", expected=f"0 <= index < {size}", found=index
                )
        wanted = [n for i in indices for n in merkle.nodes_needed_for_inclusion(i, size)]
        with self.reading(conn) as conn:
            nodes = self._node_getter(conn, wanted)
            return {i: merkle.inclusion_proof(i, size, nodes) for i in indices}

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        with self.engine.connect() as conn:
            current = self._size_in(conn)
            if not 0 < size1 <= size2 <= current:
                raise ProofError(
                    "sizes out of range",
                    expected=f"0 < size1 <= size2 <= {current}",
                    found=(size1, size2),
                )
            wanted = merkle.nodes_needed_for_consistency(size1, size2)
            return merkle.consistency_proof(size1, size2, self._node_getter(conn, wanted))

    @staticmethod
    def _size_in(conn: Connection) -> int:
        return int(conn.execute(select(HEAD.c.size).where(HEAD.c.id == 1)).scalar_one())

    # -- appending ------------------------------------------------------------------------
    def append(
        self,
        statements: Sequence[Statement],
        *,
        verified: bool = False,
        also: Also | None = None,
    ) -> list[Receipt]:
        """Append statements atomically, in order; all or none. Returns one receipt each.

        Signatures are checked before the write lock is taken, so the lock covers only the
        hashing and the inserts. A statement already in the ledger is not appended again;
        its receipt says `duplicate`. `also` writes what must commit with the entries (a
        key they register, the serials a label set commits to) in the same transaction.
        """
        return self.append_stream([statements], verified=verified, also=also)

    def append_stream(
        self,
        chunks: Iterable[Sequence[Statement]],
        *,
        verified: bool = False,
        also: Also | None = None,
        on_chunk: Callable[[list[Receipt]], None] | None = None,
    ) -> list[Receipt]:
        """Append every chunk in one transaction, all or none, holding one chunk in memory
        at a time. Receipts are returned, or handed to `on_chunk` a chunk at a time (then
        none are kept; they describe entries only once this returns, when all committed).
        A refused statement's exception carries `position`, its place over all chunks."""
        receipts: list[Receipt] = []
        done = 0
        with writing(self.engine) as conn:
            for chunk in chunks:
                canon = [s.canonical() for s in chunk]
                if not verified:
                    for offset, (statement, data) in enumerate(zip(chunk, canon, strict=True)):
                        try:
                            statement.verify(signing_input_of(data, statement.sig))
                        except LedgerError as exc:
                            exc.position = done + offset  # type: ignore[attr-defined]
                            raise
                stmt_hashes = [hashlib.sha256(c).digest() for c in canon]
                got = self._append_locked(conn, chunk, canon, stmt_hashes, done)
                done += len(got)
                if on_chunk is None:
                    receipts += got
                else:
                    on_chunk(got)
            if also is not None:
                also(conn, receipts)
        self._maybe_checkpoint()
        return receipts

    def _append_locked(
        self,
        conn: Connection,
        statements: Sequence[Statement],
        canon: list[bytes],
        stmt_hashes: list[bytes],
        first_position: int = 0,
    ) -> list[Receipt]:
        size, prev_hash, existing, grants, frontier = self._locked_reads(
            conn, stmt_hashes, statements
        )
        registry = KeyRegistry(self.root_key_id, grants)
        now = utc_now()
        receipts: list[Receipt] = []
        entry_rows: list[tuple[int, bytes, bytes, str, str, str, bytes, str | None]] = []
        node_rows: list[tuple[int, int, bytes]] = []
        changed: dict[str, KeyGrant] = {}
        appended: list[tuple[int, Statement, KeyGrant | None]] = []
        positions: dict[int, int] = {}
        for position, (statement, data, stmt_hash) in enumerate(
            zip(statements, canon, stmt_hashes, strict=True), start=first_position
        ):
            if stmt_hash in existing:
                receipts.append(existing[stmt_hash])
                continue
            index = size + len(entry_rows)
            positions[index] = position
            try:
                grant = registry.check_and_apply(statement, index)
            except LedgerError as exc:
                exc.position = position  # type: ignore[attr-defined]
                raise
            if grant is not None:
                changed[grant.key_id] = grant
            appended.append((index, statement, registry.grants.get(statement.key_id)))
            entry = entry_bytes(index, prev_hash, now, data)
            entry_hash = hashlib.sha256(entry).digest()
            node_rows += frontier.append_with_nodes(merkle.leaf_hash(entry))
            entry_rows.append(
                # In the table's column order (ledger.tables.LedgerEntryRow).
                (
                    index,
                    entry_hash,
                    stmt_hash,
                    statement.kind,
                    statement.key_id,
                    now,
                    entry,
                    self.subject_of(statement) if self.subject_of else None,
                )
            )
            prev_hash = entry_hash.hex()
            receipts.append(Receipt(index, prev_hash, stmt_hash.hex(), now))
            existing[stmt_hash] = Receipt(index, prev_hash, stmt_hash.hex(), now, duplicate=True)
        if entry_rows:
            # The projection first, the ledger's own rows last: it reads none of them, and
            # on PostgreSQL those go with the head's move in one round trip.
            self._save_grants(conn, changed)
            if self.on_append is not None:
                try:
                    self.on_append(conn, appended)
                except Exception as exc:
                    # Name the refused statement by its place in what the caller sent.
                    refused = getattr(exc, "entry_index", None)
                    if refused in positions:
                        exc.position = positions[refused]  # type: ignore[attr-defined]
                    raise
            new_size = size + len(entry_rows)
            if conn.dialect.name == "postgresql":
                pg_append.write(conn, entry_rows, node_rows, new_size, prev_hash)
            else:
                _insert_rows(conn, ENTRY, entry_rows)
                _insert_rows(conn, NODE, node_rows)
                conn.execute(_HEAD_MOVED, {"new_size": new_size, "new_hash": prev_hash})
        return receipts

    def _locked_reads(
        self, conn: Connection, stmt_hashes: Sequence[bytes], statements: Sequence[Statement]
    ) -> tuple[int, str, dict[bytes, Receipt], dict[str, KeyGrant], merkle.CompactRange]:
        """Lock the head row and read what an append checks under the lock: the size and
        head hash, receipts of the statements already in, the grants of the keys involved
        and the tree's frontier."""
        hashes = sorted(set(stmt_hashes))
        ids = sorted(_key_ids(statements))
        if conn.dialect.name == "postgresql":
            head, rows, grant_rows, nodes = pg_append.locked_reads(conn, hashes, ids)
            getter = _getter({(level, index): node for level, index, node in nodes})
        else:
            head = conn.execute(_HEAD_LOCKED).one_or_none()
            if head is not None:
                rows = list(conn.execute(_ALREADY_IN, {"hashes": hashes}))
                grant_rows = list(conn.execute(_GRANTS_OF, {"ids": ids})) if ids else []
                wanted = merkle.complete_nodes(0, int(head.size))
                getter = self._node_getter(conn, wanted)
        if head is None:
            raise AppendError(
                "the ledger has no schema yet", expected="ocop-trace init", found="no head row"
            )
        size = int(head.size)
        existing = {
            bytes(r.statement_hash): Receipt(
                int(r.idx),
                bytes(r.entry_hash).hex(),
                bytes(r.statement_hash).hex(),
                str(r.integrated_at),
                duplicate=True,
            )
            for r in rows
        }
        grants = {g.key_id: g for g in map(_grant_of, grant_rows)}
        return (
            size,
            str(head.head_hash),
            existing,
            grants,
            merkle.CompactRange.from_store(size, getter),
        )

    @staticmethod
    def _save_grants(conn: Connection, changed: dict[str, KeyGrant]) -> None:
        for grant in changed.values():
            if grant.revoked_index is None:
                conn.execute(
                    insert(KEY).values(
                        key_id=grant.key_id,
                        role=grant.role,
                        name=grant.name,
                        kinds=json.dumps(sorted(grant.kinds)),
                        may_grant=json.dumps(sorted(grant.may_grant)),
                        subject=grant.subject,
                        registered_index=grant.registered_index,
                        registered_by=grant.registered_by,
                        revoked_index=None,
                    )
                )
            else:
                conn.execute(
                    update(KEY)
                    .where(KEY.c.key_id == grant.key_id)
                    .values(revoked_index=grant.revoked_index)
                )

    # -- checkpoints ----------------------------------------------------------------------
    def publish_checkpoint(self) -> str:
        """Sign and store a checkpoint of the current tree; returns the signed note."""
        if self.signer is None:
            raise LedgerError(
                "no ledger key is configured to sign checkpoints",
                expected="a ledger signing key",
                found="none",
            )
        with self.engine.connect() as conn:
            size = self._size_in(conn)
            root = merkle.root_at(size, self._node_getter(conn, merkle.complete_nodes(0, size)))
        note = sign_note(format_checkpoint(Checkpoint(self.origin, size, root)), [self.signer])
        with self.engine.begin() as conn:
            conn.execute(
                _insert_ignore(conn, CHECKPOINT).values(
                    size=size, root=root, note=note, created_at=utc_now()
                )
            )
            stored = conn.execute(
                select(CHECKPOINT.c.note).where(CHECKPOINT.c.size == size)
            ).scalar_one()
        self._last_checkpoint_check = time.monotonic()
        if self.on_checkpoint is not None:
            self.on_checkpoint()
        return str(stored)

    def checkpoint_if_behind(self) -> str | None:
        """Publish a checkpoint if entries were appended since the latest one.

        Appends publish at most every `checkpoint_interval`; a periodic call of this covers
        the tail of a burst of appends, so no entry waits long for a signed checkpoint.
        """
        if self.signer is None:
            return None
        with self.engine.connect() as conn:
            size = self._size_in(conn)
            latest = conn.execute(select(func.max(CHECKPOINT.c.size))).scalar()
        return self.publish_checkpoint() if latest is None or latest < size else None

    def _maybe_checkpoint(self) -> None:
        # Checked against a local clock first so a busy appender costs no extra query.
        if self.signer is None:
            return
        if time.monotonic() - self._last_checkpoint_check >= self.checkpoint_interval:
            self.publish_checkpoint()


def _key_ids(statements: Sequence[Statement]) -> set[str]:
    """The keys an append's authority check reads: the signers', and those registered or
    revoked."""
    ids = {s.key_id for s in statements}
    ids |= {
        s.body["key_id"]
        for s in statements
        if s.kind in (KEY_REGISTERED, KEY_REVOKED) and type(s.body.get("key_id")) is str
    }
    return ids


def _grant_of(r: Any) -> KeyGrant:
    return KeyGrant(
        r.key_id,
        r.role,
        r.name,
        frozenset(json.loads(r.kinds)),
        frozenset(json.loads(r.may_grant)),
        r.subject,
        int(r.registered_index),
        r.registered_by,
        None if r.revoked_index is None else int(r.revoked_index),
    )


def _getter(found: dict[tuple[int, int], bytes]) -> Callable[[int, int], bytes]:
    """The nodes read, by (level, index); one missing is a ProofError that names it."""

    def get_node(level: int, index: int) -> bytes:
        try:
            return found[(level, index)]
        except KeyError:
            raise ProofError(
                "a Merkle node the proof needs is missing from the store",
                expected=f"node level {level} index {index}",
                found="nothing",
            ) from None

    return get_node


def _insert_rows(conn: Connection, table: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT many rows of plain values (ints, str, bytes) in the table's column order."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(insert_sql(table, mark), list(rows))


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that does nothing when the primary key exists, on SQLite and PostgreSQL."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()
