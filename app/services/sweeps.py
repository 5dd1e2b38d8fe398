"""Sweeps: a grid over run parameters expanded into ordinary runs (every run feature works for
them), read back with each run's values and the verdict its history earns."""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput, NotFound
from app.ml.inference import pad_bounds, probability_grid
from app.ml.plots import (
    NEVER_TRAINED,
    WAITING,
    Panel,
    render_losses_png,
    render_small_multiples_png,
)
from app.ml.verdicts import Judgement, judge
from app.models import Dataset, Run, RunHistory, Sweep
from app.models.base import utcnow
from app.schemas.runs import AnyRunCreate, RunCreate
from app.schemas.sweeps import (
    GRID_KEYS,
    SweepCreate,
    SweepPublic,
    SweepRunPublic,
    SweepsPublic,
    SweepSummary,
)
from app.services.datasets import dataset_bounds, dataset_points, get_dataset_id
from app.services.results import (
    LockedCache,
    ResultCaches,
    bounded,
    load_model,
    read_history,
)
from app.services.runs import Publish, cancel_run, checkpoint_refs, create_run, delete_run
from app.vocabulary import FailureReason, LossFunction, RunStatus

RUN_BODY: TypeAdapter[AnyRunCreate] = TypeAdapter(RunCreate)
MAX_REFUSALS_SHOWN = 5


def expand(body: SweepCreate, max_runs: int) -> list[tuple[dict[str, Any], AnyRunCreate]]:
    """Each combination of the grid's values over the base, as a run's body checked exactly as
    POST /runs checks it; every combination is checked before anything is stored."""
    for where, keys in (("grid", body.grid), ("base", body.base)):
        unknown = sorted(set(keys) - set(GRID_KEYS))
        if unknown:
            raise InvalidInput(
                f"{where}: {', '.join(map(repr, unknown))} is not a run parameter a sweep can "
                f"set; these are: {', '.join(GRID_KEYS)} (the dataset is the sweep's own field)"
            )
    for key, tried in body.grid.items():
        if not tried:
            raise InvalidInput(f"grid.{key}: give at least one value")
    sizes = [len(tried) for tried in body.grid.values()]
    total = math.prod(sizes)
    if total > max_runs:
        raise InvalidInput(
            f"grid: it makes {total} runs ({' x '.join(map(str, sizes))}); a sweep may make at "
            f"most {max_runs} (PC_MAX_SWEEP_RUNS)"
        )
    bodies: list[tuple[dict[str, Any], AnyRunCreate]] = []
    refusals: list[str] = []
    for combination in itertools.product(*body.grid.values()):
        values = dict(zip(body.grid, combination, strict=True))
        payload = {**body.base, **values, "dataset": body.dataset}
        try:
            # Through JSON, as POST /runs receives it: the same strictness about numbers.
            bodies.append((values, RUN_BODY.validate_json(json.dumps(payload))))
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
                for error in exc.errors()
            )
            refusals.append(f"{json.dumps(values)}: {reasons}")
    if refusals:
        shown = "\n".join(refusals[:MAX_REFUSALS_SHOWN])
        more = len(refusals) - MAX_REFUSALS_SHOWN
        raise InvalidInput(
            f"{len(refusals)} of the grid's {total} runs would be refused:\n{shown}"
            + (f"\n(and {more} more)" if more > 0 else "")
        )
    return bodies


def create_sweep(
    session: Session,
    body: SweepCreate,
    *,
    max_runs: int,
    max_store_bytes: int,
    publish: Publish | None,
    devices_here: bool,
) -> SweepPublic:
    try:
        dataset_id = get_dataset_id(session, body.dataset)
    except NotFound as exc:
        raise NotFound(f"dataset: {exc.detail}") from None
    runs = expand(body, max_runs)
    sweep = Sweep(name=body.name, dataset_id=dataset_id, base=body.base, grid=body.grid)
    session.add(sweep)
    session.flush()
    for values, request in runs:
        create_run(
            session,
            request,
            max_store_bytes,
            publish,
            devices_here=devices_here,
            sweep_id=sweep.id,
            sweep_values=values,
        )
    return get_sweep(session, sweep.id)


def _find(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"no sweep with id {sweep_id}")
    return sweep


