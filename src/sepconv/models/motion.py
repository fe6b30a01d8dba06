"""Learned motion: a small coarse-to-fine network that finds the flows from time t to both frames.

Shared by the learned-motion model family (:mod:`sepconv.models.motion_sepconv`), its training
and every evaluation. It works at low resolution (features at 1/4, 1/8 and 1/16 of the frame),
so large displacements cost little, and it takes the time ``t`` in (0, 1) of the frame to make
as an input, as RIFE's IFNet and IFRNet's decoder do.

Matching is explicit. At the coarsest level a *bilateral* cost volume (Park et al., "BMBC",
ECCV 2020) scores candidate motions ``d`` of the output pixel ``p``: the features of the first
frame at ``p - t * d`` against those of the last at ``p + (1 - t) * d``. The finer levels warp
both frames' features to time t with the current flows and correlate them over small integer
shifts (:func:`local_cost_volume`, slices instead of resampling: cheap at 1/4 of 720p). A soft
arg-max over the candidates gives a motion at once, from the first step of training; a small
convolutional estimator adds a residual to both flows (they differ at occlusions) and to a
blending weight.

Optionally a *classic candidate* enters at the end: OpenCV DIS flow on smaller frames (the
half-size frames, or frames downscaled to a long side of at most ``classic_max_side``: about a
quarter of a 720p frame's pixels, all of a 640x480 one), turned into flows from time t by Super
SloMo's linear model or by splatting each frame's flow to time t
(:func:`sepconv.flow.splatted_flows_at_time`). A small selector sees how well both frames
match under the learned flows and under the candidate's (local cost volumes at 1/4) and keeps,
per pixel, a learned share of each. DIS is precise on small motion and static content, where
a matcher trained on a CPU budget stays noisy; the learned flows reach large, fast motion DIS
misses. An optional *refiner* first adds a learned residual to the candidate's flows at 1/4
(zero at initialisation, so it starts as DIS itself): it corrects DIS where it can rather
than compete with it.

Conventions: flows are (B, 2, H, W) in pixels of the frame they are given at, (dx, dy);
``flow_t0`` maps a pixel of the output frame at time t to where it is in the first frame
(``output(x) ~ first(x + flow_t0(x))``), ``flow_t1`` likewise to the last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.flow import FlowSettings, dis_flows, flows_at_time, splatted_flows_at_time
from sepconv.ops.cost_volume import bilateral_cost_volume, local_cost_volume

__all__ = [
    "MotionEstimator",
    "MotionOutput",
    "backward_warp",
    "backward_warp_at",
    "bilateral_cost_volume",
    "candidate_size",
    "classic_candidate",
    "local_cost_volume",
    "resize_flows",
    "scaled_candidate",
    "time_tensor",
]

# The estimator's frames are halved first, then three stride-2 levels: sizes are padded to
# a multiple of this.
MOTION_STRIDE = 32
LEAKY_SLOPE = 0.1
# The selector starts out keeping about 5% of the learned flows (sigmoid(-3)): at first the
# candidate's flows, which score far better than an untrained matcher's.
SELECTOR_INITIAL_LOGIT = -3.0
# The candidate refiner's cost volume: +-2 pixels at 1/4 (+-8 full-frame pixels).
REFINER_RADIUS = 2


def time_tensor(time: float | Tensor | None, batch: int, device: torch.device) -> Tensor:
    """(B,) float32 times in (0, 1) from a number, a (B,) or (B, 1, ...) tensor, or None (1/2)."""
    if time is None:
        time = 0.5
    if isinstance(time, Tensor):
        values = time.detach().to(device, torch.float32).reshape(-1)
        if values.numel() == 1:
            values = values.expand(batch)
        if values.numel() != batch:
            raise ValueError(f"{values.numel()} times for a batch of {batch}")
        return values.contiguous()
    return torch.full((batch,), float(time), dtype=torch.float32, device=device)


def _pixel_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(1, H, W, 2) pixel coordinates (x, y)."""
    rows = torch.arange(height, device=device, dtype=dtype)
    columns = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(rows, columns, indexing="ij")
    return torch.stack((grid_x, grid_y), dim=-1)[None]


