"""Triton kernels of the separable local convolution, forward and backward.

The contract is the one of :func:`sepconv.ops.separable_local_conv`::

    out[b, c, y, x] = sum_{i<K} sum_{j<K} vertical[b, i, y, x] * horizontal[b, j, y, x]
                                          * frame[b, c, y + i, x + j]

Shapes: ``frame`` is (B, C, H + K - 1, W + K - 1) (already padded), ``vertical`` and
``horizontal`` are (B, K, H, W), the output is (B, C, H, W). Any K >= 1 (odd or even) and any
C >= 1 work. Dtypes: float16, bfloat16 and float32 are loaded, accumulated in float32 and
stored in the input dtype; float64 is accumulated in float64 (Triton supports fp64 on CUDA and
in its interpreter).

Launch and tiling strategy (all kernels): one program per (batch, channel group, row, block of
``BLOCK_X`` consecutive x positions), flattened into a 1-D grid so that no grid axis limit is
hit at 4K or with large batches. A program holds a ``(C_BLOCK, BLOCK_X)`` register tile, i.e.
up to ``C_BLOCK`` channels (all of them for RGB / RGBA) of ``BLOCK_X`` pixels of one row; x is
the fastest axis of every tensor so every load and store is coalesced along x. The per-pixel
kernels are loaded once per tap for all channels of the tile. The K x K taps are runtime loops
(K = 51 is not unrolled). Base offsets are computed in int64, and pointers are advanced
incrementally, so frames and batches with more than 2**31 elements are addressed correctly.

Backward is written without atomics:

* ``grad_frame`` is a gather: one program per block of *padded* frame pixels (p, q) sums
  ``g[b, c, p - i, q - j] * v[b, i, p - i, q - j] * h[b, j, p - i, q - j]`` over the taps
  (i, j) whose source pixel (p - i, q - j) lies inside the output; the i range is clipped per
  row and the j range per block so no work is spent on all-invalid taps.
* ``grad_vertical[b, i, y, x] = sum_c g[b, c, y, x] * sum_j h[b, j, y, x] f[b, c, y+i, x+j]``
  and ``grad_horizontal[b, j, y, x] = sum_c g[b, c, y, x] * sum_i v[b, i, y, x] f[b, c, y+i,
  x+j]`` share one kernel (a ``constexpr`` flag swaps the roles of the two tap indices): every
  program owns its output pixels, so the K outputs of a pixel are written exactly once.

Only the gradients that autograd asks for (``ctx.needs_input_grad``) are computed.

On CPU tensors the kernels only run under Triton's interpreter, which must be enabled by
setting ``TRITON_INTERPRET=1`` *before this module is imported* (``@triton.jit`` picks the
compiled or the interpreted implementation at decoration time).
"""

# Triton convention: compile-time (tl.constexpr) kernel arguments are UPPER_CASE.
# ruff: noqa: N803

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch import Tensor

from sepconv.ops import BackendUnavailableError, check_inputs

_MAX_BLOCK_X = 128
_MAX_C_BLOCK = 8


