"""The Interpolator's CPU fast path: optimize=True (the default), precision="auto", the fused
conv layers; optimize=False is the plain float32 reference they are compared with."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import make_random_model
from torch import nn

from sepconv.inference import (
    Interpolator,
    _FusedConv2d,
    cpu_has_bfloat16,
    optimized_cpu_copy,
    resolve_precision,
)
from sepconv.models.checkpoint import load_weights
from sepconv.ops.cpu import cpu_kernel_available


def _frames(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape).astype(np.uint8), rng.integers(0, 256, shape).astype(
        np.uint8
    )


def test_auto_precision_is_bfloat16_only_on_cpus_that_have_it():
    expected = "bfloat16" if cpu_has_bfloat16() else "float32"
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", "cuda") == "float32"
    assert resolve_precision("float16", "cpu") == "float16"
    assert resolve_precision("auto", "cpu", bit_depth=16) == "float32"
    assert Interpolator(make_random_model(), device="cpu", precision="auto").precision == expected
    with pytest.raises(ValueError, match="precision"):
        Interpolator(make_random_model(), device="cpu", precision="double")  # type: ignore[arg-type]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_fused_conv_equals_conv_then_relu(relu, fused):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, padding=1)
    x = torch.randn(2, 5, 9, 11)
    expected = conv(x).relu() if relu else conv(x)
    layer = _FusedConv2d(conv, relu, torch.float32, fused)
    with torch.no_grad():
        actual = layer(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_optimized_copy_predicts_the_same_kernels_and_leaves_the_model_alone(dtype):
    model = make_random_model(seed=2)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    optimized = optimized_cpu_copy(model, dtype)
    assert not any(isinstance(module, nn.Conv2d) for module in optimized.modules())
    original = {tensor.data_ptr() for tensor in model.parameters()}
    assert not any(tensor.data_ptr() in original for tensor in optimized.state_dict().values())
    first, second = torch.rand(2, 1, 3, 64, 96).unbind(0)
    with torch.inference_mode():
        expected = model.predict_kernels(first, second)
        actual = optimized.predict_kernels(
            first.to(dtype).contiguous(memory_format=torch.channels_last),
            second.to(dtype).contiguous(memory_format=torch.channels_last),
        )
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    for name in ("vertical1", "horizontal1", "vertical2", "horizontal2"):
        torch.testing.assert_close(
            getattr(actual, name).float(), getattr(expected, name), rtol=0, atol=tolerance
        )
    for name, tensor in model.state_dict().items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, before[name])
    assert all(isinstance(module, nn.Conv2d) for module in model.moduleConv1 if module._parameters)


def test_optimize_is_the_default_on_the_cpu():
    default = Interpolator(make_random_model(), device="cpu")
    assert default.optimize and default._fast_model is not None
    if cpu_kernel_available():
        assert default._synthesis_backend == "cpu"


def test_optimize_float32_matches_the_reference_path():
    model = make_random_model(seed=1)
    first, second = _frames((70, 90, 3))
    reference = Interpolator(model, device="cpu", optimize=False)
    fast = Interpolator(model, device="cpu", optimize=True)
    expected = reference.interpolate(first / 255.0, second / 255.0)
    actual = fast.interpolate(first / 255.0, second / 255.0)
    assert np.abs(actual - expected).max() < 1e-5
    if cpu_kernel_available():
        assert fast._synthesis_backend == "cpu"
    assert reference._synthesis_backend == "auto"


def test_optimize_bfloat16_stays_within_one_level_of_float32(authors_checkpoint, fixture_pair):
    """The full-size (authors') network in bfloat16 vs float32 on a real frame pair."""
    first, _, second = fixture_pair
    model = load_weights(authors_checkpoint).model
    expected = Interpolator(model, device="cpu", optimize=False).interpolate(first, second)
    fast = Interpolator(model, device="cpu", precision="bfloat16", optimize=True)
    actual = fast.interpolate(first, second)
    difference = np.abs(actual.astype(int) - expected.astype(int))
    assert difference.max() <= 1
    assert difference.mean() < 0.25


@pytest.mark.parametrize("normalized", [False, True])
def test_bfloat16_kernel_shortcut_equals_casting_the_kernels(normalized):
    model = make_random_model(seed=4)
    if normalized:  # the same weights with both SepConv++ normalisations
        config = replace(model.config, input_normalization=True, kernel_normalization=True)
        normalized_model = type(model)(config)
        normalized_model.load_state_dict(model.state_dict())
        model = normalized_model.eval()
    first, second = _frames((50, 120, 4), seed=5)
    fast = Interpolator(model, device="cpu", precision="bfloat16", optimize=True)
    assert fast._direct_bfloat16 == cpu_kernel_available()
    shortcut = fast.interpolate(first / 255.0, second / 255.0)
    fast._direct_bfloat16 = False
    cast = fast.interpolate(first / 255.0, second / 255.0)
    assert np.array_equal(shortcut, cast)


def test_optimize_handles_alpha_gray_and_tiles():
    model = make_random_model(seed=3)
    reference = Interpolator(model, device="cpu", tile_size=128, tile_margin=32, optimize=False)
    fast = Interpolator(model, device="cpu", tile_size=128, tile_margin=32, optimize=True)
    for shape in ((150, 170, 4), (150, 170)):
        first, second = _frames(shape, seed=len(shape))
        expected = reference.interpolate(first, second)
        actual = fast.interpolate(first, second)
        assert actual.shape == expected.shape and actual.dtype == np.uint8
        assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1


def test_optimize_is_ignored_off_the_cpu_and_for_float16():
    model = make_random_model()
    half = Interpolator(model, device="cpu", precision="float16", optimize=True)
    assert half._fast_model is None  # float16 keeps the autocast path
    plain = Interpolator(model, device="cpu", optimize=False)
    assert plain._fast_model is None and plain._synthesis_backend == "auto"
