"""The averaging and DIS optical-flow baselines."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import DATA_ROOT, needs_data, shifted_texture

from sepconv.baselines import average_predictor, make_flow_predictor
from sepconv.data.triplets import middlebury_triplets
from sepconv.engine.evaluate import evaluate
from sepconv.errors import SepconvError
from sepconv.metrics import psnr

MIDDLEBURY = DATA_ROOT / "middlebury"


def _shifted_texture(shift: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pytest.importorskip("cv2")
    return shifted_texture(shift)


def test_average_rounds_to_nearest_even() -> None:
    first = np.array([[[1, 2, 0]]], dtype=np.uint8)
    last = np.array([[[2, 3, 255]]], dtype=np.uint8)
    out = average_predictor(first, last)
    assert out.dtype == np.uint8
    assert out.tolist() == [[[2, 2, 128]]]  # 1.5 -> 2, 2.5 -> 2, 127.5 -> 128


def test_flow_beats_average_on_a_shift() -> None:
    first, middle, last = _shifted_texture()
    predict = make_flow_predictor()
    estimate = predict(first, last)
    assert estimate.dtype == np.uint8 and estimate.shape == middle.shape
    flow_psnr = psnr(middle, estimate)
    average_psnr = psnr(middle, average_predictor(first, last))
    assert flow_psnr > average_psnr + 10.0  # measured: 45.2 dB vs 27.6 dB
    # Away from the borders (where content enters the frame) the warp is near exact.
    assert psnr(middle[:, 8:-8], estimate[:, 8:-8]) > 45.0


def test_flow_on_a_static_frame_returns_it() -> None:
    first, _, _ = _shifted_texture()
    estimate = make_flow_predictor()(first, first)
    assert np.abs(estimate.astype(int) - first).max() <= 1


def test_flow_without_opencv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` raise ImportError
    with pytest.raises(SepconvError, match="pip install opencv-python-headless"):
        make_flow_predictor()


@needs_data("middlebury", "Venus")
def test_venus_scores() -> None:
    """The smallest Middlebury sequence: pins the metric convention on real data."""
    venus = [t for t in middlebury_triplets(MIDDLEBURY) if t.name == "Venus"]
    average = evaluate(average_predictor, venus)
    assert average.psnr == pytest.approx(25.07, abs=0.005)
    assert average.ie == pytest.approx(14.23, abs=0.005)
    pytest.importorskip("cv2")
    assert evaluate(make_flow_predictor(), venus).psnr > average.psnr + 8.0  # measured 34.55


def test_minterpolate_moves_with_the_motion() -> None:
    import shutil

    from sepconv.baselines import minterpolate_predictor

    if shutil.which("ffmpeg") is None:
        with pytest.raises(SepconvError, match="ffmpeg"):
            minterpolate_predictor(*_shifted_texture()[::2])
        return
    first, middle, last = _shifted_texture(shift=6)
    estimate = minterpolate_predictor(first, last)
    assert estimate.shape == middle.shape and estimate.dtype == np.uint8
    assert psnr(middle, estimate) > psnr(middle, average_predictor(first, last)) + 3.0
