"""The cost volumes' in-place backward against the plain-PyTorch references."""

from __future__ import annotations

import pytest
import torch

from sepconv.ops.cost_volume import (
    bilateral_cost_volume,
    bilateral_cost_volume_reference,
    local_cost_volume,
    local_cost_volume_reference,
)


def _inputs(seed: int, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(shape, generator=generator, dtype=dtype).requires_grad_() for _ in range(2)
    )


def _forward_and_backward(function, first, second, *args):
    output = function(first, second, *args)
    weights = torch.randn(
        output.shape, generator=torch.Generator().manual_seed(9), dtype=output.dtype
    )
    first_grad, second_grad = torch.autograd.grad((output * weights).sum(), (first, second))
    return output, first_grad, second_grad


@pytest.mark.parametrize(("radius", "step"), [(1, 1), (2, 2), (3, 1)])
def test_bilateral_matches_its_reference_forward_and_backward(radius: int, step: int) -> None:
    first, second = _inputs(0, (3, 4, 7, 9), torch.float64)
    time = torch.tensor([0.5, 0.2, 0.75])  # per sample: each splits d differently
    fast = _forward_and_backward(bilateral_cost_volume, first, second, time, radius, step)
    reference = _forward_and_backward(
        bilateral_cost_volume_reference, first, second, time, radius, step
    )
    assert torch.equal(fast[0], reference[0])  # the same forward
    for ours, theirs in zip(fast[1:], reference[1:], strict=True):
        assert torch.allclose(ours, theirs, atol=1e-12)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_local_matches_its_reference_forward_and_backward(radius: int) -> None:
    first, second = _inputs(1, (2, 5, 6, 8), torch.float64)
    fast = _forward_and_backward(local_cost_volume, first, second, radius)
    reference = _forward_and_backward(local_cost_volume_reference, first, second, radius)
    assert torch.equal(fast[0], reference[0])
    for ours, theirs in zip(fast[1:], reference[1:], strict=True):
        assert torch.allclose(ours, theirs, atol=1e-12)


def test_float32_backward_agrees_with_the_reference() -> None:
    first, second = _inputs(2, (2, 8, 12, 10), torch.float32)
    time = torch.tensor([0.3, 0.6])
    fast = _forward_and_backward(bilateral_cost_volume, first, second, time, 2, 2)
    reference = _forward_and_backward(bilateral_cost_volume_reference, first, second, time, 2, 2)
    for ours, theirs in zip(fast, reference, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64() -> None:
    first, second = _inputs(3, (2, 2, 5, 6), torch.float64)
    time = torch.tensor([0.3, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b: bilateral_cost_volume(a, b, time, radius=1, step=2), (first, second)
    )
    assert torch.autograd.gradcheck(lambda a, b: local_cost_volume(a, b, 2), (first, second))


def test_only_one_input_needs_a_gradient() -> None:
    first, second = _inputs(4, (1, 3, 5, 5), torch.float64)
    frozen = second.detach()
    output = local_cost_volume(first, frozen, 1)
    (grad,) = torch.autograd.grad(output.sum(), first)
    expected = local_cost_volume_reference(first, frozen, 1)
    (expected_grad,) = torch.autograd.grad(expected.sum(), first)
    assert torch.allclose(grad, expected_grad, atol=1e-12)


def test_without_gradients_it_is_the_reference() -> None:
    first, second = _inputs(5, (1, 3, 6, 6), torch.float32)
    with torch.no_grad():
        output = bilateral_cost_volume(first, second, torch.tensor([0.4]), 2, 1)
    assert output.grad_fn is None
    assert torch.equal(
        output, bilateral_cost_volume_reference(first, second, torch.tensor([0.4]), 2, 1).detach()
    )
