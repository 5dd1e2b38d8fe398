"""The session dependency: a write lands only when the request succeeds."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.api.deps import get_session
from app.models import Dataset


def names(client: TestClient) -> set[str]:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        return set(session.scalars(select(Dataset.name)))


async def rename_linear(client: TestClient, error: Exception | None) -> None:
    dependency = get_session(SimpleNamespace(app=client.app))  # type: ignore[arg-type]
    session = await anext(dependency)
    session.execute(update(Dataset).where(Dataset.name == "linear").values(name="renamed"))
    if error is not None:
        with pytest.raises(type(error)):
            await dependency.athrow(error)
    else:
        with pytest.raises(StopAsyncIteration):
            await anext(dependency)
    assert not session.in_transaction()  # the connection went back to the pool


def test_a_request_that_fails_after_writing_leaves_nothing(client: TestClient) -> None:
    asyncio.run(rename_linear(client, RuntimeError("the route failed")))
    assert "linear" in names(client)
    assert "renamed" not in names(client)


def test_a_request_that_writes_and_succeeds_commits(client: TestClient) -> None:
    asyncio.run(rename_linear(client, None))
    assert "renamed" in names(client)
    assert "linear" not in names(client)


def test_a_read_only_request_gives_its_connection_back(client: TestClient) -> None:
    async def read() -> None:
        dependency = get_session(SimpleNamespace(app=client.app))  # type: ignore[arg-type]
        session = await anext(dependency)
        assert "curve" in set(session.scalars(select(Dataset.name)))
        with pytest.raises(StopAsyncIteration):
            await anext(dependency)
        assert not session.in_transaction()

    asyncio.run(read())
    pool = client.app.state.engine.pool  # type: ignore[attr-defined]
    assert pool.checkedout() == 0
