"""Metrics against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sepconv.metrics import (
    ALIGN_MAX_SHIFT,
    global_shift,
    interpolation_error,
    psnr,
    shift_aligned,
    ssim,
    to_uint8,
)


def _frame(value: int, shape: tuple[int, int, int] = (16, 20, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


def _random(seed: int = 0, shape: tuple[int, int, int] = (16, 20, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_identical_frames() -> None:
    frame = _random()
    assert psnr(frame, frame.copy()) == math.inf
    assert interpolation_error(frame, frame.copy()) == 0.0
    assert ssim(frame, frame.copy()) == pytest.approx(1.0)


def test_constant_offset() -> None:
    truth, estimate = _frame(100), _frame(110)
    # MSE = 10^2 = 100 -> PSNR = 10 log10(255^2 / 100); IE = RMS = 10.
    assert psnr(truth, estimate) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(truth, estimate) == pytest.approx(28.1308, abs=1e-4)
    assert interpolation_error(truth, estimate) == pytest.approx(10.0)
    # Constant frames: no variance, SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1).
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(truth, estimate) == pytest.approx(expected, abs=1e-6)


def test_offset_on_part_of_the_pixels_and_channels() -> None:
    truth = _frame(50)
    estimate = truth.copy()
    estimate[:8, :, 0] = 70  # half the rows of one channel: 1/2 * 1/3 = 1/6 of the values
    mse = 20**2 / 6
    assert interpolation_error(truth, estimate) == pytest.approx(math.sqrt(mse))
    assert psnr(truth, estimate) == pytest.approx(10 * math.log10(255**2 / mse))
    # Symmetric in its arguments.
    assert psnr(estimate, truth) == pytest.approx(psnr(truth, estimate))


def test_no_uint8_wraparound() -> None:
    truth, estimate = _frame(0), _frame(255)
    assert interpolation_error(truth, estimate) == pytest.approx(255.0)
    assert psnr(truth, estimate) == pytest.approx(0.0)


@pytest.mark.parametrize("metric", [psnr, ssim, interpolation_error])
def test_mismatches_raise(metric) -> None:
    frame = _random()
    with pytest.raises(ValueError, match="shape"):
        metric(frame, _random(shape=(16, 21, 3)))
    with pytest.raises(ValueError, match="uint8"):
        metric(frame, frame.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        metric(frame.astype(np.uint16), frame)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        metric(frame[..., 0], frame[..., 0])
    with pytest.raises(ValueError, match="numpy"):
        metric(frame.tolist(), frame)


def test_to_uint8_numpy() -> None:
    values = np.array([-0.1, 0.0, 0.5, 1.0, 1.2, 100.4 / 255, 100.6 / 255, 0.999])
    out = to_uint8(values)
    assert out.dtype == np.uint8
    # 0.5 * 255 = 127.5 rounds to even (128); 0.999 * 255 = 254.7 rounds up (truncation: 254).
    assert out.tolist() == [0, 0, 128, 255, 255, 100, 101, 255]
    frame = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    assert to_uint8(frame).shape == (4, 5, 3)
    assert np.array_equal(to_uint8(_frame(7) / 255.0), _frame(7))


def test_to_uint8_torch() -> None:
    torch = pytest.importorskip("torch")
    values = torch.tensor([[-0.1, 0.0, 0.5], [1.0, 1.2, 100.6 / 255]], dtype=torch.float32)
    out = to_uint8(values)
    assert out.dtype == torch.uint8
    assert out.tolist() == [[0, 0, 128], [255, 255, 101]]


def test_to_uint8_rejects_other_types() -> None:
    with pytest.raises(TypeError):
        to_uint8([0.5])


def _fixture_frame() -> np.ndarray:
    from sepconv.engine.evaluate import load_rgb8

    return load_rgb8(Path(__file__).parent / "fixtures" / "rubberwhale_frame10.png")


def _moved(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    import cv2

    moved = cv2.warpAffine(
        frame.astype(np.float32),
        np.float32([[1, 0, dx], [0, 1, dy]]),
        (frame.shape[1], frame.shape[0]),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dx, dy", [(-1.5, 0.75), (0.3, -0.2), (2.0, 1.0)])
def test_global_shift_undoes_a_known_translation(dx: float, dy: float) -> None:
    truth = _fixture_frame()
    found = global_shift(truth, _moved(truth, dx, dy))
    assert found == pytest.approx((-dx, -dy), abs=0.1)


def test_shift_aligned_scores_what_the_translation_hides() -> None:
    truth = _fixture_frame()
    shaken = _moved(truth, 1.0, -0.5)
    kept, aligned, shift = shift_aligned(truth, shaken)
    margin = math.ceil(ALIGN_MAX_SHIFT)
    assert kept.shape == aligned.shape == (100 - 2 * margin, 140 - 2 * margin, 3)
    assert np.array_equal(kept, truth[margin:-margin, margin:-margin])
    plain = psnr(kept, shaken[margin:-margin, margin:-margin])
    assert psnr(kept, aligned) > plain + 10.0
    assert shift == pytest.approx((-1.0, 0.5), abs=0.1)


def test_shift_aligned_leaves_an_exact_estimate_alone() -> None:
    truth = _fixture_frame()
    kept, aligned, shift = shift_aligned(truth, truth.copy())
    assert shift == (0.0, 0.0)
    assert psnr(kept, aligned) == math.inf


def test_shift_is_clamped_and_tiny_frames_are_refused() -> None:
    truth = _fixture_frame()
    dx, dy = global_shift(truth, _moved(truth, 7.0, 0.0), max_shift=2.0)
    assert -2.0 <= dx <= 2.0 and -2.0 <= dy <= 2.0
    with pytest.raises(ValueError, match="too small to align"):
        shift_aligned(_random(shape=(14, 40, 3)), _random(1, shape=(14, 40, 3)))


def test_a_misleading_phase_correlation_never_makes_the_score_worse(monkeypatch) -> None:
    # Phase correlation can lock onto a moving object; the search also starts from no shift.
    import cv2

    monkeypatch.setattr(cv2, "phaseCorrelate", lambda *args, **kwargs: ((3.0, -3.0), 1.0))
    truth = _fixture_frame()
    noisy = np.random.default_rng(0).normal(0.0, 4.0, truth.shape)
    estimate = np.clip(truth + noisy, 0, 255).astype(np.uint8)
    assert global_shift(truth, estimate) == pytest.approx((0.0, 0.0), abs=0.07)
    kept, aligned, _ = shift_aligned(truth, estimate)
    margin = math.ceil(ALIGN_MAX_SHIFT)
    assert psnr(kept, aligned) >= psnr(kept, estimate[margin:-margin, margin:-margin]) - 0.05
