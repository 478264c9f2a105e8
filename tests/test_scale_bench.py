"""The scale benchmark's generator: real appends to its targets, resumed where it stopped."""

from __future__ import annotations

from pathlib import Path

from bench import scale
from sqlalchemy import func, select

from ocop_trace.models import BATCH, LABEL_SET
from ocop_trace.rebuild import check_projection
from ocop_trace.settings import Settings


def test_the_generator_reaches_its_targets_and_resumes(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=postgres_url, key_dir=tmp_path / "keys", public_url="")
    service, producer = scale._prepare(settings)
    start = service.store.size()
    scale.grow(service, producer, entries=start + 40, serials=300)
    size, serials, batches = scale._counts(service)
    assert size >= start + 40
    assert serials == 300
    # Run again with larger targets (as after an interrupted run): it carries on from there.
    again, producer = scale._prepare(settings)
    scale.grow(again, producer, entries=size + 30, serials=500)
    size2, serials2, batches2 = scale._counts(again)
    assert size2 >= size + 30
    assert serials2 == 500
    assert batches2 > batches
    with again.engine.connect() as conn:
        sets = conn.execute(select(func.count()).select_from(LABEL_SET)).scalar_one()
        ids = conn.execute(select(func.count(BATCH.c.id.distinct()))).scalar_one()
    assert sets == batches2  # every bench batch got one label set with its serials
    assert ids == batches2  # each under its own id, none made twice on resuming
    assert check_projection(again.store) is None  # the rows are what the entries say
