"""What a run learned: history, pictures and predictions, found through the database by run id
and epoch, with bounded caches so repeated requests do not reload or redraw."""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import cachetools
import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, ScalarSelect, Select, UnaryExpression, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.core.errors import Conflict, InvalidInput, NotFound
from app.ml.checkpoints import CheckpointError, CheckpointRef, load_checkpoint
from app.ml.engine import split_indices
from app.ml.inference import (
    TrainedModel,
    model_from_checkpoint,
    pad_bounds,
    predict_probabilities,
    probability_grid,
)
from app.ml.plots import (
    PictureSize,
    RunNumbers,
    png_frames_to_gif,
    render_loss_png,
    render_model_boundary_png,
    render_model_tutorial_png,
)
from app.models import Run, RunHistory
from app.schemas.results import FieldPublic, HistoryPublic, PredictPublic, RunEventPublic
from app.services.datasets import dataset_bounds, dataset_name, dataset_points
from app.services.runs import (
    LossRow,
    checkpoint_refs,
    find_checkpoint,
    find_run,
    get_run,
    last_losses,
)

V = TypeVar("V")

# Most frames in a boundary animation; runs with more checkpoints are sampled evenly.
MAX_GIF_FRAMES = 40


# Pictures drawn at once: each holds a matplotlib figure and the GIL for most of its time, so
# more would only raise memory and the latency of every other request.
RENDER_SLOTS = threading.BoundedSemaphore(2)


def bounded(render: Callable[[], bytes]) -> Callable[[], bytes]:
    def run() -> bytes:
        with RENDER_SLOTS:
            return render()

    return run


class LockedCache(Generic[V]):
    """A cachetools LRU cache behind a lock (cachetools' caches are not thread-safe), filled on
    a miss by `create`, which runs outside the lock: two misses may both build, the first is
    kept."""

    def __init__(self, maxsize: int, getsizeof: Callable[[V], int] | None = None) -> None:
        self._cache: cachetools.LRUCache[Hashable, V] = cachetools.LRUCache(maxsize, getsizeof)
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            return self._cache.get(key)

    def get_or_create(self, key: Hashable, create: Callable[[], V]) -> V:
        with self._lock:
            if key in self._cache:
                self.hits += 1
                return self._cache[key]
        value = create()
        with self._lock:
            try:
                return self._cache.setdefault(key, value)
            except ValueError:  # larger than the whole cache: served, not kept
                return value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


@dataclass
class ResultCaches:
    models: LockedCache[TrainedModel]  # at most `max_models` models
    pictures: LockedCache[bytes]  # PNGs and GIFs, at most `max_picture_bytes` in all

    @classmethod
    def create(
        cls, max_models: int = 64, max_picture_bytes: int = 64 * 1024 * 1024
    ) -> ResultCaches:
        return cls(LockedCache(max_models), LockedCache(max_picture_bytes, len))


def read_history(
    session: Session, run_id: int, every: int = 1, max_points: int | None = None
) -> HistoryPublic:
    """One entry per epoch done; with `every`, epoch 0, every N-th epoch and the last. With
    `max_points`, about that many entries at most: the epochs cut into buckets (of `every`
    epochs at least) and, of each bucket, the epochs of its lowest and highest loss (and
    validation loss), so that a spike survives however thin the curve; epoch 0 and the last
    always."""
    run = find_run(session, run_id)
    validating = run.validation_split > 0
    mine = RunHistory.run_id == run_id
    last = select(func.max(RunHistory.epoch)).where(mine).scalar_subquery()
    query = select(RunHistory.epoch, RunHistory.loss, RunHistory.val_loss).where(mine)
    if max_points is not None:
        picks = 4 if validating else 2  # entries a bucket gives
        width = max(every, math.ceil(picks * run.epoch / max_points))  # one row per epoch done
        if width > 1:
            query = _bucket_extremes(mine, last, width, validating)
    elif every > 1:
        query = query.where((RunHistory.epoch % every == 0) | (RunHistory.epoch == last))
    rows = session.execute(query.order_by("epoch")).all()
    history = HistoryPublic(epoch=[row[0] for row in rows], loss=[row[1] for row in rows])
    if validating:  # set only then: the JSON has no val_loss key otherwise
        history.val_loss = [row[2] for row in rows]
    return history


def _bucket_extremes(
    mine: ColumnElement[bool],
    last: ScalarSelect[int],
    width: int,
    validating: bool,
) -> Select[int, float, float | None]:
    """The history's rows that are first, within their bucket of `width` epochs, by lowest or
    highest loss (or validation loss), with epoch 0 and the last: ranked in the database, so
    a long run's history is not read whole."""
    bucket = RunHistory.epoch // width
    orders: list[UnaryExpression[Any]] = [RunHistory.loss.asc(), RunHistory.loss.desc()]
    if validating:  # an epoch without a validation loss is never its bucket's extreme
        orders += [RunHistory.val_loss.asc().nulls_last(), RunHistory.val_loss.desc().nulls_last()]
    ranks = [
        func.row_number()
        .over(partition_by=bucket, order_by=(order, RunHistory.epoch))
        .label(f"rank_{index}")
        for index, order in enumerate(orders)
    ]
    ranked = (
        select(RunHistory.epoch, RunHistory.loss, RunHistory.val_loss, *ranks)
        .where(mine)
        .subquery()
    )
    kept = or_(
        ranked.c.epoch == 0,
        ranked.c.epoch == last,
        *(ranked.c[rank.name] == 1 for rank in ranks),
    )
    return select(ranked.c.epoch, ranked.c.loss, ranked.c.val_loss).where(kept)


