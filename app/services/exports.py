"""A run's model to take away, from a verified checkpoint: ONNX (cached beside the checkpoint
when the store can take it) or its weights as JSON. The exporter is imported on the first
export, not at start-up."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from app.ml.checkpoints import export_relpath, write_checkpoint_bytes
from app.schemas.results import ExportPublic
from app.services.datasets import dataset_name
from app.services.results import ResultCaches, load_model
from app.services.runs import find_checkpoint, find_run

log = logging.getLogger(__name__)


def export_onnx(
    session: Session, caches: ResultCaches, store: Path, run_id: int, epoch: int | None
) -> tuple[bytes, int]:
    """The ONNX file of the checkpoint at `epoch` (the latest if None), and that epoch."""
    ref = find_checkpoint(session, run_id, epoch)
    relpath = export_relpath(run_id, ref.epoch, ref.sha256)
    cached = store / relpath
    if cached.is_file():
        return cached.read_bytes(), ref.epoch
    from app.ml.export import onnx_bytes  # seconds of imports: only when someone exports

    run = find_run(session, run_id)
    metadata = {
        "run_id": str(run_id),
        "epoch": str(ref.epoch),
        "architecture": run.architecture.value,
        "hidden_layers": ",".join(map(str, run.hidden_layers)),
        "activation": run.activation.value,
        "dataset": dataset_name(session, run.dataset_id),
        "checkpoint_sha256": ref.sha256,
    }
    data = onnx_bytes(load_model(caches, store, ref), metadata)
    try:
        write_checkpoint_bytes(store, relpath, data)  # atomic: a reader never sees half a file
    except OSError as exc:
        # The cache only spares the next export its seconds: a store that is read-only or full
        # still serves this one (the write leaves no half file), built again the next time.
        log.warning(
            "ONNX export of run %d epoch %d served uncached: cannot write %s in "
            "PC_MODELS_STORE: %s",
            run_id,
            ref.epoch,
            relpath,
            exc.strerror or exc,
        )
    return data, ref.epoch


def export_json(
    session: Session, caches: ResultCaches, store: Path, run_id: int, epoch: int | None
) -> ExportPublic:
    from app.ml.export import weights

    ref = find_checkpoint(session, run_id, epoch)
    run = find_run(session, run_id)
    return ExportPublic(
        run_id=run_id,
        epoch=ref.epoch,
        architecture=run.architecture,
        hidden_layers=run.hidden_layers,
        dataset=dataset_name(session, run.dataset_id),
        **weights(load_model(caches, store, ref)),
    )
