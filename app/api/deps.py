"""Request dependencies as `Annotated` aliases. The session dependency owns commit/rollback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import session_scope
from app.services.results import ResultCaches


def get_session(request: Request) -> Iterator[Session]:
    # scope="function" below: the commit happens before the response is sent, so a client
    # never sees a success for a write that did not land.
    with session_scope(request.app.state.session_factory) as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_result_caches(request: Request) -> ResultCaches:
    caches: ResultCaches = request.app.state.result_caches
    return caches


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
CachesDep = Annotated[ResultCaches, Depends(get_result_caches)]
