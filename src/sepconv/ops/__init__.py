"""The separable local convolution, with one dispatch point for all its backends.

Backends:
    ``reference``  plain PyTorch (:mod:`sepconv.ops.reference`), any device, memory-lean.
    ``triton``     Triton kernels (:mod:`sepconv.ops.triton_kernels`), CUDA tensors; also CPU
                   tensors under ``TRITON_INTERPRET=1`` (slow, for testing only).
    ``cpu``        a compiled, vectorised forward for CPU tensors (:mod:`sepconv.ops.cpu`; built
                   on first use with the system C compiler), the reference backward. Same sums
                   in the same order as ``reference``: results agree to float rounding.
    ``auto``       ``triton`` for CUDA tensors, ``reference`` otherwise (the Interpolator's
                   ``optimize=True`` picks ``cpu`` on CPUs where it builds).

Calls where no input needs a gradient run the backend's forward (:func:`backend_forward`);
under ``torch.compile`` they go through one custom operator (:mod:`sepconv.ops.library`), so a
network compiles around it in one graph. Calls that need gradients use the backends' autograd
Functions.
"""

from __future__ import annotations

import os
from typing import Literal

import torch
from torch import Tensor

Backend = Literal["auto", "reference", "triton", "cpu"]
BACKENDS: tuple[str, ...] = ("auto", "reference", "triton", "cpu")


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine or for these tensors."""


def check_inputs(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> None:
    """Raise ValueError unless the three tensors satisfy the op's contract."""
    if frame.dim() != 4 or vertical.dim() != 4 or horizontal.dim() != 4:
        raise ValueError("frame, vertical and horizontal must all be 4-D (B, C|K, H, W)")
    if vertical.shape != horizontal.shape:
        raise ValueError(
            f"vertical {tuple(vertical.shape)} and horizontal {tuple(horizontal.shape)} differ"
        )
    batch, kernel_size, height, width = vertical.shape
    expected = (batch, height + kernel_size - 1, width + kernel_size - 1)
    got = (frame.shape[0], frame.shape[2], frame.shape[3])
    if got != expected:
        raise ValueError(
            f"frame must be (B, C, H + K - 1, W + K - 1) = (B={expected[0]}, C, {expected[1]}, "
            f"{expected[2]}) for kernels {tuple(vertical.shape)}, got {tuple(frame.shape)}"
        )
    if not (frame.dtype == vertical.dtype == horizontal.dtype) or not frame.is_floating_point():
        raise ValueError(
            f"frame, vertical and horizontal must share one floating dtype, got "
            f"{frame.dtype}, {vertical.dtype}, {horizontal.dtype}"
        )
    if not (frame.device == vertical.device == horizontal.device):
        raise ValueError("frame, vertical and horizontal must be on the same device")


def triton_available() -> bool:
    """True when the triton package imports."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(device_type: str, backend: str = "auto") -> str:
    """Pick the concrete backend for tensors on `device_type`; raise if it cannot run there."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "reference":
        return backend
    if backend == "cpu":
        if device_type != "cpu":
            raise BackendUnavailableError(
                f"backend 'cpu' runs on CPU tensors, got {device_type} tensors"
            )
        from sepconv.ops.cpu import cpu_kernel_error

        error = cpu_kernel_error()
        if error is not None:
            raise BackendUnavailableError(
                f"backend 'cpu' needs a working C compiler to build its kernel ({error}); "
                "pass backend='reference' for the pure-PyTorch path"
            )
        return backend
    if backend == "auto":
        chosen = _concrete(backend, device_type)
        if chosen == "triton" and not triton_available():
            raise BackendUnavailableError(
                "CUDA tensors need the triton package for the fast separable local convolution "
                "(pip install triton), or pass backend='reference' for the slow pure-PyTorch path"
            )
        return chosen
    # backend == "triton"
    if not triton_available():
        raise BackendUnavailableError(
            "backend 'triton' needs the triton package (pip install triton)"
        )
    if device_type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise BackendUnavailableError(
            f"backend 'triton' runs on CUDA tensors, got {device_type} tensors "
            "(set TRITON_INTERPRET=1 to run the kernels in Triton's CPU interpreter, for tests)"
        )
    return "triton"


def _concrete(backend: str, device_type: str) -> str:
    """The backend ``auto`` stands for on `device_type` (the one place of that rule), without
    the availability checks of :func:`resolve_backend`."""
    if backend == "auto":
        return "triton" if device_type == "cuda" else "reference"
    return backend


def backend_forward(frame: Tensor, vertical: Tensor, horizontal: Tensor, backend: str) -> Tensor:
    """Forward pass of a resolved `backend` ("reference", "triton" or "cpu"), no autograd
    (shapes as in :func:`separable_local_conv`)."""
    if backend == "triton":
        from sepconv.ops.triton_kernels import triton_forward

        return triton_forward(frame.contiguous(), vertical.contiguous(), horizontal.contiguous())
    if backend == "cpu":
        from sepconv.ops.cpu import forward

        return forward(frame, vertical, horizontal)
    if backend == "reference":
        from sepconv.ops.reference import forward

        return forward(frame, vertical, horizontal)
    raise ValueError(f"unknown resolved backend {backend!r}")


def separable_local_conv(
    frame: Tensor, vertical: Tensor, horizontal: Tensor, *, backend: Backend = "auto"
) -> Tensor:
    """Separable local convolution: every output pixel has its own K x K kernel v (x) h.

    ``out[b, c, y, x] = sum_i sum_j vertical[b, i, y, x] * horizontal[b, j, y, x]
    * frame[b, c, y + i, x + j]`` for i, j in 0..K-1.

    Args:
        frame: (B, C, H + K - 1, W + K - 1) float tensor, the input frame already padded by
            K // 2 on every side (SepConv pads with ``mode="replicate"``). Any C.
        vertical: (B, K, H, W) vertical 1D kernels, same dtype and device as `frame`.
        horizontal: (B, K, H, W) horizontal 1D kernels.
        backend: ``auto`` (Triton on CUDA, reference elsewhere), ``reference``, ``triton`` or
            ``cpu``.

    Returns:
        (B, C, H, W) tensor of the inputs' dtype. Differentiable in all three inputs.
    """
    check_inputs(frame, vertical, horizontal)
    if torch.compiler.is_compiling():
        # Availability checks (locks, compiler probes) are not traceable; the operator's
        # implementation fails clearly at run time if the backend cannot run.
        chosen = _concrete(backend, frame.device.type)
    else:
        chosen = resolve_backend(frame.device.type, backend)
    if not (
        torch.is_grad_enabled() and any(t.requires_grad for t in (frame, vertical, horizontal))
    ):
        if torch.compiler.is_compiling():
            # One custom operator, opaque to torch.compile (see sepconv.ops.library).
            from sepconv.ops.library import separable_local_conv_forward

            return separable_local_conv_forward(frame, vertical, horizontal, chosen)
        # Eager inference calls the forward itself: the operator's first call imports
        # torch._dynamo, over a second of a one-shot command's start-up.
        return backend_forward(frame, vertical, horizontal, chosen)
    if chosen == "triton":
        from sepconv.ops.triton_kernels import separable_local_conv_triton

        return separable_local_conv_triton(frame, vertical, horizontal)
    if chosen == "cpu":
        from sepconv.ops.cpu import separable_local_conv_cpu

        return separable_local_conv_cpu(frame, vertical, horizontal)
    from sepconv.ops.reference import separable_local_conv as reference_conv

    return reference_conv(frame, vertical, horizontal)


__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "backend_forward",
    "check_inputs",
    "resolve_backend",
    "separable_local_conv",
    "triton_available",
]
