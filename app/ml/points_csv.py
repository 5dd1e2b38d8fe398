"""The tutorial's CSV format: no header, `x,y,label` rows, floats like `6.938e-01`.

Reading also accepts a first line `x,y,label`, a UTF-8 byte-order mark, CRLF line ends and blank
lines; every refusal names the 1-based line it is about, and says so when the row looks written
in another common dialect (semicolons and decimal commas from a spreadsheet, tabs, the spaces
of numpy.savetxt's default).
"""

from __future__ import annotations

import math

import numpy as np

from app.ml.datagen import Points

HEADER = ("x", "y", "label")
TUTORIAL_FORMAT = (
    "the tutorial's format is comma-separated with a dot as decimal point, e.g. 0.5,0.3,1"
)
# Other separators a file of points is often written with; None splits on runs of whitespace.
OTHER_SEPARATORS: tuple[tuple[str | None, str], ...] = (
    (";", "semicolons (;)"),
    ("\t", "tabs"),
    (None, "spaces"),
)


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dialect_hint(line: str) -> str:
    """`; the row looks like ...: <the tutorial's format>` when another separator splits the
    row into three numbers (a decimal comma taken for a point) or the header's three words,
    else nothing: a guess is only offered where it fits the whole row."""
    for separator, name in OTHER_SEPARATORS:
        values = [value.strip() for value in line.strip().split(separator)]
        numbers = all(_is_number(value.replace(",", ".", 1)) for value in values)
        if len(values) == 3 and (numbers or tuple(map(str.lower, values)) == HEADER):
            found = f"values separated by {name}"
            if any("," in value for value in values):
                found += " with decimal commas (0,5)"
            return f"; the row looks like {found}: {TUTORIAL_FORMAT}"
    return ""


def _row(fields: list[str], row_number: int) -> tuple[float, float, float]:
    if len(fields) != 3:
        raise PointsFormatError(
            f"row {row_number}: expected 3 columns (x,y,label), found {len(fields)}"
        )
    x = _number(fields[0], row_number, "x")
    y = _number(fields[1], row_number, "y")
    label = _number(fields[2], row_number, "label")
    if label not in (0.0, 1.0):
        raise PointsFormatError(f"row {row_number}, column label: {fields[2]!r} is not 0 or 1")
    return x, y, label


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
        if len(rows) >= max_points:
            raise PointsFormatError(
                f"row {row_number}: too many points; at most {max_points} rows are accepted"
            )
        try:
            rows.append(_row(fields, row_number))
        except PointsFormatError as exc:
            raise PointsFormatError(f"{exc}{_dialect_hint(line)}") from None
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
