"""Datasets of labelled points: upload, generate, list, read, picture, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Path, Query, Response, UploadFile, status

from app.api.body_limit import UPLOAD_LIMIT_SOURCE, too_large
from app.api.deps import SessionDep, SettingsDep
from app.api.params import DEFAULT_PAGE_SIZE, PageLimit, PageOffset
from app.api.responses import CSV_RESPONSE, PNG_RESPONSE, errors
from app.core.config import DEFAULT_MAX_UPLOAD_BYTES
from app.ml.plots import render_points_png
from app.ml.points_csv import format_points_csv
from app.schemas.datasets import (
    DATASET_IN_USE_EXAMPLE,
    GENERATE_EXAMPLES,
    NAME_RULE,
    PREVIEW_EXAMPLES,
    DatasetGenerate,
    DatasetPublic,
    DatasetsPublic,
    Name,
    PointsPreview,
    PointsPublic,
    PointsRecipe,
)
from app.services import datasets as service

router = APIRouter(prefix="/datasets", tags=["datasets"])
NO_DATASET = {404: "no dataset with id or name 'spirals'"}

DatasetRef = Annotated[
    str,
    Path(
        description="the dataset's id or name",
        openapi_examples={"curve": {"summary": "the tutorial's curve", "value": "curve"}},
    ),
]
# The built-ins cannot be deleted: the example is the one `POST /datasets/generate` makes.
OwnDatasetRef = Annotated[
    str,
    Path(
        description="the dataset's id or name",
        openapi_examples={"moons": {"summary": "the generate example's", "value": "moons"}},
    ),
]


@router.post(
    "",
    summary="Upload a CSV dataset",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetPublic,
    responses=errors(
        409,
        413,
        422,
        examples={
            409: "a dataset named 'my-curve' exists; give another name in the form field "
            "`name`, e.g. `name=my-curve-2`",
            413: too_large(DEFAULT_MAX_UPLOAD_BYTES, UPLOAD_LIMIT_SOURCE),
            422: "row 3, column y: 'nan' is not a finite number",
        },
    ),
)
def upload_dataset(
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV rows x,y,label (optional header line)")],
    name: Annotated[
        Name | None,
        Form(
            description=f"{NAME_RULE}; defaults to the file's name (made free with `-2`, `-3`, "
            "... when a dataset has it)",
        ),
    ] = None,
) -> DatasetPublic:
    """Upload a CSV of labelled points in the tutorial's format."""
    data = file.file.read()
    return service.upload_dataset(
        session, data, filename=file.filename, name=name, max_points=settings.max_points
    )


@router.post(
    "/generate",
    summary="Generate a synthetic dataset",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetPublic,
    responses=errors(
        409,
        422,
        examples={
            409: "a dataset named 'moons' exists; give another name in the body, "
            'e.g. `"name": "moons-2"`'
        },
    ),
)
def generate_dataset(
    body: Annotated[DatasetGenerate, Body(openapi_examples=GENERATE_EXAMPLES)],
    session: SessionDep,
    settings: SettingsDep,
) -> DatasetPublic:
    """Generate synthetic points by a named rule; the same seed gives the same points."""
    return service.generate_dataset(session, body, settings.max_points)


@router.post(
    "/generate/preview",
    summary="Preview synthetic points without storing them",
    response_model=PointsPreview,
    responses=errors(422),
)
def preview_dataset(
    body: Annotated[PointsRecipe, Body(openapi_examples=PREVIEW_EXAMPLES)], settings: SettingsDep
) -> PointsPreview:
    """The points `POST /datasets/generate` would store for the same kind, n, noise and seed."""
    return service.preview_points(body, settings.max_points)


@router.get("", summary="List datasets", response_model=DatasetsPublic)
def list_datasets(
    session: SessionDep,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    offset: PageOffset = 0,
) -> DatasetsPublic:
    """List datasets, newest first."""
    data, count = service.list_datasets(session, limit=limit, offset=offset)
    return DatasetsPublic(data=data, count=count)


@router.get(
    "/{ref}",
    summary="Read a dataset",
    response_model=DatasetPublic,
    responses=errors(404, examples=NO_DATASET),
)
def get_dataset(ref: DatasetRef, session: SessionDep) -> DatasetPublic:
    """One dataset, by id or by name."""
    return service.get_dataset(session, ref)


@router.get(
    "/{ref}/points",
    summary="A dataset's points as JSON",
    response_model=PointsPublic,
    responses=errors(404, examples=NO_DATASET),
)
def get_points(
    ref: DatasetRef,
    session: SessionDep,
    max_points: Annotated[
        int | None,
        Query(ge=1, le=1_000_000, description="at most this many, evenly spaced (a thumbnail)"),
    ] = None,
) -> PointsPublic:
    """The points as JSON rows of [x, y, label]."""
    name, points = service.dataset_points(session, ref, max_points)
    return PointsPublic(name=name, points=points.tolist())


@router.get(
    "/{ref}/csv",
    summary="A dataset as the tutorial's CSV",
    response_class=Response,
    responses={
        **CSV_RESPONSE,
        **errors(404, examples=NO_DATASET),
    },
)
def get_csv(ref: DatasetRef, session: SessionDep) -> Response:
    """The points in the tutorial's CSV format (no header, x,y,label), so they round-trip."""
    name, points = service.dataset_points(session, ref)
    return Response(
        format_points_csv(points),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get(
    "/{ref}/plot.png",
    summary="Picture: a dataset's points",
    response_class=Response,
    responses={
        **PNG_RESPONSE,
        **errors(404, examples=NO_DATASET),
    },
)
def get_plot(ref: DatasetRef, session: SessionDep) -> Response:
    """The tutorial's scatter picture: label 0 red, label 1 blue."""
    name, points = service.dataset_points(session, ref)
    return Response(render_points_png(points, name), media_type="image/png")


@router.delete(
    "/{ref}",
    summary="Delete a dataset",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(
        403,
        404,
        409,
        examples={**NO_DATASET, 409: DATASET_IN_USE_EXAMPLE},
    ),
)
def delete_dataset(ref: OwnDatasetRef, session: SessionDep) -> Response:
    """Delete an uploaded or generated dataset (built-ins are protected; 409 while runs use it)."""
    service.delete_dataset(session, ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