def _counts(session: Session, sweep_ids: list[int]) -> dict[int, dict[RunStatus, int]]:
    counts: dict[int, dict[RunStatus, int]] = {
        sweep_id: dict.fromkeys(RunStatus, 0) for sweep_id in sweep_ids
    }
    rows = session.execute(
        select(Run.sweep_id, Run.status, func.count())
        .where(Run.sweep_id.in_(sweep_ids))
        .group_by(Run.sweep_id, Run.status)
    )
    for sweep_id, status, count in rows:
        if sweep_id is not None:
            counts[sweep_id][status] = count
    return counts


def _histories(
    session: Session, run_ids: list[int]
) -> dict[int, tuple[list[float], list[float | None]]]:
    histories: dict[int, tuple[list[float], list[float | None]]] = defaultdict(lambda: ([], []))
    rows = session.execute(
        select(RunHistory.run_id, RunHistory.loss, RunHistory.val_loss)
        .where(RunHistory.run_id.in_(run_ids))
        .order_by(RunHistory.run_id, RunHistory.epoch)
    )
    for run_id, loss, val_loss in rows:
        histories[run_id][0].append(loss)
        histories[run_id][1].append(val_loss)
    return histories


# An ended run's best loss and verdict, which its whole history decides: kept by what would
# change them (a resumed run ends again at another epoch and time), so that reading a sweep
# does not read every ended run's history again.
Judged = tuple[float | None, Judgement | None]
_JUDGED: LockedCache[Judged] = LockedCache(maxsize=4096)


def _judged(session: Session, ended: list[Run], positive_share: float) -> dict[int, Judged]:
    keys = {run.id: (run.id, run.status, run.epoch, run.finished_at) for run in ended}
    known = {run.id: _JUDGED.get(keys[run.id]) for run in ended}
    histories = _histories(session, [run.id for run in ended if known[run.id] is None])
    judged: dict[int, Judged] = {}
    for run in ended:
        judged[run.id] = known[run.id] or _JUDGED.get_or_create(
            keys[run.id], functools.partial(_judge, run, histories[run.id], positive_share)
        )
    return judged


def _judge(
    run: Run, history: tuple[list[float], list[float | None]], positive_share: float
) -> Judged:
    losses, val_losses = history
    if not losses:
        return None, None
    judgement = judge(
        losses,
        positive_share,
        run.loss_function,
        val_losses=val_losses if run.validation_split > 0 else None,
        diverged_at=run.epoch if run.failure_reason == FailureReason.DIVERGED else None,
    )
    return min(losses), judgement


def _run_public(run: Run, judged: Judged) -> SweepRunPublic:
    best_loss, judgement = judged
    duration = None
    if run.started_at is not None:
        duration = ((run.finished_at or utcnow()) - run.started_at).total_seconds()
    return SweepRunPublic(
        id=run.id,
        values=run.sweep_values or {},
        status=run.status,
        epoch=run.epoch,
        epochs=run.epochs,
        final_loss=run.final_loss,
        best_loss=best_loss,
        val_loss=run.val_loss,
        accuracy=run.accuracy,
        duration_s=duration,
        verdict=judgement.verdict if judgement else None,
        verdict_number=judgement.number if judgement else None,
        verdict_reason=judgement.reason if judgement else None,
    )


def get_sweep(session: Session, sweep_id: int) -> SweepPublic:
    sweep = _find(session, sweep_id)
    dataset = session.get(Dataset, sweep.dataset_id)
    assert dataset is not None  # a dataset with runs cannot be deleted
    runs = session.scalars(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)).all()
    judged = _judged(
        session, [run for run in runs if run.status.ended], dataset.count_1 / dataset.n_points
    )
    return SweepPublic(
        id=sweep.id,
        name=sweep.name,
        dataset=dataset.name,
        base=sweep.base,
        grid=sweep.grid,
        created_at=sweep.created_at,
        counts=_counts(session, [sweep_id])[sweep_id],
        runs=[_run_public(run, judged.get(run.id, (None, None))) for run in runs],
    )


