"""The local convolution as a PyTorch custom operator, for inference under ``torch.compile``.

``torch.ops.sepconv.separable_local_conv(frame, vertical, horizontal, backend)`` runs the
forward pass of the named backend ("reference", "triton" or "cpu", already resolved) and has
a fake (meta) implementation, so ``torch.compile`` treats it as one opaque node with known
output shape instead of tracing into Triton launches, ctypes calls or tap loops: the network
around it compiles as one graph (``fullgraph=True``). It has no autograd formula; the
dispatch point (:func:`sepconv.ops.separable_local_conv`) uses it only under ``torch.compile``
when no input needs a gradient (eager calls run :func:`sepconv.ops.backend_forward` without
it: the operator's first call imports ``torch._dynamo``) and keeps the autograd Functions for
training.

The operator is registered when this module is first imported (by the dispatch point, on the
first gradient-free call under ``torch.compile``), not when ``sepconv`` is imported.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["separable_local_conv_forward"]


@torch.library.custom_op("sepconv::separable_local_conv", mutates_args=())
def separable_local_conv_forward(
    frame: Tensor, vertical: Tensor, horizontal: Tensor, backend: str
) -> Tensor:
    """Forward pass of `backend` (shapes as in :func:`sepconv.ops.separable_local_conv`)."""
    from sepconv.ops import backend_forward

    return backend_forward(frame, vertical, horizontal, backend)


@separable_local_conv_forward.register_fake
def _(frame: Tensor, vertical: Tensor, horizontal: Tensor, backend: str) -> Tensor:
    batch, channels = frame.shape[:2]
    height, width = vertical.shape[2:]
    return frame.new_empty(batch, channels, height, width)
