"""The classic motion prior: OpenCV DIS optical flow, halfway flows and backward warps.

Shared by the DIS baseline (:func:`sepconv.baselines.make_flow_predictor`), the flow-guided
model family (:mod:`sepconv.models.flow_sepconv`), its training and every evaluation, so that
all of them align frames the same way.

Conventions: a flow is a float32 array (H, W, 2) of (dx, dy) in pixels; ``flow_01`` maps pixels
of the first frame to the last (``first(x) ~ last(x + flow_01(x))``). Frames are (H, W, C)
numpy arrays, uint8 in 0..255 or float32 in [0, 1], C in 1..4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sepconv.errors import SepconvError

__all__ = [
    "DIS_PRESETS",
    "FlowSettings",
    "backward_warp",
    "bilinear_splat",
    "dis_flows",
    "flows_at_time",
    "halfway_flow",
    "halfway_warps",
    "splatted_flows_at_time",
    "splatted_halfway_flow",
    "to_grey_uint8",
]

DIS_PRESETS = ("ultrafast", "fast", "medium")
# Interpolation of the backward warps: "linear" is the classic baseline's; "cubic" keeps more
# detail (+0.77 dB on Middlebury with DIS medium) but also more noise (-0.15 dB on the
# held-out real clips of ../shared/data/triplets), measured with the same flows.
WARP_INTERPOLATIONS = ("linear", "cubic")
# How the flow from the middle frame is made of the two DIS flows: "average" reads both flows at
# the middle frame's pixel (:func:`halfway_flow`); "splat" moves every pixel's flow halfway
# along itself first (:func:`splatted_halfway_flow`; +0.22 dB on Middlebury with DIS medium at
# full resolution and bicubic warps, all of it on the large-motion sequences).
HALFWAY_METHODS = ("average", "splat")
# Softmax splatting's importance exp(-SPLAT_SHARPNESS * error) of a pixel whose flow maps it to
# a pixel differing by `error` (mean absolute RGB difference, 0..1): when pixels of a near and
# a far surface land on one spot, the one that is visible in both frames wins. Chosen on
# Middlebury (docs/training-log.md, run 10).
SPLAT_SHARPNESS = 100.0
# Weight of the averaged estimate in every splatted pixel: it fills the holes nothing lands
# in, and elsewhere it is negligible beside the splats' weights (about 1 per pixel).
SPLAT_FILL_WEIGHT = 1e-3
# OpenCV's DIS (5.1) refuses frames under 12 pixels on a side, and some long thin frames under
# 32 (16x1000 with the "fast" preset), and crashes the process on others (16x92 with
# "ultrafast"); from 32 pixels up it has worked for every preset and shape tried (up to 32x20000).
# Frames with a side under this are replicate-padded to it for the flow, which is then cropped.
DIS_MIN_SIZE = 32


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise SepconvError(
            "optical flow needs OpenCV: pip install opencv-python-headless"
        ) from None
    return cv2


@dataclass(frozen=True)
class FlowSettings:
    """Settings of the motion prior: OpenCV's DIS optical flow and the warps (saved in every
    flow-guided model's config).

    Attributes:
        preset: "ultrafast", "fast" or "medium" (OpenCV's presets).
        finest_scale: pyramid level the flow is refined down to (0: full resolution, slower
            and finer); -1 keeps the preset's own value.
        interpolation: of the backward warps, "linear" or "cubic" (see
            :data:`WARP_INTERPOLATIONS`).
        halfway: how the flow from the middle is made of the two DIS flows, "average" or
            "splat" (see :data:`HALFWAY_METHODS`).
        refinement_iterations: of DIS's variational refinement on every pyramid level (0:
            none, about 45% faster at full resolution); -1 keeps the preset's own value (5 for
            "medium").
    """

    preset: str = "medium"
    finest_scale: int = -1
    interpolation: str = "linear"
    halfway: str = "average"
    refinement_iterations: int = -1

    def __post_init__(self) -> None:
        if self.preset not in DIS_PRESETS:
            raise ValueError(f"flow preset must be one of {', '.join(DIS_PRESETS)}")
        if self.finest_scale < -1:
            raise ValueError(f"finest_scale must be >= -1, got {self.finest_scale}")
        if self.refinement_iterations < -1:
            raise ValueError(
                f"refinement_iterations must be >= -1, got {self.refinement_iterations}"
            )
        if self.interpolation not in WARP_INTERPOLATIONS:
            raise ValueError(
                f"warp interpolation must be one of {', '.join(WARP_INTERPOLATIONS)}, "
                f"got {self.interpolation!r}"
            )
        if self.halfway not in HALFWAY_METHODS:
            raise ValueError(
                f"halfway flow must be one of {', '.join(HALFWAY_METHODS)}, got {self.halfway!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def create(self) -> Any:
        """A new ``cv2.DISOpticalFlow`` with these settings (one per thread)."""
        cv2 = _cv2()
        preset = {
            "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
            "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
        }[self.preset]
        dis = cv2.DISOpticalFlow_create(preset)
        if self.finest_scale >= 0:
            dis.setFinestScale(self.finest_scale)
        if self.refinement_iterations >= 0:
            dis.setVariationalRefinementIterations(self.refinement_iterations)
        return dis


def to_grey_uint8(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 or float [0, 1] frame -> (H, W) uint8 luma of its first three channels
    (the first channel when it has fewer)."""
    cv2 = _cv2()
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(frame * 255.0), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return frame
    if frame.shape[2] >= 3:
        return cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(frame[:, :, 0])


