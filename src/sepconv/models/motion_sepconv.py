"""Learned-motion SepConv: a learned motion estimator aligns both frames to time t, and short
separable kernels synthesise the frame at full resolution.

:class:`~sepconv.models.motion.MotionEstimator` (low resolution, coarse to fine, with t as an
input) gives the flows from time t to both frames and a blending weight ``w`` of the first
frame. Both frames are backward-warped to time t at full resolution. A small U-Net sees the
two warps, the flows and the weight and predicts, per output pixel, four 1D kernels of K taps
applied to the *warps*; the first frame's are scaled by ``w`` and the last's by ``1 - w``, and
the sum of the two local convolutions is kernel-normalised, so the output is::

    (w * conv(warp0, k0) + (1 - w) * conv(warp1, k1)) / (w * sum(k0) + (1 - w) * sum(k1))

At initialisation every kernel is a centre tap, so the output is the plain blend
``w * warp0 + (1 - w) * warp1``, as RIFE's; training adds the kernels' corrections (up to
K // 2 pixels of flow error, and the warps' blur). The motion runs once per frame pair on the
whole frame, in :meth:`MotionSepConvNet.prepare`; only the kernel network and the synthesis
are tiled.

Training (:meth:`MotionSepConvNet.training_forward`) adds, to the frame loss, an L1 loss on
the plain blend (so the motion learns from every sample), with a classic candidate also on the
plain blend of the learned flows alone, and, on samples with exact flow (synthetic motion), an
L1 loss on every level's flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sepconv.flow import HALFWAY_METHODS, FlowSettings
from sepconv.models.family_config import FamilyConfig, check_kernel_unet
from sepconv.models.flow_sepconv import check_canvas, run_unet, unet_levels
from sepconv.models.motion import (
    MOTION_STRIDE,
    MotionEstimator,
    MotionOutput,
    backward_warp,
    backward_warp_at,
    time_tensor,
)
from sepconv.models.synthesis import Kernels, KernelSynthesisModel
from sepconv.ops import Backend

__all__ = ["MotionSepConvConfig", "MotionSepConvNet"]

# Kernel network inputs: both warps (6), both flows (4), the blending weight (1).
GUIDE_CHANNELS = 11
WARP_MODES = ("bilinear", "bicubic")
SELECTIONS = ("flows", "warps")
# Without gradients, mixed_warp skips the learned flow's warp where its share is at most
# this: the output then moves by at most this much (a 40th of an 8-bit level), and on real
# footage the selector keeps more than this of the learned flow on a few percent of pixels.
NEGLIGIBLE_SHARE = 1e-4


@dataclass(frozen=True)
class MotionSepConvConfig(FamilyConfig):
    """Everything that defines a learned-motion network, saved inside every checkpoint.

    Attributes:
        kernel_size: taps of each 1D kernel applied to the warps (odd).
        widths: channels of the kernel U-Net's levels, full resolution first.
        kernel_resolution: the kernel U-Net runs on its inputs average-pooled by this factor
            (1, 2 or 4), and its kernels are upsampled (bilinear) to full resolution before
            the local convolutions: about the square of it cheaper, and each kernel varies
            smoothly over a factor-wide neighbourhood.
        feature_widths, estimator_widths, coarse_radius, coarse_step, fine_radius,
            finest_radius: the motion
            estimator's (:class:`~sepconv.models.motion.MotionEstimator`).
        classic_candidate: add OpenCV DIS flow (on smaller frames, at DIS's
            ``classic_finest_scale``) as a candidate the estimator's selector mixes with its
            learned flows per pixel (:class:`~sepconv.models.motion.MotionEstimator`).
        classic_finest_scale: DIS's finest pyramid level on the candidate's frames.
        classic_max_side: the candidate's frames: 0 for the half-size frames, else the frames
            downscaled (never enlarged) to a long side of at most this.
        classic_halfway: how the two DIS flows become flows from time t: "average" (Super
            SloMo's linear motion) or "splat" (:func:`sepconv.flow.splatted_flows_at_time`).
        classic_refinement_iterations: DIS's variational refinement per level (-1: the
            "medium" preset's 5; 0: none, much faster at finest scale 0).
        selector_width: channels of the candidate selector.
        refiner_width: channels of the candidate refiner, which adds a learned residual to the
            classic candidate's flows at 1/4 (0: none; needs ``classic_candidate``).
        selection: how the selector's share of the learned flows (against the candidate's)
            is applied: "flows" mixes the two flows per pixel, then warps once; "warps" warps
            each frame by both and mixes the warps (a pixel where the two flows disagree then
            takes one of two sharp warps, not a warp by a flow between them).
        warp_mode: interpolation of the full-resolution warps, "bicubic" or "bilinear".
        flow_scale: flows (pixels) are divided by this before the kernel network sees them.
        flow_loss_weight: training only: weight of the L1 loss (pixels) on every level's flows
            where the exact flow is known.
        selector_loss_weight: training only: weight of the selector's own loss
            (:func:`selection_loss`), with a classic candidate.
        blend_loss_weight: training only: weight of the L1 loss of the plain blend (with the
            kernels; and, with a classic candidate, of the learned flows' own plain blend).
        symmetry_loss_weight: training only: weight of :func:`time_symmetry_loss`, the
            motion against the motion asked the other way round (a second motion pass).
        time_symmetric: the motion estimator symmetric in time by construction (both orders
            of the frames in one batch, their updates averaged at every level; about twice
            the estimator's arithmetic): asked last frame first at 1 - t, the model then makes
            the same frame, up to the classic candidate's own asymmetry.
        symmetric_levels: with ``time_symmetric``, the levels (coarsest first, 1-3) that run
            on both orders; below 3 the finer levels, the selector and the refiner run on the
            asked order only (cheaper, not exactly symmetric).
        train_kernels: training only: False trains the motion alone, on the plain blend
            (the kernel network is skipped, several times faster on a CPU: a first stage).
        kernel_normalization: always on (the blend is a normalised weighting).
        input_normalization: not used by this family (always off).
    """

    ARCHITECTURE: ClassVar[str] = "motion-sepconv"
    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("widths", "feature_widths", "estimator_widths")
    #: The family makes frames at any time t in (0, 1), not only the middle one.
    TAKES_TIME: ClassVar[bool] = True
    # Settings a run may change while continuing another's weights (init_weights): how it
    # trains, and the classic candidate's, which change the selector's inputs but no shapes.
    PRIOR_FIELDS: ClassVar[tuple[str, ...]] = (
        "flow_loss_weight",
        "blend_loss_weight",
        "selector_loss_weight",
        "symmetry_loss_weight",
        "time_symmetric",
        "symmetric_levels",
        "train_kernels",
        # No shapes change; meant for kernels not trained yet (the head all zeros).
        "kernel_resolution",
        "classic_finest_scale",
        "classic_max_side",
        "classic_halfway",
        "classic_refinement_iterations",
        "selection",
    )
    # Settings that add modules: a run may switch them on while continuing weights trained
    # without them (the new modules start from their initialisation).
    ADDED_FIELDS: ClassVar[tuple[str, ...]] = (
        "classic_candidate",
        "selector_width",
        "refiner_width",
    )

    kernel_size: int = 11
    widths: tuple[int, ...] = field(default=(16, 32, 64, 96))
    kernel_resolution: int = 1
    feature_widths: tuple[int, ...] = field(default=(24, 32, 48))
    estimator_widths: tuple[int, ...] = field(default=(96, 64, 48))
    coarse_radius: int = 4
    coarse_step: int = 2
    fine_radius: int = 3
    finest_radius: int = 1
    classic_candidate: bool = False
    classic_finest_scale: int = 1
    classic_max_side: int = 0
    classic_halfway: str = "average"
    classic_refinement_iterations: int = -1
    selector_width: int = 32
    refiner_width: int = 0
    selection: str = "flows"
    warp_mode: str = "bicubic"
    flow_scale: float = 16.0
    flow_loss_weight: float = 0.01
    blend_loss_weight: float = 0.5
    selector_loss_weight: float = 0.0
    symmetry_loss_weight: float = 0.0
    time_symmetric: bool = False
    symmetric_levels: int = 3
    train_kernels: bool = True
    kernel_normalization: bool = True
    input_normalization: bool = False

    def __post_init__(self) -> None:
        check_kernel_unet(
            "learned-motion",
            self.kernel_size,
            self.widths,
            self.kernel_normalization,
            self.input_normalization,
        )
        if len(self.feature_widths) != 3 or len(self.estimator_widths) != 3:
            raise ValueError("feature_widths and estimator_widths list 3 levels each")
        if any(int(w) < 4 for w in (*self.feature_widths, *self.estimator_widths)):
            raise ValueError("motion widths must be at least 4")
        if min(self.coarse_radius, self.fine_radius, self.finest_radius, self.coarse_step) < 1:
            raise ValueError("cost volume radii and coarse_step must be >= 1")
        if self.classic_finest_scale < 0 or self.selector_width < 4:
            raise ValueError("need classic_finest_scale >= 0 and selector_width >= 4")
        if self.refiner_width and (self.refiner_width < 4 or not self.classic_candidate):
            raise ValueError("refiner_width is 0, or >= 4 with classic_candidate")
        if self.classic_refinement_iterations < -1:
            raise ValueError("classic_refinement_iterations must be >= -1")
        if self.classic_max_side < 0 or self.classic_max_side == 1:
            raise ValueError(f"classic_max_side must be 0 or >= 2, got {self.classic_max_side}")
        if self.classic_halfway not in HALFWAY_METHODS:
            raise ValueError(
                f"classic_halfway must be one of {', '.join(HALFWAY_METHODS)}, "
                f"got {self.classic_halfway!r}"
            )
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}"
            )
        if self.warp_mode not in WARP_MODES:
            raise ValueError(f"warp_mode must be one of {', '.join(WARP_MODES)}")
        if self.flow_scale <= 0:
            raise ValueError(f"flow_scale must be positive, got {self.flow_scale}")
        weights = (
            self.flow_loss_weight,
            self.blend_loss_weight,
            self.selector_loss_weight,
            self.symmetry_loss_weight,
        )
        if min(weights) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.symmetric_levels not in (1, 2, 3):
            raise ValueError(f"symmetric_levels must be 1, 2 or 3, got {self.symmetric_levels}")
        if self.kernel_resolution not in (1, 2, 4):
            raise ValueError(f"kernel_resolution must be 1, 2 or 4, got {self.kernel_resolution}")

    @property
    def stride(self) -> int:
        """Spatial sizes the kernel network takes are multiples of this."""
        return 2 ** (len(self.widths) - 1) * self.kernel_resolution

    @property
    def classic_settings(self) -> FlowSettings | None:
        """DIS settings of the classic candidate, or None without one."""
        if not self.classic_candidate:
            return None
        return FlowSettings(
            preset="medium",
            finest_scale=self.classic_finest_scale,
            halfway=self.classic_halfway,
            refinement_iterations=self.classic_refinement_iterations,
        )


class MotionSepConvNet(KernelSynthesisModel):
    """The learned-motion network (see the module docstring).

    :meth:`prepare` takes (B, C, H, W) frames in [0, 1] (C in 3..4: alpha is warped with the
    colours) of any size and the time t; :meth:`kernels_for` needs sizes that are multiples
    of ``config.stride`` (the Interpolator pads).
    """

    TAKES_TIME: ClassVar[bool] = True

    def __init__(self, config: MotionSepConvConfig | None = None) -> None:
        super().__init__()
        self.config = config or MotionSepConvConfig()
        self.motion = MotionEstimator(
            feature_widths=tuple(self.config.feature_widths),
            estimator_widths=tuple(self.config.estimator_widths),
            coarse_radius=self.config.coarse_radius,
            coarse_step=self.config.coarse_step,
            fine_radius=self.config.fine_radius,
            finest_radius=self.config.finest_radius,
            classic=self.config.classic_settings,
            selector_width=self.config.selector_width,
            classic_max_side=self.config.classic_max_side,
            refiner_width=self.config.refiner_width,
            time_symmetric=self.config.time_symmetric,
            symmetric_levels=self.config.symmetric_levels,
        )
        widths = [int(w) for w in self.config.widths]
        self.encoders, self.reducers, self.decoders = unet_levels(GUIDE_CHANNELS, widths)
        self.head = nn.Sequential(nn.Conv2d(widths[0], 4 * self.config.kernel_size, 1))
        self.reset_kernels()

    def reset_kernels(self) -> None:
        """Zero the kernel head: every kernel a centre tap, the output the plain blend
        ``w * warp0 + (1 - w) * warp1`` (the initialisation, and the motion-only stage)."""
        with torch.no_grad():
            for parameter in self.head.parameters():
                parameter.zero_()

    @property
    def kernels_trained(self) -> bool:
        """False while the kernel head is all zeros (:meth:`reset_kernels`)."""
        return any(bool(parameter.any()) for parameter in self.head.parameters())

    # -- the model interface -----------------------------------------------------------------

    def estimate_motion(
        self, first: Tensor, second: Tensor, time: float | Tensor | None = None
    ) -> MotionOutput:
        """The motion estimator on the frames' RGB: (B, C, H, W) in [0, 1], time in (0, 1)."""
        times = time_tensor(time, first.shape[0], first.device)
        dtype = next(self.motion.parameters()).dtype
        return self.motion(first[:, :3].to(dtype), second[:, :3].to(dtype), times)

    def prepare(
        self, first: Tensor, second: Tensor, time: float | Tensor | None = None
    ) -> dict[str, Tensor]:
        """Learned motion to time ``time`` (default 1/2) and full-resolution warps.

        Args:
            first, second: (B, C, H, W) floats in [0, 1], C in 3..4, any size.
            time: a number or (B,) tensor in (0, 1).
        Returns:
            ``first``/``second``: the warps (B, C, H, W); ``flow``: F_t0 and F_t1
            (B, 4, H, W) in pixels; ``blend``: the first warp's weight (B, 1, H, W) in [0, 1].
        """
        return self.inputs_from_motion(first, second, self.estimate_motion(first, second, time))

    def inputs_from_motion(
        self, first: Tensor, second: Tensor, motion: MotionOutput
    ) -> dict[str, Tensor]:
        """:meth:`prepare`'s dict from the frames and their motion (with ``selection =
        "warps"`` and a classic candidate, each warp is the selector's per-pixel mix of the
        frame warped by the learned flow and by the candidate's; ``flow`` stays the mixed flow
        the selector's share gives)."""
        mode = self.config.warp_mode
        if self.config.selection == "warps" and motion.kept is not None:
            assert motion.learned is not None and motion.candidate is not None
            warps = [
                mixed_warp(frame, learned, candidate, motion.kept, mode)
                for frame, learned, candidate in zip(
                    (first, second), motion.learned, motion.candidate, strict=True
                )
            ]
        else:
            warps = [
                backward_warp(first, motion.flow_t0.to(first.dtype), mode),
                backward_warp(second, motion.flow_t1.to(second.dtype), mode),
            ]
        return {
            "first": warps[0],
            "second": warps[1],
            "flow": torch.cat([motion.flow_t0, motion.flow_t1], dim=1).to(first.dtype),
            "blend": torch.sigmoid(motion.blend_logit).to(first.dtype),
        }

    def kernels_for(
        self, inputs: Mapping[str, Tensor], statistics: tuple[Tensor, Tensor] | None = None
    ) -> Kernels:
        """Kernels (each (B, K, H, W)) for (a tile of) :meth:`prepare`'s output (the U-Net at
        1 / ``config.kernel_resolution`` of its size, the kernels upsampled to it)."""
        del statistics  # no input normalisation in this family
        check_canvas(inputs["flow"], self.config.stride)
        dtype = self.head[0].weight.dtype
        blend = inputs["blend"].to(dtype)
        guide = torch.cat(
            [
                inputs["first"][:, :3].to(dtype) - 0.5,
                inputs["second"][:, :3].to(dtype) - 0.5,
                inputs["flow"].to(dtype) / self.config.flow_scale,
                blend - 0.5,
            ],
            dim=1,
        )
        if self.head[0].weight.is_contiguous(memory_format=torch.channels_last):
            guide = guide.contiguous(memory_format=torch.channels_last)
        factor = self.config.kernel_resolution
        if factor > 1:
            guide = F.avg_pool2d(guide, factor)
        features = run_unet(guide, self.encoders, self.reducers, self.decoders)
        taps = self.head(features)
        if factor > 1:
            taps = F.interpolate(
                taps, scale_factor=float(factor), mode="bilinear", align_corners=False
            )
        centre = torch.zeros(self.kernel_size, dtype=taps.dtype, device=taps.device)
        centre[self.kernel_size // 2] = 1.0
        vertical1, horizontal1, vertical2, horizontal2 = (
            part + centre[None, :, None, None] for part in taps.chunk(4, dim=1)
        )
        return Kernels(vertical1 * blend, horizontal1, vertical2 * (1.0 - blend), horizontal2)

    def blend_synthesis(self, inputs: Mapping[str, Tensor]) -> Tensor | None:
        """The plain blend ``w * warp0 + (1 - w) * warp1`` when the kernel head is all zeros
        (the motion-only stage, ``train_kernels = false``): every kernel is then a centre tap
        and the kernel-normalised synthesis is exactly this blend, at a fraction of the cost.
        None once the kernels are trained."""
        return None if self.kernels_trained else _plain_blend(inputs)

    # -- training ------------------------------------------------------------------------------

    def training_forward(
        self,
        batch: Mapping[str, Tensor],
        *,
        bf16: bool = False,
        channels_last: bool = False,
        backend: Backend = "auto",
    ) -> tuple[Tensor, Tensor | None]:
        """Frame prediction at ``batch["time"]`` (default 1/2) and the motion losses.

        ``batch`` may hold ``"time"`` (B,), and, for exact-flow supervision, ``"flow_t0"``,
        ``"flow_t1"`` (B, 2, H, W) in pixels with ``"flow_valid"`` (B,) 1 where they are
        exact (0 for real footage).
        """
        first, last, target = batch["first"], batch["last"], batch["middle"]
        motion = self.estimate_motion(first, last, batch.get("time"))
        inputs = self.inputs_from_motion(first, last, motion)
        config = self.config
        blend = inputs["blend"]
        plain = _plain_blend(inputs)
        if config.train_kernels:
            prediction = self.kernel_synthesis(
                inputs, bf16=bf16, channels_last=channels_last, backend=backend
            )
            extra = config.blend_loss_weight * (plain - target).abs().mean()
        else:
            prediction, extra = plain, plain.new_zeros(())
        if motion.learned is not None and config.blend_loss_weight > 0:
            # The learned flows alone, too: they keep learning from every frame (large real
            # motion above all) wherever the selector prefers the classic candidate.
            mode = config.warp_mode
            learned = warped_blend(first, last, motion.learned, blend, mode)
            extra = extra + config.blend_loss_weight * (learned - target).abs().mean()
            if config.selector_loss_weight > 0:
                extra = extra + config.selector_loss_weight * selection_loss(
                    motion, learned.detach(), first, last, blend.detach(), target, mode
                )
        if config.symmetry_loss_weight > 0:
            extra = extra + config.symmetry_loss_weight * time_symmetry_loss(
                self, motion, first, last, batch.get("time"), config.flow_scale
            )
        if config.flow_loss_weight > 0 and "flow_t0" in batch and "flow_valid" in batch:
            extra = extra + config.flow_loss_weight * flow_loss(
                motion, batch["flow_t0"], batch["flow_t1"], batch["flow_valid"]
            )
        return prediction, extra


def _plain_blend(inputs: Mapping[str, Tensor]) -> Tensor:
    """``w * warp0 + (1 - w) * warp1`` of :meth:`MotionSepConvNet.prepare`'s output."""
    blend = inputs["blend"]
    return blend * inputs["first"] + (1.0 - blend) * inputs["second"]


def mixed_warp(
    frame: Tensor, learned: Tensor, candidate: Tensor, kept: Tensor, mode: str
) -> Tensor:
    """``kept * frame(x + learned(x)) + (1 - kept) * frame(x + candidate(x))``.

    Without gradients (inference), the learned flow's warp is computed only where ``kept``
    exceeds :data:`NEGLIGIBLE_SHARE`, and elsewhere the candidate's warp stands alone: the
    result differs by at most that share times the two warps' difference (at most 1e-4 for
    frames in [0, 1]), for a fraction of the cost of a second full-resolution warp.

    Args:
        frame: (B, C, H, W).
        learned, candidate: (B, 2, H, W) flows in pixels.
        kept: (B, 1, H, W) in [0, 1], the learned flow's share.
    Returns:
        (B, C, H, W) in ``frame``'s dtype.
    """
    kept = kept.to(frame.dtype)
    by_candidate = backward_warp(frame, candidate.to(frame.dtype), mode)
    if any(x.requires_grad for x in (frame, learned, candidate, kept)):
        by_learned = backward_warp(frame, learned.to(frame.dtype), mode)
        return kept * by_learned + (1.0 - kept) * by_candidate
    values, (batch, rows, columns) = backward_warp_at(
        frame, learned.to(frame.dtype), kept[:, 0] > NEGLIGIBLE_SHARE, mode
    )
    share = kept[batch, 0, rows, columns][:, None]
    at_candidate = by_candidate[batch, :, rows, columns]
    by_candidate[batch, :, rows, columns] = at_candidate + share * (values - at_candidate)
    return by_candidate  # a fresh tensor, mixed in place


def warped_blend(
    first: Tensor, last: Tensor, flows: tuple[Tensor, Tensor], blend: Tensor, warp_mode: str
) -> Tensor:
    """The plain blend ``w * first(x + F_t0) + (1 - w) * last(x + F_t1)`` of both frames
    warped by ``flows`` (F_t0, F_t1), each (B, 2, H, W) pixels, with ``blend`` = w
    (B, 1, H, W)."""
    return blend * backward_warp(first, flows[0].to(first.dtype), warp_mode) + (
        1.0 - blend
    ) * backward_warp(last, flows[1].to(last.dtype), warp_mode)


def selection_loss(
    motion: MotionOutput,
    learned: Tensor,
    first: Tensor,
    last: Tensor,
    blend: Tensor,
    target: Tensor,
    warp_mode: str,
) -> Tensor:
    """The selector's own loss: a weighted binary cross-entropy of its keep logit against
    which flows, the learned or the candidate's, give the smaller error of the plain blend on
    each 4x4 block (the selector's 1/4 grid), weighted by how much smaller.

    Through the frame loss alone, a selector that keeps almost none of the learned flows
    (a saturated sigmoid) gets almost no gradient; this loss does not saturate.

    Args:
        motion: with a classic candidate (``candidate`` and ``keep_logit`` set).
        learned: (B, C, H, W) the plain blend of the learned flows' warps (no gradient).
        first, last, target: (B, C, H, W) the inputs and the true frame at t.
        blend: (B, 1, H, W) the first warp's weight.
    Returns:
        A scalar.
    """
    assert motion.candidate is not None and motion.keep_logit is not None
    with torch.no_grad():
        classic = warped_blend(first, last, motion.candidate, blend, warp_mode)
        gain = (classic - target).abs().mean(1, keepdim=True) - (learned - target).abs().mean(
            1, keepdim=True
        )  # > 0 where the learned flows are better
        height, width = gain.shape[-2:]
        logit = motion.keep_logit
        canvas = (logit.shape[-2] * 4, logit.shape[-1] * 4)
        gain = F.pad(gain, [0, canvas[1] - width, 0, canvas[0] - height])  # 0: no preference
        gain = F.avg_pool2d(gain, 4)
        label = (gain > 0).to(logit.dtype)
        weight = gain.abs()
        weight = weight / weight.mean().clamp_min(1e-8)
    return F.binary_cross_entropy_with_logits(logit, label, weight=weight.to(logit.dtype))


def time_symmetry_loss(
    model: Any,
    motion: MotionOutput,
    first: Tensor,
    last: Tensor,
    time: float | Tensor | None,
    weight_scale: float,
) -> Tensor:
    """How far ``motion`` (at ``first``, ``last``, t) is from the motion asked the other way
    round (``last`` first, at 1 - t), which wants the same frame: mean L1 (pixels) of F_t0
    against the reversed F_t1 and of F_t1 against the reversed F_t0, plus ``weight_scale``
    times the mean L1 of the blend weight against 1 - the reversed one and, with a classic
    candidate, of the learned share against the reversed one. Zero for a model symmetric in
    time; both passes get the gradient.

    Args:
        model: has ``estimate_motion(first, last, time) -> MotionOutput``.
        motion: ``model.estimate_motion(first, last, time)``.
        first, last: (B, 3, H, W) in [0, 1].
        time: (B,) or a number in (0, 1); None for 1/2.
        weight_scale: how many pixels of flow a whole blend weight counts as.
    """
    times = time_tensor(time, first.shape[0], first.device)
    reverse = model.estimate_motion(last, first, 1.0 - times)
    loss = (motion.flow_t0 - reverse.flow_t1).abs().mean()
    loss = loss + (motion.flow_t1 - reverse.flow_t0).abs().mean()
    weight = torch.sigmoid(motion.blend_logit)
    loss = loss + weight_scale * (weight - (1.0 - torch.sigmoid(reverse.blend_logit))).abs().mean()
    if motion.kept is not None and reverse.kept is not None:
        loss = loss + weight_scale * (motion.kept - reverse.kept).abs().mean()
    return loss


def flow_loss(motion: MotionOutput, flow_t0: Tensor, flow_t1: Tensor, valid: Tensor) -> Tensor:
    """Mean L1 (pixels) of every level's flows against the exact ones, over the samples where
    ``valid`` (B,) is 1, summed over the levels; each level is compared at its own resolution
    with the exact flows area-averaged to it (cheaper than upsampling the estimates)."""
    height, width = flow_t0.shape[-2:]
    pad = [0, (-width) % MOTION_STRIDE, 0, (-height) % MOTION_STRIDE]  # the estimator's canvas
    exact = torch.cat([flow_t0, flow_t1], dim=1)
    if any(pad):
        exact = F.pad(exact, pad, mode="replicate")
    weights = valid.to(flow_t0.dtype).reshape(-1, 1, 1, 1)
    count = weights.sum().clamp_min(1.0)
    total = flow_t0.new_zeros(())
    for level_t0, level_t1 in motion.levels:
        scale = exact.shape[-2] // level_t0.shape[-2]
        target = F.avg_pool2d(exact, scale) if scale > 1 else exact
        error = (torch.cat([level_t0, level_t1], dim=1) - target).abs()
        total = total + 2.0 * (error.mean(dim=(1, 2, 3), keepdim=True) * weights).sum() / count
    return total
