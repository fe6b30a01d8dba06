"""The reference local convolution against a naive loop, and its gradients (float64 gradcheck)."""

from __future__ import annotations

import pytest
import torch
from conftest import local_conv_inputs
from hypothesis import given, settings
from hypothesis import strategies as st

from sepconv.ops import BackendUnavailableError, resolve_backend, separable_local_conv
from sepconv.ops.reference import separable_local_conv as reference_conv
from sepconv.ops.reference import separable_local_conv_naive


@pytest.mark.parametrize(
    ("batch", "channels", "height", "width", "kernel"),
    [(1, 3, 5, 7, 3), (2, 4, 6, 4, 5), (1, 1, 3, 3, 1), (2, 3, 4, 5, 4), (1, 3, 2, 3, 51)],
)
def test_reference_matches_naive_loop(batch, channels, height, width, kernel):
    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel)
    expected = separable_local_conv_naive(frame, vertical, horizontal)
    actual = reference_conv(frame, vertical, horizontal)
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_reference_matches_dense_2d_convolution_of_an_outer_product():
    # Same kernel everywhere: the op must equal an ordinary 2D correlation with v (x) h.
    frame, vertical, horizontal = local_conv_inputs(1, 2, 6, 8, 5)
    vertical[:] = vertical[:, :, :1, :1]
    horizontal[:] = horizontal[:, :, :1, :1]
    kernel2d = torch.outer(vertical[0, :, 0, 0], horizontal[0, :, 0, 0])
    weight = kernel2d.expand(2, 1, 5, 5)
    expected = torch.nn.functional.conv2d(frame, weight, groups=2)
    torch.testing.assert_close(reference_conv(frame, vertical, horizontal), expected)


@pytest.mark.parametrize("kernel", [1, 3, 4])
def test_reference_gradcheck_float64(kernel):
    frame, vertical, horizontal = local_conv_inputs(2, 2, 3, 4, kernel, seed=kernel)
    for tensor in (frame, vertical, horizontal):
        tensor.requires_grad_(True)
    assert torch.autograd.gradcheck(reference_conv, (frame, vertical, horizontal))


def test_reference_backward_only_computes_requested_gradients():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 4, 3)
    vertical.requires_grad_(True)
    reference_conv(frame, vertical, horizontal).sum().backward()
    assert vertical.grad is not None and frame.grad is None and horizontal.grad is None


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 2),
    channels=st.integers(1, 4),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    kernel=st.integers(1, 6),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_reference_random_shapes(batch, channels, height, width, kernel, dtype):
    frame, vertical, horizontal = local_conv_inputs(batch, channels, height, width, kernel, dtype)
    expected = separable_local_conv_naive(frame.double(), vertical.double(), horizontal.double())
    actual = separable_local_conv(frame, vertical, horizontal, backend="reference")
    assert actual.dtype == dtype and actual.shape == (batch, channels, height, width)
    torch.testing.assert_close(actual.double(), expected, rtol=1e-4, atol=1e-4)


def test_reference_half_precision_runs_on_cpu():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 4, 3)
    out = separable_local_conv(frame.bfloat16(), vertical.bfloat16(), horizontal.bfloat16())
    expected = reference_conv(frame, vertical, horizontal)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), expected, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize(
    ("frame_shape", "kernel_shape", "message"),
    [
        ((1, 3, 10, 10), (1, 3, 8, 9), "frame must be"),
        ((2, 3, 10, 10), (1, 3, 8, 8), "frame must be"),
        ((1, 3, 10), (1, 3, 8, 8), "4-D"),
    ],
)
def test_dispatch_rejects_bad_shapes(frame_shape, kernel_shape, message):
    with pytest.raises(ValueError, match=message):
        separable_local_conv(
            torch.zeros(frame_shape), torch.zeros(kernel_shape), torch.zeros(kernel_shape)
        )


def test_dispatch_rejects_mixed_dtypes():
    frame, vertical, horizontal = local_conv_inputs(1, 3, 4, 4, 3)
    with pytest.raises(ValueError, match="dtype"):
        separable_local_conv(frame.float(), vertical, horizontal)


def test_dispatch_picks_reference_on_cpu_and_refuses_unknown_backends(monkeypatch):
    assert resolve_backend("cpu", "auto") == "reference"
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("cpu", "cuda-magic")
    monkeypatch.setattr("sepconv.ops.triton_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="triton"):
        resolve_backend("cuda", "auto")
    with pytest.raises(BackendUnavailableError, match="triton"):
        resolve_backend("cpu", "triton")
