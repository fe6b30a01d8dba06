"""The Interpolator: input kinds, sizes, channels, padding modes and tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_blend_model, make_random_model
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sepconv.errors import InputError
from sepconv.inference import Interpolator, _tile_windows


@pytest.fixture(scope="module")
def blend() -> Interpolator:
    return Interpolator(make_blend_model(), device="cpu")


@pytest.fixture(scope="module")
def random_interpolator() -> Interpolator:
    return Interpolator(make_random_model(), device="cpu")


def _frames(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    high = {np.uint8: 255, np.uint16: 65535}.get(dtype)
    if high is None:
        return rng.random(shape).astype(dtype), rng.random(shape).astype(dtype)
    return rng.integers(0, high + 1, shape).astype(dtype), rng.integers(0, high + 1, shape).astype(
        dtype
    )


def _expected_blend(first, second, _high):
    return np.rint((first.astype(np.float64) + second.astype(np.float64)) / 2.0)


def test_blend_model_averages_rgb_uint8(blend):
    first, second = _frames((37, 53, 3))
    middle = blend.interpolate(first, second)
    assert middle.dtype == np.uint8 and middle.shape == (37, 53, 3)
    assert np.abs(middle.astype(int) - _expected_blend(first, second, 255)).max() <= 1


@settings(max_examples=20, deadline=None)
@given(
    height=st.integers(1, 70),
    width=st.integers(1, 70),
    channels=st.sampled_from([None, 1, 2, 3, 4]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_any_size_channels_and_dtype_come_back_in_kind(height, width, channels, dtype):
    interpolator = Interpolator(make_blend_model(), device="cpu")
    shape = (height, width) if channels is None else (height, width, channels)
    first, second = _frames(shape, dtype)
    middle = interpolator.interpolate(first, second)
    assert middle.shape == shape and middle.dtype == dtype
    high = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1.0)
    expected = (first.astype(np.float64) + second.astype(np.float64)) / 2.0
    tolerance = 1.0 if high != 1.0 else 1e-5  # rounding of the average, or float error
    if channels in (None, 1, 2):  # gray goes through RGB and back: exact average too
        tolerance *= 1.5
    assert np.abs(middle.astype(np.float64) - expected).max() <= tolerance


def test_sixteen_bit_keeps_more_than_eight_bits_of_precision(blend):
    first = np.full((8, 8, 3), 1000, np.uint16)
    second = np.full((8, 8, 3), 1003, np.uint16)
    middle = blend.interpolate(first, second)
    assert middle.dtype == np.uint16 and np.all(np.abs(middle.astype(int) - 1002) <= 1)


def test_alpha_is_interpolated_with_the_colours(blend):
    first, second = _frames((16, 20, 4))
    first[..., 3], second[..., 3] = 0, 255
    middle = blend.interpolate(first, second)
    assert middle.shape == (16, 20, 4) and np.all(np.abs(middle[..., 3].astype(int) - 128) <= 1)


def test_mixed_gray_and_rgb_inputs_give_rgb(blend):
    gray, color = _frames((10, 12))[0], _frames((10, 12, 3))[1]
    assert blend.interpolate(gray, color).shape == (10, 12, 3)


def test_pil_in_pil_out(blend):
    first, second = _frames((20, 30, 3))
    middle = blend.interpolate(Image.fromarray(first), Image.fromarray(second))
    assert isinstance(middle, Image.Image) and middle.size == (30, 20) and middle.mode == "RGB"
    palette = Image.fromarray(first).convert("P")
    assert blend.interpolate(palette, palette).mode == "RGB"


def test_tensors_in_tensors_out(blend):
    first, second = torch.rand(3, 33, 35), torch.rand(3, 33, 35)
    middle = blend.interpolate(first, second)
    assert isinstance(middle, torch.Tensor) and middle.shape == (3, 33, 35)
    torch.testing.assert_close(middle, (first + second) / 2, atol=1e-5, rtol=0)
    batch = blend.interpolate(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    assert batch.shape == (2, 3, 16, 16)


def test_mismatched_sizes_name_both(blend):
    with pytest.raises(InputError, match=r"20x10 and 21x10"):
        blend.interpolate(np.zeros((10, 20, 3), np.uint8), np.zeros((10, 21, 3), np.uint8))


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 5), np.uint8), np.zeros((4,), np.uint8), "x.png"])
def test_non_images_are_refused(blend, bad):
    with pytest.raises(InputError):
        blend.interpolate(bad, bad)


def test_paper_and_improved_padding_differ_but_both_keep_size(random_interpolator):
    first, second = _frames((40, 50, 3))
    improved = random_interpolator.interpolate(first, second)
    paper = Interpolator(random_interpolator.model, padding="paper").interpolate(first, second)
    assert improved.shape == paper.shape == first.shape
    assert not np.array_equal(improved, paper)


def test_tiled_result_matches_whole_frame(random_interpolator):
    first, second = _frames((300, 420, 3), np.float32, seed=3)
    whole = random_interpolator.interpolate(first, second)
    tiled = Interpolator(random_interpolator.model, tile_size=128, tile_margin=32).interpolate(
        first, second
    )
    # Measured 0.0095 gray levels for this tiny model; the full model: see benchmarks/tiling.py.
    assert np.abs(tiled - whole).max() * 255 < 0.05


def test_blend_model_tiles_exactly(blend):
    first, second = _frames((200, 260, 4), seed=5)
    tiled = Interpolator(blend.model, tile_size=128).interpolate(first, second)
    np.testing.assert_array_equal(tiled, blend.interpolate(first, second))


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 2000),
    window=st.integers(32, 600),
    margin=st.integers(0, 128),
    align=st.sampled_from([1, 32]),
)
def test_tile_windows_cover_the_axis_once_with_margins(length, window, margin, align):
    if window < 2 * margin + align:
        return
    position = 0
    windows = _tile_windows(length, window, margin, align)
    assert len(windows) <= length // max(1, window - 2 * margin - align + 1) + 2
    for start, core_start, core_end in windows:
        assert core_start == position and core_end > core_start
        assert start % align == 0 or start + window == length
        assert start >= 0 and start + min(window, length) <= length
        assert core_start == 0 or core_start - start >= margin
        assert core_end == length or start + window - core_end >= margin
        position = core_end
    assert position == length


def test_half_precision_option_runs_and_stays_close(random_interpolator):
    first, second = _frames((32, 32, 3), np.float32)
    full = random_interpolator.interpolate(first, second)
    half = Interpolator(random_interpolator.model, precision="bfloat16").interpolate(first, second)
    assert np.abs(full - half).max() < 0.1


def test_ensemble_averages_the_flipped_and_time_reversed_passes(random_interpolator):
    first, second = (
        torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(s)) for s in (1, 2)
    )
    model = random_interpolator.model
    plain = Interpolator(model, device="cpu")

    def run(one, two, dims):
        flip = (lambda t: t.flip(dims)) if dims else (lambda t: t)
        return flip(plain.interpolate_tensor(flip(one), flip(two)))

    expected = {
        1: run(first, second, ()),
        2: (run(first, second, ()) + run(second, first, ())) / 2,
        4: sum(run(a, b, d) for d in ((), (-1,)) for a, b in ((first, second), (second, first)))
        / 4,
    }
    for size, want in expected.items():
        got = Interpolator(model, device="cpu", ensemble=size).interpolate_tensor(first, second)
        torch.testing.assert_close(got, want.clamp(0, 1), atol=1e-6, rtol=0)
    eight = Interpolator(model, device="cpu", ensemble=8).interpolate_tensor(first, second)
    assert (eight - expected[1]).abs().max() > 1e-4  # the variants really differ
    # Variants of an exactly symmetric model (the frame average) all agree.
    blend = make_blend_model()
    single = Interpolator(blend, device="cpu").interpolate_tensor(first, second)
    torch.testing.assert_close(
        Interpolator(blend, device="cpu", ensemble=8).interpolate_tensor(first, second), single
    )


@pytest.mark.parametrize("options", [{"optimize": False}, {"optimize": True}])
def test_compiled_whole_canvas_pass_matches_eager(random_interpolator, monkeypatch, options):
    import sepconv.inference as inference

    monkeypatch.setattr(inference, "COMPILE_BACKEND", "eager")  # tracing (fullgraph) only
    first, second = torch.rand(2, 1, 4, 40, 70)
    model = random_interpolator.model
    compiled = Interpolator(model, device="cpu", compile=True, **options)
    eager = Interpolator(model, device="cpu", **options)
    for _ in range(2):  # the second call reuses the compiled graph
        torch.testing.assert_close(
            compiled.interpolate_tensor(first, second),
            eager.interpolate_tensor(first, second),
            atol=1e-5,
            rtol=0,
        )


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="ensemble"):
        Interpolator(make_blend_model(), ensemble=3)
    with pytest.raises(ValueError, match="padding"):
        Interpolator(make_blend_model(), padding="zeros")
    with pytest.raises(ValueError, match="tile_size"):
        Interpolator(make_blend_model(), tile_size=16)
