"""The pictures' layout and titles, checked on the matplotlib figures before they are PNGs."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from app.core.config import PROJECT_ROOT
from app.ml.architectures import COMPLEX, build_network
from app.ml.inference import TrainedModel
from app.ml.plots import (
    RunNumbers,
    model_boundary_figure,
    tutorial_boundary_figure,
)
from app.ml.points_csv import parse_points_csv

POINTS = parse_points_csv((PROJECT_ROOT / "data" / "curve.csv").read_bytes(), 1000)


def untrained(seed: int = 0) -> TrainedModel:
    torch.manual_seed(seed)
    module = build_network(COMPLEX).eval()
    return TrainedModel(COMPLEX, module, 0)


def legend_clear_of_the_data(figure: Figure) -> bool:
    canvas = FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    renderer = canvas.get_renderer()  # type: ignore[no-untyped-call]
    (axes, *_) = figure.axes
    assert figure.legends, "no legend"
    data_area = axes.get_window_extent(renderer)
    return (
        not any(legend.get_window_extent(renderer).overlaps(data_area) for legend in figure.legends)
        and not axes.get_legend()
    )


def test_boundary_legend_sits_outside_the_data_area() -> None:
    figure = model_boundary_figure(untrained(), POINTS, "complex on curve")
    assert legend_clear_of_the_data(figure)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "label 0" in labels
    assert "label 1" in labels


def test_tutorial_picture_has_a_legend_naming_each_colour_outside_the_data() -> None:
    xy = np.random.default_rng(0).random((100, 2))
    predicted = (xy[:, 1] > 0.5).astype(np.float64)
    figure = tutorial_boundary_figure(xy, predicted, "complex on curve, epoch 0")
    assert legend_clear_of_the_data(figure)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["predicted label 0", "predicted label 1"]


def test_title_shows_the_runs_own_loss_and_which_split() -> None:
    validation = np.zeros(len(POINTS), dtype=bool)
    validation[:40] = True
    numbers = RunNumbers(loss=0.0123456, loss_epoch=20000, val_loss=0.25, validation=validation)
    model = untrained()
    model = TrainedModel(model.network, model.module, 20001)
    title = model_boundary_figure(model, POINTS, "complex on curve", numbers=numbers)
    text = title.axes[0].get_title()
    assert "epoch 20001" in text
    assert "training loss 0.01235 (160 points, log's epoch 20000)" in text
    assert "validation loss 0.25 (40 points)" in text
    assert f"on all {len(POINTS)} points" in text
    labels = [t.get_text() for t in title.legends[0].get_texts()]
    assert "label 0 (validation)" in labels
    assert "label 1 (validation)" in labels


def test_title_without_run_numbers_says_the_loss_is_on_all_points() -> None:
    text = model_boundary_figure(untrained(), POINTS, "x").axes[0].get_title()
    assert f"on all {len(POINTS)} points" in text
    assert "training" not in text
