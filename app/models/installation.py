"""What this deployment's processes must agree on, in one row: the models store they share."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Installation(Base):
    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    # Also written into the store's marker file: a process whose store has another (or none)
    # is not looking at the files this database names.
    store_id: Mapped[str] = mapped_column(String(64))