def list_sweeps(session: Session, *, limit: int, offset: int) -> SweepsPublic:
    rows = session.execute(
        select(Sweep, Dataset.name)
        .join(Dataset, Dataset.id == Sweep.dataset_id)
        .order_by(Sweep.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    counts = _counts(session, [sweep.id for sweep, _ in rows])
    total = session.scalar(select(func.count()).select_from(Sweep)) or 0
    return SweepsPublic(
        data=[
            SweepSummary(
                id=sweep.id,
                name=sweep.name,
                dataset=name,
                grid=sweep.grid,
                created_at=sweep.created_at,
                counts=counts[sweep.id],
            )
            for sweep, name in rows
        ],
        count=total,
    )


def cancel_sweep(session: Session, sweep_id: int) -> SweepPublic:
    """Cancel the sweep's queued and running runs; ended ones stay as they are."""
    _find(session, sweep_id)
    active = session.scalars(
        select(Run.id).where(
            Run.sweep_id == sweep_id, Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING])
        )
    ).all()
    for run_id in active:
        cancel_run(session, run_id)
    return get_sweep(session, sweep_id)


def delete_sweep(session: Session, sweep_id: int, models_store: Path) -> None:
    """The sweep, its runs, their histories and (once that has committed) their files."""
    _find(session, sweep_id)
    for run_id in session.scalars(select(Run.id).where(Run.sweep_id == sweep_id)).all():
        delete_run(session, run_id, models_store)
    session.execute(delete(Sweep).where(Sweep.id == sweep_id))


