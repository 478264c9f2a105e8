"""Offline submissions at national size: 70,000 serials in one submission, on each database."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import scale
from sqlalchemy import func, select

from ocop_trace.errors import Conflict
from ocop_trace.models import LABEL_SERIAL
from ocop_trace.settings import Settings


def test_a_submission_with_more_serials_than_one_query_may_bind(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=db_url, key_dir=tmp_path / "keys", public_url="")
    service, producer = scale._prepare(settings)
    key = service.producer_key(str(producer.producer_id))
    statements, sets = [], []
    for n in range(1, 8):  # 7 sets of 10,000: past PostgreSQL's 65,535 parameters
        made, serials = scale._batch(n, 10_000, key)
        statements += made
        sets.append(serials)
    receipts = service.submit_signed(producer, [statements], serials=sets)
    assert len(receipts) == len(statements)
    with service.engine.connect() as conn:
        held = conn.execute(select(func.count()).select_from(LABEL_SERIAL)).scalar_one()
        # Each serial under its own batch and label set (the set is its statement's index).
        kept = conn.execute(
            select(LABEL_SERIAL.c.serial, LABEL_SERIAL.c.batch_id, LABEL_SERIAL.c.label_set_id)
        ).all()
    assert held == 70_000
    issued = receipts[4::5]  # each batch: registered, three events, then labels.issued
    expected = {
        (serial, f"scale-{n:09d}", receipt.index)
        for n, (receipt, serials) in enumerate(zip(issued, sets, strict=True), start=1)
        for serial in serials
    }
    assert {tuple(row) for row in kept} == expected

    # A serial issued before is found in whichever slice it falls: here the last one.
    size = service.store.size()
    again, fresh = [], []
    for n in range(8, 15):
        made, serials = scale._batch(n, 10_000, key)
        again += made
        fresh.append(serials)
    fresh[-1] = [*fresh[-1][:-1], sets[0][0]]
    last = again[-1]
    body = dict(last.body, commitment=scale.serial_set_commitment_of(fresh[-1]))
    again[-1] = scale.sign_statement("labels.issued", body, key)
    with pytest.raises(Conflict, match=f"serial {sets[0][0]} was issued before"):
        service.submit_signed(producer, [again], serials=fresh)
    assert service.store.size() == size  # all or none
