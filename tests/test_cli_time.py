"""``sepconv interpolate --time``: any time with a model that takes t, a usage error otherwise."""

from __future__ import annotations

import numpy as np
from PIL import Image
from test_cli import run_cli

from sepconv.models.checkpoint import save_safetensors
from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet


def _pair(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(tmp_path / name)
        paths.append(tmp_path / name)
    return paths


def test_time_with_a_motion_model_and_without(tmp_path) -> None:
    first, second = _pair(tmp_path)
    config = MotionSepConvConfig(
        kernel_size=3, widths=(4, 8), feature_widths=(4, 4, 4), estimator_widths=(4, 4, 4)
    )
    weights = tmp_path / "motion.safetensors"
    save_safetensors(weights, MotionSepConvNet(config))
    out = tmp_path / "quarter.png"
    done = run_cli("interpolate", first, second, "-o", out, "--time", "0.25", "--weights", weights)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (40, 24)
    refused = run_cli(
        "interpolate",
        first,
        second,
        "-o",
        tmp_path / "x.png",
        "--time",
        "0.25",
        "--weights",
        "sepconv-flow",
    )
    assert refused.returncode == 2
    assert "needs a model that takes t" in refused.stderr
    assert "Traceback" not in refused.stderr
    # The default model (sepconv-motion) takes t.
    default = run_cli("interpolate", first, second, "-o", tmp_path / "d.png", "--time", "0.25")
    assert default.returncode == 0, default.stderr
    start = run_cli("interpolate", first, second, "-o", tmp_path / "zero.png", "--time", "0")
    assert start.returncode == 0, start.stderr
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "zero.png")), np.asarray(Image.open(first))
    )
    outside = run_cli("interpolate", first, second, "-o", tmp_path / "y.png", "--time", "1.5")
    assert outside.returncode == 2 and "between 0 and 1" in outside.stderr
