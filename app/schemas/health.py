"""The health report."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.vocabulary import RunnerKind


class CudaPublic(BaseModel):
    available: bool
    device_count: int
    devices: list[str] = Field(description="device names, as torch reports them")


class WorkersPublic(BaseModel):
    configured: int = Field(description="worker processes this server runs (PC_WORKERS)")
    ready: int = Field(description="alive and warmed up: a queued run starts within a poll")


class WorkerPublic(BaseModel):
    id: str = Field(description="host:pid, as a running run's worker is recorded")
    runner: RunnerKind
    host: str
    pid: int
    queues: list[str] = Field(description="the Celery queues it takes runs from")
    device: str = Field(description="where it trains: cpu, or its GPU")
    run_id: int | None = Field(description="the run it trains now")
    started_at: datetime
    heartbeat_at: datetime


class WorkersList(BaseModel):
    data: list[WorkerPublic]
    count: int


class HealthPublic(BaseModel):
    status: str = Field(
        description="'ok', or 'degraded' when the database is unreachable or takes no writes, "
        "or the broker (PC_RUNNER=celery) is unreachable"
    )
    database: str = Field(description="'ok' or the reason it is unreachable")
    database_writes: str = Field(
        description="'ok', or why writes wait (another connection holds the write lock)"
    )
    database_revision: str | None
    cuda: CudaPublic
    queue: dict[str, int] = Field(default_factory=dict, description="runs per status")
    runner: RunnerKind = Field(description="what trains queued runs (PC_RUNNER)")
    broker: str | None = Field(
        default=None,
        description="PC_RUNNER=celery: 'ok', 'unknown' before the first try, or why the broker "
        "(PC_BROKER_URL) is unreachable; null for the embedded runner",
    )
    workers: WorkersPublic | None = Field(
        default=None, description="this server's embedded workers; null when it runs none"
    )
    live_workers: list[WorkerPublic] = Field(
        default_factory=list,
        description="worker processes of either runner that beat within PC_HEARTBEAT_TIMEOUT_S",
    )
