"""The generators follow the tutorial's rules; the shipped files are their output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.core.config import PROJECT_ROOT
from app.ml import datagen
from app.ml.points_csv import format_points_csv, parse_points_csv
from app.vocabulary import PointsRule

FloatArray = NDArray[np.float64]


def tutorial_boundary(kind: str, x: FloatArray) -> FloatArray:
    return datagen.linear_boundary(x) if kind == "linear" else datagen.curve_boundary(x)


def rule_agreement(points: FloatArray, kind: str) -> tuple[float, float]:
    """Agreement with the noiseless rule outside the 0.1 band, and inside it."""
    x, y, label = points.T
    distance = y - tutorial_boundary(kind, x)
    # curve's boundary itself carries N(0, 0.02) noise: leave four sigmas beyond the band.
    far = np.abs(distance) > (0.1 if kind == "linear" else 0.18)
    agree = (distance > 0) == (label == 1)
    return float(agree[far].mean()), float(agree[~far].mean())


@pytest.mark.parametrize("name", list(datagen.BUILTIN_DATASETS))
def test_shipped_builtin_files_are_the_generators_output(name: PointsRule) -> None:
    spec = datagen.BUILTIN_DATASETS[name]
    points = datagen.generate(name, int(spec["n"]), float(spec["noise"]), int(spec["seed"]))
    shipped = (PROJECT_ROOT / "data" / f"{name}.csv").read_text()
    assert shipped == format_points_csv(points)
    assert len(shipped.splitlines()) == 200


@pytest.mark.parametrize("kind", ["linear", "curve"])
def test_generated_labels_follow_the_tutorial_rule(kind: str) -> None:
    points = datagen.generate(kind, 20_000, 0.3, seed=11)
    far, near = rule_agreement(points, kind)
    assert far == 1.0
    assert 0.6 < near < 0.9  # about 30% of the band flipped


@pytest.mark.parametrize("kind", ["linear", "curve"])
def test_tutorial_files_follow_the_same_rule(tutorial_data: Path, kind: str) -> None:
    points = parse_points_csv((tutorial_data / f"{kind}.csv").read_bytes(), 1000)
    far, _ = rule_agreement(points, kind)
    assert far == 1.0


def test_tutorial_csv_format_round_trips_byte_for_byte(tutorial_data: Path) -> None:
    for name in ("linear", "curve", "random"):
        original = (tutorial_data / f"{name}.csv").read_text()
        assert format_points_csv(parse_points_csv(original.encode(), 1000)) == original


def test_random_labels_are_balanced_and_unrelated_to_position() -> None:
    points = datagen.generate("random", 20_000, seed=5)
    assert 0.48 < points[:, 2].mean() < 0.52
    far, _ = rule_agreement(points, "curve")
    assert 0.45 < far < 0.55


@pytest.mark.parametrize("kind", sorted(datagen.KINDS))
def test_every_kind_is_seeded_in_the_unit_square_with_both_labels(kind: str) -> None:
    a = datagen.generate(kind, 500, seed=3)
    assert np.array_equal(a, datagen.generate(kind, 500, seed=3))
    assert not np.array_equal(a, datagen.generate(kind, 500, seed=4))
    assert a.shape == (500, 3)
    assert a[:, :2].min() >= 0.0
    assert a[:, :2].max() <= 1.0
    assert set(np.unique(a[:, 2])) == {0.0, 1.0}


@pytest.mark.parametrize("kind", sorted(datagen.KINDS))
def test_even_two_points_have_both_labels(kind: str) -> None:
    for seed in range(30):
        points = datagen.generate(kind, 2, seed=seed)
        assert sorted(points[:, 2]) == [0.0, 1.0]


def test_circle_xor_and_gauss_follow_the_rules_their_descriptions_give() -> None:
    # Without jitter, the labels are the described rule exactly.
    x, y, label = datagen.generate("circle", 5000, 0.0, seed=1).T
    assert np.array_equal(label == 1, (x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.3**2)  # radius 0.3
    x, y, label = datagen.generate("xor", 5000, 0.0, seed=1).T
    top_left, bottom_right = (x < 0.5) & (y > 0.5), (x > 0.5) & (y < 0.5)
    assert np.array_equal(label == 1, top_left | bottom_right)
    # Two blobs, label 0 around (0.3, 0.3) and label 1 around (0.7, 0.7), with the default jitter.
    x, y, label = datagen.generate("gauss", 20_000, seed=1).T
    for value, centre in ((0, 0.3), (1, 0.7)):
        mine = label == value
        assert abs(x[mine].mean() - centre) < 0.01
        assert abs(y[mine].mean() - centre) < 0.01
