"""The machine's PostgreSQL and Redis, for the tests that need them: a fresh database or Redis
database each, and a skip naming what is missing, except under CI, where they must be there."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def need(service: str, host: str, port: int) -> None:
    """Skip (fail under CI) when nothing listens where the service should be."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{service} is not reachable at {host}:{port} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run these tests")
        pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its URL."""
    need("PostgreSQL", "127.0.0.1", 5432)
    name = f"pc_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_redis_database(number: int) -> Iterator[str]:
    """Redis database `number`, emptied before and after; yields its URL."""
    need("Redis", REDIS_HOST, REDIS_PORT)
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()
        client.close()


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database of the kind asked for ("sqlite" or "postgresql"); yields its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'pc.sqlite3'}"
        return
    with fresh_postgres_database() as url:
        yield url