def history_csv(history: HistoryPublic) -> str:
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


def predict(
    session: Session,
    caches: ResultCaches,
    store: Path,
    run_id: int,
    xy: NDArray[np.float64],
    epoch: int | None,
) -> PredictPublic:
    """The service refuses points whose output is not a number: JSON has no NaN."""
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
    return PredictPublic(
        run_id=run_id,
        epoch=ref.epoch,
        probabilities=probabilities.tolist(),
        labels=(probabilities > 0.5).astype(int).tolist(),
    )


def probability_field(
    session: Session,
    caches: ResultCaches,
    store: Path,
    run_id: int,
    *,
    epoch: int | None,
    resolution: int,
) -> FieldPublic:
    """The probability field the boundary picture shades, as numbers: no matplotlib, so a
    browser can scrub through checkpoints (one forward pass of resolution² points)."""
    ref = find_checkpoint(session, run_id, epoch)
    run = find_run(session, run_id)
    x_min, x_max, y_min, y_max = pad_bounds(dataset_bounds(session, run.dataset_id))
    model = load_model(caches, store, ref)
    grid = probability_grid(model.module, (x_min, x_max, y_min, y_max), resolution)
    return FieldPublic(
        run_id=run_id,
        epoch=ref.epoch,
        x_min=x_min,
        x_max=x_max,
        y_min=y_min,
        y_max=y_max,
        resolution=resolution,
        probabilities=np.round(grid.probabilities, 5).ravel().tolist(),
    )


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
    # The run's own loss for this checkpoint: its history at that epoch (the log's `Epoch n`
    # line is exactly that model's loss), or the latest before it (the final checkpoint's).
    row = last_losses(session, run_id, at_most=ref.epoch) if style == "field" else None
    # The row's epoch is in the key: a checkpoint's own row is written just after it.
    key = ("boundary", ref.run_id, ref.epoch, ref.sha256, style, size, row)

    def render() -> bytes:
        model = load_model(caches, store, ref)
        dataset, points = dataset_points(session, run.dataset_id)
        name = f"{_describe(run)} on {dataset}"
        if style == "tutorial":
            return render_model_tutorial_png(model, name, size)
        numbers = _run_numbers(run, row, len(points))
        return render_model_boundary_png(model, points, name, size, numbers)

    return caches.pictures.get_or_create(key, bounded(render))


def boundary_gif(
    session: Session, caches: ResultCaches, store: Path, run_id: int, size: PictureSize
) -> bytes:
    """How the boundary evolved across the run's checkpoints."""
    run = find_run(session, run_id)
    refs = checkpoint_refs(session, run_id)
    if not refs:
        raise Conflict(f"run {run_id} has no checkpoint yet; try again once it has trained")
    if len(refs) > MAX_GIF_FRAMES:
        picks = np.linspace(0, len(refs) - 1, MAX_GIF_FRAMES).round().astype(int)
        refs = [refs[i] for i in sorted(set(picks.tolist()))]
    rows = [last_losses(session, run_id, at_most=ref.epoch) for ref in refs]
    key = ("gif", run_id, tuple((r.epoch, r.sha256) for r in refs), size, tuple(rows))

    def render() -> bytes:
        dataset, points = dataset_points(session, run.dataset_id)
        frames = []
        for ref, row in zip(refs, rows, strict=True):
            frame_key = ("boundary", ref.run_id, ref.epoch, ref.sha256, "frame", size, row)
            model = load_model(caches, store, ref)
            name = f"{_describe(run)} on {dataset}"
            numbers = _run_numbers(run, row, len(points))
            draw = functools.partial(render_model_boundary_png, model, points, name, size, numbers)
            frames.append(caches.pictures.get_or_create(frame_key, bounded(draw)))
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
        dataset = dataset_name(session, run.dataset_id)
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
            loss=run.loss_function,
        )

    return caches.pictures.get_or_create(key, bounded(render))


def run_event(session_factory: sessionmaker[Session], run_id: int) -> RunEventPublic | None:
    """The run's progress as the event stream sends it, or None once the run is gone: in a
    session of its own, since a stream outlives any request's session."""
    with session_scope(session_factory) as session:
        try:
            run = get_run(session, run_id)
        except NotFound:
            return None
    return RunEventPublic.model_validate({**run.model_dump(), "run_id": run.id})
