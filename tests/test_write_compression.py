"""Image sequences are written with a fast PNG level: lossless all the same."""

from __future__ import annotations

import numpy as np

from sepconv.imageio import FAST_PNG_COMPRESSION, read_image, write_image


def test_fast_png_level_is_lossless_and_larger(tmp_path) -> None:
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.random((12, 16, 3)), 8, axis=0), 8, axis=1)
    frame = np.round(smooth * 255) / 255
    fast, default = tmp_path / "fast.png", tmp_path / "default.png"
    write_image(fast, frame.astype(np.float32), png_compression=FAST_PNG_COMPRESSION)
    write_image(default, frame.astype(np.float32))
    fast_pixels, _ = read_image(fast)
    default_pixels, _ = read_image(default)
    assert np.array_equal(fast_pixels, default_pixels)
    assert fast.stat().st_size > default.stat().st_size
