"""6. The Celery runner against the embedded one: a lone `complex` run end to end, and 8 queued
runs on two workers. Needs the machine's PostgreSQL and Redis (a fresh database, Redis
database 12); the API is a live uvicorn with PC_RUNNER=celery, the workers `python -m app
worker` processes with one torch thread each, as the embedded runner gives its two workers on
two cores."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from bench.report import Figure, at_most, median, spread
from bench.service import Service, server_seconds

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BROKER_URL = "redis://127.0.0.1:6379/12"


@contextmanager
def celery_service(service: Service) -> Iterator[Service]:
    """A Celery deployment on this machine, torn down afterwards: database, broker, API and
    two workers."""
    name = f"pc_bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    broker = redis.Redis.from_url(BROKER_URL)
    broker.flushdb()
    folder = Path(tempfile.mkdtemp(prefix="pc-bench-celery-"))
    env = {
        "PC_RUNNER": "celery",
        "PC_DATABASE_URL": POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}",
        "PC_BROKER_URL": BROKER_URL,
        "PC_MODELS_STORE": str(folder / "store"),
    }
    server = LiveServer(folder, **env)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        server.start()
        for index in range(2):
            log = (folder / f"worker-{index}.log").open("ab")
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "app", "worker", "--concurrency", "1", "--threads", "1"],
                    cwd=PROJECT_ROOT,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        under_test = Service(server, service.ctx)
        while len(under_test.http.get("/health").json()["live_workers"]) < 2:
            time.sleep(0.2)  # warmed up and registered: a user's first run pays that, untimed
        yield under_test
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
        server.stop()
        broker.flushdb()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def celery(service: Service) -> list[Figure]:
    ctx = service.ctx
    embedded = []
    for repeat in range(ctx.repeats):
        run_id = service.start_run("complex", ctx.epochs, seed=repeat)
        embedded.append(server_seconds(service.wait(run_id, {"succeeded"}, poll_s=0.01)))
    with celery_service(service) as distributed:
        lone = []
        for repeat in range(ctx.repeats):
            run_id = distributed.start_run("complex", ctx.epochs, seed=repeat)
            lone.append(server_seconds(distributed.wait(run_id, {"succeeded"}, poll_s=0.01)))
        ids = [
            distributed.start_run("complex", ctx.epochs, seed=s) for s in range(ctx.scaling_runs)
        ]
        runs = [distributed.wait(run_id, {"succeeded"}, poll_s=0.25) for run_id in ids]
    differences = [
        celery_s - embedded_s for celery_s, embedded_s in zip(lone, embedded, strict=True)
    ]
    difference = median(differences)
    first = min(run["created_at"] for run in runs)
    last = max(run["finished_at"] for run in runs)
    total = server_seconds({"created_at": first, "finished_at": last})
    ratio = total / (ctx.scaling_runs * median(lone))
    return [
        Figure(
            "celery",
            "complex: one run queued to finished, Celery minus embedded",
            difference,
            "s",
            *at_most(difference, 0.5),
            f"{spread(differences, ' s')}; Celery {median(lone):.2f} s, embedded "
            f"{median(embedded):.2f} s (medians, server's clock); PostgreSQL and Redis against "
            "SQLite",
        ),
        Figure(
            "celery",
            f"{ctx.scaling_runs} queued complex runs on two Celery workers: total / "
            f"({ctx.scaling_runs} x one run)",
            ratio,
            "x",
            *at_most(ratio, 0.6),
            f"total {total:.1f} s, one run alone {median(lone):.2f} s",
        ),
    ]
