"""Decoding pictures the service returns, with Pillow (installed with matplotlib)."""

from __future__ import annotations

import io

from PIL import Image


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


def has_tutorial_red_and_blue(image: Image.Image) -> bool:
    """Label 0 red and label 1 blue, as the tutorial draws them."""
    colours = rgb_colours(image)
    red = any(r > 200 and g < 60 and b < 60 for r, g, b in colours)
    blue = any(b > 200 and r < 60 and g < 60 for r, g, b in colours)
    return red and blue
