"""Decoding pictures the service returns, with Pillow (installed with matplotlib)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.colors import to_rgb
from PIL import Image

from app.ml.plots import FIELD_COLOURS
from app.vocabulary import LABEL_COLOURS


def decode_png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def rgb_colours(image: Image.Image) -> list[tuple[int, int, int]]:
    counted = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert counted is not None
    return [(c[0], c[1], c[2]) for _, c in counted if isinstance(c, tuple)]


def _rgb255(colour: str | tuple[float, float, float, float]) -> tuple[int, int, int]:
    red, green, blue = to_rgb(colour)
    return round(red * 255), round(green * 255), round(blue * 255)


def has_label_colours(image: Image.Image) -> bool:
    """Label 0 red and label 1 blue, as the tutorial draws them, in the service's shades."""
    colours = set(rgb_colours(image))
    return all(_rgb255(colour) in colours for colour in LABEL_COLOURS)


def has_field_tints(image: Image.Image, tolerance: int = 8) -> bool:
    """The probability field's two ends (P near 0: light red, P near 1: light blue)."""
    colours = rgb_colours(image)
    ends = [_rgb255(FIELD_COLOURS(0.0)), _rgb255(FIELD_COLOURS(1.0))]
    return all(
        any(all(abs(a - b) <= tolerance for a, b in zip(end, c, strict=True)) for c in colours)
        for end in ends
    )


def saturated_pixels(image: Image.Image, saturation: int = 128) -> int:
    """How many pixels are strongly coloured (HSV saturation over `saturation` of 255): the
    labels' markers are; the field's light tints, white, grey and black text are not."""
    hsv = np.asarray(image.convert("RGB").convert("HSV"))
    return int((hsv[:, :, 1] > saturation).sum())
