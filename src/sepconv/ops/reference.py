"""Plain-PyTorch reference of the separable local convolution.

The contract (shared by every backend, see :func:`sepconv.ops.separable_local_conv`)::

    out[b, c, y, x] = sum_{i<K} sum_{j<K} vertical[b, i, y, x] * horizontal[b, j, y, x]
                                          * frame[b, c, y + i, x + j]

This version loops over the K*K taps and never materialises the K*K patches: the forward
pass holds two (B, C, H, W) buffers besides its inputs and output, and the backward pass
recomputes what it needs instead of saving it, so memory stays a small multiple of one frame
at any resolution. It is the oracle the fast kernels are tested against, and the CPU path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _output_size(frame: Tensor, vertical: Tensor) -> tuple[int, int, int]:
    kernel_size = vertical.shape[1]
    return kernel_size, frame.shape[2] - kernel_size + 1, frame.shape[3] - kernel_size + 1


def _horizontal_pass(
    frame: Tensor, horizontal: Tensor, row: int, height: int, width: int, out: Tensor
) -> Tensor:
    """out[b, c, y, x] = sum_j horizontal[b, j, y, x] * frame[b, c, y + row, x + j]."""
    band = frame[:, :, row : row + height, :]
    out.zero_()
    for j in range(horizontal.shape[1]):
        out.addcmul_(band[:, :, :, j : j + width], horizontal[:, j : j + 1])
    return out


def forward(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Forward pass without autograd. Shapes as in :func:`separable_local_conv`."""
    kernel_size, height, width = _output_size(frame, vertical)
    batch, channels = frame.shape[:2]
    out = frame.new_zeros(batch, channels, height, width)
    row = frame.new_empty(batch, channels, height, width)
    for i in range(kernel_size):
        _horizontal_pass(frame, horizontal, i, height, width, row)
        out.addcmul_(row, vertical[:, i : i + 1])
    return out


def backward(
    grad_out: Tensor,
    frame: Tensor,
    vertical: Tensor,
    horizontal: Tensor,
    needs: tuple[bool, bool, bool] = (True, True, True),
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of the forward pass for (frame, vertical, horizontal); None where not needed.

    grad_frame[b, c, y+i, x+j]  += g[b, c, y, x] * v[b, i, y, x] * h[b, j, y, x]
    grad_vertical[b, i, y, x]    = sum_c g[b, c, y, x] * sum_j h[b, j, y, x] * frame[b, c, y+i, x+j]
    grad_horizontal[b, j, y, x]  = sum_c sum_i g[b, c, y, x] * v[b, i, y, x] * frame[b, c, y+i, x+j]
    """
    kernel_size, height, width = _output_size(frame, vertical)
    need_frame, need_vertical, need_horizontal = needs
    grad_frame = torch.zeros_like(frame) if need_frame else None
    grad_vertical = torch.empty_like(vertical) if need_vertical else None
    grad_horizontal = torch.zeros_like(horizontal) if need_horizontal else None
    row = torch.empty_like(grad_out) if need_vertical else None
    weighted = torch.empty_like(grad_out)  # g * v_i
    for i in range(kernel_size):
        if need_vertical:
            _horizontal_pass(frame, horizontal, i, height, width, row)
            grad_vertical[:, i] = (grad_out * row).sum(dim=1)
        if not (need_frame or need_horizontal):
            continue
        torch.mul(grad_out, vertical[:, i : i + 1], out=weighted)
        band = frame[:, :, i : i + height, :]
        for j in range(kernel_size):
            if need_frame:
                grad_frame[:, :, i : i + height, j : j + width].addcmul_(
                    weighted, horizontal[:, j : j + 1]
                )
            if need_horizontal:
                grad_horizontal[:, j] += (weighted * band[:, :, :, j : j + width]).sum(dim=1)
    return grad_frame, grad_vertical, grad_horizontal


def autograd_function(
    name: str,
    forward_pass: Callable[[Tensor, Tensor, Tensor], Tensor],
    backward_pass: Callable[..., tuple[Tensor | None, Tensor | None, Tensor | None]],
) -> type[torch.autograd.Function]:
    """An autograd Function that saves the three inputs and calls these two passes.

    ``backward_pass(grad_out, frame, vertical, horizontal, needs)`` has the signature of
    :func:`backward`. Backends with their own passes (:mod:`sepconv.ops.cpu`) build theirs here.
    """

    def forward_method(ctx, frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
        ctx.save_for_backward(frame, vertical, horizontal)
        return forward_pass(frame, vertical, horizontal)

    def backward_method(ctx, grad_out: Tensor):
        frame, vertical, horizontal = ctx.saved_tensors
        needs = tuple(bool(need) for need in ctx.needs_input_grad[:3])
        return backward_pass(grad_out.contiguous(), frame, vertical, horizontal, needs)

    return type(
        name,
        (torch.autograd.Function,),
        {"forward": staticmethod(forward_method), "backward": staticmethod(backward_method)},
    )


# Reference forward, recomputing reference backward.
SeparableLocalConvFunction = autograd_function("SeparableLocalConvFunction", forward, backward)


def separable_local_conv(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Differentiable reference separable local convolution (any device, any float dtype).

    Args:
        frame: (B, C, H + K - 1, W + K - 1), already padded by K // 2 on each side.
        vertical: (B, K, H, W) vertical 1D kernel of every output pixel.
        horizontal: (B, K, H, W) horizontal 1D kernel of every output pixel.

    Returns:
        (B, C, H, W), same dtype and device as the inputs.
    """
    return SeparableLocalConvFunction.apply(frame, vertical, horizontal)


def separable_local_conv_naive(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Literal per-pixel double loop of the contract. For tests on tiny inputs only."""
    kernel_size, height, width = _output_size(frame, vertical)
    batch, channels = frame.shape[:2]
    out = frame.new_zeros(batch, channels, height, width)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                patch = frame[b, :, y : y + kernel_size, x : x + kernel_size]
                weights = torch.outer(vertical[b, :, y, x], horizontal[b, :, y, x])
                out[b, :, y, x] = (patch * weights).sum(dim=(1, 2))
    return out
