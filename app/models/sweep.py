"""A sweep: a grid over run parameters, expanded into ordinary runs that point back at it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    base: Mapped[dict[str, Any]] = mapped_column(JSON)  # the parameters every run shares
    grid: Mapped[dict[str, list[Any]]] = mapped_column(JSON)  # parameter -> the values tried
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
