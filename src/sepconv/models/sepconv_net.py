"""The SepConv network of Niklaus, Mai and Liu (ICCV 2017), layer for layer.

A U-Net predicts, for every output pixel, four 1D kernels of K taps (vertical and horizontal
for each input frame); the output is the sum of the two separable local convolutions.
Module names follow the authors' released checkpoints (``moduleConv1.0.weight`` ...) so their
files load with :func:`sepconv.models.checkpoint.load_authors_state_dict` after nothing but a
key check.

SepConv++ options (Niklaus, Tang and Liu, "Revisiting Adaptive Convolutions for Video Frame
Interpolation", WACV 2021), all off by default so the default config is the authors' network:

* ``input_normalization``: the network sees both frames normalised by their joint per-sample
  mean and standard deviation (over all three colour channels, as in the authors' code); the
  local convolution works on the normalised frames and its output is de-normalised (extra
  channels such as alpha with the colour statistics).
* ``kernel_normalization``: the sum of the two local convolutions is divided by the sum of the
  two kernels' weights (the local convolution of a ones image), so the kernels act as if they
  summed to one.

SepConv++'s "delayed padding" (the network sees the unpadded frames; only the local convolution
pads them) is how this network is always trained, and the Interpolator's default
``padding="improved"``; ``padding="paper"`` is the original pre-padding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.models.family_config import FamilyConfig
from sepconv.models.synthesis import (
    INPUT_NORMALIZATION_EPSILON,
    KERNEL_NAMES,
    KERNEL_NORMALIZATION_EPSILON,
    Kernels,
    KernelSynthesisModel,
    joint_statistics,
    kernel_sums,
)

__all__ = [
    "INPUT_NORMALIZATION_EPSILON",
    "KERNEL_NORMALIZATION_EPSILON",
    "NETWORK_STRIDE",
    "Kernels",
    "ResidualBackbone",
    "SepConvConfig",
    "SepConvNet",
    "count_parameters",
    "initialize_as_average",
    "joint_statistics",
    "kernel_sums",
    "pad_to_multiple",
]

# Spatial sizes must be multiples of this (five 2x2 poolings).
NETWORK_STRIDE = 32
BACKBONES = ("unet", "residual")


@dataclass(frozen=True)
class SepConvConfig(FamilyConfig):
    """Everything that defines a SepConv network, saved inside every checkpoint.

    Attributes:
        kernel_size: taps of each 1D kernel (51 in the paper).
        channel_order: colour order the weights were trained on. The authors' weights expect
            BGR; the public API always takes RGB and flips internally when this is "bgr".
        encoder_channels: widths of the five encoder blocks (the paper's 32-64-128-256-512).
        input_normalization: SepConv++ input normalisation (see the module docstring).
        kernel_normalization: SepConv++ kernel normalisation (see the module docstring).
        backbone: "unet" (the paper's) or "residual" (SepConv++'s, see
            :class:`ResidualBackbone`).
    """

    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("encoder_channels",)

    kernel_size: int = 51
    channel_order: Literal["rgb", "bgr"] = "rgb"
    encoder_channels: tuple[int, ...] = field(default=(32, 64, 128, 256, 512))
    input_normalization: bool = False
    kernel_normalization: bool = False
    backbone: Literal["unet", "residual"] = "unet"

    def __post_init__(self) -> None:
        if self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")
        if len(self.encoder_channels) != 5:
            raise ValueError("encoder_channels must list five widths")
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.backbone == "residual" and self.encoder_channels[0] % 2:
            raise ValueError("the residual backbone needs an even first width (half per frame)")


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)


def _basic(in_channels: int, out_channels: int) -> nn.Sequential:
    """Three 3x3 conv + ReLU."""
    return nn.Sequential(
        _conv(in_channels, out_channels),
        nn.ReLU(),
        _conv(out_channels, out_channels),
        nn.ReLU(),
        _conv(out_channels, out_channels),
        nn.ReLU(),
    )


def _upsample(channels: int) -> nn.Sequential:
    """Bilinear 2x upsampling (align_corners=True), 3x3 conv, ReLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        _conv(channels, channels),
        nn.ReLU(),
    )


def _subnet(in_channels: int, kernel_size: int) -> nn.Sequential:
    """Predicts one 1D kernel per pixel at full resolution from 1/2-resolution features."""
    return nn.Sequential(
        _conv(in_channels, in_channels),
        nn.ReLU(),
        _conv(in_channels, in_channels),
        nn.ReLU(),
        _conv(in_channels, kernel_size),
        nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        _conv(kernel_size, kernel_size),
    )


