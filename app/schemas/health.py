"""The health report."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CudaPublic(BaseModel):
    available: bool
    device_count: int
    devices: list[str] = Field(description="device names, as torch reports them")


class HealthPublic(BaseModel):
    status: str = Field(description="'ok', or 'degraded' when the database is unreachable")
    database: str = Field(description="'ok' or the reason it is unreachable")
    database_revision: str | None
    cuda: CudaPublic
    queue: dict[str, int] = Field(default_factory=dict, description="runs per status")
