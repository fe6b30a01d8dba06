"""Cost volumes of the learned motion (:mod:`sepconv.models.motion`), each beside its reference.

Both volumes correlate two feature maps over integer shifts, so every cost is a dot product of
two slices. The references are plain PyTorch: one slice pair and one ``vecdot`` per shift
(and, for the bilateral volume, per sample). Autograd then gives each slice its own backward,
which allocates a zero tensor of the whole padded input and adds it into the gradient: on the
CPU that dominated training's backward pass (thousands of full-size fills and adds per step).

The autograd Functions here run the same forward and write the backward themselves: each
shift's gradient is multiplied and added in place into one padded buffer per input, with no
full-size temporary. Calls where no input needs a gradient (inference, ``torch.compile``) run
the reference forward directly. Tested against the references forward and backward, and with
float64 ``gradcheck``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = [
    "bilateral_cost_volume",
    "bilateral_cost_volume_reference",
    "local_cost_volume",
    "local_cost_volume_reference",
]

# A full index into a padded input: (sample, all channels, rows, columns) or (..., rows, columns).
_Window = tuple[object, ...]


def _bilateral_windows(
    times: list[float], radius: int, step: int, height: int, width: int
) -> Iterator[tuple[int, int, _Window, _Window]]:
    """(sample, candidate, index of the first frame's window, index of the last's) for every
    sample and candidate motion d (row-major over dy, then dx), both frames padded by
    ``radius * step``: the first frame is read at ``p - a``, the last at ``p + d - a``, with
    ``a = round(t * d)``. The indices take the sample and all its channels."""
    reach = radius * step
    for index, t in enumerate(times):
        candidate = 0
        for dy in range(-reach, reach + 1, step):
            for dx in range(-reach, reach + 1, step):
                ay, ax = round(t * dy), round(t * dx)
                first = (
                    index,
                    slice(None),
                    slice(reach - ay, reach - ay + height),
                    slice(reach - ax, reach - ax + width),
                )
                last = (
                    index,
                    slice(None),
                    slice(reach + dy - ay, reach + dy - ay + height),
                    slice(reach + dx - ax, reach + dx - ax + width),
                )
                yield index, candidate, first, last
                candidate += 1


def bilateral_cost_volume_reference(
    features0: Tensor, features1: Tensor, time: Tensor, radius: int, step: int
) -> Tensor:
    """Correlation of the two frames' features along candidate motions through each pixel.

    For the output pixel p at time t and the candidate total motion d (first frame to last,
    on a (2r + 1)^2 grid of spacing ``step``, row-major over dy then dx), the first frame is
    read at ``p - a`` and the last at ``p + d - a``, with ``a = round(t * d)``: the whole motion
    exactly, its split at t to the nearest pixel. Integer shifts are slices, so nothing is
    resampled.

    Args:
        features0, features1: (B, C, h, w) unit-length features.
        time: (B,) in (0, 1).
    Returns:
        (B, (2r + 1)^2, h, w) costs in [-1, 1] (0 where a read falls outside the frame).
    """
    height, width = features0.shape[-2:]
    reach = radius * step
    padded0 = F.pad(features0, [reach] * 4)
    padded1 = F.pad(features1, [reach] * 4)
    count = (2 * radius + 1) ** 2
    costs: list[Tensor] = []
    for *_, first, last in _bilateral_windows(time.tolist(), radius, step, height, width):
        # vecdot, not (a * b).sum(): no (C, h, w) product temporary per candidate.
        costs.append(torch.linalg.vecdot(padded0[first], padded1[last], dim=0))
    batch = features0.shape[0]
    return torch.stack(costs).view(batch, count, height, width)


class _BilateralCostVolume(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        features0: Tensor,
        features1: Tensor,
        time: Tensor,
        radius: int,
        step: int,
    ) -> Tensor:
        ctx.save_for_backward(features0, features1)
        ctx.times, ctx.radius, ctx.step = time.tolist(), radius, step
        return bilateral_cost_volume_reference(features0, features1, time, radius, step)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        features0, features1 = ctx.saved_tensors
        height, width = features0.shape[-2:]
        reach = ctx.radius * ctx.step
        padded0 = F.pad(features0, [reach] * 4)
        padded1 = F.pad(features1, [reach] * 4)
        grad0 = torch.zeros_like(padded0)
        grad1 = torch.zeros_like(padded1)
        windows = _bilateral_windows(ctx.times, ctx.radius, ctx.step, height, width)
        for index, candidate, first, last in windows:
            weight = grad[index, candidate]
            grad0[first].addcmul_(padded1[last], weight)
            grad1[last].addcmul_(padded0[first], weight)
        inside = (..., slice(reach, reach + height), slice(reach, reach + width))
        return grad0[inside], grad1[inside], None, None, None


def bilateral_cost_volume(
    features0: Tensor, features1: Tensor, time: Tensor, radius: int, step: int
) -> Tensor:
    """:func:`bilateral_cost_volume_reference`, with a backward that accumulates in place."""
    if torch.is_grad_enabled() and (features0.requires_grad or features1.requires_grad):
        return _BilateralCostVolume.apply(features0, features1, time, radius, step)
    return bilateral_cost_volume_reference(features0, features1, time, radius, step)


def _local_shifts(radius: int, height: int, width: int) -> Iterator[tuple[int, _Window]]:
    """(shift, index of the window of the second input padded by ``radius``) for every integer
    shift d in [-r, r]^2, row-major over dy then dx."""
    index = 0
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            yield (
                index,
                (
                    Ellipsis,
                    slice(radius + dy, radius + dy + height),
                    slice(radius + dx, radius + dx + width),
                ),
            )
            index += 1


def local_cost_volume_reference(warped0: Tensor, warped1: Tensor, radius: int) -> Tensor:
    """Correlation of features already aligned to time t, over integer shifts of the second.

    ``cost[:, k](p) = <warped0(p), warped1(p + d_k)>`` for the (2r + 1)^2 shifts ``d_k``
    (row-major over dy, then dx), zero outside the frame: a residual motion ``d`` between the
    two warps (PWC-Net's cost volume). Integer shifts are slices, so this costs a multiply-add
    per channel and shift, without resampling.

    Args:
        warped0, warped1: (B, C, h, w) unit-length features.
    Returns:
        (B, (2r + 1)^2, h, w) costs in [-1, 1].
    """
    height, width = warped0.shape[-2:]
    padded = F.pad(warped1, [radius] * 4)
    # vecdot, not (a * b).sum(): no (B, C, h, w) product is allocated per shift.
    costs = [
        torch.linalg.vecdot(warped0, padded[window], dim=1)
        for _, window in _local_shifts(radius, height, width)
    ]
    return torch.stack(costs, dim=1)


class _LocalCostVolume(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, warped0: Tensor, warped1: Tensor, radius: int) -> Tensor:
        ctx.save_for_backward(warped0, warped1)
        ctx.radius = radius
        return local_cost_volume_reference(warped0, warped1, radius)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:
        warped0, warped1 = ctx.saved_tensors
        radius = ctx.radius
        height, width = warped0.shape[-2:]
        padded = F.pad(warped1, [radius] * 4)
        grad0 = torch.zeros_like(warped0)
        grad_padded = torch.zeros_like(padded)
        for index, window in _local_shifts(radius, height, width):
            weight = grad[:, index : index + 1]
            grad0.addcmul_(padded[window], weight)
            grad_padded[window].addcmul_(warped0, weight)
        inside = (..., slice(radius, radius + height), slice(radius, radius + width))
        return grad0, grad_padded[inside], None


def local_cost_volume(warped0: Tensor, warped1: Tensor, radius: int) -> Tensor:
    """:func:`local_cost_volume_reference`, with a backward that accumulates in place."""
    if torch.is_grad_enabled() and (warped0.requires_grad or warped1.requires_grad):
        return _LocalCostVolume.apply(warped0, warped1, radius)
    return local_cost_volume_reference(warped0, warped1, radius)
