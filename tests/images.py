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
