"""The shared motion prior: DIS flows, halfway flows, backward warps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shifted_texture

from sepconv.flow import (
    DIS_PRESETS,
    HALFWAY_METHODS,
    FlowSettings,
    backward_warp,
    bilinear_splat,
    dis_flows,
    flows_at_time,
    halfway_flow,
    halfway_warps,
    splatted_flows_at_time,
    splatted_halfway_flow,
    to_grey_uint8,
)

cv2 = pytest.importorskip("cv2")


def test_halfway_flow_averages_both_estimates() -> None:
    flow_01 = np.full((2, 3, 2), 4.0, np.float32)
    flow_10 = np.full((2, 3, 2), -2.0, np.float32)
    np.testing.assert_allclose(halfway_flow(flow_01, flow_10), -1.5)  # (-2 - 4) / 4


def test_flows_at_time_are_the_halfway_flow_at_one_half_and_the_motion_at_the_ends() -> None:
    rng = np.random.default_rng(0)
    flow_01, flow_10 = rng.normal(size=(2, 4, 5, 2)).astype(np.float32)
    to_first, to_last = flows_at_time(flow_01, flow_10, 0.5)
    np.testing.assert_allclose(to_first, halfway_flow(flow_01, flow_10), rtol=1e-6)
    np.testing.assert_allclose(to_last, -to_first, rtol=1e-6)
    start = flows_at_time(flow_01, flow_10, 0.0)
    np.testing.assert_allclose(start[0], 0.0)
    np.testing.assert_allclose(start[1], flow_01)  # from the first frame: its own flow


def _moving_bar() -> tuple[np.ndarray, ...]:
    """A bright bar over a flat background, at x in [10, 20) in the first frame and [20, 30)
    in the last, with its exact flows both ways (zero on the background)."""
    first = np.full((6, 40, 3), 0.2, np.float32)
    last = first.copy()
    first[:, 10:20] = 0.8
    last[:, 20:30] = 0.8
    flow_01 = np.zeros((6, 40, 2), np.float32)
    flow_10 = np.zeros((6, 40, 2), np.float32)
    flow_01[:, 10:20, 0] = 10.0
    flow_10[:, 20:30, 0] = -10.0
    return first, last, flow_01, flow_10


def test_splatted_halfway_flow_puts_a_moving_object_where_it_is_at_the_middle() -> None:
    first, last, flow_01, flow_10 = _moving_bar()
    splatted = splatted_halfway_flow(flow_01, flow_10, first, last)
    averaged = halfway_flow(flow_01, flow_10)
    # At the middle time the bar covers [15, 25): its pixels come from 5 px to the right.
    np.testing.assert_allclose(splatted[:, 15:25, 0], -5.0, atol=0.05)
    np.testing.assert_allclose(averaged[:, 16:24, 0], -2.5)  # reads each frame at x: wrong
    np.testing.assert_allclose(splatted[:, :8], 0.0, atol=1e-6)  # still background
    np.testing.assert_allclose(splatted[:, 32:], 0.0, atol=1e-6)
    np.testing.assert_allclose(splatted[..., 1], 0.0, atol=1e-6)
    # uint8 frames weigh the same.
    as_uint8 = [np.rint(frame * 255).astype(np.uint8) for frame in (first, last)]
    np.testing.assert_allclose(
        splatted_halfway_flow(flow_01, flow_10, *as_uint8), splatted, atol=0.05
    )


@pytest.mark.parametrize("time", [0.25, 0.5, 0.75])
def test_splatted_flows_at_time_put_a_moving_object_where_it_is_at_t(time: float) -> None:
    """The bar moves 10 px right: at time t it covers [10 + 10t, 20 + 10t), its pixels come
    from 10t px to the left in the first frame and go 10(1 - t) px on in the last."""
    first, last, flow_01, flow_10 = _moving_bar()
    to_first, to_last = splatted_flows_at_time(flow_01, flow_10, first, last, time)
    start = int(np.ceil(10 + 10 * time)) + 1
    stop = int(np.floor(20 + 10 * time)) - 1
    np.testing.assert_allclose(to_first[:, start:stop, 0], -10 * time, atol=0.05)
    np.testing.assert_allclose(to_last[:, start:stop, 0], 10 * (1 - time), atol=0.05)
    for flow in (to_first, to_last):
        np.testing.assert_allclose(flow[:, :8], 0.0, atol=1e-6)  # still background
        np.testing.assert_allclose(flow[:, 32:], 0.0, atol=1e-6)
        np.testing.assert_allclose(flow[..., 1], 0.0, atol=1e-6)
    if time == 0.5:
        np.testing.assert_array_equal(
            to_first, splatted_halfway_flow(flow_01, flow_10, first, last)
        )
        np.testing.assert_array_equal(to_last, -to_first)


def test_splatted_halfway_flow_matches_the_average_on_a_translation() -> None:
    rng = np.random.default_rng(0)
    first = rng.random((12, 16, 3)).astype(np.float32)
    last = np.roll(first, 2, axis=1)
    flow_01 = np.zeros((12, 16, 2), np.float32)
    flow_01[..., 0] = 2.0
    splatted = splatted_halfway_flow(flow_01, -flow_01, first, last)
    inner = (slice(None), slice(2, -2))  # pixels splatted from both sides
    np.testing.assert_allclose(splatted[inner], halfway_flow(flow_01, -flow_01)[inner], atol=1e-3)


def _splat_reference(values: np.ndarray, target_x: np.ndarray, target_y: np.ndarray) -> np.ndarray:
    """Bilinear forward splatting, pixel by pixel in float64 (np.add.at)."""
    channels, height, width = values.shape
    out = np.zeros((channels, height, width))
    left, top = np.floor(target_x), np.floor(target_y)
    right_share, lower_share = target_x - left, target_y - top
    for dx, dy, share in (
        (0, 0, (1 - right_share) * (1 - lower_share)),
        (1, 0, right_share * (1 - lower_share)),
        (0, 1, (1 - right_share) * lower_share),
        (1, 1, right_share * lower_share),
    ):
        x, y = (left + dx).astype(int), (top + dy).astype(int)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        for channel in range(channels):
            np.add.at(out[channel], (y[inside], x[inside]), (values[channel] * share)[inside])
    return out


@pytest.mark.parametrize("size", [(9, 13), (1, 6), (5, 1), (1, 1)])
def test_bilinear_splat_matches_a_pixel_by_pixel_reference(size: tuple[int, int]) -> None:
    """Shares landing inside are summed, those outside dropped; also in inference mode."""
    rng = np.random.default_rng(3)
    height, width = size
    values = rng.random((3, height, width)).astype(np.float32)
    # Targets up to 3 px away from their source, some of them outside the frame.
    target_x = (np.arange(width)[None, :] + rng.normal(0, 1.5, size)).astype(np.float32)
    target_y = (np.arange(height)[:, None] + rng.normal(0, 1.5, size)).astype(np.float32)
    with torch.inference_mode():
        got = bilinear_splat(*(torch.from_numpy(a) for a in (values, target_x, target_y)))
    expected = _splat_reference(values.astype(np.float64), target_x, target_y)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    # A pixel landing exactly on a pixel gives it everything.
    whole = bilinear_splat(torch.ones(1, 1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    assert whole.item() == pytest.approx(1.0)


def test_halfway_warps_follow_the_settings() -> None:
    first, middle, last = shifted_texture(shift=4)
    settings = FlowSettings(halfway="splat", interpolation="cubic")
    dis = settings.create()
    warped_first, warped_last, to_first = halfway_warps(first, last, dis, settings)
    inner = (slice(8, -8), slice(8, -8))
    assert np.median(to_first[inner][..., 0]) == pytest.approx(-2.0, abs=0.25)
    for warped in (warped_first, warped_last):
        assert np.abs(warped[inner].astype(float) - middle[inner]).mean() < 2.0
    flow_01, flow_10 = dis_flows(first, last, dis)
    np.testing.assert_array_equal(to_first, splatted_halfway_flow(flow_01, flow_10, first, last))


def test_backward_warp_reads_at_the_flow() -> None:
    frame = np.arange(5 * 6 * 2, dtype=np.float32).reshape(5, 6, 2)
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = 1.0  # read one pixel to the right
    warped = backward_warp(frame, flow)
    assert warped.shape == frame.shape and warped.dtype == np.float32
    np.testing.assert_allclose(warped[:, :-1], frame[:, 1:])
    np.testing.assert_allclose(warped[:, -1], frame[:, -1])  # border replicated


def test_dis_recovers_a_translation_and_the_warps_meet_in_the_middle() -> None:
    first, middle, last = shifted_texture(shift=4)
    dis = FlowSettings().create()
    flow_01, flow_10 = dis_flows(first, last, dis)
    inner = (slice(8, -8), slice(8, -8))
    # Content moves right: first(x) = last(x + 4).
    assert np.median(flow_01[inner][..., 0]) == pytest.approx(4.0, abs=0.25)
    assert np.median(flow_10[inner][..., 0]) == pytest.approx(-4.0, abs=0.25)
    warped_first, warped_last, to_first = halfway_warps(first, last, dis)
    assert np.median(to_first[inner][..., 0]) == pytest.approx(-2.0, abs=0.25)
    for warped in (warped_first, warped_last):
        error = np.abs(warped[inner].astype(float) - middle[inner]).mean()
        assert error < 2.0


@pytest.mark.parametrize(
    "size", [(1, 1), (8, 8), (1, 4000), (4000, 1), (2, 3), (11, 30), (16, 92), (1000, 16)]
)
@pytest.mark.parametrize("halfway", HALFWAY_METHODS)
def test_frames_too_small_for_dis_are_padded_for_the_flow(
    size: tuple[int, int], halfway: str
) -> None:
    """OpenCV's DIS refuses (or crashes on) frames under 32 px on a side: they are padded for
    it, and the flows, splats and warps come back at the frames' own size, for every preset."""
    height, width = size
    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(2))
    for preset in DIS_PRESETS:
        settings = FlowSettings(preset=preset, halfway=halfway)
        dis = settings.create()
        flow_01, flow_10 = dis_flows(first, last, dis)
        assert flow_01.shape == flow_10.shape == (height, width, 2)
        assert np.isfinite(flow_01).all() and np.isfinite(flow_10).all()
        warped_first, warped_last, to_first = halfway_warps(first, last, dis, settings)
        assert warped_first.shape == warped_last.shape == first.shape
        assert warped_first.dtype == np.uint8
        assert to_first.shape == (height, width, 2) and np.isfinite(to_first).all()
    # A still frame has no motion, however small.
    still_01, still_10 = dis_flows(first, first, FlowSettings().create())
    assert np.abs(still_01).max() < 1e-3 and np.abs(still_10).max() < 1e-3


