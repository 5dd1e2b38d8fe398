"""Verdicts on constructed histories, and on real training of the tutorial's networks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ml.engine import train
from app.ml.verdicts import constant_loss, judge
from app.vocabulary import LossFunction, Verdict
from tests.ml.training import CPU, Recorder, config, points

LN2 = math.log(2)


def test_the_yardstick_is_the_constant_predictions_loss() -> None:
    assert constant_loss(0.5, LossFunction.BCE) == pytest.approx(LN2)
    assert constant_loss(0.5, LossFunction.MSE) == pytest.approx(0.25)
    assert constant_loss(0.9, LossFunction.BCE) < LN2  # unbalanced labels: easier to guess
    assert constant_loss(1.0, LossFunction.BCE) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("losses", "val_losses", "diverged_at", "verdict", "number"),
    [
        ([0.69, 0.3, 0.01], None, None, Verdict.LEARNED, 0.01),
        ([0.69, 0.5, 0.46], None, None, Verdict.UNDERFIT, 0.46 / LN2),
        ([0.70, 0.69, 0.6931], None, None, Verdict.STUCK, 0.6931 / LN2),
        ([0.69, 0.5, 0.4], None, 3, Verdict.DIVERGED, 3.0),
        ([0.69, 1.6, 0.5, 1.4, 0.9, 1.2], None, None, Verdict.DIVERGED, 1.2 / 0.69),
        ([0.69, math.nan], None, None, Verdict.DIVERGED, 1.0),
        ([0.69, 0.2, 0.05, 0.01], [0.7, 0.3, 0.35, 0.5], None, Verdict.OVERFIT, 0.5 / 0.3),
        # Validation rising with the training loss rising too is not overfitting.
        ([0.69, 0.2, 0.25, 0.3], [0.7, 0.3, 0.35, 0.5], None, Verdict.UNDERFIT, 0.3 / LN2),
        ([0.69, 0.2, 0.05, 0.01], [0.7, 0.3, 0.31, 0.32], None, Verdict.LEARNED, 0.01),
    ],
)
def test_verdicts_on_constructed_histories(
    losses: list[float],
    val_losses: list[float | None] | None,
    diverged_at: int | None,
    verdict: Verdict,
    number: float,
) -> None:
    judgement = judge(losses, 0.5, val_losses=val_losses, diverged_at=diverged_at)
    assert judgement.verdict == verdict
    assert judgement.number == pytest.approx(number)
    assert judgement.reason


ABOVE, BELOW = 1 + 1e-9, 1 - 1e-6  # just past a threshold, and just short of it


@pytest.mark.parametrize(
    ("losses", "val_losses", "verdict"),
    [
        # docs/sweeps.md, at each threshold: stuck at least 0.97 of ln 2 ...
        ([0.69, 0.5, 0.97 * LN2 * ABOVE], None, Verdict.STUCK),
        ([0.69, 0.5, 0.97 * LN2 * BELOW], None, Verdict.UNDERFIT),
        # ... underfit over 0.35 of it ...
        ([0.69, 0.5, 0.35 * LN2 * ABOVE], None, Verdict.UNDERFIT),
        ([0.69, 0.5, 0.35 * LN2 * BELOW], None, Verdict.LEARNED),
        # ... diverged when the last tenth's mean is at least 1.05 times the first epoch's loss
        # (the last tenth of ten epochs is the last one) ...
        ([0.5] * 9 + [0.5 * 1.05 * ABOVE], None, Verdict.DIVERGED),
        ([0.5] * 9 + [0.5 * 1.05 * BELOW], None, Verdict.UNDERFIT),
        # ... overfit when the validation loss ends 1.2 times its best as the training loss fell.
        ([0.69, 0.2, 0.05, 0.01], [0.7, 0.3, 0.31, 0.36 * ABOVE], Verdict.OVERFIT),
        ([0.69, 0.2, 0.05, 0.01], [0.7, 0.3, 0.31, 0.36 * BELOW], Verdict.LEARNED),
    ],
)
def test_each_verdict_starts_at_the_threshold_the_docs_give(
    losses: list[float], val_losses: list[float | None] | None, verdict: Verdict
) -> None:
    assert judge(losses, 0.5, val_losses=val_losses).verdict == verdict


def test_a_run_with_no_epochs_has_no_verdict() -> None:
    with pytest.raises(ValueError, match="no verdict yet"):
        judge([], 0.5)


def history(data_name: str, **values: object) -> tuple[list[float], float, int | None]:
    data = points(data_name)
    recorder = Recorder()
    result = train(config(**values), data, CPU, recorder)  # type: ignore[arg-type]
    return recorder.losses, float(np.mean(data[:, 2])), result.diverged_at


def test_the_tutorials_networks_get_the_verdicts_the_exercise_expects() -> None:
    losses, share, diverged = history(
        "curve", architecture="simple", epochs=3000, learning_rate=0.05
    )
    assert judge(losses, share, diverged_at=diverged).verdict == Verdict.UNDERFIT
    losses, share, diverged = history("curve", epochs=2000, learning_rate=0.01, seed=3)
    assert judge(losses, share, diverged_at=diverged).verdict == Verdict.LEARNED
    losses, share, diverged = history(
        "curve", architecture="simple", epochs=300, optimizer="sgd", learning_rate=10.0
    )
    # The convex model settles into a two-step oscillation above its optimum: still too weak.
    assert judge(losses, share, diverged_at=diverged).verdict == Verdict.UNDERFIT
    # The tutorial's network at that rate: its loss ends above where it started.
    losses, share, diverged = history("curve", epochs=300, optimizer="sgd", learning_rate=10.0)
    assert judge(losses, share, diverged_at=diverged).verdict in {Verdict.DIVERGED, Verdict.STUCK}
    losses, share, diverged = history("random", architecture="simple", epochs=500)
    assert judge(losses, share, diverged_at=diverged).verdict == Verdict.STUCK
