"""What every model family shares: per-pixel separable kernels and their synthesis.

A family predicts, for every output pixel, four 1D kernels of K taps (vertical and horizontal
for each of two source frames) and the output is the sum of the two separable local
convolutions (:func:`sepconv.ops.separable_local_conv`), optionally with SepConv++'s input and
kernel normalisations. :class:`KernelSynthesisModel` holds that synthesis once; the families
(:mod:`sepconv.models.sepconv_net`, :mod:`sepconv.models.flow_sepconv`) differ in what they
feed it.

The small model interface the :class:`~sepconv.inference.Interpolator` and the trainer use:

* ``prepare(first, second) -> dict`` on the whole (unpadded) frames: what the model needs
  before tiling (for the flow-guided family, optical flow and warps). ``"first"`` and
  ``"second"`` are the frames the kernels are applied to; other entries are further network
  inputs. Every entry is (B, C, H, W), so the caller can pad and tile all of them alike.
* ``kernels_for(inputs, statistics=None) -> Kernels`` on (a tile of) those inputs.
* ``pad_for_synthesis``, ``apply_kernels``, ``finish_synthesis``, ``synthesize`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.ops import Backend, separable_local_conv

# Input normalisation: added to the standard deviation (constant frames have none).
INPUT_NORMALIZATION_EPSILON = 1e-6
# Kernel normalisation: where the summed kernel weights are smaller than this in magnitude the
# output is not divided (as in the SepConv++ authors' code), which keeps it bounded.
KERNEL_NORMALIZATION_EPSILON = 1e-2

KERNEL_NAMES = ("vertical1", "horizontal1", "vertical2", "horizontal2")


@dataclass
class Kernels:
    """Per-pixel 1D kernels, each (B, K, H, W): vertical/horizontal for the first/second frame."""

    vertical1: Tensor
    horizontal1: Tensor
    vertical2: Tensor
    horizontal2: Tensor


class KernelSynthesisModel(nn.Module):
    """Base of every family: the synthesis from kernels, and the model interface.

    Subclasses set ``self.config`` (with boolean ``input_normalization`` and
    ``kernel_normalization``) and implement :meth:`kernels_for`; :meth:`prepare` defaults to
    the frames themselves.
    """

    config: Any

    @property
    def kernel_size(self) -> int:
        return int(self.config.kernel_size)

    def prepare(self, first: Tensor, second: Tensor) -> dict[str, Tensor]:
        """Whole-frame inputs of the network: (B, C, H, W) frames in [0, 1] -> a dict of
        (B, *, H, W) tensors with at least ``"first"`` and ``"second"``, the frames the kernels
        are applied to."""
        return {"first": first, "second": second}

    def kernels_for(
        self, inputs: Mapping[str, Tensor], statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """Kernels for every pixel of (a tile of) :meth:`prepare`'s output."""
        raise NotImplementedError

    def blend_synthesis(self, inputs: Mapping[str, Tensor]) -> Tensor | None:
        """The output without kernels, when this network's kernels would add nothing to a
        plain blend of the prepared frames (exactly), else None (the default: always run
        the kernels). For :meth:`prepare`'s (padded) whole-frame ``inputs``; (B, C, H, W)."""
        del inputs
        return None

    def training_forward(
        self,
        batch: Mapping[str, Tensor],
        *,
        bf16: bool = False,
        channels_last: bool = False,
        backend: Backend = "auto",
    ) -> tuple[Tensor, Tensor | None]:
        """The training pass on a batch {"first", "last", ...} ((B, 3, H, W) in [0, 1]).

        The whole-frame preparation runs without gradient (for the flow-guided family, DIS
        flow on each crop as it is after augmentation), the kernels under optional bfloat16
        autocast, the local convolution in float32.

        Returns:
            The prediction (B, 3, H, W) and a family's own extra loss term (None here;
            families whose preparation is learned add theirs, e.g. on the motion).
        """
        first, last = batch["first"], batch["last"]
        with torch.no_grad():
            inputs = self.prepare(first, last)
        return self.kernel_synthesis(
            inputs, bf16=bf16, channels_last=channels_last, backend=backend
        ), None

    def kernel_synthesis(
        self,
        inputs: Mapping[str, Tensor],
        *,
        bf16: bool = False,
        channels_last: bool = False,
        backend: Backend = "auto",
    ) -> Tensor:
        """Kernels of prepared whole-crop ``inputs`` (bfloat16 autocast when ``bf16``), then
        the synthesis in float32 (training's path)."""
        network_inputs = inputs
        if channels_last:
            network_inputs = {
                name: tensor.contiguous(memory_format=torch.channels_last)
                for name, tensor in inputs.items()
            }
        device_type = inputs["first"].device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            kernels = self.kernels_for(network_inputs)
        kernels = Kernels(*(tensor.float().contiguous() for tensor in _kernel_tuple(kernels)))
        return self.synthesize(inputs["first"], inputs["second"], kernels, backend=backend)

    def forward(self, first: Tensor, second: Tensor, *, backend: Backend = "auto") -> Tensor:
        """Middle frame (B, 3, H, W) of two RGB frames (B, 3, H, W) in [0, 1]."""
        inputs = self.prepare(first, second)
        kernels = self.kernels_for(inputs)
        return self.synthesize(inputs["first"], inputs["second"], kernels, backend=backend)

    def pad_for_synthesis(self, frame: Tensor) -> Tensor:
        """Replicate-pad (B, C, H, W) by K // 2 on each side -> (B, C, H + K - 1, W + K - 1)."""
        pad = self.kernel_size // 2
        extra = self.kernel_size - 1 - 2 * pad  # 1 for an even kernel size
        return F.pad(frame, [pad, pad + extra, pad, pad + extra], mode="replicate")

    def apply_kernels(
        self,
        first_padded: Tensor,
        second_padded: Tensor,
        kernels: Kernels,
        *,
        backend: Backend = "auto",
        statistics: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Sum of the two local convolutions of already padded frames (any channel count).

        Args:
            first_padded, second_padded: (B, C, H + K - 1, W + K - 1), see
                :meth:`pad_for_synthesis`; cast to the kernels' dtype.
            statistics: as in :meth:`predict_kernels` (only the mean is used, and only with
                ``input_normalization`` without ``kernel_normalization``).
        Returns:
            (B, C, H, W), not clamped.

        With ``input_normalization`` the frames' statistics are taken from the unpadded
        interior of the padded frames, which is exactly what :meth:`predict_kernels` saw (also
        for the Interpolator's tiles). Since the local convolution is linear, convolving the
        normalised frames and de-normalising equals ``conv(frames) + mean * (1 - S)`` with ``S``
        the summed weights of both kernels; we compute the latter (no normalised copies). With
        ``kernel_normalization`` as well, the mean cancels: the output is ``conv(frames) / S``.
        """
        dtype = kernels.vertical1.dtype
        first_padded = first_padded.to(dtype)
        second_padded = second_padded.to(dtype)
        output = separable_local_conv(
            first_padded, kernels.vertical1, kernels.horizontal1, backend=backend
        ) + separable_local_conv(
            second_padded, kernels.vertical2, kernels.horizontal2, backend=backend
        )
        return self.finish_synthesis(output, first_padded, second_padded, kernels, statistics)

    def finish_synthesis(
        self,
        output: Tensor,
        first_padded: Tensor,
        second_padded: Tensor,
        kernels: Kernels,
        statistics: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """The SepConv++ normalisations applied to the summed local convolutions ``output``
        (B, C, H, W) of :meth:`apply_kernels` (the identity when both are off). The kernels
        may be of a lower precision than ``output``: their sums accumulate in float32."""
        if not (self.config.kernel_normalization or self.config.input_normalization):
            return output
        dtype = output.dtype
        weight = kernel_sums(kernels)
        if self.config.kernel_normalization:
            small = weight.abs() < KERNEL_NORMALIZATION_EPSILON
            return (output / torch.where(small, torch.ones_like(weight), weight)).to(dtype)
        pad = self.kernel_size // 2
        height, width = output.shape[-2:]
        rgb_interior = (slice(None), slice(0, 3), slice(pad, pad + height), slice(pad, pad + width))
        mean, _ = statistics or joint_statistics(
            first_padded[rgb_interior], second_padded[rgb_interior]
        )
        return (output + mean.to(weight.dtype) * (1.0 - weight)).to(dtype)

    def synthesize(
        self, first: Tensor, second: Tensor, kernels: Kernels, *, backend: Backend = "auto"
    ) -> Tensor:
        """(B, C, H, W) frames + their kernels -> middle frame (B, C, H, W), not clamped.

        Frames may have any channel count (RGB, RGBA...): the kernels are shared.
        """
        return self.apply_kernels(
            self.pad_for_synthesis(first), self.pad_for_synthesis(second), kernels, backend=backend
        )


def _kernel_tuple(kernels: Kernels) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (kernels.vertical1, kernels.horizontal1, kernels.vertical2, kernels.horizontal2)


def joint_statistics(first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample mean and standard deviation of two frames taken together, over all channels
    and pixels (as the SepConv++ authors normalise: one scalar pair per sample, so colours keep
    their relative balance).

    Args:
        first, second: (B, C, H, W).
    Returns:
        mean, std: (B, 1, 1, 1) float32; ``std`` includes INPUT_NORMALIZATION_EPSILON.
    """
    both = torch.cat([first.float().flatten(1), second.float().flatten(1)], dim=1)
    std, mean = torch.std_mean(both, dim=1, correction=0, keepdim=True)
    return mean[..., None, None], std[..., None, None] + INPUT_NORMALIZATION_EPSILON


def kernel_sums(kernels: Kernels) -> Tensor:
    """(B, 1, H, W): sum of the weights of both 2D kernels, i.e. the local convolution of a ones
    image, computed as sum(v1) * sum(h1) + sum(v2) * sum(h2) (each 2D kernel is an outer
    product)."""
    accumulate = torch.promote_types(kernels.vertical1.dtype, torch.float32)
    joint = _one_head_view(kernels)
    if joint is not None:
        # One pass over the head's pixels instead of four strided ones (the same sums).
        sums = joint.sum(-1, dtype=accumulate).permute(0, 3, 1, 2)  # (B, 4, H, W)
        vertical1, horizontal1, vertical2, horizontal2 = sums.split(1, dim=1)
        return vertical1 * horizontal1 + vertical2 * horizontal2

    def total(tensor: Tensor) -> Tensor:
        return tensor.sum(1, keepdim=True, dtype=accumulate)

    return total(kernels.vertical1) * total(kernels.horizontal1) + total(kernels.vertical2) * total(
        kernels.horizontal2
    )


def _one_head_view(kernels: Kernels) -> Tensor | None:
    """A (B, H, W, 4, K) view of the four kernels when they are consecutive channel slices of
    one channels_last (B, 4K, H, W) tensor, as a network head's chunks are; else None (and
    always under ``torch.compile``, which fuses the four sums itself)."""
    if torch.compiler.is_compiling():
        return None
    parts = (kernels.vertical1, kernels.horizontal1, kernels.vertical2, kernels.horizontal2)
    first = parts[0]
    if first.dim() != 4:
        return None
    batch, taps, height, width = first.shape
    stride = first.stride()
    if stride[1] != 1 or stride[3] != 4 * taps:
        return None
    step = taps * first.element_size()
    for index, part in enumerate(parts):
        if (
            part.shape != first.shape
            or part.stride() != stride
            or part.dtype != first.dtype
            or part.data_ptr() != first.data_ptr() + index * step
        ):
            return None
    return torch.as_strided(
        first, (batch, height, width, 4, taps), (stride[0], stride[2], stride[3], taps, 1)
    )
