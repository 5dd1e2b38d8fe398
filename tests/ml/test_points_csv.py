"""Reading the tutorial's CSV: a file written in another common dialect is refused with a word on
what it looks like and what to write instead."""

from __future__ import annotations

import numpy as np
import pytest

from app.ml.points_csv import PointsFormatError, parse_points_csv

TUTORIAL = "the tutorial's format is comma-separated with a dot as decimal point, e.g. 0.5,0.3,1"


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        # A spreadsheet in a locale that writes 0,5 saves `;` between values.
        (
            "0,5;0,3;1\n0,1;0,2;0\n",
            "row 1, column y: '5;0' is not a number; the row looks like values separated by "
            "semicolons (;) with decimal commas (0,5)",
        ),
        (
            "0.5;0.3;1\n",
            "row 1: expected 3 columns (x,y,label), found 1; the row looks like values separated "
            "by semicolons (;)",
        ),
        (
            "x;y;label\n0.5;0.3;1\n",
            "row 1: expected 3 columns (x,y,label), found 1; the row looks like values separated "
            "by semicolons (;)",
        ),
        (
            "0.5\t0.3\t1\n",
            "row 1: expected 3 columns (x,y,label), found 1; the row looks like values separated "
            "by tabs",
        ),
        (
            "0,5\t0,3\t1\n",
            "row 1, column y: '5\\t0' is not a number; the row looks like values separated by tabs "
            "with decimal commas (0,5)",
        ),
        # numpy.savetxt without delimiter="," writes spaces.
        (
            "0.1,0.2,0\n5.000000000000000000e-01 3.000000000000000000e-01 1.000000000000000000e+00\n",
            "row 2: expected 3 columns (x,y,label), found 1; the row looks like values separated "
            "by spaces",
        ),
    ],
)
def test_another_dialect_is_refused_saying_what_it_looks_like_and_what_to_write(
    content: str, refusal: str
) -> None:
    with pytest.raises(PointsFormatError) as refused:
        parse_points_csv(content.encode(), 100)
    assert str(refused.value) == f"{refusal}: {TUTORIAL}"


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        ("0.1,0.2,0\n0.3,0.4\n", "row 2: expected 3 columns (x,y,label), found 2"),
        ("0.1,0.2,0\n0.3,abc,1\n", "row 2, column y: 'abc' is not a number"),
        ("0.1,0.2,0\n0.3;0.4;0.5;1\n", "row 2: expected 3 columns (x,y,label), found 1"),
        ("0.1,0.2,0\n0.3;abc;1\n", "row 2: expected 3 columns (x,y,label), found 1"),
        # Spaces after the commas split it in three too, but not into numbers.
        ("0.1, 0.2, 0\n0.3, 0.4, 2\n", "row 2, column label: '2' is not 0 or 1"),
    ],
)
def test_a_row_that_looks_like_no_known_dialect_gets_no_guess(content: str, refusal: str) -> None:
    with pytest.raises(PointsFormatError) as refused:
        parse_points_csv(content.encode(), 100)
    assert str(refused.value) == refusal


def test_the_tutorials_format_with_spaces_after_the_commas_is_read() -> None:
    points = parse_points_csv(b"0.5, 0.3, 1\n0.1, 0.2, 0\n", 100)
    assert np.array_equal(points, [[0.5, 0.3, 1.0], [0.1, 0.2, 0.0]])