def test_settings_validate_and_round_trip() -> None:
    with pytest.raises(ValueError, match="preset"):
        FlowSettings(preset="slowest")
    with pytest.raises(ValueError, match="finest_scale"):
        FlowSettings(finest_scale=-2)
    with pytest.raises(ValueError, match="halfway"):
        FlowSettings(halfway="forward")
    with pytest.raises(ValueError, match="refinement_iterations"):
        FlowSettings(refinement_iterations=-3)
    settings = FlowSettings(preset="fast", finest_scale=0, halfway="splat", refinement_iterations=0)
    assert FlowSettings(**settings.to_dict()) == settings
    dis = settings.create()
    assert dis.getFinestScale() == 0
    assert dis.getVariationalRefinementIterations() == 0
    # -1 keeps the preset's own values.
    medium = FlowSettings().create()
    assert medium.getVariationalRefinementIterations() == 5
    assert medium.getFinestScale() == 1


def test_grey_of_float_alpha_and_grey_frames() -> None:
    rgba = np.random.default_rng(0).random((4, 5, 4)).astype(np.float32)
    grey = to_grey_uint8(rgba)
    assert grey.shape == (4, 5) and grey.dtype == np.uint8
    expected = cv2.cvtColor(np.rint(rgba[..., :3] * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(grey, expected)
    one_channel = np.full((4, 5, 1), 0.5, np.float32)
    assert (to_grey_uint8(one_channel) == 128).all()
