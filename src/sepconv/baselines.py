"""Non-learned interpolation baselines, with the ``predict(first, last) -> middle`` signature.

Both take the first and last frames as uint8 RGB arrays of shape (H, W, 3), values 0..255, and
return the interpolated middle frame in the same format. Reference scores on the 12 Middlebury
sequences (mean PSNR): frame averaging 28.01 dB, DIS optical-flow interpolation 34.20 dB; the
SepConv paper reports 35.73 dB.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sepconv.errors import SepconvError
from sepconv.flow import FlowSettings, halfway_warps

__all__ = [
    "average_predictor",
    "comparison_baselines",
    "make_flow_predictor",
    "minterpolate_predictor",
]


def average_predictor(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The per-pixel mean of the two frames, rounded to the nearest integer (ties to even).

    Args:
        first: uint8 (H, W, 3) RGB, 0..255.
        last: uint8 (H, W, 3) RGB, 0..255.

    Returns:
        uint8 (H, W, 3) RGB, 0..255.
    """
    total = first.astype(np.float32) + last.astype(np.float32)
    return np.round(total * 0.5).astype(np.uint8)


def make_flow_predictor(
    settings: FlowSettings | None = None,
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Classic optical-flow interpolation with OpenCV's DIS flow (default: preset MEDIUM,
    bilinear warps; `settings` picks others, e.g. ``FlowSettings(interpolation="cubic")``).

    DIS flows both ways on the grey frames give the halfway flows; each input is backward-warped
    to the middle and the two warps are averaged and rounded (:func:`sepconv.flow.halfway_warps`,
    the same motion prior the flow-guided models start from). Occlusions are not reasoned about.

    The returned predictor keeps its own DIS object; use one predictor per thread.

    Returns:
        ``predict(first, last) -> middle`` on uint8 (H, W, 3) RGB frames, 0..255.

    Raises:
        SepconvError: OpenCV is not installed.
    """
    settings = settings or FlowSettings()
    dis = settings.create()

    def predict(first: np.ndarray, last: np.ndarray) -> np.ndarray:
        # Warped in float (no rounding of the warps), as the flow-guided models do.
        warped_first, warped_last, _ = halfway_warps(
            first.astype(np.float32) / 255.0,
            last.astype(np.float32) / 255.0,
            dis,
            settings,
        )
        middle = (warped_first + warped_last) * (0.5 * 255.0)
        return np.clip(np.round(middle), 0, 255).astype(np.uint8)

    return predict


def minterpolate_predictor(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """FFmpeg's motion-compensated interpolation (``minterpolate``: mci, aobmc, bidirectional
    motion estimation, variable-size blocks) of the middle frame, through the ``ffmpeg``
    command (the last frame is repeated so the filter sees a full step after the middle).

    Args:
        first, last: uint8 (H, W, 3) RGB, 0..255.
    Returns:
        uint8 (H, W, 3) RGB.

    Raises:
        SepconvError: ffmpeg is not on PATH or fails.
    """
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from PIL import Image

    if shutil.which("ffmpeg") is None:
        raise SepconvError("the minterpolate baseline needs ffmpeg on PATH")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for index, frame in enumerate((first, last, last), start=1):
            Image.fromarray(frame).save(folder / f"in{index}.png")
        command = [
            "ffmpeg", "-v", "error", "-framerate", "1", "-i", str(folder / "in%d.png"),
            "-vf", "minterpolate=fps=2:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1",
            "-pix_fmt", "rgb24", str(folder / "out%d.png"),
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            reason = (completed.stderr.strip().splitlines() or ["failed"])[-1]
            raise SepconvError(f"ffmpeg minterpolate failed: {reason}")
        return np.asarray(Image.open(folder / "out2.png").convert("RGB"))


def comparison_baselines(
    *, cubic: bool = True
) -> tuple[list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]], list[str]]:
    """The non-learned methods that comparisons show, in table order, and why any is missing.

    Frame averaging, DIS flow with bilinear warps (and bicubic ones with `cubic`), and FFmpeg
    ``minterpolate`` when ``ffmpeg`` is on PATH.

    Returns:
        ``[(name, predict), ...]`` and one line per method left out.
    """
    import shutil

    methods: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
        ("average of the two frames", average_predictor),
        ("DIS flow, bilinear warps", make_flow_predictor()),
    ]
    if cubic:
        methods.append(
            ("DIS flow, bicubic warps", make_flow_predictor(FlowSettings(interpolation="cubic")))
        )
    missing = []
    if shutil.which("ffmpeg"):
        methods.append(("ffmpeg minterpolate (mci, aobmc)", minterpolate_predictor))
    else:
        missing.append("ffmpeg minterpolate (ffmpeg is not on PATH)")
    return methods, missing
