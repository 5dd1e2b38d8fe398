"""Pictures as PNG bytes, drawn with matplotlib's object API on the Agg canvas (thread-safe)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from numpy.typing import NDArray
from PIL import Image

from app.ml.datagen import Points
from app.ml.inference import (
    ProbabilityGrid,
    TrainedModel,
    evaluate,
    padded_bounds,
    predict_probabilities,
    probability_grid,
)
from app.vocabulary import FIELD_RAMP, LABEL_COLOURS, LossFunction

LABEL_MARKERS = ("o", "s")  # label 0 circles, label 1 squares, as the pages draw them
FIELD_COLOURS = LinearSegmentedColormap.from_list(
    "label_field", list(zip((0.0, 0.5, 1.0), FIELD_RAMP, strict=True))
)


LOSS_NAMES = {
    LossFunction.BCE: "binary cross-entropy",
    LossFunction.MSE: "squared error of P(label 1)",
}


def _png(figure: Figure, dpi: int) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _legend_below(figure: Figure, axes: Axes, columns: int) -> None:
    """The legend under the plot, never over the data."""
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=columns, fontsize=8)


def _scatter_by_label(
    xy: NDArray[np.float64],
    labels: NDArray[np.float64],
    title: str,
    size: PictureSize,
    *,
    dot: float,
    legend: str,
    fontsize: float | None = None,
) -> Figure:
    """The tutorial's scatter: label 0 red, label 1 blue (`legend` names them, with {label}
    and {count}), axes labelled, the legend below."""
    figure = Figure(figsize=size.figsize(), layout="constrained")
    axes = figure.add_subplot()
    for label, colour in enumerate(LABEL_COLOURS):
        chosen = xy[labels == label]
        axes.scatter(
            chosen[:, 0],
            chosen[:, 1],
            c=colour,
            marker=LABEL_MARKERS[label],
            s=dot,
            label=legend.format(label=label, count=len(chosen)),
        )
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title, fontsize=fontsize)
    _legend_below(figure, axes, 2)
    return figure


def render_points_png(points: Points, title: str, *, dpi: int = 100) -> bytes:
    """The tutorial's scatter of a dataset."""
    figure = _scatter_by_label(
        points, points[:, 2], title, TUTORIAL_PICTURE, dot=12, legend="label {label} ({count})"
    )
    return _png(figure, dpi)


@dataclass(frozen=True)
class PictureSize:
    width: int  # pixels
    height: int
    dpi: int = 100

    def figsize(self) -> tuple[float, float]:
        return self.width / self.dpi, self.height / self.dpi


# The tutorial's square picture, with room for the legend below it.
TUTORIAL_PICTURE = PictureSize(600, 640)
BOUNDARY_PICTURE = PictureSize(800, 760)
LOSS_PICTURE = PictureSize(800, 500)
GIF_FRAME = PictureSize(560, 480, 80)
# The sides a picture may be asked for, in pixels; an animation's frames are smaller, so that
# one animation's memory is bounded.
MIN_SIDE, MAX_SIDE, MAX_GIF_SIDE = 200, 3000, 1000


@dataclass(frozen=True)
class RunNumbers:
    """What a run itself recorded at a checkpoint, for a picture's title, and its split."""

    loss: float  # the training loss from the run's history
    loss_epoch: int  # the history epoch it comes from (the log's `Epoch n`)
    val_loss: float | None
    validation: NDArray[np.bool_]  # True for each held-out point


def _numbers_line(numbers: RunNumbers | None, n: int, loss: float, accuracy: float) -> str:
    """The run's own losses at the checkpoint where it has them, else `loss` on all points."""
    if numbers is None:
        return f"loss {loss:.4g} on all {n} points, accuracy {accuracy:.1%}"
    held_out = int(numbers.validation.sum())
    line = f"training loss {numbers.loss:.4g} ({n - held_out} points, log's epoch {numbers.loss_epoch})"
    if held_out:
        val = "n/a" if numbers.val_loss is None else f"{numbers.val_loss:.4g}"
        line += f", validation loss {val} ({held_out} points)"
    return f"{line}\naccuracy {accuracy:.1%} on all {n} points"


def _draw_field(axes: Axes, grid: ProbabilityGrid, *, linewidth: float) -> QuadMesh:
    """The probability field in its tints and, where it crosses 0.5, the boundary."""
    field = axes.pcolormesh(
        grid.xs,
        grid.ys,
        grid.probabilities,
        cmap=FIELD_COLOURS,
        vmin=0.0,
        vmax=1.0,
        shading="auto",
        rasterized=True,
    )
    if grid.probabilities.min() < 0.5 < grid.probabilities.max():
        axes.contour(
            grid.xs, grid.ys, grid.probabilities, levels=[0.5], colors="black", linewidths=linewidth
        )
    return field