def _normalised(coordinates: Tensor, height: int, width: int) -> Tensor:
    """Pixel coordinates (..., 2) -> grid_sample's [-1, 1] (align_corners=True)."""
    scale = coordinates.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    return coordinates * scale - 1.0


def backward_warp(frame: Tensor, flow: Tensor, mode: str = "bilinear") -> Tensor:
    """``frame(x + flow(x))``, border pixels replicated; differentiable in both.

    Args:
        frame: (B, C, H, W).
        flow: (B, 2, H, W) in pixels.
        mode: "bilinear" or "bicubic" (``grid_sample``'s).
    Returns:
        (B, C, H, W).
    """
    height, width = frame.shape[-2:]
    grid = _pixel_grid(height, width, frame.device, flow.dtype) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(
        frame,
        _normalised(grid, height, width).to(frame.dtype),
        mode=mode,
        padding_mode="border",
        align_corners=True,
    )


def backward_warp_at(
    frame: Tensor, flow: Tensor, where: Tensor, mode: str = "bilinear"
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """:func:`backward_warp` at the pixels where ``where`` is set only (the same samples, for
    the cost of those pixels alone).

    Args:
        frame: (B, C, H, W).
        flow: (B, 2, H, W) in pixels.
        where: (B, H, W) bool.
    Returns:
        ``(values, (batch, rows, columns))``: (N, C) samples at the N set pixels, and their
        indices (each (N,), as ``where.nonzero(as_tuple=True)``), so that
        ``backward_warp(frame, flow, mode)[batch, :, rows, columns]`` equals ``values``.
    """
    height, width = frame.shape[-2:]
    batch_index, rows, columns = where.nonzero(as_tuple=True)
    values = frame.new_empty(batch_index.shape[0], frame.shape[1])
    for index in range(frame.shape[0]):
        chosen = batch_index == index
        if not bool(chosen.any()):
            continue
        at_rows, at_columns = rows[chosen], columns[chosen]
        points = torch.stack((at_columns, at_rows), dim=-1).to(flow.dtype)
        points = points + flow[index, :, at_rows, at_columns].transpose(0, 1)
        grid = _normalised(points, height, width).to(frame.dtype)[None, :, None, :]
        sampled = F.grid_sample(
            frame[index : index + 1], grid, mode=mode, padding_mode="border", align_corners=True
        )  # (1, C, n, 1)
        values[chosen] = sampled[0, :, :, 0].transpose(0, 1)
    return values, (batch_index, rows, columns)


def candidate_offsets(radius: int, step: float, device: torch.device) -> Tensor:
    """(D, 2) candidate motions (dx, dy) on a (2r + 1)^2 grid of spacing ``step``."""
    values = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32) * step
    dy, dx = torch.meshgrid(values, values, indexing="ij")
    return torch.stack((dx.reshape(-1), dy.reshape(-1)), dim=-1)


@torch.no_grad()
def classic_candidate(first: Tensor, last: Tensor, time: Tensor, settings: FlowSettings) -> Tensor:
    """Flows from time t to both frames from OpenCV DIS (no gradient; computed on the CPU):
    the DIS flows both ways through Super SloMo's linear motion
    (:func:`sepconv.flow.flows_at_time`), or splatted to time t when ``settings.halfway`` is
    "splat" (:func:`sepconv.flow.splatted_flows_at_time`).

    Args:
        first, last: (B, 3, h, w) in [0, 1].
        time: (B,) in (0, 1).
        settings: DIS's (:class:`sepconv.flow.FlowSettings`; one DIS object per call).
    Returns:
        (B, 4, h, w): F_t0 and F_t1 in pixels of these frames, in ``first``'s dtype and device.
    """
    dis = settings.create()
    rows = []
    for index, t in enumerate(time.tolist()):
        a, b = (
            frame[index].detach().float().permute(1, 2, 0).clamp(0, 1).cpu().numpy()
            for frame in (first, last)
        )
        flow_01, flow_10 = dis_flows(a, b, dis)
        if settings.halfway == "splat":
            to_first, to_last = splatted_flows_at_time(flow_01, flow_10, a, b, t)
        else:
            to_first, to_last = flows_at_time(flow_01, flow_10, t)
        rows.append(np.concatenate([to_first, to_last], axis=2).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(rows)).to(device=first.device, dtype=first.dtype)


