"""`python -m app [serve | worker | migrate]`.

- `serve` (the default): the API with uvicorn on PC_HOST:PC_PORT (default 127.0.0.1:8000).
- `worker`: a Celery worker that trains runs (PC_RUNNER=celery deployments), on this or any
  machine sharing PC_DATABASE_URL, PC_MODELS_STORE and PC_BROKER_URL.
- `migrate`: bring the database to the newest schema and register the built-in datasets, then
  exit (every API process does this at start too; a deployment may run it once, first).
"""

from __future__ import annotations

import argparse
import copy
import os
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from app.core.config import get_settings
from app.vocabulary import Queue


def log_config() -> dict[str, Any]:
    """uvicorn's own log format, also for the service's loggers (`app.*`) from INFO up: what
    the runner says at start and stop (runs recovered, runs handed back) reaches the terminal."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["app"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(_args: argparse.Namespace) -> None:
    settings = get_settings()
    uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_config=log_config())


def worker(args: argparse.Namespace) -> None:
    # Settings reach the worker's processes through the environment, as every PC_* does.
    os.environ["PC_WORKER_QUEUES"] = args.queues
    # One torch thread a run unless asked: these networks gain nothing from more, and workers
    # that share cores with threads of their own slow each other down many times over.
    threads = args.threads or 1
    os.environ["PC_WORKER_THREADS"] = str(threads)
    get_settings.cache_clear()
    from app.jobs.celery_app import app  # imported only here: serving needs no Celery

    app.worker_main(
        [
            "worker",
            f"--concurrency={args.concurrency}",
            f"--queues={args.queues}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def migrate(_args: argparse.Namespace) -> None:
    from sqlalchemy.exc import OperationalError

    from app.core.db import make_engine, make_session_factory
    from app.main import prepare_database
    from app.services.store_identity import StoreUnusable

    settings = get_settings()
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
    try:
        prepare_database(settings, engine, make_session_factory(engine))
    except OperationalError as exc:
        raise SystemExit(
            f"error: cannot migrate the database at PC_DATABASE_URL={engine.url!r}: {exc.orig}"
        ) from None
    except StoreUnusable as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        engine.dispose()
    print(f"database at head: {engine.url.render_as_string(hide_password=True)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the API (the default)").set_defaults(handler=serve)
    work = commands.add_parser("worker", help="a Celery worker that trains runs")
    work.add_argument("--concurrency", type=int, default=1, help="runs trained at once")
    work.add_argument("--threads", type=int, default=0, help="torch threads per run (default 1)")
    work.add_argument(
        "--queues",
        default=get_settings().default_queue.value,
        help=f"comma-separated, of {', '.join(Queue)}; default: PC_DEFAULT_QUEUE",
    )
    work.set_defaults(handler=worker)
    commands.add_parser("migrate", help="migrate the database, then exit").set_defaults(
        handler=migrate
    )
    parser.set_defaults(handler=serve)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "concurrency", 1) < 1:
        raise SystemExit("error: --concurrency must be at least 1")
    for queue in getattr(args, "queues", "").split(","):
        if queue and queue not in tuple(Queue):
            raise SystemExit(f"error: --queues: {queue!r} is not one of {', '.join(Queue)}")
    args.handler(args)


if __name__ == "__main__":
    main()
