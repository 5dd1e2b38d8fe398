"""ORM models. Rows never leave the services layer: services return schemas or plain values."""

from app.models.base import Base
from app.models.dataset import Dataset

__all__ = ["Base", "Dataset"]
