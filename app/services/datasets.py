"""Datasets: upload, generate, register the built-ins, look up, delete."""

from __future__ import annotations

import hashlib
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.ml import datagen
from app.ml.datagen import Points
from app.ml.points_csv import PointsFormatError, format_points_csv, parse_points_csv
from app.models import Dataset, Run
from app.schemas.datasets import (
    NAME_MAX_CHARS,
    NAME_RE,
    DatasetGenerate,
    DatasetPublic,
    PointsPreview,
    PointsRecipe,
    name_refusal,
)
from app.vocabulary import DatasetSource, PointsRule


def name_from_filename(filename: str | None) -> str:
    """A safe default name from an uploaded file's name: its stem, made a slug."""
    stem = Path((filename or "").replace("\\", "/")).name.rsplit(".", 1)[0]
    slug = re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_")[:NAME_MAX_CHARS]
    if not slug:
        return "dataset"
    if not slug[0].isalpha():
        slug = ("d-" + slug)[:NAME_MAX_CHARS]
    return slug


# The longest numbered suffix `free_name` can need (`-` and ten digits for MAX_ID).
_SUFFIX_MAX_CHARS = 11


def _numbered(name: str, number: int) -> str:
    suffix = f"-{number}"
    return name[: NAME_MAX_CHARS - len(suffix)] + suffix


def free_name(session: Session, name: str) -> str:
    """`name` if no dataset has it, else the first of `name-2`, `name-3`, ... that none has."""
    # Every candidate starts with this prefix, so one query finds every name in the way.
    prefix = name[: NAME_MAX_CHARS - _SUFFIX_MAX_CHARS]
    taken = set(
        session.scalars(
            select(Dataset.name).where(Dataset.name.startswith(prefix, autoescape=True))
        )
    )
    if name not in taken:
        return name
    return next(
        candidate
        for number in itertools.count(2)
        if (candidate := _numbered(name, number)) not in taken
    )


# How a request gives a dataset's name, as the 409 for a taken name tells it to give another.
UPLOAD_RENAME = "give another name in the form field `name`, e.g. `name={free}`"
GENERATE_RENAME = 'give another name in the body, e.g. `"name": "{free}"`'


def _name_taken(name: str, rename: str, free: str) -> Conflict:
    return Conflict(f"a dataset named {name!r} exists; {rename.format(free=free)}")


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(name_refusal(name))
    return name


def points_to_blob(points: Points) -> bytes:
    return np.ascontiguousarray(points, dtype="<f8").tobytes()


def points_from_blob(blob: bytes) -> Points:
    return np.frombuffer(blob, dtype="<f8").reshape(-1, 3).astype(np.float64)


def to_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id,
        name=dataset.name,
        source=dataset.source,
        n_points=dataset.n_points,
        class_counts={"0": dataset.count_0, "1": dataset.count_1},
        bounds={
            "x_min": dataset.x_min,
            "x_max": dataset.x_max,
            "y_min": dataset.y_min,
            "y_max": dataset.y_max,
        },
        sha256=dataset.sha256,
        params=dataset.params,
        created_at=dataset.created_at,
    )


def _add(
    session: Session,
    *,
    name: str,
    source: DatasetSource,
    points: Points,
    sha256: str,
    params: dict[str, Any] | None = None,
    rename: str = UPLOAD_RENAME,
) -> Dataset:
    if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
        raise _name_taken(name, rename, free_name(session, name))
    ones = int(points[:, 2].sum())
    dataset = Dataset(
        name=name,
        source=source,
        n_points=len(points),
        count_0=len(points) - ones,
        count_1=ones,
        x_min=float(points[:, 0].min()),
        x_max=float(points[:, 0].max()),
        y_min=float(points[:, 1].min()),
        y_max=float(points[:, 1].max()),
        sha256=sha256,
        points=points_to_blob(points),
        params=params,
    )
    session.add(dataset)
    try:
        session.flush()
    except IntegrityError:
        # Another request took the name between the check and the insert; the failed flush
        # leaves the session unusable for a query of a free name.
        raise _name_taken(name, rename, _numbered(name, 2)) from None
    return dataset