@triton.jit
def _forward_kernel(
    frame_ptr,
    vertical_ptr,
    horizontal_ptr,
    out_ptr,
    channels,
    height,
    width,
    ksize,
    frame_w,
    plane,
    frame_plane,
    num_x_blocks,
    num_c_blocks,
    C_BLOCK: tl.constexpr,
    BLOCK_X: tl.constexpr,
    ACC: tl.constexpr,
):
    """out[b, c, y, x] for one row y, BLOCK_X columns and C_BLOCK channels."""
    pid = tl.program_id(0).to(tl.int64)
    x_block = pid % num_x_blocks
    rest = pid // num_x_blocks
    y = rest % height
    rest = rest // height
    c_block = rest % num_c_blocks
    b = rest // num_c_blocks

    xs = x_block * BLOCK_X + tl.arange(0, BLOCK_X)
    x_mask = xs < width
    cs = c_block * C_BLOCK + tl.arange(0, C_BLOCK)
    mask = (cs < channels)[:, None] & x_mask[None, :]

    # vertical/horizontal[b, t, y, x] = base + t * plane + x
    kernel_row = vertical_ptr + (b * ksize * plane + y * width)
    h_row = horizontal_ptr + (b * ksize * plane + y * width)
    # frame[b, c, y + i, x + j] = base + c * frame_plane + (y + i) * frame_w + x + j
    frame_tile = (
        frame_ptr
        + (b * channels * frame_plane + y * frame_w)
        + (cs.to(tl.int64) * frame_plane)[:, None]
        + xs[None, :]
    )

    acc = tl.zeros((C_BLOCK, BLOCK_X), dtype=ACC)
    v_ptrs = kernel_row + xs
    for _i in range(ksize):
        v = tl.load(v_ptrs, mask=x_mask, other=0.0).to(ACC)
        h_ptrs = h_row + xs
        f_ptrs = frame_tile
        row = tl.zeros((C_BLOCK, BLOCK_X), dtype=ACC)
        for _j in range(ksize):
            h = tl.load(h_ptrs, mask=x_mask, other=0.0).to(ACC)
            f = tl.load(f_ptrs, mask=mask, other=0.0).to(ACC)
            row += h[None, :] * f
            h_ptrs += plane
            f_ptrs += 1
        acc += v[None, :] * row
        v_ptrs += plane
        frame_tile += frame_w

    out_ptrs = (
        out_ptr
        + (b * channels * plane + y * width)
        + (cs.to(tl.int64) * plane)[:, None]
        + xs[None, :]
    )
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_frame_kernel(
    grad_out_ptr,
    vertical_ptr,
    horizontal_ptr,
    grad_frame_ptr,
    channels,
    height,
    width,
    ksize,
    frame_h,
    frame_w,
    plane,
    frame_plane,
    num_q_blocks,
    num_c_blocks,
    C_BLOCK: tl.constexpr,
    BLOCK_X: tl.constexpr,
    ACC: tl.constexpr,
):
    """grad_frame[b, c, p, q] (gather) for one padded row p, BLOCK_X columns, C_BLOCK channels."""
    pid = tl.program_id(0).to(tl.int64)
    q_block = pid % num_q_blocks
    rest = pid // num_q_blocks
    p = rest % frame_h
    rest = rest // frame_h
    c_block = rest % num_c_blocks
    b = rest // num_c_blocks

    q0 = q_block * BLOCK_X
    qs = q0 + tl.arange(0, BLOCK_X)
    q_mask = qs < frame_w
    cs = c_block * C_BLOCK + tl.arange(0, C_BLOCK)
    c_mask = cs < channels

    # Taps (i, j) that reach (p, q) come from output pixel (y, x) = (p - i, q - j), which must
    # lie in [0, height) x [0, width): clip i per row and j per block (the rest is masked per lane).
    i_lo = tl.maximum(p - height + 1, 0)
    i_hi = tl.minimum(p + 1, ksize)
    j_lo = tl.maximum(q0 - width + 1, 0)
    j_hi = tl.minimum(q0 + BLOCK_X, ksize)

    kernel_batch = b * ksize * plane
    grad_channels = grad_out_ptr + b * channels * plane + (cs.to(tl.int64) * plane)[:, None]

    acc = tl.zeros((C_BLOCK, BLOCK_X), dtype=ACC)
    for i in range(i_lo, i_hi):
        y = p - i
        v_row = vertical_ptr + (kernel_batch + i * plane + y * width)
        h_row = horizontal_ptr + (kernel_batch + y * width)
        g_row = grad_channels + y * width
        for j in range(j_lo, j_hi):
            xs = qs - j
            m = q_mask & (xs >= 0) & (xs < width)
            v = tl.load(v_row + xs, mask=m, other=0.0).to(ACC)
            h = tl.load(h_row + j * plane + xs, mask=m, other=0.0).to(ACC)
            g = tl.load(g_row + xs[None, :], mask=c_mask[:, None] & m[None, :], other=0.0)
            acc += g.to(ACC) * (v * h)[None, :]

    out_ptrs = (
        grad_frame_ptr
        + (b * channels * frame_plane + p * frame_w)
        + (cs.to(tl.int64) * frame_plane)[:, None]
        + qs[None, :]
    )
    tl.store(
        out_ptrs, acc.to(grad_frame_ptr.dtype.element_ty), mask=c_mask[:, None] & q_mask[None, :]
    )


