"""The networks a run can train."""

from __future__ import annotations

from fastapi import APIRouter

from app.schemas.runs import ArchitecturePublic
from app.services import architectures as service

router = APIRouter(tags=["runs"])


@router.get("/architectures", summary="List the networks", response_model=list[ArchitecturePublic])
def list_architectures() -> list[ArchitecturePublic]:
    """The built-in architectures with their parameter counts."""
    return service.list_architectures()