def boundary_figure(
    grid: ProbabilityGrid,
    points: Points,
    probabilities: NDArray[np.float64],
    title: str,
    size: PictureSize = BOUNDARY_PICTURE,
    validation: NDArray[np.bool_] | None = None,
) -> Figure:
    """The probability field, the 0.5 contour, the points by label (validation points hollow),
    the mistakes ringed; the legend below the plot."""
    figure = Figure(figsize=size.figsize(), layout="constrained")
    axes = figure.add_subplot()
    field = _draw_field(axes, grid, linewidth=1.5)
    figure.colorbar(field, ax=axes, label="P(label 1)", shrink=0.85)
    if grid.probabilities.min() < 0.5 < grid.probabilities.max():
        axes.plot([], [], color="black", linewidth=1.5, label="boundary, P = 0.5")
    labels = points[:, 2]
    held_out = validation if validation is not None else np.zeros(len(points), dtype=bool)
    for label, colour in enumerate(LABEL_COLOURS):
        for validating in (False, True):
            chosen = points[(labels == label) & (held_out == validating)]
            if validating and not len(chosen):
                continue
            axes.scatter(
                chosen[:, 0],
                chosen[:, 1],
                marker=LABEL_MARKERS[label],
                s=22 if validating else 16,
                c="white" if validating else colour,
                edgecolors=colour if validating else "white",
                linewidths=1.2 if validating else 0.4,
                label=f"label {label}" + (" (validation)" if validating else ""),
            )
    wrong = points[(probabilities > 0.5) != (labels == 1)]
    if len(wrong):
        axes.scatter(
            wrong[:, 0],
            wrong[:, 1],
            marker="o",
            s=80,
            facecolors="none",
            edgecolors="black",
            linewidths=1.0,
            linestyle="--",
            label=f"misclassified ({len(wrong)})",
        )
    axes.set_xlim(grid.xs[0], grid.xs[-1])
    axes.set_ylim(grid.ys[0], grid.ys[-1])
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title, fontsize=9)
    _legend_below(figure, axes, 3)
    return figure


def tutorial_boundary_figure(
    xy: NDArray[np.float64],
    predicted: NDArray[np.float64],
    title: str,
    size: PictureSize = TUTORIAL_PICTURE,
) -> Figure:
    """The tutorial's picture: random points in [0, 1]² coloured by predicted class."""
    return _scatter_by_label(
        xy, predicted, title, size, dot=8, legend="predicted label {label}", fontsize=10
    )


def render_loss_png(
    epochs: NDArray[np.float64],
    losses: NDArray[np.float64],
    val_losses: NDArray[np.float64] | None,
    title: str,
    *,
    log_scale: bool = False,
    size: PictureSize = LOSS_PICTURE,
    loss: LossFunction = LossFunction.BCE,
) -> bytes:
    figure = Figure(figsize=size.figsize(), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(epochs, losses, color="tab:blue", linewidth=1.2, label="training loss")
    if val_losses is not None:
        axes.plot(epochs, val_losses, color="tab:orange", linewidth=1.2, label="validation loss")
        _legend_below(figure, axes, 2)
    _loss_axes(axes, title, log_scale=log_scale, loss=loss)
    return _png(figure, size.dpi)


def _loss_axes(axes: Axes, title: str, *, log_scale: bool, loss: LossFunction) -> None:
    """What every loss picture's axes say: epoch across, the loss by its name up."""
    if log_scale:
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel(LOSS_NAMES[loss])
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)


def png_frames_to_gif(frames: list[bytes], frame_ms: int = 400) -> bytes:
    """An animated GIF from PNG frames, the last one held longer. Each frame is decoded and
    reduced to its palette (a byte a pixel) before the next: one RGB frame at a time."""
    palette = []
    for frame in frames:
        with Image.open(io.BytesIO(frame)) as image:
            rgb = image.convert("RGB")
        palette.append(rgb.quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(palette) - 1) + [frame_ms * 4]
    palette[0].save(
        buffer, format="GIF", save_all=True, append_images=palette[1:], duration=durations, loop=0
    )
    return buffer.getvalue()


TUTORIAL_BOUNDARY_POINTS = 1000


def render_model_boundary_png(
    model: TrainedModel,
    points: Points,
    name: str,
    size: PictureSize = BOUNDARY_PICTURE,
    numbers: RunNumbers | None = None,
) -> bytes:
    return _png(model_boundary_figure(model, points, name, size, numbers), size.dpi)