@triton.jit
def _grad_kernel_kernel(
    grad_out_ptr,
    frame_ptr,
    weight_ptr,
    grad_ptr,
    channels,
    height,
    width,
    ksize,
    frame_w,
    plane,
    frame_plane,
    num_x_blocks,
    num_c_blocks,
    FOR_HORIZONTAL: tl.constexpr,
    C_BLOCK: tl.constexpr,
    BLOCK_X: tl.constexpr,
    ACC: tl.constexpr,
):
    """Gradient of one of the two 1-D kernels for one row y and BLOCK_X columns.

    FOR_HORIZONTAL = False: grad_ptr <- grad_vertical, weight_ptr = horizontal,
        grad[b, a, y, x] = sum_c g[b, c, y, x] * sum_s w[b, s, y, x] * f[b, c, y + a, x + s].
    FOR_HORIZONTAL = True: grad_ptr <- grad_horizontal, weight_ptr = vertical,
        grad[b, a, y, x] = sum_c g[b, c, y, x] * sum_s w[b, s, y, x] * f[b, c, y + s, x + a].
    The channel sum runs over all channels, C_BLOCK at a time (num_c_blocks groups).
    """
    pid = tl.program_id(0).to(tl.int64)
    x_block = pid % num_x_blocks
    rest = pid // num_x_blocks
    y = rest % height
    b = rest // height

    xs = x_block * BLOCK_X + tl.arange(0, BLOCK_X)
    x_mask = xs < width
    lanes = tl.arange(0, C_BLOCK)

    w_row = weight_ptr + (b * ksize * plane + y * width) + xs
    grad_row = grad_ptr + (b * ksize * plane + y * width) + xs
    frame_origin = frame_ptr + (b * channels * frame_plane + y * frame_w)
    grad_origin = grad_out_ptr + (b * channels * plane + y * width)

    for a in range(ksize):
        total = tl.zeros((BLOCK_X,), dtype=ACC)
        for cb in range(num_c_blocks):
            cs = cb * C_BLOCK + lanes
            mask = (cs < channels)[:, None] & x_mask[None, :]
            c_off = (cs.to(tl.int64) * frame_plane)[:, None] + xs[None, :]
            if FOR_HORIZONTAL:
                f_ptrs = frame_origin + a + c_off
                f_step = frame_w
            else:
                f_ptrs = frame_origin + a * frame_w + c_off
                f_step = 1
            w_ptrs = w_row
            acc = tl.zeros((C_BLOCK, BLOCK_X), dtype=ACC)
            for _s in range(ksize):
                w = tl.load(w_ptrs, mask=x_mask, other=0.0).to(ACC)
                f = tl.load(f_ptrs, mask=mask, other=0.0).to(ACC)
                acc += w[None, :] * f
                w_ptrs += plane
                f_ptrs += f_step
            g_ptrs = grad_origin + (cs.to(tl.int64) * plane)[:, None] + xs[None, :]
            g = tl.load(g_ptrs, mask=mask, other=0.0).to(ACC)
            total += tl.sum(g * acc, axis=0)
        tl.store(grad_row + a * plane, total.to(grad_ptr.dtype.element_ty), mask=x_mask)