def sweep_csv(sweep: SweepPublic) -> str:
    """One row a run; the grid's values as JSON writes them (`[64, 64]`, `0.01`), text as it
    is, each cell quoted where CSV needs it."""
    keys = list(sweep.grid)
    columns = ["run_id", *keys, "status", "epoch", "epochs", "final_loss", "best_loss"]
    columns += ["val_loss", "accuracy", "duration_s", "verdict", "verdict_number"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for run in sweep.runs:
        values = [_grid_value(run.values.get(key)) for key in keys]
        numbers = [run.final_loss, run.best_loss, run.val_loss, run.accuracy, run.duration_s]
        cells = [str(run.id), *values, run.status.value, str(run.epoch), str(run.epochs)]
        cells += ["" if number is None else repr(number) for number in numbers]
        cells.append(run.verdict.value if run.verdict else "")
        cells.append("" if run.verdict_number is None else repr(run.verdict_number))
        writer.writerow(cells)
    return buffer.getvalue()


def _grid_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _checked_axis(sweep: Sweep, name: str, axis: str | None) -> str | None:
    if axis is not None and axis not in sweep.grid:
        raise InvalidInput(
            f"{name}: {axis!r} is not an axis of sweep {sweep.id}; its axes: {', '.join(sweep.grid)}"
        )
    return axis


def _axes(sweep: Sweep, rows: str | None, cols: str | None) -> tuple[str | None, str]:
    """The picture's axes: those asked for, else the grid's axes with the most values (the
    grid's order between equals), the most across. Any other axis varies down within each
    row's value, named in each panel's title: so the README's exercise (4 activations, 2
    learning rates, 2 widths) is 4 panels across and 4 down, where the grid's first two axes
    made it 2 across and 8 down."""
    _checked_axis(sweep, "rows", rows)
    _checked_axis(sweep, "cols", cols)
    by_size = sorted(sweep.grid, key=lambda key: -len(sweep.grid[key]))  # stable: grid order
    if cols is None:
        cols = next((key for key in by_size if key != rows), by_size[0])
    if rows is None or rows == cols:
        rows = next((key for key in by_size if key != cols), None)
    return rows, cols


def _reading_order(sweep: Sweep, rows: str | None, cols: str) -> list[str]:
    """The grid's axes from the slowest-varying to the fastest in the picture: `rows` down,
    any other axis between, `cols` along each row."""
    others = [key for key in sweep.grid if key not in (rows, cols)]
    return ([rows] if rows is not None else []) + others + [cols]


def _laid_out(sweep: Sweep, runs: list[SweepRunPublic], order: list[str]) -> list[SweepRunPublic]:
    """Runs in reading order, by the position of their values on each axis of `order`."""

    def place(run: SweepRunPublic) -> tuple[int, ...]:
        return tuple(
            sweep.grid[key].index(run.values[key]) if run.values.get(key) in sweep.grid[key] else 0
            for key in order
        )

    return sorted(runs, key=place)


def _title(run: SweepRunPublic, order: list[str]) -> str:
    """The run's values in the heading's order (the names are in the heading: they would not
    fit in a small panel), its loss and its verdict."""
    values = " · ".join(json.dumps(run.values.get(key)) for key in order)
    loss = (
        "no loss yet"
        if run.final_loss is None and run.best_loss is None
        else (f"loss {run.final_loss if run.final_loss is not None else run.best_loss:.3g}")
    )
    return f"#{run.id} {values}\n{loss}, {run.verdict or run.status}"


def boundaries_png(
    session: Session,
    caches: ResultCaches,
    store: Path,
    sweep_id: int,
    *,
    rows: str | None,
    cols: str | None,
    epoch: int | None,
) -> bytes:
    """The runs' decision boundaries as small multiples laid out along two of the grid's axes,
    each at its checkpoint at `epoch` (or its latest before it; its latest without `epoch`)."""
    sweep = _find(session, sweep_id)
    public = get_sweep(session, sweep_id)
    rows, cols = _axes(sweep, rows, cols)
    order = _reading_order(sweep, rows, cols)
    ordered = _laid_out(sweep, public.runs, order)
    refs = []
    for run in ordered:
        candidates = [
            ref for ref in checkpoint_refs(session, run.id) if epoch is None or ref.epoch <= epoch
        ]
        refs.append(candidates[-1] if candidates else None)
    # Each panel by what it draws: the checkpoint, and the title (values, status, loss, verdict).
    titles = [_title(run, order) for run in ordered]
    key = (
        "sweep-boundaries",
        sweep_id,
        rows,
        cols,
        tuple(
            (ref.sha256 if ref else None, title) for ref, title in zip(refs, titles, strict=True)
        ),
    )

    def render() -> bytes:
        _, points = dataset_points(session, sweep.dataset_id)
        bounds = pad_bounds(dataset_bounds(session, sweep.dataset_id))
        panels = []
        for run, title, ref in zip(ordered, titles, refs, strict=True):
            if ref is None:
                empty = NEVER_TRAINED if run.status.ended else WAITING
                panels.append(Panel(title, None, points, empty))
                continue
            model = load_model(caches, store, ref)
            grid = probability_grid(model.module, bounds, resolution=60)
            panels.append(Panel(f"{title}, epoch {ref.epoch}", grid, points))
        columns = len(sweep.grid[cols])
        within = order[1:-1]  # the axes that vary down within each value of `rows`
        heading = (
            f"sweep {sweep_id}{f' ({sweep.name})' if sweep.name else ''} on {public.dataset}; "
            f"across: {cols}"
            + (f", down: {rows}" if rows else "")
            + (f" (then {', '.join(within)})" if within else "")
            + f"\neach panel: {' · '.join(order)}"
        )
        return render_small_multiples_png(panels, columns, heading)

    return caches.pictures.get_or_create(key, bounded(render))


def losses_png(
    session: Session,
    caches: ResultCaches,
    sweep_id: int,
    *,
    colour_by: str | None,
    log_scale: bool,
) -> bytes:
    """The runs' loss curves overlaid, coloured by one of the grid's axes."""
    sweep = _find(session, sweep_id)
    axis = _checked_axis(sweep, "colour_by", colour_by) or next(iter(sweep.grid))
    runs = session.scalars(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)).all()
    histories = [read_history(session, run.id, max_points=1000) for run in runs]
    key = (
        "sweep-losses",
        sweep_id,
        axis,
        log_scale,
        tuple((run.id, len(history.epoch)) for run, history in zip(runs, histories, strict=True)),
    )

    def render() -> bytes:
        curves = [
            (
                f"{json.dumps((run.sweep_values or {}).get(axis))}",
                np.array(history.epoch, dtype=np.float64),
                np.array(history.loss, dtype=np.float64),
            )
            for run, history in zip(runs, histories, strict=True)
            if history.epoch
        ]
        losses = {run.loss_function for run in runs}
        loss = losses.pop() if len(losses) == 1 else LossFunction.BCE
        title = f"sweep {sweep_id}{f' ({sweep.name})' if sweep.name else ''}: loss per epoch"
        return render_losses_png(curves, axis, title, log_scale=log_scale, loss=loss)

    return caches.pictures.get_or_create(key, bounded(render))
