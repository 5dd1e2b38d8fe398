"""Pictures as PNG bytes, drawn with matplotlib's object API on the Agg canvas (thread-safe)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
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

LABEL_COLOURS = ("red", "blue")  # the tutorial's dump_points: label 0 red, label 1 blue


def _png(figure: Figure, dpi: int) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render_points_png(points: Points, title: str, *, dpi: int = 100) -> bytes:
    """The tutorial's scatter of a dataset: label 0 red, label 1 blue, axes labelled."""
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot()
    for label, colour in enumerate(LABEL_COLOURS):
        chosen = points[points[:, 2] == label]
        axes.scatter(chosen[:, 0], chosen[:, 1], c=colour, s=12, label=f"label {label}")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title)
    axes.legend(loc="upper right")
    figure.tight_layout()
    return _png(figure, dpi)


@dataclass(frozen=True)
class PictureSize:
    width: int = 800  # pixels
    height: int = 700
    dpi: int = 100

    def figsize(self) -> tuple[float, float]:
        return self.width / self.dpi, self.height / self.dpi


def render_boundary_png(
    grid: ProbabilityGrid,
    points: Points,
    probabilities: NDArray[np.float64],
    title: str,
    size: PictureSize = PictureSize(),
) -> bytes:
    """The probability field, the 0.5 contour, the points by label, the mistakes marked."""
    figure = Figure(figsize=size.figsize())
    axes = figure.add_subplot()
    field = axes.pcolormesh(
        grid.xs,
        grid.ys,
        grid.probabilities,
        cmap="RdBu",
        vmin=0.0,
        vmax=1.0,
        alpha=0.55,
        shading="auto",
    )
    figure.colorbar(field, ax=axes, label="P(label 1)")
    if grid.probabilities.min() < 0.5 < grid.probabilities.max():
        axes.contour(
            grid.xs, grid.ys, grid.probabilities, levels=[0.5], colors="black", linewidths=1.5
        )
    labels = points[:, 2]
    for label, colour in enumerate(LABEL_COLOURS):
        chosen = points[labels == label]
        axes.scatter(
            chosen[:, 0],
            chosen[:, 1],
            c=colour,
            s=14,
            edgecolors="white",
            linewidths=0.4,
            label=f"label {label}",
        )
    wrong = points[(probabilities > 0.5) != (labels == 1)]
    if len(wrong):
        axes.scatter(
            wrong[:, 0],
            wrong[:, 1],
            marker="o",
            s=70,
            facecolors="none",
            edgecolors="gold",
            linewidths=1.6,
            label=f"misclassified ({len(wrong)})",
        )
    axes.set_xlim(grid.xs[0], grid.xs[-1])
    axes.set_ylim(grid.ys[0], grid.ys[-1])
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper right", fontsize=8, framealpha=0.85)
    figure.tight_layout()
    return _png(figure, size.dpi)


def render_tutorial_boundary_png(
    xy: NDArray[np.float64],
    predicted: NDArray[np.float64],
    title: str,
    size: PictureSize = PictureSize(600, 600),
) -> bytes:
    """The tutorial's picture: random points in [0, 1]² coloured by predicted class."""
    figure = Figure(figsize=size.figsize())
    axes = figure.add_subplot()
    for label, colour in enumerate(LABEL_COLOURS):
        chosen = xy[predicted == label]
        axes.scatter(chosen[:, 0], chosen[:, 1], c=colour, s=8)
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    return _png(figure, size.dpi)


def render_loss_png(
    epochs: NDArray[np.float64],
    losses: NDArray[np.float64],
    val_losses: NDArray[np.float64] | None,
    title: str,
    *,
    log_scale: bool = False,
    size: PictureSize = PictureSize(800, 500),
) -> bytes:
    figure = Figure(figsize=size.figsize())
    axes = figure.add_subplot()
    axes.plot(epochs, losses, color="tab:blue", linewidth=1.2, label="training loss")
    if val_losses is not None:
        axes.plot(epochs, val_losses, color="tab:orange", linewidth=1.2, label="validation loss")
        axes.legend(loc="upper right")
    if log_scale:
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("binary cross-entropy")
    axes.set_title(title, fontsize=10)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    return _png(figure, size.dpi)


def png_frames_to_gif(frames: list[bytes], frame_ms: int = 400) -> bytes:
    """An animated GIF from PNG frames, the last one held longer."""
    images = [Image.open(io.BytesIO(frame)).convert("RGB") for frame in frames]
    palette = [image.quantize(colors=255, method=Image.Quantize.MEDIANCUT) for image in images]
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(palette) - 1) + [frame_ms * 4]
    palette[0].save(
        buffer, format="GIF", save_all=True, append_images=palette[1:], duration=durations, loop=0
    )
    return buffer.getvalue()


TUTORIAL_BOUNDARY_POINTS = 1000


def render_model_boundary_png(
    model: TrainedModel, points: Points, name: str, size: PictureSize = PictureSize()
) -> bytes:
    """A trained model's boundary over its data, titled with epoch, loss and accuracy."""
    grid = probability_grid(model.module, padded_bounds(points))
    probabilities = predict_probabilities(model.module, points[:, :2])
    loss, accuracy = evaluate(model.module, points)
    title = f"{name}\nepoch {model.epoch}, loss {loss:.4g}, accuracy {accuracy:.1%}"
    return render_boundary_png(grid, points, probabilities, title, size)


def render_model_tutorial_png(
    model: TrainedModel, name: str, size: PictureSize = PictureSize(600, 600)
) -> bytes:
    """The tutorial's boundary picture: 1000 random points (fixed seed) by predicted class."""
    xy = np.random.default_rng(0).random((TUTORIAL_BOUNDARY_POINTS, 2))
    predicted = (predict_probabilities(model.module, xy) > 0.5).astype(np.float64)
    return render_tutorial_boundary_png(xy, predicted, f"{name}, epoch {model.epoch}", size)
