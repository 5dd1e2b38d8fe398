"""The service's one settings object, read from `PC_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.vocabulary import (
    DEFAULT_MAX_POINTS,
    REPORT_INTERVAL_S,
    SQLITE_BUSY_TIMEOUT_MS,
    Queue,
    RunnerKind,
)

# The repository root: built-in data and the default storage live beside the code, so the
# service starts the same whatever the current directory is.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The PC_ALLOWED_HOSTS entry that accepts any Host.
ANY_HOST = "*"
# PC_MAX_UPLOAD_BYTES unless set: 8 MiB.
DEFAULT_MAX_UPLOAD_BYTES = 8 * 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PC_", extra="ignore")

    # SQLAlchemy URL; the default SQLite file lives in data/ beside the built-in CSVs.
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'data' / 'pc.sqlite3'}"
    # Folder of checkpoint files, one sub-folder per run, named by the server only.
    models_store: Path = PROJECT_ROOT / "models_store"
    # Folder holding the built-in datasets' CSV files.
    builtin_data_dir: Path = PROJECT_ROOT / "data"
    # Largest request body accepted, counted as it streams in.
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, gt=0)
    # Most seconds a request's body may take to arrive, from the request's start: a client
    # that sends it a byte at a time would otherwise hold its connection (and a file
    # descriptor) for as long as it likes. It bounds the upload, not the work done after it.
    request_timeout_s: float = Field(default=60.0, gt=0)
    # Most points one dataset may hold.
    max_points: int = Field(default=DEFAULT_MAX_POINTS, gt=0)
    # Worker processes training at once; 0 means one per core.
    workers: int = Field(default=0, ge=0)
    # Start the embedded job runner with the app (tests of the API alone turn it off).
    runner_enabled: bool = True
    # A running run whose heartbeat is older than this is taken as orphaned.
    heartbeat_timeout_s: float = Field(default=15.0, gt=0)
    # How often a worker looks for queued runs when idle.
    poll_interval_s: float = Field(default=0.2, gt=0)
    # How often a training worker writes progress and checks for a cancel request.
    progress_interval_s: float = Field(default=REPORT_INTERVAL_S, gt=0)
    # How long a worker keeps retrying a write that the database refuses (a held lock) before
    # it gives the run up: a stalled database is not a dead worker.
    write_patience_s: float = Field(default=600.0, gt=0)
    # Most bytes of checkpoint files the models store may hold. A run whose checkpoints alone
    # would pass it is refused; a run that meets it thins its own older checkpoints (keeping
    # the first, the last and a spread between), and fails, naming this limit, if that is not
    # enough.
    max_store_bytes: int = Field(default=10 * 1024**3, gt=0)
    # What trains the queued runs: "embedded" (worker processes this server starts) or "celery"
    # (`python -m app worker` processes on any machine, woken through PC_BROKER_URL; the API
    # then starts none). Every API process and worker must share PC_DATABASE_URL and
    # PC_MODELS_STORE.
    runner: RunnerKind = RunnerKind.EMBEDDED
    # The Celery broker (PC_RUNNER=celery): Redis. It only wakes workers up; the database is
    # the truth, so a broker that restarts empty loses nothing.
    broker_url: str = "redis://127.0.0.1:6379/0"
    # The queue of runs whose device is "auto": "cpu" or "cuda". Runs that name a device go to
    # its queue; a worker started with `--queues cuda` takes GPU runs only.
    default_queue: Queue = Queue.CPU
    # How often the reconciler (in each API process, PC_RUNNER=celery) re-queues runs whose
    # heartbeat stopped and re-publishes runs whose wake-up message may have been lost.
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    # A run still queued this long after its message was published is published again (a
    # duplicate is harmless: only one delivery can claim the run).
    republish_after_s: float = Field(default=60.0, gt=0)
    # Set by `python -m app worker` for its processes: torch threads each (0: one), and the
    # queues they take runs from, comma-separated.
    worker_threads: int = Field(default=0, ge=0)
    worker_queues: str = ""
    # Most runs one sweep's grid may make (POST /sweeps).
    max_sweep_runs: int = Field(default=64, ge=1)
    # Most runs of a sweep one worker trains together as one stacked model (those sharing the
    # dataset, network, batch size, epochs, optimizer and loss); 1 trains each alone.
    max_group_runs: int = Field(default=16, ge=1)
    # How many times an orphaned run is re-queued before it is marked failed.
    max_restarts: int = Field(default=3, ge=0)
    # When set, every request that changes something needs `Authorization: Bearer <key>`.
    api_key: SecretStr | None = None
    # With an API key set: whether reads (GET) need it too.
    protect_reads: bool = False
    # Whether GET /metrics stays open when reads need the key (a scraper on a private network).
    metrics_open: bool = False
    # How long an SQLite writer waits for the lock before the request is answered 503.
    sqlite_busy_timeout_ms: int = Field(default=SQLITE_BUSY_TIMEOUT_MS, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Host names or addresses the service is also served as, beside localhost, 127.0.0.1, [::1]
    # and PC_HOST when it names one address: for serving under a name or on a LAN
    # ("pc.example.org,192.168.1.20"). Comma-separated, without ports (any port is accepted);
    # "*" accepts any Host and so gives up the defence against DNS rebinding. A request for
    # another Host is refused with 400 (app/api/origin_guard.py).
    allowed_hosts: Annotated[list[str], NoDecode] = []

    @field_validator("database_url")
    @classmethod
    def _database_url_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("PC_DATABASE_URL must not be empty")
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None  # PC_API_KEY= (empty) means no key, not an empty key
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            return [_host_name(str(entry)) for entry in value if str(entry).strip()]
        return value

    @property
    def worker_count(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def heartbeat_interval_s(self) -> float:
        """How often a training worker's heartbeat thread writes: several beats fit in the
        timeout, and a cancel is seen within about a second."""
        return min(1.0, self.heartbeat_timeout_s / 5)


def _host_name(entry: str) -> str:
    """A PC_ALLOWED_HOSTS entry as a Host header's name compares to it: lower case, an IPv6
    address without its brackets."""
    name = entry.strip().lower()
    bare = name.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if name != ANY_HOST and any(sign in name for sign in ":/@[]*"):
        raise ValueError(
            f"PC_ALLOWED_HOSTS takes host names or addresses without a scheme or port (any "
            f"port is accepted), comma-separated, or {ANY_HOST!r}: got {entry.strip()!r}"
        )
    return name


@lru_cache
def get_settings() -> Settings:
    return Settings()