class _ResidualBlock(nn.Module):
    """x + conv(prelu(conv(prelu(x)))), 3x3 convolutions, same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.PReLU(init=0.25),
            _conv(channels, channels),
            nn.PReLU(init=0.25),
            _conv(channels, channels),
        )

    def forward(self, features: Tensor) -> Tensor:
        return features + self.body(features)


class ResidualBackbone(nn.Module):
    """SepConv++'s feature extractor (Niklaus, Tang and Liu, WACV 2021), in our own words.

    A shared 3x3 convolution embeds each frame separately (half the first width each); four
    downsampling stages (PReLU, strided 3x3 conv, PReLU, 3x3 conv) give features at 1/2 to
    1/16 resolution; each level gets a residual block; the decoder adds every level's
    upsampled (bilinear, then PReLU, conv, PReLU, conv) coarser level on top, down to 1/2
    resolution. PReLU activations throughout, no pooling.

    Input: two (B, 3, H, W) frames, H and W multiples of 16. Output: (B, widths[1], H/2, W/2).
    """

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.embed = _conv(3, widths[0] // 2)
        self.down = nn.ModuleList(
            nn.Sequential(
                nn.PReLU(init=0.25),
                nn.Conv2d(widths[level - 1], widths[level], 3, stride=2, padding=1),
                nn.PReLU(init=0.25),
                _conv(widths[level], widths[level]),
            )
            for level in range(1, len(widths))
        )
        self.refine = nn.ModuleList(
            _ResidualBlock(widths[level]) for level in range(1, len(widths))
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.PReLU(init=0.25),
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                _conv(widths[level + 1], widths[level]),
                nn.PReLU(init=0.25),
                _conv(widths[level], widths[level]),
            )
            for level in range(1, len(widths) - 1)
        )

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        features = torch.cat([self.embed(first), self.embed(second)], dim=1)
        levels = []
        for down in self.down:
            features = down(features)
            levels.append(features)
        levels = [refine(level) for refine, level in zip(self.refine, levels, strict=True)]
        combined = levels[-1]
        for index in range(len(levels) - 2, -1, -1):
            combined = levels[index] + self.up[index](combined)
        return combined


def _residual_head(in_channels: int, kernel_size: int) -> nn.Sequential:
    """SepConv++'s kernel head: 1/2-resolution features -> one full-resolution 1D kernel."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        _conv(in_channels, in_channels),
        nn.PReLU(init=0.25),
        _conv(in_channels, kernel_size),
    )


