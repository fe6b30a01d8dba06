"""SepConv++ options (WACV 2021): input and kernel normalisation, both off by default."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_CONFIG_KWARGS

from sepconv.models.checkpoint import AUTHORS_CONFIG, load_weights, save_checkpoint
from sepconv.models.sepconv_net import (
    KERNEL_NORMALIZATION_EPSILON,
    Kernels,
    SepConvConfig,
    SepConvNet,
    joint_statistics,
    kernel_sums,
)
from sepconv.models.synthesis import _one_head_view
from sepconv.ops import separable_local_conv

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed: int = 0, **flags: bool) -> SepConvNet:
    torch.manual_seed(seed)
    return SepConvNet(SepConvConfig(**TINY_CONFIG_KWARGS, **flags)).eval()


def _random_kernels(batch: int, k: int, height: int, width: int, seed: int = 1) -> Kernels:
    generator = torch.Generator().manual_seed(seed)
    return Kernels(*(torch.randn(batch, k, height, width, generator=generator) for _ in range(4)))


def test_defaults_are_the_authors_architecture() -> None:
    config = SepConvConfig()
    assert not config.input_normalization and not config.kernel_normalization
    assert SepConvConfig(channel_order="bgr") == AUTHORS_CONFIG
    data = SepConvConfig(input_normalization=True, kernel_normalization=True).to_dict()
    assert data["input_normalization"] is True and data["kernel_normalization"] is True
    # Older configs without the flags load as the defaults.
    old = {key: value for key, value in SepConvConfig().to_dict().items() if "normal" not in key}
    assert SepConvConfig.from_dict(old) == SepConvConfig()


def test_flags_survive_a_checkpoint(tmp_path) -> None:
    model = _model(input_normalization=True, kernel_normalization=True)
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_weights(tmp_path / "m.pt").model
    assert loaded.config == model.config
    first, second = torch.rand(2, 1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(first, second), model(first, second))


def test_kernel_sums_is_the_convolution_of_ones() -> None:
    kernels = _random_kernels(2, 5, 8, 8)
    ones = torch.ones(2, 1, 12, 12)
    expected = separable_local_conv(
        ones, kernels.vertical1, kernels.horizontal1
    ) + separable_local_conv(ones, kernels.vertical2, kernels.horizontal2)
    torch.testing.assert_close(kernel_sums(kernels), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_sums_of_one_channels_last_head_are_the_same_sums(dtype: torch.dtype) -> None:
    """The four chunks of one channels_last head are summed in one pass: the same sums, to
    float32 rounding (the order of the additions may differ)."""
    head = torch.randn(2, 4 * 5, 6, 10).to(dtype).contiguous(memory_format=torch.channels_last)
    kernels = Kernels(*head.chunk(4, dim=1))
    contiguous = Kernels(*(part.contiguous() for part in head.chunk(4, dim=1)))
    # Out of order, the chunks are not one view: the per-kernel sums are used.
    swapped = Kernels(
        kernels.horizontal1, kernels.vertical1, kernels.vertical2, kernels.horizontal2
    )
    assert _one_head_view(kernels) is not None
    assert _one_head_view(swapped) is None and _one_head_view(contiguous) is None
    expected = kernel_sums(contiguous)
    torch.testing.assert_close(kernel_sums(kernels), expected, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(kernel_sums(swapped), expected, rtol=1e-6, atol=1e-5)
    assert kernel_sums(kernels).dtype == torch.float32


def test_kernel_normalization_reproduces_a_constant_image_for_any_kernels() -> None:
    model = _model(kernel_normalization=True)
    kernels = _random_kernels(2, 5, 32, 32)
    constant = torch.full((2, 3, 32, 32), 0.37)
    constant[1] = 0.81
    output = model.synthesize(constant, constant, kernels)
    usable = (kernel_sums(kernels).abs() >= KERNEL_NORMALIZATION_EPSILON).expand_as(output)
    assert usable.float().mean() > 0.9
    torch.testing.assert_close(output[usable], constant[usable], rtol=0, atol=1e-4)
    # Without it, arbitrary kernels do not.
    plain = _model().synthesize(constant, constant, kernels)
    assert (plain - constant).abs().max() > 0.1


def test_input_normalization_matches_the_literal_definition() -> None:
    model = _model(input_normalization=True)
    first, second = torch.rand(2, 2, 4, 32, 32)  # RGBA: the kernels are shared
    kernels = _random_kernels(2, 5, 32, 32)
    mean, std = joint_statistics(first[:, :3], second[:, :3])  # colour statistics for all
    assert mean.shape == std.shape == (2, 1, 1, 1)
    literal = model.synthesize((first - mean) / std, (second - mean) / std, kernels)
    literal = literal * std + mean
    torch.testing.assert_close(model.synthesize(first, second, kernels), literal)


def test_joint_statistics_are_one_pair_per_sample() -> None:
    first, second = torch.rand(2, 2, 3, 8, 8)
    second[1] += 1.0
    mean, std = joint_statistics(first, second)
    both = torch.cat([first, second], dim=1)
    torch.testing.assert_close(mean.flatten(), both.flatten(1).mean(1))
    torch.testing.assert_close(
        std.flatten(), both.flatten(1).std(1, correction=0), atol=1e-5, rtol=0
    )


def test_input_normalization_is_invariant_to_brightness_scale_and_offset() -> None:
    model = _model(input_normalization=True)
    first, second = torch.rand(2, 2, 3, 32, 32)
    scale, offset = 0.4, 0.3
    with torch.no_grad():
        base = model(first, second)
        shifted = model(first * scale + offset, second * scale + offset)
        base_kernels = model.predict_kernels(first, second)
        shifted_kernels = model.predict_kernels(first * scale + offset, second * scale + offset)
    torch.testing.assert_close(shifted_kernels.vertical1, base_kernels.vertical1, atol=1e-4, rtol=0)
    torch.testing.assert_close(shifted, base * scale + offset, atol=1e-4, rtol=0)


def test_both_flags_reproduce_constant_frames_and_train() -> None:
    model = _model(input_normalization=True, kernel_normalization=True).train()
    first, second, middle = torch.rand(3, 2, 3, 32, 32)
    output = model(first, second)
    assert torch.isfinite(output).all()
    (output - middle).abs().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    constant = torch.full((1, 3, 32, 32), 0.5)
    with torch.no_grad():
        result = model.eval()(constant, constant)
    weight = kernel_sums(model.predict_kernels(constant, constant))
    usable = (weight.abs() >= KERNEL_NORMALIZATION_EPSILON).expand_as(result)
    torch.testing.assert_close(result[usable], constant[usable], atol=1e-4, rtol=0)


def test_interpolator_runs_with_both_options_whole_and_tiled() -> None:
    from sepconv.inference import Interpolator

    model = _model(input_normalization=True, kernel_normalization=True)
    frames = torch.rand(2, 1, 3, 40, 50)
    whole = Interpolator(model, device="cpu").interpolate_tensor(*frames)
    assert whole.shape == (1, 3, 40, 50) and torch.isfinite(whole).all()
    large = torch.rand(2, 1, 4, 150, 170)  # RGBA, tiled
    tiled = Interpolator(model, device="cpu", tile_size=128).interpolate_tensor(*large)
    assert tiled.shape == (1, 4, 150, 170) and torch.isfinite(tiled).all()


def test_residual_backbone_predicts_full_resolution_kernels_and_trains() -> None:
    model = _model(backbone="residual", input_normalization=True, kernel_normalization=True)
    assert not hasattr(model, "moduleConv1")  # a different architecture, not an extra branch
    first, second, middle = torch.rand(3, 2, 3, 32, 64)
    kernels = model.predict_kernels(first, second)
    for name in ("vertical1", "horizontal1", "vertical2", "horizontal2"):
        assert getattr(kernels, name).shape == (2, model.kernel_size, 32, 64)
    model.train()
    (model(first, second) - middle).abs().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_residual_backbone_paper_widths_and_errors() -> None:
    from sepconv.models.sepconv_net import count_parameters

    paper = SepConvNet(SepConvConfig(backbone="residual"))
    unet = SepConvNet(SepConvConfig())
    assert count_parameters(paper) < count_parameters(unet)
    with pytest.raises(ValueError, match="backbone"):
        SepConvConfig(backbone="transformer")
    with pytest.raises(ValueError, match="even"):
        SepConvConfig(backbone="residual", encoder_channels=(3, 8, 8, 8, 8))


@pytest.mark.parametrize("backbone", ["unet", "residual"])
def test_average_initialisation_outputs_the_frame_average(backbone: str) -> None:
    from sepconv.models.sepconv_net import initialize_as_average

    torch.manual_seed(0)
    model = SepConvNet(SepConvConfig(**{**TINY_CONFIG_KWARGS, "kernel_size": 7}, backbone=backbone))
    first, second = torch.rand(2, 1, 3, 32, 32)
    with torch.no_grad():
        before = model(first, second)
        initialize_as_average(model)
        after = model(first, second)
    average = (first + second) / 2
    # Away from the border (replicate padding repeats edge pixels there).
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert (after - average)[inner].abs().max() < 0.02
    assert (before - average)[inner].abs().max() > 0.05


def test_residual_backbone_round_trips_through_a_checkpoint(tmp_path) -> None:
    model = _model(backbone="residual", kernel_normalization=True)
    save_checkpoint(tmp_path / "r.pt", model)
    loaded = load_weights(tmp_path / "r.pt").model
    assert loaded.config.backbone == "residual"
    first, second = torch.rand(2, 1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(first, second), model(first, second))


def test_given_statistics_replace_the_frames_own() -> None:
    model = _model(input_normalization=True)
    first, second = torch.rand(2, 1, 3, 32, 32)
    own = joint_statistics(first, second)
    with torch.no_grad():
        default = model.predict_kernels(first, second).vertical1
        same = model.predict_kernels(first, second, statistics=own).vertical1
        other = model.predict_kernels(first, second, statistics=(own[0] + 0.2, own[1])).vertical1
    torch.testing.assert_close(same, default)
    assert (other - default).abs().max() > 1e-4
