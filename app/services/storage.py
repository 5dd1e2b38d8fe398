"""Keeping the models store and the database in step: sweep what a crash left behind."""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.processes import pid_alive
from app.ml.checkpoints import TMP_SUFFIX, TMP_WRITER, host_tag
from app.models import Checkpoint, Run, RunStatus

log = logging.getLogger(__name__)

RUN_FOLDER = re.compile(r"^run-(\d+)$")


def remove_run_folder(folder: Path) -> None:
    """Delete a deleted run's files. What cannot be deleted (a store that has turned read-only)
    is logged and left to the next start's sweep: the run's rows are gone already."""
    if not folder.exists():
        return
    left: list[str] = []
    shutil.rmtree(folder, onerror=lambda _function, path, _info: left.append(path))
    if left:
        log.warning("could not remove %d file(s) of a deleted run: %s", len(left), left[:5])


EXPORT_FILE = re.compile(r"^epoch-(\d+)-([0-9a-f]{12})\.onnx$")
# A temporary file no write takes this long to finish is abandoned, whoever wrote it.
ABANDONED_TMP_S = 3600.0


def _abandoned_tmp(path: Path, name: str) -> bool:
    """Whether a temporary file's writer is provably gone: a process of this host that no
    longer exists, or (another host's, or one that named no host) an hour without a change."""
    writer = TMP_WRITER.search(name)
    if writer is not None and writer.group(1) == host_tag():
        return not pid_alive(int(writer.group(2)))
    try:
        return time.time() - path.stat().st_mtime > ABANDONED_TMP_S
    except FileNotFoundError:
        return False  # renamed into place meanwhile


def sweep_models_store(session: Session, store: Path) -> list[str]:
    """Remove temporary files of writers that are gone, folders of runs that no longer exist,
    and checkpoint files the database does not know of (written just before a crash), except
    for runs that are training now, whose newest file may be a moment ahead of its row."""
    removed: list[str] = []
    if not store.is_dir():
        return removed
    runs = {row.id: row.status for row in session.execute(select(Run.id, Run.status))}
    checkpoints = session.execute(
        select(Checkpoint.path, Checkpoint.run_id, Checkpoint.epoch, Checkpoint.sha256)
    ).all()
    known = {row.path for row in checkpoints}
    exported = {(row.run_id, row.epoch, row.sha256[:12]) for row in checkpoints}
    for folder in sorted(store.iterdir()):
        match = RUN_FOLDER.match(folder.name)
        if not folder.is_dir() or match is None:
            continue
        run_id = int(match.group(1))
        if run_id not in runs:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name + "/")
            continue
        for path in sorted(folder.iterdir()):
            relpath = f"{folder.name}/{path.name}"
            if path.name.endswith(TMP_SUFFIX):
                if _abandoned_tmp(path, path.name):
                    path.unlink(missing_ok=True)
                    removed.append(relpath)
            elif (export := EXPORT_FILE.match(path.name)) is not None:
                # A cached export stays while its checkpoint does.
                if (run_id, int(export.group(1)), export.group(2)) not in exported:
                    path.unlink(missing_ok=True)
                    removed.append(relpath)
            elif relpath not in known and runs[run_id] != RunStatus.RUNNING:
                path.unlink(missing_ok=True)
                removed.append(relpath)
    if removed:
        log.warning("swept %d stray file(s) from the models store: %s", len(removed), removed[:20])
    return removed
