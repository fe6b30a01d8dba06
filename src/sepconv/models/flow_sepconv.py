"""Flow-guided SepConv: short separable kernels on frames aligned by classic optical flow.

OpenCV's DIS optical flow (:mod:`sepconv.flow`) aligns both input frames to the middle for
free: the halfway flows backward-warp each frame to the middle time. A small U-Net sees the
two frames, the two warps and the halfway flow and predicts, for every output pixel, four 1D
kernels of K taps (a few pixels) applied to the two *warps*. The output is the kernel-normalised
sum of the two local convolutions (:class:`~sepconv.models.synthesis.KernelSynthesisModel`),
so the relative weight of the two warps is the occlusion handling, and the kernels' shape fixes
flow errors of up to K // 2 pixels and the warps' bilinear blur.

At initialisation (:func:`initialize_as_flow_baseline`) every kernel is a centre tap, so the
output is the mean of the two warps: exactly the DIS flow baseline with the same settings
(:func:`sepconv.baselines.make_flow_predictor` with ``config.flow_settings()``; the bundled
model warps bicubically). Training only adds to it.

The flow runs on the CPU (OpenCV) on the whole frame, once per frame pair, in :meth:`prepare`;
the network and the synthesis run wherever the model is, in tiles if asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.flow import FlowSettings, halfway_warps
from sepconv.models.family_config import FamilyConfig, check_kernel_unet
from sepconv.models.synthesis import Kernels, KernelSynthesisModel

__all__ = [
    "FlowSepConvConfig",
    "FlowSepConvNet",
    "check_canvas",
    "initialize_as_flow_baseline",
    "run_unet",
    "unet_levels",
]

# Network inputs: both frames (6), both warps (6), the halfway flow F_m0 (2).
GUIDE_CHANNELS = 14


@dataclass(frozen=True)
class FlowSepConvConfig(FamilyConfig):
    """Everything that defines a flow-guided network, saved inside every checkpoint.

    Attributes:
        kernel_size: taps of each 1D kernel applied to the warps (odd; small, e.g. 5-15).
        widths: channels of the U-Net's levels, from full resolution down (each level halves
            the resolution; sizes must be multiples of ``2 ** (len(widths) - 1)``).
        flow_preset, flow_finest_scale, flow_refinement_iterations, warp_interpolation,
            flow_halfway: the DIS optical flow, the warps and how the halfway flow is made, as
            trained (:class:`sepconv.flow.FlowSettings`; checkpoints that predate a field get
            its default, which is what they were trained with: the preset's refinement, the
            "average" halfway flow).
        flow_scale: the flow (pixels) is divided by this before the network sees it.
        kernel_normalization: divide by the kernels' summed weights (always on: the two
            warps' relative weight is then a blend).
        input_normalization: not used by this family (always off).
    """

    ARCHITECTURE: ClassVar[str] = "flow-sepconv"
    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("widths",)
    # Settings a run may change while continuing another's weights (init_weights): the motion
    # prior's, which change the network's inputs but not its shapes.
    PRIOR_FIELDS: ClassVar[tuple[str, ...]] = (
        "flow_preset",
        "flow_finest_scale",
        "flow_refinement_iterations",
        "warp_interpolation",
        "flow_halfway",
    )

    kernel_size: int = 11
    widths: tuple[int, ...] = field(default=(16, 32, 64, 96, 128))
    flow_preset: str = "medium"
    flow_finest_scale: int = -1
    flow_refinement_iterations: int = -1
    warp_interpolation: str = "linear"
    flow_halfway: str = "average"
    flow_scale: float = 16.0
    kernel_normalization: bool = True
    input_normalization: bool = False

    def __post_init__(self) -> None:
        check_kernel_unet(
            "flow-guided",
            self.kernel_size,
            self.widths,
            self.kernel_normalization,
            self.input_normalization,
        )
        if self.flow_scale <= 0:
            raise ValueError(f"flow_scale must be positive, got {self.flow_scale}")
        self.flow_settings()  # validates the DIS settings

    @property
    def stride(self) -> int:
        """Spatial sizes the network takes are multiples of this."""
        return 2 ** (len(self.widths) - 1)

    def flow_settings(self) -> FlowSettings:
        return FlowSettings(
            preset=self.flow_preset,
            finest_scale=self.flow_finest_scale,
            interpolation=self.warp_interpolation,
            halfway=self.flow_halfway,
            refinement_iterations=self.flow_refinement_iterations,
        )


def _conv_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]


def check_canvas(tensor: Tensor, stride: int) -> None:
    """Raise ValueError unless (B, C, H, W) ``tensor``'s H and W are multiples of ``stride``
    (what a kernel network's pooling needs; the Interpolator pads to that)."""
    height, width = tensor.shape[-2:]
    if height % stride or width % stride:
        raise ValueError(
            f"frame size {(height, width)} must be a multiple of {stride}; "
            "use sepconv.inference.Interpolator for arbitrary sizes"
        )


def unet_levels(
    in_channels: int, widths: list[int]
) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """The kernel networks' small U-Net: per level (full resolution first) an encoder of two
    3x3 conv + ReLU, and on the way up a reducer (the coarser level's width to this one's)
    and a decoder. Conv + ReLU pairs in ``nn.Sequential`` are what
    :func:`sepconv.inference.optimized_cpu_copy` fuses."""
    encoders = nn.ModuleList(
        nn.Sequential(
            *_conv_relu(in_channels if level == 0 else widths[level - 1], width),
            *_conv_relu(width, width),
        )
        for level, width in enumerate(widths)
    )
    reducers = nn.ModuleList(
        nn.Sequential(*_conv_relu(widths[level + 1], widths[level]))
        for level in range(len(widths) - 1)
    )
    decoders = nn.ModuleList(
        nn.Sequential(*_conv_relu(widths[level], widths[level])) for level in range(len(widths) - 1)
    )
    return encoders, reducers, decoders


def run_unet(
    guide: Tensor, encoders: nn.ModuleList, reducers: nn.ModuleList, decoders: nn.ModuleList
) -> Tensor:
    """(B, C, H, W) guide -> (B, widths[0], H, W) features (H, W multiples of
    ``2 ** (len(encoders) - 1)``): average-pooled down, bilinear up, skips added."""
    skips = []
    features = guide
    for level, encoder in enumerate(encoders):
        if level:
            features = F.avg_pool2d(features, kernel_size=2)
        features = encoder(features)
        skips.append(features)
    for level in range(len(encoders) - 2, -1, -1):
        upsampled = F.interpolate(features, scale_factor=2.0, mode="bilinear", align_corners=False)
        features = decoders[level](reducers[level](upsampled) + skips[level])
    return features


class FlowSepConvNet(KernelSynthesisModel):
    """The flow-guided network (about 0.5M parameters with the default widths).

    :meth:`prepare` takes (B, C, H, W) frames in [0, 1] (C in 3..4: alpha is warped with the
    colours) of any size; :meth:`kernels_for` needs sizes that are multiples of
    ``config.stride`` (the Interpolator pads).
    """

    def __init__(self, config: FlowSepConvConfig | None = None) -> None:
        super().__init__()
        self.config = config or FlowSepConvConfig()
        widths = [int(w) for w in self.config.widths]
        self.encoders, self.reducers, self.decoders = unet_levels(GUIDE_CHANNELS, widths)
        self.head = nn.Sequential(nn.Conv2d(widths[0], 4 * self.config.kernel_size, 1))
        initialize_as_flow_baseline(self)

    # -- the model interface -----------------------------------------------------------------

    @torch.no_grad()
    def prepare(self, first: Tensor, second: Tensor) -> dict[str, Tensor]:
        """DIS flow and halfway warps of whole frames (computed on the CPU with OpenCV).

        Args:
            first, second: (B, C, H, W) floats in [0, 1], C in 3..4, any size.
        Returns:
            ``first``/``second``: the warps (B, C, H, W); ``frames``: both inputs' RGB
            (B, 6, H, W); ``flow``: F_m0 (B, 2, H, W) in pixels, on the inputs' device.
        """
        settings = self.config.flow_settings()
        dis = settings.create()
        first_cpu = first.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        second_cpu = second.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        warps_first, warps_second, flows = [], [], []
        for one, two in zip(first_cpu, second_cpu, strict=True):
            warped_one, warped_two, flow = halfway_warps(
                np.ascontiguousarray(one), np.ascontiguousarray(two), dis, settings
            )
            warps_first.append(warped_one)
            warps_second.append(warped_two)
            flows.append(flow)

        def stacked(arrays: list[np.ndarray]) -> Tensor:
            batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
            return batch.to(first.device, first.dtype).contiguous()

        return {
            "first": stacked(warps_first),
            "second": stacked(warps_second),
            "frames": torch.cat([first[:, :3], second[:, :3]], dim=1),
            "flow": stacked(flows),
        }

    def kernels_for(
        self, inputs: Mapping[str, Tensor], statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """Kernels (each (B, K, H, W)) for (a tile of) :meth:`prepare`'s output."""
        del statistics  # no input normalisation in this family
        check_canvas(inputs["flow"], self.config.stride)
        dtype = self.head[0].weight.dtype
        guide = torch.cat(
            [
                inputs["frames"].to(dtype) - 0.5,
                inputs["first"][:, :3].to(dtype) - 0.5,
                inputs["second"][:, :3].to(dtype) - 0.5,
                inputs["flow"].to(dtype) / self.config.flow_scale,
            ],
            dim=1,
        )
        if self.head[0].weight.is_contiguous(memory_format=torch.channels_last):
            guide = guide.contiguous(memory_format=torch.channels_last)
        features = run_unet(guide, self.encoders, self.reducers, self.decoders)
        taps = self.head(features)
        return Kernels(*taps.chunk(4, dim=1))


def initialize_as_flow_baseline(net: FlowSepConvNet) -> FlowSepConvNet:
    """Make the network output the mean of the two warps (the DIS baseline). In place.

    The head's weights become zero and its bias a centre tap of 1 in all four kernels, so each
    2D kernel is 1 at its centre; kernel normalisation halves their sum. The layers before the
    head get gradients from the second step on, once the head's weights have moved.
    """
    centre = net.kernel_size // 2
    last = net.head[0]
    with torch.no_grad():
        last.weight.zero_()
        bias = torch.zeros(4, net.kernel_size)
        bias[:, centre] = 1.0
        last.bias.copy_(bias.flatten())
    return net