def _interpreted() -> bool:
    """True when the kernels above were built by Triton's CPU interpreter (TRITON_INTERPRET=1)."""
    return not isinstance(_forward_kernel, triton.runtime.JITFunction)


_ACCUMULATOR = {
    torch.float16: tl.float32,
    torch.bfloat16: tl.float32,
    torch.float32: tl.float32,
    torch.float64: tl.float64,
}


def _check_runnable(frame: Tensor) -> None:
    if frame.dtype not in _ACCUMULATOR:
        raise TypeError(
            f"the triton separable local convolution supports float16, bfloat16, float32 and "
            f"float64, got {frame.dtype}"
        )
    if frame.device.type != "cuda" and not _interpreted():
        raise BackendUnavailableError(
            f"the triton kernels run on CUDA tensors, got {frame.device.type} tensors; set "
            "TRITON_INTERPRET=1 before sepconv.ops.triton_kernels is imported to run them in "
            "Triton's CPU interpreter (tests only)"
        )


def _block_sizes(width: int, channels: int) -> tuple[int, int, int]:
    """(C_BLOCK, BLOCK_X, num_warps) for rows of `width` pixels with `channels` channels."""
    block_x = min(_MAX_BLOCK_X, max(16, triton.next_power_of_2(width)))
    c_block = min(_MAX_C_BLOCK, triton.next_power_of_2(channels))
    num_warps = max(1, min(4, c_block * block_x // 128))
    return c_block, block_x, num_warps


def _device_guard(tensor: Tensor) -> contextlib.AbstractContextManager:
    """Make `tensor`'s CUDA device current for the launches (a no-op on CPU)."""
    if tensor.device.type == "cuda":
        return torch.cuda.device(tensor.device)
    return contextlib.nullcontext()


def triton_forward(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Forward pass without autograd; inputs must already be contiguous and checked.

    Returns a (B, C, H, W) tensor of the inputs' dtype.
    """
    batch, channels = frame.shape[:2]
    kernel_size, height, width = vertical.shape[1:]
    out = frame.new_empty(batch, channels, height, width)
    if out.numel() == 0:
        return out
    frame_h, frame_w = frame.shape[2:]
    c_block, block_x, num_warps = _block_sizes(width, channels)
    num_x_blocks = triton.cdiv(width, block_x)
    num_c_blocks = triton.cdiv(channels, c_block)
    grid = (batch * num_c_blocks * height * num_x_blocks,)
    with _device_guard(frame):
        _forward_kernel[grid](
            frame,
            vertical,
            horizontal,
            out,
            channels,
            height,
            width,
            kernel_size,
            frame_w,
            height * width,
            frame_h * frame_w,
            num_x_blocks,
            num_c_blocks,
            C_BLOCK=c_block,
            BLOCK_X=block_x,
            ACC=_ACCUMULATOR[frame.dtype],
            num_warps=num_warps,
        )
    return out


def triton_backward(
    grad_out: Tensor,
    frame: Tensor,
    vertical: Tensor,
    horizontal: Tensor,
    needs: tuple[bool, bool, bool] = (True, True, True),
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients for (frame, vertical, horizontal); None where `needs` is False.

    All tensors must be contiguous, of one dtype and device; `grad_out` is (B, C, H, W). The
    gradients have the shapes and dtype of the corresponding inputs.
    """
    batch, channels = frame.shape[:2]
    kernel_size, height, width = vertical.shape[1:]
    frame_h, frame_w = frame.shape[2:]
    plane, frame_plane = height * width, frame_h * frame_w
    acc = _ACCUMULATOR[frame.dtype]
    need_frame, need_vertical, need_horizontal = needs
    grad_frame = torch.empty_like(frame) if need_frame else None
    grad_vertical = torch.empty_like(vertical) if need_vertical else None
    grad_horizontal = torch.empty_like(horizontal) if need_horizontal else None
    if grad_out.numel() == 0:
        # Empty output (B = 0, C = 0, H = 0 or W = 0): every gradient is zero.
        grads = (grad_frame, grad_vertical, grad_horizontal)
        zeroed = tuple(None if grad is None else grad.zero_() for grad in grads)
        return zeroed[0], zeroed[1], zeroed[2]

    with _device_guard(frame):
        if grad_frame is not None:
            c_block, block_x, num_warps = _block_sizes(frame_w, channels)
            num_q_blocks = triton.cdiv(frame_w, block_x)
            num_c_blocks = triton.cdiv(channels, c_block)
            grid = (batch * num_c_blocks * frame_h * num_q_blocks,)
            _grad_frame_kernel[grid](
                grad_out,
                vertical,
                horizontal,
                grad_frame,
                channels,
                height,
                width,
                kernel_size,
                frame_h,
                frame_w,
                plane,
                frame_plane,
                num_q_blocks,
                num_c_blocks,
                C_BLOCK=c_block,
                BLOCK_X=block_x,
                ACC=acc,
                num_warps=num_warps,
            )
        c_block, block_x, num_warps = _block_sizes(width, channels)
        num_x_blocks = triton.cdiv(width, block_x)
        num_c_blocks = triton.cdiv(channels, c_block)
        grid = (batch * height * num_x_blocks,)
        for grad, weight, for_horizontal in (
            (grad_vertical, horizontal, False),
            (grad_horizontal, vertical, True),
        ):
            if grad is None:
                continue
            _grad_kernel_kernel[grid](
                grad_out,
                frame,
                weight,
                grad,
                channels,
                height,
                width,
                kernel_size,
                frame_w,
                plane,
                frame_plane,
                num_x_blocks,
                num_c_blocks,
                FOR_HORIZONTAL=for_horizontal,
                C_BLOCK=c_block,
                BLOCK_X=block_x,
                ACC=acc,
                num_warps=num_warps,
            )
    return grad_frame, grad_vertical, grad_horizontal


class SeparableLocalConvTriton(torch.autograd.Function):
    """Autograd wrapper around :func:`triton_forward` and :func:`triton_backward`.

    Saves the three (contiguous) inputs; the backward pass recomputes everything else.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        frame: Tensor,
        vertical: Tensor,
        horizontal: Tensor,
    ) -> Tensor:
        frame, vertical, horizontal = (t.contiguous() for t in (frame, vertical, horizontal))
        ctx.save_for_backward(frame, vertical, horizontal)
        return triton_forward(frame, vertical, horizontal)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        frame, vertical, horizontal = ctx.saved_tensors
        needs = tuple(bool(n) for n in ctx.needs_input_grad[:3])
        return triton_backward(
            grad_out.contiguous().to(frame.dtype), frame, vertical, horizontal, needs
        )


def separable_local_conv_triton(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Differentiable separable local convolution with Triton kernels.

    Args:
        frame: (B, C, H + K - 1, W + K - 1) float16/bfloat16/float32/float64 tensor, already
            padded by K // 2 on every side. Any C >= 1.
        vertical: (B, K, H, W) vertical 1-D kernel of every output pixel, same dtype/device.
        horizontal: (B, K, H, W) horizontal 1-D kernel of every output pixel.

    Returns:
        (B, C, H, W) tensor of the inputs' dtype (accumulated in float32, or float64 for
        float64 inputs). Differentiable in all three inputs.

    Raises:
        ValueError: shapes, dtypes or devices violate the contract.
        TypeError: a floating dtype the kernels do not support.
        BackendUnavailableError: CPU tensors while Triton's interpreter is off.
    """
    check_inputs(frame, vertical, horizontal)
    _check_runnable(frame)
    return SeparableLocalConvTriton.apply(frame, vertical, horizontal)


__all__ = [
    "SeparableLocalConvTriton",
    "separable_local_conv_triton",
    "triton_backward",
    "triton_forward",
]
