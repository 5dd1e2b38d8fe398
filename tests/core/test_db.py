"""The session factory's bookkeeping: whether a session wrote decides if a request commits."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from app.core.config import PROJECT_ROOT, Settings
from app.core.db import has_writes, make_engine, make_session_factory
from app.core.migrate import upgrade_to_head
from app.models import Dataset
from app.services.datasets import register_builtin_datasets


def test_reads_do_not_count_as_writes_and_every_kind_of_write_does(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'pc.sqlite3'}")
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        register_builtin_datasets(session, PROJECT_ROOT / "data", 100_000)
        assert has_writes(session)
        session.commit()
    with factory() as session:
        session.scalars(select(Dataset.name)).all()
        session.get(Dataset, 1)
        assert not has_writes(session)
        session.execute(update(Dataset).where(Dataset.id == -1).values(name="x"))
        assert has_writes(session)
    with factory() as session:
        dataset = session.get(Dataset, 1)
        assert dataset is not None
        dataset.name = "renamed"
        assert has_writes(session)  # a pending change, not flushed yet
    engine.dispose()