def dis_flows(first: np.ndarray, last: np.ndarray, dis: Any) -> tuple[np.ndarray, np.ndarray]:
    """DIS flows both ways between two frames of one size.

    Args:
        first, last: (H, W, C) frames (see the module docstring) or (H, W) uint8 grey.
        dis: a ``cv2.DISOpticalFlow`` (:meth:`FlowSettings.create`).

    Returns:
        ``flow_01`` (first -> last) and ``flow_10`` (last -> first), (H, W, 2) float32. Frames
        smaller than :data:`DIS_MIN_SIZE` on a side (down to 1x1) are replicate-padded for
        DIS and their flows cropped back.
    """
    grey_first, grey_last = to_grey_uint8(first), to_grey_uint8(last)
    height, width = grey_first.shape
    pad_y, pad_x = max(0, DIS_MIN_SIZE - height), max(0, DIS_MIN_SIZE - width)
    if pad_y or pad_x:  # too small for DIS: replicate the edges, then crop the flows back
        cv2 = _cv2()
        grey_first, grey_last = (
            cv2.copyMakeBorder(grey, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
            for grey in (grey_first, grey_last)
        )
    flow_01 = dis.calc(grey_first, grey_last, None)[:height, :width]
    flow_10 = dis.calc(grey_last, grey_first, None)[:height, :width]
    return np.ascontiguousarray(flow_01), np.ascontiguousarray(flow_10)


def halfway_flow(flow_01: np.ndarray, flow_10: np.ndarray) -> np.ndarray:
    """Flow from the middle frame back to the first, ``F_m0``; the flow to the last is
    ``F_m1 = -F_m0``.

    As in Super SloMo (Jiang et al., CVPR 2018, eq. 4) at t = 1/2, the two available estimates
    of the halfway motion at the middle frame's pixel x are averaged::

        F_m0(x) = (F10(x) - F01(x)) / 4        (~ -F01(x)/2 ~ +F10(x)/2)

    Using each frame's own flow alone scores 0.14 dB lower on Middlebury.
    """
    return 0.25 * (flow_10 - flow_01)


def flows_at_time(
    flow_01: np.ndarray, flow_10: np.ndarray, time: float
) -> tuple[np.ndarray, np.ndarray]:
    """Flows from time t back to both frames, ``(F_t0, F_t1)``, from the two flows between them.

    Super SloMo's linear motion (Jiang et al., CVPR 2018, eq. 4)::

        F_t0 = -(1 - t) t F01 + t^2 F10        F_t1 = (1 - t)^2 F01 - t (1 - t) F10

    At t = 1/2, ``F_t0`` is :func:`halfway_flow` and ``F_t1 = -F_t0``.
    """
    t = float(time)
    to_first = -(1 - t) * t * flow_01 + t * t * flow_10
    to_last = (1 - t) ** 2 * flow_01 - t * (1 - t) * flow_10
    return to_first, to_last


def backward_warp(frame: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """``frame(x + flow(x))`` with ``cv2.remap``, border pixels replicated.

    Args:
        frame: (H, W, C) uint8 or float32, C in 1..4.
        flow: (H, W, 2) float32.
        interpolation: "linear" (bilinear) or "cubic" (bicubic; float output may overshoot
            the input range slightly).
    Returns:
        The warped frame, same shape and dtype (uint8 rounded by OpenCV).
    """
    cv2 = _cv2()
    mode = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[interpolation]
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    warped = cv2.remap(
        frame,
        grid_x + flow[..., 0],
        grid_y + flow[..., 1],
        interpolation=mode,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return warped.reshape(frame.shape)


def splatted_halfway_flow(
    flow_01: np.ndarray, flow_10: np.ndarray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """``F_m0`` by forward splatting: :func:`splatted_flows_at_time` at t = 1/2 (where
    ``F_m1 = -F_m0``).

    :func:`halfway_flow` reads both flows at the middle frame's pixel x, which is right only
    where the motion is smooth: an object moving by d is at x + d/2 at the middle, where the
    first frame's flow is the background's.

    Args:
        flow_01, flow_10: (H, W, 2) float32 DIS flows both ways (:func:`dis_flows`).
        first, last: the frames, (H, W, C) uint8 or float32 in [0, 1], C in 1..4.
    Returns:
        (H, W, 2) float32 flow from the middle frame to the first.
    """
    return splatted_flows_at_time(flow_01, flow_10, first, last, 0.5)[0]


def splatted_flows_at_time(
    flow_01: np.ndarray, flow_10: np.ndarray, first: np.ndarray, last: np.ndarray, time: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(F_t0, F_t1)`` by forward splatting: every pixel of either frame carries its flow
    along itself to where it is at time t.

    Each pixel p of the first frame lands at p + t F01(p) with the flows -t F01(p) back to the
    first frame and (1 - t) F01(p) on to the last; each pixel of the last frame lands at
    p + (1 - t) F10(p) with t F10(p) and -(1 - t) F10(p). The shares spread bilinearly over the
    four pixels around where a pixel lands. Where several land on one pixel they are averaged
    with softmax-splatting importance weights (Niklaus and Liu, CVPR 2020), here
    exp(-:data:`SPLAT_SHARPNESS` * brightness-constancy error of the pixel along its flow), so
    surfaces visible in both frames win over occluded ones. Holes get Super SloMo's linear
    estimate (:func:`flows_at_time`, weight :data:`SPLAT_FILL_WEIGHT`).

    Args:
        flow_01, flow_10: (H, W, 2) float32 DIS flows both ways (:func:`dis_flows`).
        first, last: the frames, (H, W, C) uint8 or float32 in [0, 1], C in 1..4 (the first
            three channels at most are compared).
        time: t in (0, 1).
    Returns:
        Two (H, W, 2) float32 flows from time t to the first and to the last frame.
    """
    import torch

    cv2 = _cv2()
    t = float(time)
    height, width = flow_01.shape[:2]
    # Per pixel at time t: summed weight, then the weighted sums of F_t0's and F_t1's x, y.
    sums = torch.zeros((5, height, width), dtype=torch.float32)
    column = torch.arange(width, dtype=torch.float32)[None, :]
    row = torch.arange(height, dtype=torch.float32)[:, None]
    for frame, other, flow, travel, back, on in (
        (first, last, flow_01, t, -t, 1.0 - t),
        (last, first, flow_10, 1.0 - t, t, -(1.0 - t)),
    ):
        colours = np.ascontiguousarray(_unit_float(frame)[..., :3])
        warped = np.ascontiguousarray(backward_warp(_unit_float(other)[..., :3], flow))
        channels = colours.shape[-1]
        # Mean absolute difference over the channels, by OpenCV (on its threads).
        error = cv2.transform(
            cv2.absdiff(colours, warped).reshape(height, width, channels),
            np.full((1, channels), 1.0 / channels, np.float32),
        )
        importance = torch.exp(torch.from_numpy(error.reshape(height, width)) * -SPLAT_SHARPNESS)
        motion = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))
        axes = motion.unbind(-1)
        values = torch.stack(
            [
                importance,
                *(importance * back * axis for axis in axes),
                *(importance * on * axis for axis in axes),
            ]
        )
        sums += bilinear_splat(
            values, column + travel * motion[..., 0], row + travel * motion[..., 1]
        )
    inner = sums.permute(1, 2, 0).double().numpy()
    if t == 0.5:
        linear_first = halfway_flow(flow_01, flow_10)
        linear_last = -linear_first
    else:
        linear_first, linear_last = flows_at_time(flow_01, flow_10, t)
    total = inner[..., :1] + SPLAT_FILL_WEIGHT
    return (
        ((inner[..., 1:3] + SPLAT_FILL_WEIGHT * linear_first) / total).astype(np.float32),
        ((inner[..., 3:5] + SPLAT_FILL_WEIGHT * linear_last) / total).astype(np.float32),
    )


def bilinear_splat(values: Any, target_x: Any, target_y: Any) -> Any:
    """Forward (bilinear) splatting: each source pixel's values spread over the four pixels
    around where it lands, weighted by proximity and summed; shares that land outside the
    frame are dropped.

    Bilinear splatting is the adjoint of bilinear sampling, so this is torch's backward pass of
    ``grid_sample`` with respect to its input: one pass of torch's own kernel instead of a
    dozen full-frame temporaries, and called directly, so that it also runs where autograd is
    off (inference mode). The canvas has a one-pixel ring, so that frames one pixel wide or
    high normalise their coordinates like any other.

    Args:
        values: (C, H, W) float32 torch tensor, what each source pixel carries.
        target_x, target_y: (H, W) float32 torch tensors, where each source pixel lands
            (pixel coordinates of the (H, W) target frame).
    Returns:
        (C, H, W) float32 tensor of the summed shares.
    """
    import torch

    channels, height, width = values.shape
    grid = torch.stack(
        [(target_x + 1) * (2.0 / (width + 1)) - 1, (target_y + 1) * (2.0 / (height + 1)) - 1],
        dim=-1,
    )[None]
    canvas = torch.zeros((1, channels, height + 2, width + 2), dtype=values.dtype)
    bilinear, zeros_padding, align_corners = 0, 0, True
    splatted, _ = torch.ops.aten.grid_sampler_2d_backward(
        values[None].contiguous(),
        canvas,
        grid,
        bilinear,
        zeros_padding,
        align_corners,
        [True, False],
    )
    return splatted[0, :, 1:-1, 1:-1]


def _unit_float(frame: np.ndarray) -> np.ndarray:
    """(H, W[, C]) uint8 or float frame -> (H, W, C) float32 in [0, 1]."""
    if frame.ndim == 2:
        frame = frame[..., None]
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    return frame.astype(np.float32, copy=False)


def halfway_warps(
    first: np.ndarray, last: np.ndarray, dis: Any, settings: FlowSettings | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both frames backward-warped to the middle with DIS flows (`settings`: the warps'
    interpolation and how the halfway flow is made; `dis` must have been created from them).

    Returns:
        ``warped_first``, ``warped_last`` (the frames' shape and dtype) and ``F_m0``
        (H, W, 2) float32 (see :func:`halfway_flow` and :func:`splatted_halfway_flow`).
    """
    settings = settings or FlowSettings()
    flow_01, flow_10 = dis_flows(first, last, dis)
    if settings.halfway == "splat":
        to_first = splatted_halfway_flow(flow_01, flow_10, first, last)
    else:
        to_first = halfway_flow(flow_01, flow_10)
    return (
        backward_warp(first, to_first, settings.interpolation),
        backward_warp(last, -to_first, settings.interpolation),
        to_first,
    )
