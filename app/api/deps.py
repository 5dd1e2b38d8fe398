"""Request dependencies as `Annotated` aliases. The session dependency owns commit/rollback."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.core.db import end_session, has_writes
from app.services.results import ResultCaches
from app.services.runs import Publish


async def get_session(request: Request) -> AsyncGenerator[Session, None]:
    """The request's session, committed if it wrote, rolled back on an error.

    Async, so it costs no thread hop of its own: making a session does no I/O, and neither a
    read's release nor a rollback waits on anything. A commit may wait for SQLite's write lock,
    so it runs in the thread pool. The rollback is not awaited, so a request cancelled by its
    client still gives its connection back. scope="function" below: the commit happens before
    the response is sent, so a client never sees a success for a write that did not land.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        end_session(session, commit=False)
        raise
    if has_writes(session):
        await run_in_threadpool(end_session, session, commit=True)
    else:
        session.close()


# The dependencies below are async only to run on the event loop: a sync one would cost a
# thread hop, a few milliseconds under load, for a lookup.
async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_result_caches(request: Request) -> ResultCaches:
    caches: ResultCaches = request.app.state.result_caches
    return caches


async def get_publish(request: Request) -> Publish | None:
    """How a queued run wakes a worker up: the runner's, or none (no runner here)."""
    runner = request.app.state.runner
    return None if runner is None else runner.submit


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CachesDep = Annotated[ResultCaches, Depends(get_result_caches)]
PublishDep = Annotated[Publish | None, Depends(get_publish)]
