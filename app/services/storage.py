"""Keeping the models store and the database in step: sweep what a crash left behind."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.processes import pid_alive
from app.ml.checkpoints import TMP_SUFFIX, checkpoint_relpath
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


EXPORT_FILE = re.compile(r"^epoch-(\d+)-[0-9a-f]{12}\.onnx$")
TMP_PID = re.compile(r"\.(\d+)" + re.escape(TMP_SUFFIX) + "$")


def sweep_models_store(session: Session, store: Path) -> list[str]:
    """Remove temporary files of writers that are gone, folders of runs that no longer exist,
    and checkpoint files the database does not know of (written just before a crash), except
    for runs that are training now, whose newest file may be a moment ahead of its row."""
    removed: list[str] = []
    if not store.is_dir():
        return removed
    runs = {row.id: row.status for row in session.execute(select(Run.id, Run.status))}
    known = set(session.scalars(select(Checkpoint.path)).all())
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
            tmp = TMP_PID.search(path.name)
            if tmp is not None:
                if not pid_alive(int(tmp.group(1))):
                    path.unlink(missing_ok=True)
                    removed.append(relpath)
            elif (export := EXPORT_FILE.match(path.name)) is not None:
                # A cached export stays while its checkpoint does.
                if checkpoint_relpath(run_id, int(export.group(1))) not in known:
                    path.unlink(missing_ok=True)
                    removed.append(relpath)
            elif relpath not in known and runs[run_id] != RunStatus.RUNNING:
                path.unlink(missing_ok=True)
                removed.append(relpath)
    if removed:
        log.warning("swept %d stray file(s) from the models store: %s", len(removed), removed[:20])
    return removed
