"""The health report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CudaPublic(BaseModel):
    available: bool
    device_count: int
    devices: list[str] = Field(description="device names, as torch reports them")


class WorkersPublic(BaseModel):
    configured: int = Field(description="worker processes this server runs (PC_WORKERS)")
    ready: int = Field(description="alive and warmed up: a queued run starts within a poll")


class HealthPublic(BaseModel):
    status: str = Field(
        description="'ok', or 'degraded' when the database is unreachable or takes no writes"
    )
    database: str = Field(description="'ok' or the reason it is unreachable")
    database_writes: str = Field(
        description="'ok', or why writes wait (another connection holds the write lock)"
    )
    database_revision: str | None
    cuda: CudaPublic
    queue: dict[str, int] = Field(default_factory=dict, description="runs per status")
    workers: WorkersPublic | None = Field(
        default=None, description="this server's embedded workers; null when it runs none"
    )