def model_boundary_figure(
    model: TrainedModel,
    points: Points,
    name: str,
    size: PictureSize = BOUNDARY_PICTURE,
    numbers: RunNumbers | None = None,
) -> Figure:
    """A trained model's boundary over its data, titled with its epoch and the run's own loss
    (which split it is on), or, without `numbers`, the loss on all the points."""
    grid = probability_grid(model.module, padded_bounds(points))
    probabilities = predict_probabilities(model.module, points[:, :2])
    data = torch.as_tensor(points, dtype=torch.float32)
    loss, accuracy = evaluate(model.module, data, model.loss)
    title = f"{name}, epoch {model.epoch}\n{_numbers_line(numbers, len(points), loss, accuracy)}"
    validation = numbers.validation if numbers is not None else None
    return boundary_figure(grid, points, probabilities, title, size, validation)


def render_model_tutorial_png(
    model: TrainedModel, name: str, size: PictureSize = TUTORIAL_PICTURE
) -> bytes:
    """The tutorial's boundary picture: 1000 random points (fixed seed) by predicted class."""
    xy = np.random.default_rng(0).random((TUTORIAL_BOUNDARY_POINTS, 2))
    predicted = (predict_probabilities(model.module, xy) > 0.5).astype(np.float64)
    figure = tutorial_boundary_figure(xy, predicted, f"{name}, epoch {model.epoch}", size)
    return _png(figure, size.dpi)


# What a sweep's pictures say where a run has nothing to draw.
WAITING = "waiting for\nits first checkpoint"
NEVER_TRAINED = "no checkpoint:\nit ended before one"
NO_LOSS_YET = "waiting for the first loss"


@dataclass(frozen=True)
class Panel:
    """One run in a sweep's picture."""

    title: str
    grid: ProbabilityGrid | None  # None: no checkpoint (yet)
    points: Points
    empty: str = WAITING  # what the panel says without a checkpoint


def render_small_multiples_png(
    panels: list[Panel], columns: int, title: str, *, dpi: int = 90
) -> bytes:
    """Each run's decision boundary in a small panel, `columns` a row, titled with its values."""
    rows = max(1, -(-len(panels) // columns))
    # At least wide enough for the heading, however few the columns.
    figure = Figure(figsize=(max(2.3 * columns, 5.5), 2.45 * rows + 0.5), layout="constrained")
    figure.suptitle(title, fontsize=10)
    grid_of_axes = figure.subplots(rows, columns, squeeze=False)
    for axes, panel in zip(grid_of_axes.flat, panels, strict=False):
        axes.set_title(panel.title, fontsize=6.5)
        axes.set_xticks([])
        axes.set_yticks([])
        if panel.grid is None:
            # Nothing learned to show yet: the data alone would read as a model that drew
            # no boundary.
            axes.text(
                0.5,
                0.5,
                panel.empty,
                transform=axes.transAxes,
                ha="center",
                va="center",
                fontsize=8,
            )
            continue
        _draw_field(axes, panel.grid, linewidth=1.2)
        for label, colour in enumerate(LABEL_COLOURS):
            chosen = panel.points[panel.points[:, 2] == label]
            axes.scatter(
                chosen[:, 0], chosen[:, 1], c=colour, marker=LABEL_MARKERS[label], s=3, linewidths=0
            )
    for axes in list(grid_of_axes.flat)[len(panels) :]:
        axes.axis("off")
    return _png(figure, dpi)


def render_losses_png(
    curves: list[tuple[str, NDArray[np.float64], NDArray[np.float64]]],
    colour_by: str,
    title: str,
    *,
    log_scale: bool = True,
    loss: LossFunction = LossFunction.BCE,
    size: PictureSize = LOSS_PICTURE,
) -> bytes:
    """Loss curves overlaid, one colour per value of the `colour_by` axis (the label of each
    curve), the legend naming them."""
    figure = Figure(figsize=size.figsize(), layout="constrained")
    axes = figure.add_subplot()
    labels = list(dict.fromkeys(label for label, _, _ in curves))
    colours = colormaps["viridis"](np.linspace(0.0, 0.75, max(len(labels), 1)))  # no pale yellow
    shown: set[str] = set()
    for label, epochs, losses in curves:
        colour = colours[labels.index(label)]
        first = label not in shown
        shown.add(label)
        axes.plot(
            epochs, losses, color=colour, linewidth=1.0, alpha=0.8, label=label if first else None
        )
    if not curves:
        axes.text(0.5, 0.5, NO_LOSS_YET, transform=axes.transAxes, ha="center", va="center")
    _loss_axes(axes, title, log_scale=log_scale, loss=loss)
    handles, names = axes.get_legend_handles_labels()
    figure.legend(handles, names, title=colour_by, loc="outside right upper", fontsize=7)
    return _png(figure, size.dpi)
