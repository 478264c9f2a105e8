"""The SQL store on SQLite and PostgreSQL: appends, idempotency, atomicity, proofs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import LedgerKit, make_kit
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import OperationalError

from ledger import keys, merkle, pg_append
from ledger.bundle_export import store_records
from ledger.errors import AuthorityError, ProofError, SignatureError
from ledger.note import NoteVerifier, note_key_id, open_checkpoint
from ledger.statement import parse_entry, sign_statement
from ledger.store import ENTRY, NODE, LedgerStore, open_engine
from ledger.verifier import verify


def batch(kit: LedgerKit, n: int, tag: str = "L") -> list:  # type: ignore[type-arg]
    return [
        sign_statement("batch.registered", {"lot": f"{tag}{i}"}, kit.producer) for i in range(n)
    ]


def all_leaves(kit: LedgerKit) -> list[bytes]:
    return [merkle.leaf_hash(data) for _, data in kit.store.entries()]


def test_append_links_entries_and_returns_receipts(kit: LedgerKit) -> None:
    receipts = kit.store.append(batch(kit, 5))
    assert [r.index for r in receipts] == [3, 4, 5, 6, 7]
    assert kit.store.size() == 8
    previous = None
    for index, data in kit.store.entries():
        entry = parse_entry(data)
        assert entry.index == index
        if previous is not None:
            assert entry.prev_hash == hashlib.sha256(previous).hexdigest()
        previous = data
    assert receipts[-1].entry_hash == hashlib.sha256(previous or b"").hexdigest()
    assert kit.store.head() == (8, receipts[-1].entry_hash)


def test_same_statement_is_appended_once(kit: LedgerKit) -> None:
    statements = batch(kit, 2)
    first = kit.store.append(statements)
    again = kit.store.append([statements[1], statements[0]])
    assert [r.index for r in again] == [first[1].index, first[0].index]
    assert all(r.duplicate for r in again)
    assert kit.store.size() == 5


def test_refused_statement_leaves_nothing_written(kit: LedgerKit) -> None:
    good = batch(kit, 2)
    bad = sign_statement("rating.recorded", {"stars": 5}, kit.producer)
    with pytest.raises(AuthorityError) as info:
        kit.store.append([*good, bad])
    assert info.value.index == 5
    assert kit.store.size() == 3
    with kit.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ENTRY)).scalar_one() == 3
        nodes = conn.execute(select(func.count()).select_from(NODE)).scalar_one()
    assert nodes == 4  # three leaves and the complete subtree over leaves 0-1


def test_bad_signature_is_refused_before_any_write(kit: LedgerKit) -> None:
    statement = batch(kit, 1)[0]
    forged = type(statement)(
        statement.kind, statement.key_id, statement.issued_at, {"lot": "forged"}, statement.sig
    )
    with pytest.raises(SignatureError):
        kit.store.append([forged])
    assert kit.store.size() == 3


def test_inclusion_and_consistency_proofs_verify(kit: LedgerKit) -> None:
    kit.store.append(batch(kit, 40))
    leaves = all_leaves(kit)
    size = len(leaves)
    root = kit.store.root()
    assert root == merkle.root_from_leaf_hashes(leaves)
    for index in (0, 1, 17, size - 1):
        proof_size, proof = kit.store.inclusion_proof(index)
        assert proof_size == size
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
    for old in (1, 3, 20, size):
        proof = kit.store.consistency_proof(old, size)
        merkle.verify_consistency(old, size, proof, kit.store.root(old), root)
    with pytest.raises(ProofError):
        kit.store.inclusion_proof(size)


def test_several_inclusion_proofs_are_the_single_ones_read_in_one_query(kit: LedgerKit) -> None:
    kit.store.append(batch(kit, 40))
    leaves = all_leaves(kit)
    size = len(leaves)
    queries: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        queries.append(statement)

    for tree in (size, 21):  # the latest tree, and an older one
        indices = [i for i in (0, 1, 17, 20, 30, size - 1) if i < tree]
        event.listen(kit.store.engine, "before_cursor_execute", count)
        try:
            paths = kit.store.inclusion_proofs(indices, tree)
        finally:
            event.remove(kit.store.engine, "before_cursor_execute", count)
        assert len([q for q in queries if "ledger_node" in q]) == 1
        queries.clear()
        assert paths == {i: kit.store.inclusion_proof(i, tree)[1] for i in indices}
        root = merkle.root_from_leaf_hashes(leaves[:tree])  # computed apart from the store
        for index in indices:
            merkle.verify_inclusion(leaves[index], index, tree, paths[index], root)
    with pytest.raises(ProofError):
        kit.store.inclusion_proofs([0, size], size)


def test_each_append_grows_the_tree_from_the_frontier_read_under_the_lock(
    kit: LedgerKit,
) -> None:
    # On PostgreSQL the frontier is asked of the head row in the lock's own round trip
    # (ledger/pg_append.py): a wrong node there makes every later root wrong.
    for n in (1, 1, 2, 3, 5, 8, 13, 1):
        kit.store.append(batch(kit, n, f"F{kit.store.size()}-"))
        leaves = all_leaves(kit)
        assert kit.store.root() == merkle.root_from_leaf_hashes(leaves)  # computed apart
    if kit.store.engine.dialect.name == "postgresql":
        with kit.store.engine.begin() as conn:
            head, existing, grants, nodes = pg_append.locked_reads(conn, [], [])
        assert (head.size, existing, grants) == (len(leaves), [], [])
        wanted = merkle.complete_nodes(0, len(leaves))
        assert sorted(nodes) == sorted(
            (level, index, merkle.root_from_leaf_hashes(leaves[index << level :][: 1 << level]))
            for level, index in wanted
        )


@pytest.mark.postgres
def test_a_database_error_in_an_appends_pipeline_is_sqlalchemys_and_writes_nothing(
    postgres_url: str,
) -> None:
    # The app maps SQLAlchemy's OperationalError to 503 in one place (trace/errors.py); a
    # pipeline's error must come out as one, not as the driver's own.
    kit = make_kit(postgres_url)
    impatient = LedgerStore(
        open_engine(f"{postgres_url}?options=-c%20lock_timeout%3D200"),
        origin=kit.store.origin,
        root_key_id=kit.root_key_id,
        checkpoint_interval=3600,
    )
    size = kit.store.size()
    with kit.store.engine.begin() as holder:
        holder.execute(text("SELECT size FROM ledger_head WHERE id = 1 FOR UPDATE"))
        with pytest.raises(OperationalError, match="lock"):
            impatient.append(batch(kit, 2))
    assert kit.store.size() == size
    assert [r.index for r in impatient.append(batch(kit, 2))] == [size, size + 1]
    assert kit.store.root() == merkle.root_from_leaf_hashes(all_leaves(kit))
    impatient.engine.dispose()


def test_checkpoint_is_a_signed_note_of_the_current_root(kit: LedgerKit) -> None:
    kit.store.append(batch(kit, 4))
    note = kit.store.publish_checkpoint()
    public = keys.public_bytes(kit.ledger_key)
    verifier = NoteVerifier(kit.store.origin, note_key_id(kit.store.origin, public), public)
    checkpoint = open_checkpoint(note, verifier)
    assert checkpoint.size == 7
    assert checkpoint.root_hash == merkle.root_from_leaf_hashes(all_leaves(kit))
    assert kit.store.latest_checkpoint() == note


def test_checkpoints_follow_appends_automatically(kit: LedgerKit) -> None:
    kit.store.checkpoint_interval = 0.0
    kit.store.append(batch(kit, 1))
    kit.store.append(batch(kit, 1, "M"))
    sizes = [size for size, _ in kit.store.checkpoints()]
    assert sizes[-2:] == [4, 5]


def test_store_verifies_end_to_end(kit: LedgerKit) -> None:
    kit.store.append(batch(kit, 30))
    kit.store.publish_checkpoint()
    report = verify(
        store_records(kit.store), kit.root_key_id, workers=2, expected_size=kit.store.size()
    )
    assert report.ok, report.failure
    assert report.entries == 33
    assert report.checkpoints == 2
    assert report.root == kit.store.root().hex()


def test_checkpoint_if_behind_covers_the_tail(kit: LedgerKit) -> None:
    assert kit.store.checkpoint_if_behind() is None  # the fixture published one already
    kit.store.append(batch(kit, 2))
    note = kit.store.checkpoint_if_behind()
    assert note is not None
    assert "\n5\n" in note
    assert kit.store.checkpoint_if_behind() is None


def test_a_reopenable_sqlite_url_names_the_same_file_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import create_engine

    from ledger.store import reopenable_url

    monkeypatch.chdir(tmp_path)
    url = reopenable_url(create_engine("sqlite:///d/trace.db"))
    assert url == f"sqlite:///{tmp_path.resolve() / 'd' / 'trace.db'}"
    assert reopenable_url(create_engine("sqlite://")) is None


def test_an_unsynced_write_commits_and_leaves_the_pool_durable(kit: LedgerKit) -> None:
    # Cosignatures are written without waiting for the disk; every other write on the same
    # pooled connection afterwards must still wait for it (SQLite synchronous=FULL = 2,
    # PostgreSQL synchronous_commit on), or an acknowledged append could be lost.
    from sqlalchemy import text

    from ledger.store import unsynced_writing

    engine = kit.store.engine
    sqlite_db = engine.dialect.name == "sqlite"
    setting = "PRAGMA synchronous" if sqlite_db else "SHOW synchronous_commit"
    with unsynced_writing(engine) as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS unsynced_probe (x integer)"))
        conn.execute(text("INSERT INTO unsynced_probe VALUES (1)"))
        assert str(conn.exec_driver_sql(setting).scalar()) == ("1" if sqlite_db else "off")

    def fail_half_way() -> None:
        with unsynced_writing(engine) as conn:
            conn.execute(text("INSERT INTO unsynced_probe VALUES (2)"))
            raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        fail_half_way()
    for _ in range(10):  # every pooled connection, whichever the pool hands out
        with engine.connect() as conn:
            assert str(conn.exec_driver_sql(setting).scalar()) == ("2" if sqlite_db else "on")
            assert conn.execute(text("SELECT x FROM unsynced_probe")).scalars().all() == [1]
