"""ORM models. Rows never leave the services layer: services return schemas or plain values."""

from app.models.base import Base
from app.models.dataset import Dataset
from app.models.installation import Installation
from app.models.run import Checkpoint, Run, RunHistory
from app.models.sweep import Sweep
from app.models.worker import Worker
from app.vocabulary import RunStatus

__all__ = [
    "Base",
    "Checkpoint",
    "Dataset",
    "Installation",
    "Run",
    "RunHistory",
    "RunStatus",
    "Sweep",
    "Worker",
]
