"""Pictures as PNG bytes, drawn with matplotlib's object API on the Agg canvas (thread-safe)."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from app.ml.datagen import Points

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