class SepConvNet(KernelSynthesisModel):
    """SepConv (ICCV 2017): 21,675,452 parameters with the default config.

    Input frames are RGB in [0, 1], (B, 3, H, W) with H and W multiples of 32 (the
    :class:`sepconv.inference.Interpolator` pads arbitrary sizes). The output is the
    interpolated middle frame, (B, 3, H, W), not clamped.
    """

    def __init__(self, config: SepConvConfig | None = None) -> None:
        super().__init__()
        self.config = config or SepConvConfig()
        c1, c2, c3, c4, c5 = self.config.encoder_channels
        k = self.config.kernel_size
        if self.config.backbone == "residual":
            self.backbone = ResidualBackbone(self.config.encoder_channels)
            self.heads = nn.ModuleDict({name: _residual_head(c2, k) for name in KERNEL_NAMES})
            return
        self.moduleConv1 = _basic(6, c1)
        self.moduleConv2 = _basic(c1, c2)
        self.moduleConv3 = _basic(c2, c3)
        self.moduleConv4 = _basic(c3, c4)
        self.moduleConv5 = _basic(c4, c5)
        self.moduleDeconv5 = _basic(c5, c5)
        self.moduleDeconv4 = _basic(c5, c4)
        self.moduleDeconv3 = _basic(c4, c3)
        self.moduleDeconv2 = _basic(c3, c2)
        self.moduleUpsample5 = _upsample(c5)
        self.moduleUpsample4 = _upsample(c4)
        self.moduleUpsample3 = _upsample(c3)
        self.moduleUpsample2 = _upsample(c2)
        self.moduleVertical1 = _subnet(c2, k)
        self.moduleVertical2 = _subnet(c2, k)
        self.moduleHorizontal1 = _subnet(c2, k)
        self.moduleHorizontal2 = _subnet(c2, k)

    def kernel_heads(self) -> dict[str, nn.Sequential]:
        """The four modules that output the kernels, by :class:`Kernels` field name."""
        if self.config.backbone == "residual":
            return dict(self.heads.items())  # type: ignore[arg-type]
        return {
            "vertical1": self.moduleVertical1,
            "horizontal1": self.moduleHorizontal1,
            "vertical2": self.moduleVertical2,
            "horizontal2": self.moduleHorizontal2,
        }

    def _to_model_order(self, frame: Tensor) -> Tensor:
        return frame.flip(1) if self.config.channel_order == "bgr" else frame

    def predict_kernels(
        self, first: Tensor, second: Tensor, *, statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """Kernels for every output pixel.

        Args:
            first, second: (B, 3, H, W) RGB frames in [0, 1], H and W multiples of 32.
            statistics: with ``input_normalization``, the (mean, std) to normalise with
                (default: :func:`joint_statistics` of these frames). Tiles of a larger frame
                pass the whole frame's, so that every tile sees the same normalisation.
        """
        if first.shape[-2] % NETWORK_STRIDE or first.shape[-1] % NETWORK_STRIDE:
            raise ValueError(
                f"frame size {tuple(first.shape[-2:])} must be a multiple of {NETWORK_STRIDE}; "
                "use sepconv.inference.Interpolator for arbitrary sizes"
            )
        if self.config.input_normalization:
            mean, std = statistics or joint_statistics(first[:, :3], second[:, :3])
            mean, std = mean.to(first.dtype), std.to(first.dtype)
            first = (first[:, :3] - mean) / std
            second = (second[:, :3] - mean) / std
        first, second = self._to_model_order(first), self._to_model_order(second)
        if self.config.backbone == "residual":
            features = self.backbone(first, second)
            return Kernels(**{name: head(features) for name, head in self.heads.items()})
        joined = torch.cat([first, second], dim=1)
        conv1 = self.moduleConv1(joined)
        conv2 = self.moduleConv2(F.avg_pool2d(conv1, kernel_size=2, stride=2))
        conv3 = self.moduleConv3(F.avg_pool2d(conv2, kernel_size=2, stride=2))
        conv4 = self.moduleConv4(F.avg_pool2d(conv3, kernel_size=2, stride=2))
        conv5 = self.moduleConv5(F.avg_pool2d(conv4, kernel_size=2, stride=2))
        pooled5 = F.avg_pool2d(conv5, kernel_size=2, stride=2)
        combined = self.moduleUpsample5(self.moduleDeconv5(pooled5)) + conv5
        combined = self.moduleUpsample4(self.moduleDeconv4(combined)) + conv4
        combined = self.moduleUpsample3(self.moduleDeconv3(combined)) + conv3
        combined = self.moduleUpsample2(self.moduleDeconv2(combined)) + conv2
        return Kernels(
            vertical1=self.moduleVertical1(combined),
            horizontal1=self.moduleHorizontal1(combined),
            vertical2=self.moduleVertical2(combined),
            horizontal2=self.moduleHorizontal2(combined),
        )

    def kernels_for(
        self, inputs: Mapping[str, Tensor], statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """:meth:`predict_kernels` of ``inputs["first"]`` and ``inputs["second"]`` (RGB)."""
        return self.predict_kernels(
            inputs["first"][:, :3], inputs["second"][:, :3], statistics=statistics
        )


def initialize_as_average(net: SepConvNet, *, weight_scale: float = 0.01) -> SepConvNet:
    """Start the network from (nearly) the average of its two input frames. In place.

    Each subnet's last convolution gets the bias of a centre tap, sqrt(1/2), so both 2D kernels
    are 1/2 at the centre and 0 elsewhere, and its weights are scaled by ``weight_scale``
    (small but not zero: the layers before it still receive gradients from the first step).
    Training then starts at the frame average (28 dB on Middlebury) and only has to move the
    kernels' mass to where the motion is, instead of first learning to output an image at all.
    """
    centre = net.kernel_size // 2
    with torch.no_grad():
        for head in net.kernel_heads().values():
            last = head[-1]
            last.weight.mul_(weight_scale)
            last.bias.zero_()
            last.bias[centre] = math.sqrt(0.5)
    return net


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def pad_to_multiple(size: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= size."""
    return int(math.ceil(size / multiple) * multiple)
