"""Synthetic labelled points in [0, 1]², including the tutorial's three data sets.

Every generator is a pure function of (n, noise, seed): the same arguments give the same points.
`noise` means, per kind:
- linear, curve: the probability that a label within 0.1 of the boundary is flipped (tutorial: 0.3);
- circle, xor, gauss, spiral, moons: the standard deviation of the Gaussian jitter of each point;
- random: nothing (labels are already random).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.vocabulary import PointsRule

Points = NDArray[np.float64]  # shape (n, 3): x, y, label in {0.0, 1.0}

BAND = 0.1  # half-width of the tutorial's noisy band around the boundary


def _band_flip(
    rng: np.random.Generator,
    y: NDArray[np.float64],
    boundary: NDArray[np.float64],
    flip_probability: float,
) -> NDArray[np.float64]:
    label = (y > boundary).astype(np.float64)
    near = np.abs(y - boundary) < BAND
    flip = near & (rng.random(len(y)) < flip_probability)
    return np.where(flip, 1.0 - label, label)


def _stack(x: NDArray[np.float64], y: NDArray[np.float64], label: NDArray[np.float64]) -> Points:
    return np.column_stack([x, y, label]).astype(np.float64)


def linear_boundary(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The tutorial's linear rule: label 1 above this line."""
    return 0.8 * x + 0.1


def curve_boundary(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The tutorial's curve rule, without its noise: label 1 above this curve."""
    boundary: NDArray[np.float64] = (
        0.3 * np.sin(10 * x) + 0.2 * np.cos(15 * x) + 0.1 * np.sin(20 * x) + 0.5
    )
    return boundary


def linear(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Label 1 above y = 0.8x + 0.1."""
    x, y = rng.random(n), rng.random(n)
    return _stack(x, y, _band_flip(rng, y, linear_boundary(x), noise))


def curve(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Label 1 above y = 0.3 sin(10x) + 0.2 cos(15x) + 0.1 sin(20x) + 0.5, a noisy boundary."""
    x, y = rng.random(n), rng.random(n)
    boundary = curve_boundary(x) + rng.normal(0.0, 0.02, n)
    return _stack(x, y, _band_flip(rng, y, boundary, noise))


def random_labels(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Uniform points with labels drawn at random: a model can only memorise them."""
    x, y = rng.random(n), rng.random(n)
    return _stack(x, y, rng.integers(0, 2, n).astype(np.float64))


def _jitter(
    rng: np.random.Generator, values: NDArray[np.float64], noise: float
) -> NDArray[np.float64]:
    return np.clip(values + rng.normal(0.0, noise, len(values)), 0.0, 1.0)


def circle(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Label 1 inside a circle of radius 0.3 around the centre."""
    x, y = rng.random(n), rng.random(n)
    label = ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.3**2).astype(np.float64)
    return _stack(_jitter(rng, x, noise), _jitter(rng, y, noise), label)


def xor(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Label 1 in the top-left and bottom-right quadrants."""
    x, y = rng.random(n), rng.random(n)
    label = ((x > 0.5) != (y > 0.5)).astype(np.float64)
    return _stack(_jitter(rng, x, noise), _jitter(rng, y, noise), label)


def gauss(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Two Gaussian blobs, label 0 around (0.3, 0.3) and label 1 around (0.7, 0.7)."""
    label = (np.arange(n) % 2).astype(np.float64)
    rng.shuffle(label)
    centre = 0.3 + 0.4 * label
    return _stack(_jitter(rng, centre, noise), _jitter(rng, centre, noise), label)


def spiral(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Two interleaved spiral arms, one per label."""
    label = (np.arange(n) % 2).astype(np.float64)
    rng.shuffle(label)
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    radius = t / (3 * np.pi) * 0.45
    angle = t + np.pi * label
    return _stack(
        _jitter(rng, 0.5 + radius * np.cos(angle), noise),
        _jitter(rng, 0.5 + radius * np.sin(angle), noise),
        label,
    )


def moons(n: int, noise: float, rng: np.random.Generator) -> Points:
    """Two interleaving half circles, as scikit-learn's make_moons, scaled into the unit square."""
    label = (np.arange(n) % 2).astype(np.float64)
    rng.shuffle(label)
    t = rng.random(n) * np.pi
    x = np.where(label == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(label == 0, np.sin(t), 0.5 - np.sin(t))
    # make_moons spans x in [-1, 2], y in [-0.5, 1]: map that box into [0.1, 0.9]².
    return _stack(
        _jitter(rng, 0.1 + (x + 1) / 3 * 0.8, noise),
        _jitter(rng, 0.1 + (y + 0.5) / 1.5 * 0.8, noise),
        label,
    )


@dataclass(frozen=True)
class Kind:
    generate: Callable[[int, float, np.random.Generator], Points]
    default_noise: float
    description: str


KINDS: dict[PointsRule, Kind] = {
    PointsRule.LINEAR: Kind(
        linear, 0.3, "the tutorial's linear.csv rule: label 1 above y = 0.8x + 0.1"
    ),
    PointsRule.CURVE: Kind(curve, 0.3, "the tutorial's curve.csv rule: a wavy sine boundary"),
    PointsRule.RANDOM: Kind(random_labels, 0.0, "the tutorial's random.csv rule: random labels"),
    PointsRule.CIRCLE: Kind(circle, 0.02, "label 1 inside a circle of radius 0.3"),
    PointsRule.XOR: Kind(xor, 0.02, "label 1 in two opposite quadrants"),
    PointsRule.GAUSS: Kind(gauss, 0.1, "two Gaussian blobs"),
    PointsRule.SPIRAL: Kind(spiral, 0.02, "two interleaved spirals"),
    PointsRule.MOONS: Kind(moons, 0.03, "two interleaving half circles"),
}


def generate(kind: str, n: int, noise: float | None = None, seed: int = 0) -> Points:
    """n >= 2 points with both labels present: a draw with a single label (likely only for a
    handful of points) is drawn again from a stream derived from the same seed."""
    spec = KINDS[PointsRule(kind)]
    noise = spec.default_noise if noise is None else noise
    for attempt in range(1000):
        rng = np.random.default_rng(seed if attempt == 0 else [seed, attempt])
        points = spec.generate(n, noise, rng)
        if 0 < points[:, 2].sum() < n:
            return points
    raise ValueError(f"{kind}: no draw of {n} points with both labels")


# The tutorial's files, regenerated by this module's rules with fixed seeds.
BUILTIN_DATASETS: dict[PointsRule, dict[str, int | float]] = {
    PointsRule.LINEAR: {"n": 200, "seed": 1, "noise": 0.3},
    PointsRule.CURVE: {"n": 200, "seed": 2, "noise": 0.3},
    PointsRule.RANDOM: {"n": 200, "seed": 3, "noise": 0.0},
}
