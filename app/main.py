"""The ASGI app: `app.main:app`. Start-up migrates the database and registers built-in data."""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.api.auth import require_api_key
from app.api.body_limit import BodySizeLimitMiddleware
from app.api.errors import install_error_handlers
from app.api.json_body import require_json_body
from app.api.metrics import install_metrics
from app.api.openapi import install_openapi
from app.api.origin_guard import OriginGuardMiddleware
from app.api.predict_body import LargeBodyValidator
from app.api.responses import errors
from app.api.routes import (
    architectures,
    auth,
    datasets,
    exports,
    health,
    metrics,
    pages,
    predict,
    results,
    runs,
    sweeps,
)
from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.core.errors import DatabaseUnusable
from app.core.migrate import ensure_sqlite_folder, migration_lock, upgrade_to_head
from app.jobs.runner import EmbeddedRunner, Runner
from app.services.datasets import register_builtin_datasets
from app.services.results import ResultCaches
from app.services.storage import sweep_models_store
from app.services.store_identity import StoreUnusable, claim_store
from app.vocabulary import RunnerKind

DESCRIPTION = """
Train small PyTorch classifiers on labelled 2D points, in the background, and see what they
learned. Upload a dataset (or use the built-in `linear`, `curve` and `random`), start a run
with `POST /runs`, follow it, then look at its decision boundary and ask it for predictions.

**The tutorial in four steps** (each operation's example runs as it is):

1. `POST /runs`: *Try it out*, *Execute*. The tutorial's 2-128-128-1 network trains on `curve`
   for 20,001 epochs in the background; the answer carries its `id`.
2. `GET /runs/{run_id}`: its status and epoch; `GET /runs/{run_id}/log` prints the tutorial's
   `Epoch n, Loss: x` lines.
3. `GET /runs/{run_id}/boundary.png`: the decision boundary it learned.
4. `POST /predict`: probabilities for your own points.

The dashboard at [`/`](/) shows the same in a browser: runs live, a form, boundaries to scrub.
"""

# Swagger UI's page: named once, for the route and for the policy that hashes its script.
DOCS_URL = "/docs"


@functools.cache
def freeze_startup_objects() -> None:
    """What start-up made (torch, the app, its routes) lives as long as the process: moved out
    of the garbage collector's sight, a full collection set off by a large request's objects
    scans those alone, not 300,000 more, and stops every thread for milliseconds, not 0.3 s.
    Once a process: an app made again (in tests) is not frozen with its predecessors."""
    gc.freeze()


def prepare_database(
    settings: Settings, engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """Migrate to the newest schema, register the built-in datasets and claim the models store
    (StoreUnusable if it is another's), one process at a time (at every start, and as
    `python -m app migrate`)."""
    ensure_sqlite_folder(settings.database_url)
    with migration_lock(engine):
        upgrade_to_head(engine)
        with session_scope(session_factory) as session:
            register_builtin_datasets(session, settings.builtin_data_dir, settings.max_points)
            # Last: it writes the store's marker, which nothing after it may roll back.
            claim_store(session, settings.models_store)


def make_runner(settings: Settings, session_factory: sessionmaker[Session]) -> Runner:
    if settings.runner == RunnerKind.CELERY:
        from app.jobs.celery_runner import CeleryRunner  # Celery only where it is asked for

        return CeleryRunner(settings, session_factory)
    return EmbeddedRunner(settings, session_factory)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The web process only predicts on small batches; training has the cores.
        torch.set_num_threads(1)
        engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
        session_factory = make_session_factory(engine)
        try:
            prepare_database(settings, engine, session_factory)
        except (OperationalError, OSError) as exc:
            engine.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise DatabaseUnusable(
                f"cannot use the database at PC_DATABASE_URL={engine.url!r}: {reason}. The "
                "service needs to write there: check the URL, and that the file and its folder "
                "are writable"
            ) from None
        except StoreUnusable:
            engine.dispose()
            raise  # its message names PC_MODELS_STORE and what to fix
        settings.models_store.mkdir(parents=True, exist_ok=True)
        app.state.engine = engine
        app.state.session_factory = session_factory
        runner = make_runner(settings, session_factory) if settings.runner_enabled else None
        if runner is not None:
            runner.recover()  # orphaned runs go back to the queue before the sweep below
        with session_scope(session_factory) as session:
            sweep_models_store(session, settings.models_store)
        if runner is not None:
            runner.start()
        app.state.runner = runner
        freeze_startup_objects()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            app.state.predict_validator.stop()
            engine.dispose()

    # Swagger UI from files the service serves itself (fastapi-offline ships them), not from a
    # CDN: machines that train models often have no internet. No ReDoc: its page still asks a
    # CDN for its logo.
    app = FastAPIOffline(
        docs_url=DOCS_URL,
        redoc_url=None,
        title="Point Classifier Service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"displayRequestDuration": True},
    )
    app.state.settings = settings
    app.state.result_caches = ResultCaches.create()
    app.state.predict_validator = LargeBodyValidator()
    install_error_handlers(app)
    install_openapi(app, settings)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_upload_bytes,
        request_timeout_s=settings.request_timeout_s,
    )
    # Outside the body limit, so a request from another Host or site is refused unread.
    app.add_middleware(
        OriginGuardMiddleware,
        settings=settings,
        inline_script_pages=(DOCS_URL, app.swagger_ui_oauth2_redirect_url),
    )
    app.include_router(health.router)
    app.include_router(auth.router, responses=errors(401))
    # The dashboard's pages and files: the pages carry no data, so they need no key.
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    app.include_router(metrics.router)
    install_metrics(app)  # last: its middleware is the outermost
    for module in (datasets, architectures, runs, results, exports, predict, sweeps):
        app.include_router(
            module.router,
            dependencies=[Depends(require_api_key), Depends(require_json_body)],
            responses=errors(400, 401, 413, 415, 503),
        )
    return app


app = create_app()
