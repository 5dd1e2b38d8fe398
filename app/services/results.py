"""What a run learned: history, pictures and predictions, found through the database by run id
and epoch, with bounded caches so repeated requests do not reload or redraw."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.errors import Conflict, InvalidInput
from app.ml.checkpoints import CheckpointError, CheckpointRef, load_checkpoint
from app.ml.datagen import Points
from app.ml.engine import split_indices
from app.ml.inference import TrainedModel, model_from_checkpoint, predict_probabilities
from app.models import Checkpoint, Dataset, Run, RunHistory
from app.services.datasets import points_from_blob
from app.services.plots import (
    PictureSize,
    RunNumbers,
    png_frames_to_gif,
    render_loss_png,
    render_model_boundary_png,
    render_model_tutorial_png,
)
from app.services.runs import find_checkpoint, find_run

V = TypeVar("V")

# Most frames in a boundary animation; runs with more checkpoints are sampled evenly.
MAX_GIF_FRAMES = 40


# Pictures drawn at once: each holds a matplotlib figure and the GIL for most of its time, so
# more would only raise memory and the latency of every other request.
RENDER_SLOTS = threading.BoundedSemaphore(2)


def _bounded(render: Callable[[], bytes]) -> Callable[[], bytes]:
    def run() -> bytes:
        with RENDER_SLOTS:
            return render()

    return run


class LRUCache(Generic[V]):
    """A thread-safe LRU bounded by entry count and by total size."""

    def __init__(
        self, max_entries: int, max_size: int = 0, size_of: Callable[[V], int] = lambda _: 0
    ) -> None:
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._size = 0
        self.max_entries, self.max_size, self.size_of = max_entries, max_size, size_of
        self.hits = self.misses = 0

    def get_or_create(self, key: Hashable, create: Callable[[], V]) -> V:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            self.misses += 1
        value = create()  # outside the lock: two misses may both build; the first is kept
        with self._lock:
            if key not in self._entries:
                self._entries[key] = value
                self._size += self.size_of(value)
                while len(self._entries) > self.max_entries or (
                    self.max_size and self._size > self.max_size and len(self._entries) > 1
                ):
                    _, evicted = self._entries.popitem(last=False)
                    self._size -= self.size_of(evicted)
            return self._entries[key]


@dataclass
class ResultCaches:
    models: LRUCache[TrainedModel]
    pictures: LRUCache[bytes]

    @classmethod
    def create(
        cls, max_models: int = 64, max_picture_bytes: int = 64 * 1024 * 1024
    ) -> ResultCaches:
        return cls(LRUCache(max_models), LRUCache(10_000, max_picture_bytes, len))


@dataclass(frozen=True)
class History:
    epoch: list[int]
    loss: list[float]
    val_loss: list[float | None] | None


def read_history(session: Session, run_id: int, every: int = 1) -> History:
    """One entry per epoch done; with `every`, epoch 0, every N-th epoch and the last."""
    run = find_run(session, run_id)
    query = select(RunHistory.epoch, RunHistory.loss, RunHistory.val_loss).where(
        RunHistory.run_id == run_id
    )
    if every > 1:
        last = (
            select(func.max(RunHistory.epoch)).where(RunHistory.run_id == run_id).scalar_subquery()
        )
        query = query.where((RunHistory.epoch % every == 0) | (RunHistory.epoch == last))
    rows = session.execute(query.order_by(RunHistory.epoch)).all()
    validating = run.validation_split > 0
    return History(
        epoch=[row[0] for row in rows],
        loss=[row[1] for row in rows],
        val_loss=[row[2] for row in rows] if validating else None,
    )


def history_csv(history: History) -> str:
    header = "epoch,loss" + (",val_loss" if history.val_loss is not None else "")
    lines = [header]
    for index, epoch in enumerate(history.epoch):
        line = f"{epoch},{history.loss[index]!r}"
        if history.val_loss is not None:
            value = history.val_loss[index]
            line += "," + ("" if value is None else repr(value))
        lines.append(line)
    return "\n".join(lines) + "\n"


def load_model(caches: ResultCaches, store: Path, ref: CheckpointRef) -> TrainedModel:
    def load() -> TrainedModel:
        try:
            return model_from_checkpoint(load_checkpoint(store, ref.path, ref.sha256))
        except CheckpointError as exc:
            raise Conflict(str(exc)) from None

    return caches.models.get_or_create((ref.run_id, ref.epoch, ref.sha256), load)


@dataclass(frozen=True)
class Prediction:
    epoch: int
    probabilities: list[float]
    labels: list[int]


def predict(
    session: Session,
    caches: ResultCaches,
    store: Path,
    run_id: int,
    xy: NDArray[np.float64],
    epoch: int | None,
) -> Prediction:
    ref = find_checkpoint(session, run_id, epoch)
    model = load_model(caches, store, ref)
    probabilities = predict_probabilities(model.module, xy)
    bad = np.flatnonzero(~np.isfinite(probabilities))
    if len(bad):
        x, y = xy[bad[0]]
        raise InvalidInput(
            f"points[{bad[0]}] = [{x:g}, {y:g}]: the network's output there is not a number "
            "(its float32 arithmetic overflows this far out); use coordinates nearer the data"
        )
    return Prediction(ref.epoch, probabilities.tolist(), (probabilities > 0.5).astype(int).tolist())


def _run_points(session: Session, run: Run) -> tuple[str, Points]:
    row = session.execute(
        select(Dataset.name, Dataset.points).where(Dataset.id == run.dataset_id)
    ).one()
    return row[0], points_from_blob(row[1])


# (epoch, loss, val_loss) of one history row.
LossRow = tuple[int, float, float | None]


def _loss_row(session: Session, run_id: int, epoch: int) -> LossRow | None:
    """The run's own loss for the checkpoint at `epoch`: its history at that epoch (the log's
    `Epoch n` line is exactly that model's loss), or the latest before it: the final
    checkpoint's is the run's final loss, the log's last line."""
    row = session.execute(
        select(RunHistory.epoch, RunHistory.loss, RunHistory.val_loss)
        .where(RunHistory.run_id == run_id, RunHistory.epoch <= epoch)
        .order_by(RunHistory.epoch.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


def _run_numbers(run: Run, row: LossRow | None, n_points: int) -> RunNumbers | None:
    if row is None:
        return None  # the untrained checkpoint, before the first report
    _, held_out = split_indices(n_points, run.validation_split, run.seed)
    validation = np.zeros(n_points, dtype=bool)
    validation[held_out.numpy()] = True
    epoch, loss, val_loss = row
    return RunNumbers(loss, epoch, val_loss, validation)


def _describe(run: Run) -> str:
    if run.architecture == "mlp":
        return f"mlp {'-'.join(map(str, [2, *run.hidden_layers, 1]))} {run.activation}"
    return run.architecture


def boundary_png(
    session: Session,
    caches: ResultCaches,
    store: Path,
    run_id: int,
    *,
    epoch: int | None,
    style: str,
    size: PictureSize,
) -> bytes:
    run = find_run(session, run_id)
    ref = find_checkpoint(session, run_id, epoch)
    row = _loss_row(session, run_id, ref.epoch) if style == "field" else None
    # The row's epoch is in the key: a checkpoint's own row is written just after it.
    key = ("boundary", ref.run_id, ref.epoch, ref.sha256, style, size, row)

    def render() -> bytes:
        model = load_model(caches, store, ref)
        dataset, points = _run_points(session, run)
        name = f"{_describe(run)} on {dataset}"
        if style == "tutorial":
            return render_model_tutorial_png(model, name, size)
        numbers = _run_numbers(run, row, len(points))
        return render_model_boundary_png(model, points, name, size, numbers)

    return caches.pictures.get_or_create(key, _bounded(render))


def boundary_gif(
    session: Session, caches: ResultCaches, store: Path, run_id: int, size: PictureSize
) -> bytes:
    """How the boundary evolved across the run's checkpoints."""
    run = find_run(session, run_id)
    checkpoints = session.execute(
        select(Checkpoint.epoch, Checkpoint.path, Checkpoint.sha256)
        .where(Checkpoint.run_id == run_id)
        .order_by(Checkpoint.epoch)
    ).all()
    if not checkpoints:
        raise Conflict(f"run {run_id} has no checkpoint yet; try again once it has trained")
    if len(checkpoints) > MAX_GIF_FRAMES:
        picks = np.linspace(0, len(checkpoints) - 1, MAX_GIF_FRAMES).round().astype(int)
        checkpoints = [checkpoints[i] for i in sorted(set(picks.tolist()))]
    refs = [CheckpointRef(run_id, epoch, path, sha) for epoch, path, sha in checkpoints]
    rows = [_loss_row(session, run_id, ref.epoch) for ref in refs]
    key = ("gif", run_id, tuple((r.epoch, r.sha256) for r in refs), size, tuple(rows))

    def render() -> bytes:
        dataset, points = _run_points(session, run)
        frames = []
        for ref, row in zip(refs, rows, strict=True):
            frame_key = ("boundary", ref.run_id, ref.epoch, ref.sha256, "frame", size, row)
            model = load_model(caches, store, ref)
            name = f"{_describe(run)} on {dataset}"
            numbers = _run_numbers(run, row, len(points))
            draw = functools.partial(render_model_boundary_png, model, points, name, size, numbers)
            frames.append(caches.pictures.get_or_create(frame_key, _bounded(draw)))
        return png_frames_to_gif(frames)

    return caches.pictures.get_or_create(key, render)


def loss_png(
    session: Session, caches: ResultCaches, run_id: int, *, log_scale: bool, size: PictureSize
) -> bytes:
    run = find_run(session, run_id)
    history = read_history(session, run_id)
    if not history.epoch:
        raise Conflict(f"run {run_id} has no recorded loss yet; try again once it has trained")
    key = ("loss", run_id, len(history.epoch), history.loss[-1], run.status, log_scale, size)

    def render() -> bytes:
        dataset = session.scalar(select(Dataset.name).where(Dataset.id == run.dataset_id))
        final = run.final_loss if run.final_loss is not None else history.loss[-1]
        title = f"{_describe(run)} on {dataset}: final loss {final:.6g} ({run.status})"
        val = None
        if history.val_loss is not None:
            val = np.array([np.nan if v is None else v for v in history.val_loss])
        return render_loss_png(
            np.array(history.epoch),
            np.array(history.loss),
            val,
            title,
            log_scale=log_scale,
            size=size,
        )

    return caches.pictures.get_or_create(key, _bounded(render))