def upload_dataset(
    session: Session, data: bytes, *, filename: str | None, name: str | None, max_points: int
) -> DatasetPublic:
    # A name taken from the file's is made free (the tutorial's `curve.csv` meets the built-in
    # `curve`); a name the client chose is theirs to change.
    if name is not None:
        name = validate_name(name)
    else:
        name = free_name(session, name_from_filename(filename))
    try:
        points = parse_points_csv(data, max_points)
    except PointsFormatError as exc:
        raise InvalidInput(str(exc)) from None
    dataset = _add(
        session,
        name=name,
        source=DatasetSource.UPLOAD,
        points=points,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return to_public(dataset)


def _draw(recipe: PointsRecipe, max_points: int) -> tuple[Points, dict[str, Any]]:
    """The recipe's points and its parameters as stored, the kind's default noise filled in."""
    if recipe.n > max_points:
        raise InvalidInput(f"n: {recipe.n} is more than the {max_points} points allowed")
    points = datagen.generate(recipe.kind, recipe.n, recipe.noise, recipe.seed)
    noise = datagen.KINDS[recipe.kind].default_noise if recipe.noise is None else recipe.noise
    return points, {"kind": recipe.kind, "n": recipe.n, "noise": noise, "seed": recipe.seed}


def preview_points(recipe: PointsRecipe, max_points: int) -> PointsPreview:
    points, params = _draw(recipe, max_points)
    return PointsPreview(params=params, points=points.tolist())


def generate_dataset(session: Session, request: DatasetGenerate, max_points: int) -> DatasetPublic:
    points, params = _draw(request, max_points)
    sha256 = hashlib.sha256(format_points_csv(points).encode()).hexdigest()
    dataset = _add(
        session,
        name=request.name,
        source=DatasetSource.GENERATED,
        points=points,
        sha256=sha256,
        params=params,
        rename=GENERATE_RENAME,
    )
    return to_public(dataset)


def builtin_csv_path(data_dir: Path, name: str) -> Path:
    return data_dir / f"{name}.csv"


def write_builtin_csv(data_dir: Path, name: PointsRule) -> Path:
    """Regenerate a built-in dataset's file from its rule and fixed seed."""
    spec = datagen.BUILTIN_DATASETS[name]
    points = datagen.generate(name, int(spec["n"]), float(spec["noise"]), int(spec["seed"]))
    path = builtin_csv_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_points_csv(points))
    return path


def register_builtin_datasets(session: Session, data_dir: Path, max_points: int) -> None:
    """Register linear, curve and random from data/ (regenerated if a file is missing)."""
    for name, spec in datagen.BUILTIN_DATASETS.items():
        if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
            continue
        path = builtin_csv_path(data_dir, name)
        if not path.exists():
            write_builtin_csv(data_dir, name)
        data = path.read_bytes()
        points = parse_points_csv(data, max(max_points, int(spec["n"])))
        params = {"kind": name, **spec}
        _add(
            session,
            name=name,
            source=DatasetSource.BUILTIN,
            points=points,
            sha256=hashlib.sha256(data).hexdigest(),
            params=params,
        )


def _find(session: Session, ref: str) -> Dataset:
    if ref.isascii() and ref.isdigit():
        dataset = session.get(Dataset, int(ref)) if len(ref) < 12 else None
    else:
        dataset = session.scalar(select(Dataset).where(Dataset.name == ref))
    if dataset is None:
        raise NotFound(f"no dataset with id or name {ref!r}")
    return dataset


def get_dataset(session: Session, ref: str) -> DatasetPublic:
    return to_public(_find(session, ref))


def get_dataset_id(session: Session, ref: str) -> int:
    return _find(session, ref).id


def list_datasets(session: Session, *, limit: int, offset: int) -> tuple[list[DatasetPublic], int]:
    rows = session.scalars(
        select(Dataset)
        .order_by(Dataset.created_at.desc(), Dataset.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    count = session.scalar(select(func.count()).select_from(Dataset)) or 0
    return [to_public(row) for row in rows], count


def dataset_points(
    session: Session, ref: str | int, max_points: int | None = None
) -> tuple[str, Points]:
    """A dataset's name and points, by id or name; with `max_points`, evenly spaced ones, at
    most that many (a thumbnail)."""
    dataset = _find(session, str(ref))
    points = points_from_blob(dataset.points)
    if max_points is not None and len(points) > max_points:
        points = points[:: -(-len(points) // max_points)]
    return dataset.name, points


def dataset_name(session: Session, dataset_id: int) -> str:
    name = session.scalar(select(Dataset.name).where(Dataset.id == dataset_id))
    if name is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    return name


def dataset_bounds(session: Session, dataset_id: int) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) of a dataset's points, without reading the points."""
    row = session.execute(
        select(Dataset.x_min, Dataset.x_max, Dataset.y_min, Dataset.y_max).where(
            Dataset.id == dataset_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    return row.x_min, row.x_max, row.y_min, row.y_max


def delete_dataset(session: Session, ref: str) -> None:
    dataset = _find(session, ref)
    if dataset.source == DatasetSource.BUILTIN:
        raise Forbidden(f"{dataset.name!r} is a built-in dataset and cannot be deleted")
    runs = session.scalar(select(func.count()).where(Run.dataset_id == dataset.id)) or 0
    if runs:
        raise Conflict(
            f"dataset {dataset.name!r} is used by {runs} run(s); delete those runs first"
        )
    name = dataset.name  # read now: a failed flush expires the object
    session.delete(dataset)
    try:
        session.flush()
    except IntegrityError:
        # A run was started on it between the count above and this delete.
        raise Conflict(
            f"dataset {name!r} is used by a run started meanwhile; delete that run first"
        ) from None
