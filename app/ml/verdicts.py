"""What a run's loss history says about how it learned, for sweeps that answer the tutorial's
exercise: learned, underfit, stuck, diverged or overfit, each with the number that decided it.

The yardstick is the loss of the best constant prediction, the class balance itself (ln 2 for
binary cross-entropy on balanced labels): a network that cannot beat it learned nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.vocabulary import LossFunction, Verdict

# Final loss at or above this share of the constant prediction's: nothing was learned.
STUCK_SHARE = 0.97
# Final loss above this share of the constant prediction's: the model is too weak for the data
# (the tutorial's `simple` on `curve` ends at 0.67 of ln 2; on `linear`, at 0.25).
UNDERFIT_SHARE = 0.35
# The last tenth of the epochs this much above the first epoch's loss, on average: training made
# it worse (an oscillating loss that never becomes infinite, as SGD with a huge learning rate).
ROSE = 1.05
# Validation loss this much above its best, while the training loss went on falling: overfit.
OVERFIT_RISE = 1.2


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    number: float  # what decided it (see `reason`)
    reason: str


def constant_loss(positive_share: float, loss: LossFunction) -> float:
    """The loss of predicting the share of label-1 points everywhere: the best a network that
    ignores x and y can do."""
    p = min(max(positive_share, 1e-12), 1 - 1e-12)
    if loss == LossFunction.MSE:
        return p * (1 - p)
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def judge(
    losses: Sequence[float],
    positive_share: float,
    loss: LossFunction = LossFunction.BCE,
    *,
    val_losses: Sequence[float | None] | None = None,
    diverged_at: int | None = None,
) -> Judgement:
    """The verdict on one run's history (one training loss per epoch, validation losses
    beside them where a split was held out)."""
    if diverged_at is not None or any(not math.isfinite(value) for value in losses):
        epoch = (
            diverged_at
            if diverged_at is not None
            else next(index for index, value in enumerate(losses) if not math.isfinite(value))
        )
        return Judgement(Verdict.DIVERGED, float(epoch), "the epoch whose loss was not finite")
    if not losses:
        raise ValueError("a run with no epochs has no verdict yet")
    tail = losses[-max(1, len(losses) // 10) :]
    rose = (sum(tail) / len(tail)) / losses[0] if losses[0] > 0 else 0.0
    if rose >= ROSE:
        return Judgement(
            Verdict.DIVERGED,
            rose,
            "mean loss of the last tenth / the first epoch's (at least 1.05)",
        )
    baseline = constant_loss(positive_share, loss)
    share = losses[-1] / baseline
    if share >= STUCK_SHARE:
        return Judgement(
            Verdict.STUCK, share, "final loss / the constant prediction's (at least 0.97)"
        )
    seen = [(index, value) for index, value in enumerate(val_losses or []) if value is not None]
    if len(seen) >= 2:
        best_epoch, best = min(seen, key=lambda pair: pair[1])
        final_epoch, final = seen[-1]
        rise = final / best if best > 0 else math.inf
        if rise >= OVERFIT_RISE and losses[final_epoch] < losses[best_epoch]:
            return Judgement(
                Verdict.OVERFIT, rise, "final validation loss / its best (at least 1.2)"
            )
    if share > UNDERFIT_SHARE:
        return Judgement(
            Verdict.UNDERFIT, share, "final loss / the constant prediction's (over 0.35)"
        )
    return Judgement(Verdict.LEARNED, losses[-1], "final loss")