def scaled_candidate(
    first: Tensor, last: Tensor, time: Tensor, settings: FlowSettings, max_side: int
) -> Tensor:
    """:func:`classic_candidate` on the frames area-downscaled to :func:`candidate_size`:
    (B, 4, h, w) flows in pixels of that size (:func:`resize_flows` brings them to any other)."""
    small = candidate_size(*first.shape[-2:], max_side)
    return classic_candidate(
        F.interpolate(first, size=small, mode="area"),
        F.interpolate(last, size=small, mode="area"),
        time,
        settings,
    )


def candidate_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) of the frames the classic candidate is computed on: half of (height, width) when
    ``max_side`` is 0, else (height, width) scaled down (never up) so the long side is at most
    ``max_side``."""
    if max_side == 0:
        return height // 2, width // 2
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_flows(flows: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, 2k, h, w) flows in pixels of (h, w) -> (B, 2k, H, W) in pixels of ``size`` (area
    averaging when shrinking, bilinear when enlarging; x scaled by W / w and y by H / h)."""
    height, width = flows.shape[-2:]
    if (height, width) == tuple(size):
        return flows
    shrinking = size[0] <= height and size[1] <= width
    if shrinking:
        resized = F.interpolate(flows, size=size, mode="area")
    else:
        resized = F.interpolate(flows, size=size, mode="bilinear", align_corners=False)
    scale = flows.new_tensor([size[1] / width, size[0] / height]).repeat(flows.shape[1] // 2)
    return resized * scale[None, :, None, None]


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class FeaturePyramid(nn.Module):
    """Per-frame features at 1/4, 1/8, 1/16 of the frame (from the half-size frame)."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        levels = []
        previous = 3
        for width in widths:  # every level halves: 1/2 -> 1/4 -> 1/8 -> 1/16
            levels.append(nn.Sequential(_conv(previous, width, 2), _conv(width, width)))
            previous = width
        self.levels = nn.ModuleList(levels)

    def forward(self, frame: Tensor) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> features, finest (1/4) first."""
        features = F.avg_pool2d(frame - 0.5, 2)
        outputs = []
        for level in self.levels:
            features = level(features)
            outputs.append(features)
        return outputs


class LevelEstimator(nn.Module):
    """One level's update: cost volume + context -> residual flows and blend logit."""

    def __init__(self, candidates: int, feature_width: int, width: int) -> None:
        super().__init__()
        # cost volume, both warped features, flows (4), blend logit (1), time (1)
        in_channels = candidates + 2 * feature_width + 6
        self.body = nn.Sequential(
            _conv(in_channels, width),
            _conv(width, width),
            _conv(width, width // 2 + width // 4),
            _conv(width // 2 + width // 4, width // 2),
        )
        self.out = nn.Conv2d(width // 2, 5, 3, padding=1)
        # Sharpness of the soft arg-max over the cost volume (learned, positive).
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.out(self.body(inputs))


class CandidateSelector(nn.Module):
    """Per pixel at 1/4: the share of the learned flows to keep against the classic
    candidate's, and a residual of the blend logit.

    Inputs: both cost volumes (radius 1) of the frames' features warped by the learned and by
    the candidate flows, their differences (4), the blend logit, the time, and the first
    frame's features warped by the learned flow (context).
    """

    def __init__(self, feature_width: int, width: int) -> None:
        super().__init__()
        in_channels = 2 * 9 + 4 + 2 + feature_width
        self.body = nn.Sequential(
            _conv(in_channels, width), _conv(width, width), _conv(width, width // 2)
        )
        self.out = nn.Conv2d(width // 2, 2, 3, padding=1)

    def forward(self, inputs: Tensor) -> Tensor:
        """(B, in, h, w) -> (B, 2, h, w): the keep logit and the blend-logit residual."""
        return self.out(self.body(inputs))


class CandidateRefiner(nn.Module):
    """Per pixel at 1/4: a residual to the classic candidate's two flows (zero at
    initialisation).

    Inputs: the cost volume (radius :data:`REFINER_RADIUS`) of the frames' features warped by
    the candidate's flows, the first frame's features so warped (context), the candidate's
    flows, their difference to the learned flows, the blend logit and the time.
    """

    def __init__(self, feature_width: int, width: int) -> None:
        super().__init__()
        in_channels = (2 * REFINER_RADIUS + 1) ** 2 + feature_width + 4 + 4 + 2
        self.body = nn.Sequential(
            _conv(in_channels, width), _conv(width, width), _conv(width, width // 2)
        )
        self.out = nn.Conv2d(width // 2, 4, 3, padding=1)

    def forward(self, inputs: Tensor) -> Tensor:
        """(B, in, h, w) -> (B, 4, h, w): residuals of F_t0 and F_t1 in 1/4-level pixels."""
        return self.out(self.body(inputs))


@dataclass
class MotionOutput:
    """Flows from time t to both frames and the blend weight, at full resolution, plus each
    level's flows for training (coarse to fine, in pixels of the full frame, at their own
    resolution).

    Attributes:
        flow_t0, flow_t1: (B, 2, H, W) pixels.
        blend_logit: (B, 1, H, W); ``sigmoid`` of it is the first frame's weight.
        levels: [(flow_t0, flow_t1)] per level, each (B, 2, h, w) in full-frame pixels (with
            a classic candidate, the last entry is the selector's mix at 1/4, after the refined
            candidate at 1/4 when there is a refiner).
        kept: with a classic candidate, (B, 1, H, W) the share of the learned flows kept
            (1 - the candidate's), else None.
        learned: with a classic candidate, the learned flows alone (F_t0, F_t1), each
            (B, 2, H, W) pixels, before the mix (training keeps them learning from every
            frame, whatever the selector keeps); else None.
        candidate: with a classic candidate, its flows (F_t0, F_t1) at (H, W), refined when
            there is a refiner; else None.
        keep_logit: with a classic candidate, the selector's logit of the learned share,
            (B, 1, h, w) at 1/4 of the estimator's padded canvas (training supervises it);
            else None.
    """

    flow_t0: Tensor
    flow_t1: Tensor
    blend_logit: Tensor
    levels: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    kept: Tensor | None = None
    learned: tuple[Tensor, Tensor] | None = None
    candidate: tuple[Tensor, Tensor] | None = None
    keep_logit: Tensor | None = None


class MotionEstimator(nn.Module):
    """Coarse-to-fine learned motion at low resolution (see the module docstring).

    Args:
        feature_widths: channels of the 1/4, 1/8, 1/16 features.
        estimator_widths: channels of the level estimators, coarse (1/16) to fine (1/4).
        coarse_radius, coarse_step: the coarsest cost volume's candidates, a (2r + 1)^2 grid
            of this spacing in 1/16-pixels (4 and 2: total motions up to +-128 full-frame
            pixels in x and y).
        fine_radius, finest_radius: the 1/8 and 1/4 levels' integer shifts around the current
            estimate.
        classic: DIS settings of the classic candidate, or None for the learned flows alone.
        classic_max_side: the candidate's frames: 0 for the half-size frames, else the frames
            downscaled to this long side (at most; :func:`candidate_size`).
        selector_width: channels of the candidate selector.
        refiner_width: channels of the candidate refiner (:class:`CandidateRefiner`), or 0
            for none; only with a classic candidate.
        time_symmetric: symmetric in time by construction: every level (and the selector and
            refiner) runs on both orders of the frames in one batch, the first frame first at
            t and the last frame first at 1 - t, and each update is the mean of the two
            (:func:`merged_flows`, :func:`merged_logits`). Asked the other way round, the
            estimator then gives the same motion, swapped, up to the classic candidate's own
            asymmetry; it costs about twice the estimator's arithmetic (not the candidate's).
        symmetric_levels: with ``time_symmetric``, how many levels (coarsest first, 1-3) run
            on both orders: 3 is all of them and the selector and refiner too; fewer runs the
            finer levels, the selector and the refiner on the asked order only, which saves
            most of the second order's cost (the 1/4 level is 16x the 1/16 level's area) but
            is no longer exactly symmetric.
    """

    def __init__(
        self,
        feature_widths: tuple[int, ...] = (24, 32, 48),
        estimator_widths: tuple[int, ...] = (96, 64, 48),
        coarse_radius: int = 4,
        coarse_step: int = 2,
        fine_radius: int = 3,
        finest_radius: int = 1,
        classic: FlowSettings | None = None,
        selector_width: int = 32,
        classic_max_side: int = 0,
        refiner_width: int = 0,
        time_symmetric: bool = False,
        symmetric_levels: int = 3,
    ) -> None:
        super().__init__()
        self.time_symmetric = time_symmetric
        if not 1 <= symmetric_levels <= 3:
            raise ValueError(f"symmetric_levels must be 1, 2 or 3, got {symmetric_levels}")
        self.symmetric_levels = symmetric_levels
        if len(feature_widths) != 3 or len(estimator_widths) != 3:
            raise ValueError("the motion estimator has three levels (1/16, 1/8, 1/4)")
        self.pyramid = FeaturePyramid(tuple(feature_widths))
        self.coarse_radius = coarse_radius
        self.coarse_step = coarse_step
        self.fine_radius = fine_radius
        self.finest_radius = finest_radius
        counts = [(2 * r + 1) ** 2 for r in (coarse_radius, fine_radius, finest_radius)]
        reversed_widths = list(reversed(feature_widths))  # 1/16, 1/8, 1/4
        self.estimators = nn.ModuleList(
            LevelEstimator(counts[index], reversed_widths[index], width)
            for index, width in enumerate(estimator_widths)
        )
        self.classic = classic
        self.classic_max_side = classic_max_side
        # Created after the estimators, so their initialisation is the same with or without.
        self.selector = (
            CandidateSelector(feature_widths[0], selector_width) if classic is not None else None
        )
        self.refiner = (
            CandidateRefiner(feature_widths[0], refiner_width)
            if classic is not None and refiner_width > 0
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) init for the leaky-ReLU stacks, zero output layers: at first the flows
        are the soft arg-max's and the blend weight is 1 - t; the selector keeps mostly the
        classic candidate, and the refiner leaves it as it is."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        for estimator in self.estimators:
            nn.init.zeros_(estimator.out.weight)
            nn.init.zeros_(estimator.out.bias)
        if self.selector is not None:
            nn.init.zeros_(self.selector.out.weight)
            nn.init.zeros_(self.selector.out.bias)
            with torch.no_grad():
                self.selector.out.bias[0] = SELECTOR_INITIAL_LOGIT
        if self.refiner is not None:
            nn.init.zeros_(self.refiner.out.weight)
            nn.init.zeros_(self.refiner.out.bias)

    def forward(self, first: Tensor, last: Tensor, time: Tensor) -> MotionOutput:
        """Flows from time ``time`` to both frames.

        Args:
            first, last: (B, 3, H, W) in [0, 1], any size (padded here).
            time: (B,) in (0, 1).
        Returns:
            :class:`MotionOutput` at (H, W).
        """
        height, width = first.shape[-2:]
        pad_bottom = (-height) % MOTION_STRIDE
        pad_right = (-width) % MOTION_STRIDE
        if pad_bottom or pad_right:
            padding = [0, pad_right, 0, pad_bottom]
            first = F.pad(first, padding, mode="replicate")
            last = F.pad(last, padding, mode="replicate")
        frames = first.shape[0]
        both = self.pyramid(torch.cat([first, last], dim=0))
        pyramid0 = [level[:frames] for level in reversed(both)]  # 1/16, 1/8, 1/4
        pyramid1 = [level[frames:] for level in reversed(both)]
        t = time.to(first.dtype)
        symmetric = self.time_symmetric
        if symmetric:
            # Both orders in one batch: the first half as asked, the second the other way round.
            pyramid0, pyramid1 = (
                [torch.cat([a, b]) for a, b in zip(pyramid0, pyramid1, strict=True)],
                [torch.cat([b, a]) for a, b in zip(pyramid0, pyramid1, strict=True)],
            )
            t = torch.cat([t, 1.0 - t])
        batch = pyramid0[0].shape[0]
        flow_t0 = flow_t1 = blend = None
        levels: list[tuple[Tensor, Tensor]] = []
        scale = 16
        for index, estimator in enumerate(self.estimators):
            features0 = F.normalize(pyramid0[index], dim=1)
            features1 = F.normalize(pyramid1[index], dim=1)
            level_height, level_width = features0.shape[-2:]
            if flow_t0 is None:
                # Coarsest level: bilateral matching along candidate motions through each pixel.
                zeros = features0.new_zeros(batch, 2, level_height, level_width)
                flow_t0, flow_t1 = zeros, zeros
                prior = torch.log((1.0 - t) / t.clamp_min(1e-4)).clamp(-8, 8)
                blend = prior[:, None, None, None].expand(batch, 1, level_height, level_width)
                offsets = candidate_offsets(self.coarse_radius, self.coarse_step, first.device)
                cost = bilateral_cost_volume(
                    features0, features1, t, self.coarse_radius, self.coarse_step
                )
                warped0, warped1 = pyramid0[index], pyramid1[index]
            else:
                # Finer levels: the residual motion between both frames warped to time t.
                radius = self.fine_radius if index == 1 else self.finest_radius
                flow_t0 = 2.0 * _upsample(flow_t0, 2)
                flow_t1 = 2.0 * _upsample(flow_t1, 2)
                blend = _upsample(blend, 2)
                offsets = candidate_offsets(radius, 1.0, first.device)
                warped0 = backward_warp(pyramid0[index], flow_t0)
                warped1 = backward_warp(pyramid1[index], flow_t1)
                cost = local_cost_volume(
                    F.normalize(warped0, dim=1), F.normalize(warped1, dim=1), radius
                )
            weights = torch.softmax(cost * estimator.log_sharpness.exp(), dim=1)
            motion = torch.einsum("bdhw,dc->bchw", weights, offsets.to(weights.dtype))
            time_map = t[:, None, None, None].expand(batch, 1, level_height, level_width)
            update = estimator(
                torch.cat(
                    [cost, warped0, warped1, flow_t0 / 8.0, flow_t1 / 8.0, blend, time_map], dim=1
                )
            )
            # Split the matched motion between the two flows (linear motion through time t),
            # then add the estimator's residuals (which differ at occlusions).
            flow_t0 = flow_t0 - t[:, None, None, None] * motion + update[:, 0:2]
            flow_t1 = flow_t1 + (1.0 - t)[:, None, None, None] * motion + update[:, 2:4]
            blend = blend + update[:, 4:5]
            if symmetric:
                flow_t0, flow_t1 = merged_flows(flow_t0, flow_t1)
                blend = merged_logits(blend, -1.0)
                if index + 1 == self.symmetric_levels < len(self.estimators):
                    # The rest on the asked order only (the first half of the batch).
                    flow_t0, flow_t1, blend, t = (x[:frames] for x in (flow_t0, flow_t1, blend, t))
                    pyramid0 = [level[:frames] for level in pyramid0]
                    pyramid1 = [level[:frames] for level in pyramid1]
                    batch, symmetric = frames, False
            levels.append((flow_t0[:frames] * scale, flow_t1[:frames] * scale))
            scale //= 2
        assert flow_t0 is not None and flow_t1 is not None and blend is not None
        factor = 4  # the finest level is at 1/4
        full_t0 = factor * _upsample(flow_t0[:frames], factor)
        full_t1 = factor * _upsample(flow_t1[:frames], factor)
        kept = learned = candidate_flows = kept_logit = None
        crop = (slice(None), slice(None), slice(0, height), slice(0, width))
        if self.selector is not None and self.classic is not None:
            learned = (full_t0[crop], full_t1[crop])
            # The candidate from smaller frames, then on the 1/4 level's and the full grid.
            padded_size = first.shape[-2:]
            candidate = scaled_candidate(first, last, time, self.classic, self.classic_max_side)
            quarter = resize_flows(candidate, flow_t0.shape[-2:])
            if symmetric:  # the other order's candidate: the same flows, swapped
                quarter = torch.cat([quarter, swapped_flows(quarter)])
            correction = None
            level = _QuarterLevel(
                pyramid0[-1], pyramid1[-1], torch.cat([flow_t0, flow_t1], dim=1), blend, t
            )
            if self.refiner is not None:
                correction = self._refine(level, quarter)
                if symmetric:
                    correction = torch.cat(merged_flows(correction[:, 0:2], correction[:, 2:4]), 1)
                quarter = quarter + correction
                levels.append((quarter[:frames, 0:2] * factor, quarter[:frames, 2:4] * factor))
            kept_logit, blend_update = self._select(level, quarter)
            if symmetric:
                kept_logit = merged_logits(kept_logit, 1.0)
                blend_update = merged_logits(blend_update, -1.0)
            # A symmetric batch's halves agree now: keep the asked one (a no-op otherwise).
            flow_t0, flow_t1, quarter, kept_logit = (
                tensor[:frames] for tensor in (flow_t0, flow_t1, quarter, kept_logit)
            )
            blend = (blend + blend_update)[:frames]
            keep = torch.sigmoid(kept_logit)
            flow_t0 = keep * flow_t0 + (1.0 - keep) * quarter[:, 0:2]
            flow_t1 = keep * flow_t1 + (1.0 - keep) * quarter[:, 2:4]
            levels.append((flow_t0 * factor, flow_t1 * factor))
            kept = _upsample(keep, factor)
            candidate = resize_flows(candidate, padded_size)
            if correction is not None:
                candidate = candidate + factor * _upsample(correction[:frames], factor)
            candidate_flows = (candidate[:, 0:2][crop], candidate[:, 2:4][crop])
            full_t0 = kept * full_t0 + (1.0 - kept) * candidate[:, 0:2]
            full_t1 = kept * full_t1 + (1.0 - kept) * candidate[:, 2:4]
        full_blend = _upsample(blend[:frames], factor)
        return MotionOutput(
            full_t0[crop],
            full_t1[crop],
            full_blend[crop],
            levels,
            kept[crop] if kept is not None else None,
            learned,
            candidate_flows,
            kept_logit,
        )

    def _select(self, quarter: _QuarterLevel, candidate: Tensor) -> tuple[Tensor, Tensor]:
        """The selector at 1/4: (B, 1, h, w) keep logit of the learned flows and blend-logit
        residual; ``candidate`` (B, 4, h, w) in 1/4-level pixels."""
        assert self.selector is not None
        learned0, learned_cost = _matching(quarter.features0, quarter.features1, quarter.flows, 1)
        _, classic_cost = _matching(quarter.features0, quarter.features1, candidate, 1)
        inputs = torch.cat(
            [
                learned_cost,
                classic_cost,
                (candidate - quarter.flows) / 8.0,
                quarter.blend,
                quarter.time_map,
                learned0,
            ],
            dim=1,
        )
        output = self.selector(inputs)
        return output[:, 0:1], output[:, 1:2]

    def _refine(self, quarter: _QuarterLevel, candidate: Tensor) -> Tensor:
        """The refiner at 1/4: (B, 4, h, w) residual of ``candidate`` (B, 4, h, w), in
        1/4-level pixels."""
        assert self.refiner is not None
        warped0, cost = _matching(quarter.features0, quarter.features1, candidate, REFINER_RADIUS)
        inputs = torch.cat(
            [
                cost,
                warped0,
                candidate / 8.0,
                (quarter.flows - candidate) / 8.0,
                quarter.blend,
                quarter.time_map,
            ],
            dim=1,
        )
        return self.refiner(inputs)


@dataclass
class _QuarterLevel:
    """What the selector and the refiner see at 1/4: both frames' features (B, C, h, w), the
    learned flows F_t0, F_t1 (B, 4, h, w) in 1/4-level pixels, the blend logit (B, 1, h, w) and
    the time (B,)."""

    features0: Tensor
    features1: Tensor
    flows: Tensor
    blend: Tensor
    time: Tensor

    @property
    def time_map(self) -> Tensor:
        """(B, 1, h, w) the time at every pixel."""
        batch, _, height, width = self.features0.shape
        return self.time[:, None, None, None].expand(batch, 1, height, width)


def _matching(
    features0: Tensor, features1: Tensor, flows: Tensor, radius: int
) -> tuple[Tensor, Tensor]:
    """Both frames' features warped by ``flows`` (B, 4, h, w: F_t0, F_t1) and the local cost
    volume of the two warps (:func:`local_cost_volume`): the first warp (B, C, h, w) and the
    costs (B, (2r + 1)^2, h, w)."""
    warped0 = backward_warp(features0, flows[:, 0:2])
    warped1 = backward_warp(features1, flows[:, 2:4])
    cost = local_cost_volume(F.normalize(warped0, dim=1), F.normalize(warped1, dim=1), radius)
    return warped0, cost


def swapped_flows(flows: Tensor) -> Tensor:
    """(B, 4, h, w) F_t0, F_t1 -> F_t1, F_t0: the same motion asked last frame first."""
    return torch.cat([flows[:, 2:4], flows[:, 0:2]], dim=1)


def merged_flows(flow_t0: Tensor, flow_t1: Tensor) -> tuple[Tensor, Tensor]:
    """Both orders' flows made one motion, symmetric in time.

    Args:
        flow_t0, flow_t1: (2B, 2, h, w): the first B asked as given (first frame first, at
            t), the other B the other way round (last frame first, at 1 - t).
    Returns:
        (F_t0, F_t1), each (2B, 2, h, w): the first half's F_t0 is the mean of its own F_t0
        and the second half's F_t1 (both lead to the first frame), and so on; the second half
        is the first swapped, so each half is exactly the other asked the other way round.
    """
    own0, other0 = flow_t0.chunk(2)
    own1, other1 = flow_t1.chunk(2)
    to_first = 0.5 * (own0 + other1)
    to_last = 0.5 * (own1 + other0)
    return torch.cat([to_first, to_last]), torch.cat([to_last, to_first])


def merged_logits(logits: Tensor, sign: float) -> Tensor:
    """Both orders' per-pixel logits (2B, 1, h, w; halves as in :func:`merged_flows`) made
    one: ``sign`` -1 for a logit of the first frame's weight (the other order's first frame
    is the last: its weight is 1 - this one's, its logit the negation), +1 for one that does
    not depend on the order (the learned flows' share)."""
    own, other = logits.chunk(2)
    merged = 0.5 * (own + sign * other)
    return torch.cat([merged, sign * merged])


def _upsample(tensor: Tensor, factor: int) -> Tensor:
    return F.interpolate(tensor, scale_factor=float(factor), mode="bilinear", align_corners=False)
