"""A dataset of labelled 2D points, stored whole in its row so every process reads the same."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, NameColumn, UTCDateTime, utcnow
from app.vocabulary import DatasetSource, sql_values


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint(f"source IN {sql_values(DatasetSource)}", name="source"),
        CheckConstraint("n_points > 0", name="n_points_positive"),
        # Ids are never reused, so a deleted dataset's id cannot come back as another.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[DatasetSource] = mapped_column(NameColumn(DatasetSource))
    n_points: Mapped[int] = mapped_column(Integer)
    count_0: Mapped[int] = mapped_column(Integer)
    count_1: Mapped[int] = mapped_column(Integer)
    x_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    # sha256 of the bytes uploaded (or of the CSV written, for built-in and generated data).
    sha256: Mapped[str] = mapped_column(String(64))
    # float64 little-endian, n_points rows of (x, y, label): exactly what was parsed.
    points: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # Generator parameters (kind, n, noise, seed) for generated and built-in data.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
