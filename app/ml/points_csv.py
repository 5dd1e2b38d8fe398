"""The tutorial's CSV format: no header, `x,y,label` rows, floats like `6.938e-01`.

Reading also accepts a first line `x,y,label`, a UTF-8 byte-order mark, CRLF line ends and blank
lines; every refusal names the 1-based line it is about.
"""

from __future__ import annotations

import math

import numpy as np

from app.ml.datagen import Points

HEADER = ("x", "y", "label")


class PointsFormatError(ValueError):
    """The text is not a usable set of labelled points; the message says where and why."""


def _number(text: str, row: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise PointsFormatError(f"row {row}, column {column}: {shown!r} is not a number") from None
    if not math.isfinite(value):
        raise PointsFormatError(
            f"row {row}, column {column}: {text.strip()!r} is not a finite number"
        )
    return value


def parse_points_csv(data: bytes, max_points: int) -> Points:
    """Parse uploaded bytes into an (n, 3) float64 array, or raise PointsFormatError."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PointsFormatError(
            f"the file is not UTF-8 text (invalid byte at offset {exc.start}); "
            "expected a CSV file with rows x,y,label"
        ) from None
    if "\x00" in text:
        raise PointsFormatError("the file contains NUL bytes; expected a CSV text file")
    rows: list[tuple[float, float, float]] = []
    header_allowed = True
    for row_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if header_allowed and tuple(field.lower() for field in fields) == HEADER:
            header_allowed = False
            continue
        header_allowed = False
        if len(fields) != 3:
            raise PointsFormatError(
                f"row {row_number}: expected 3 columns (x,y,label), found {len(fields)}"
            )
        if len(rows) >= max_points:
            raise PointsFormatError(
                f"row {row_number}: too many points; at most {max_points} rows are accepted"
            )
        x = _number(fields[0], row_number, "x")
        y = _number(fields[1], row_number, "y")
        label = _number(fields[2], row_number, "label")
        if label not in (0.0, 1.0):
            raise PointsFormatError(f"row {row_number}, column label: {fields[2]!r} is not 0 or 1")
        rows.append((x, y, label))
    if not rows:
        raise PointsFormatError("the file has no data rows; expected rows x,y,label")
    points = np.array(rows, dtype=np.float64)
    ones = int(points[:, 2].sum())
    if ones in (0, len(rows)):
        only = 1 if ones else 0
        raise PointsFormatError(
            f"all {len(rows)} points have label {only}; a dataset needs both labels 0 and 1"
        )
    return points


def format_points_csv(points: Points) -> str:
    """The tutorial's format (numpy.savetxt's `%.18e`): float64 values round-trip exactly."""
    return "".join(f"{x:.18e},{y:.18e},{label:.18e}\n" for x, y, label in points.tolist())
