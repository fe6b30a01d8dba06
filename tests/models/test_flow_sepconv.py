"""The flow-guided family: config, step-0 equality with the DIS baseline, prepare under
augmentation, checkpoints through build_model, and the Interpolator (tiles share one flow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_FLOW_CONFIG_KWARGS, make_flow_model, shifted_texture

from sepconv.baselines import make_flow_predictor
from sepconv.data.augment import FRAMES, augment_triplets
from sepconv.inference import Interpolator
from sepconv.models.checkpoint import load_weights, save_checkpoint, save_safetensors
from sepconv.models.flow_sepconv import FlowSepConvConfig, FlowSepConvNet
from sepconv.models.registry import architecture_of, config_from_dict, create_model
from sepconv.models.sepconv_net import SepConvConfig, SepConvNet

pytest.importorskip("cv2")
pytestmark = pytest.mark.usefixtures("one_thread")


def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0


def test_config_round_trips_with_its_architecture() -> None:
    config = FlowSepConvConfig(
        kernel_size=7, widths=(8, 16, 16), flow_preset="fast", flow_halfway="splat"
    )
    data = config.to_dict()
    assert data["architecture"] == "flow-sepconv"
    assert config_from_dict(data) == config
    assert architecture_of(config) == "flow-sepconv"
    assert config.stride == 4
    # No architecture key: the paper's network (every earlier checkpoint).
    assert config_from_dict({"kernel_size": 5}) == SepConvConfig(kernel_size=5)
    # Checkpoints from before the halfway setting existed averaged the two flows.
    # ... and refined their DIS flow as the preset does.
    del data["flow_halfway"], data["flow_refinement_iterations"]
    assert config_from_dict(data).flow_settings().halfway == "average"
    assert config_from_dict(data).flow_settings().refinement_iterations == -1
    assert isinstance(create_model(config), FlowSepConvNet)
    assert isinstance(create_model(SepConvConfig(encoder_channels=(4, 8, 8, 8, 8))), SepConvNet)
    for bad in ({"architecture": "rife"}, {"architecture": "flow-sepconv", "encoder_channels": 1}):
        with pytest.raises(ValueError):
            config_from_dict(bad)
    with pytest.raises(ValueError, match="odd"):
        FlowSepConvConfig(kernel_size=4)
    with pytest.raises(ValueError, match="normalisation"):
        FlowSepConvConfig(input_normalization=True)


@pytest.mark.parametrize(
    ("optimize", "interpolation", "halfway"),
    [(False, "linear", "average"), (True, "linear", "average"), (True, "cubic", "splat")],
)
def test_a_new_network_is_the_dis_baseline(
    fixture_pair, optimize: bool, interpolation: str, halfway: str
) -> None:
    """Step 0: kernels are centre taps, so the output is the mean of the two DIS warps."""
    first, _, last = fixture_pair
    # Default sizes, as trained; the splatted prior also without DIS's variational refinement.
    config = FlowSepConvConfig(
        warp_interpolation=interpolation,
        flow_halfway=halfway,
        flow_refinement_iterations=0 if halfway == "splat" else -1,
    )
    expected = make_flow_predictor(config.flow_settings())(first, last)
    model = FlowSepConvNet(config)
    got = Interpolator(model, device="cpu", optimize=optimize).interpolate(first, last)
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 1  # rounding of float sums
    assert (difference == 0).mean() > 0.999
    assert not np.array_equal(got, ((first.astype(int) + last) // 2).astype(np.uint8))


def test_prepare_flows_follow_flips_and_time_swaps() -> None:
    """Flow is computed on the frames the network sees, after augmentation: a mirrored or
    time-reversed crop gets the mirrored or reversed motion."""
    first, middle, last = shifted_texture(shift=4, height=64, width=64)
    batch = {
        name: _tensor(frame) for name, frame in zip(FRAMES, (first, middle, last), strict=True)
    }
    model = make_flow_model()
    inner = (0, 0, slice(8, -8), slice(8, -8))  # sample 0, horizontal flow, interior
    variants = {}
    for swap in (False, True):
        for mirror in (False, True):
            for upside_down in (False, True):
                frame = batch["last"] if swap else batch["first"]
                dims = [d for d, on in ((-1, mirror), (-2, upside_down)) if on]
                variants[(swap, mirror)] = variants.get((swap, mirror), []) + [
                    frame.flip(dims) if dims else frame
                ]
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(24):
        augmented = augment_triplets(batch, 64, generator)  # the whole 64x64 frame
        (swap, mirror), *_ = [
            key
            for key, frames in variants.items()
            if any(torch.equal(augmented["first"], frame) for frame in frames)
        ]
        seen.add((swap, mirror))
        flow = model.prepare(augmented["first"], augmented["last"])["flow"]
        # F_m0 of the original pair is -2 px in x; mirroring and reversing time negate it.
        expected = -2.0 * (-1 if swap else 1) * (-1 if mirror else 1)
        assert float(flow[inner].median()) == pytest.approx(expected, abs=0.3)
    assert len(seen) == 4


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_checkpoints_build_the_family_they_name(tmp_path: Path, suffix: str) -> None:
    model = make_flow_model(seed=1)
    path = tmp_path / f"flow{suffix}"
    if suffix == ".pt":
        save_checkpoint(path, model)
    else:
        save_safetensors(path, model, dtype=torch.float32)
    loaded = load_weights(path)
    assert isinstance(loaded.model, FlowSepConvNet)
    assert loaded.model.config == model.config
    first, second = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(loaded.model(first, second), model(first, second))


def test_tiles_share_one_whole_frame_flow(fixture_pair, monkeypatch) -> None:
    first, _, last = fixture_pair
    model = make_flow_model()
    calls: list[tuple[int, ...]] = []
    original = FlowSepConvNet.prepare

    def counting(self, one, two):
        calls.append(tuple(one.shape))
        return original(self, one, two)

    monkeypatch.setattr(FlowSepConvNet, "prepare", counting)
    whole = Interpolator(model, device="cpu").interpolate(first, last)
    assert calls == [(1, 3, 100, 140)]  # the real frame, not the padded canvas
    tiled = Interpolator(model, device="cpu", tile_size=128, tile_margin=32)
    calls.clear()
    result = tiled.interpolate(first, last)
    assert calls == [(1, 3, 100, 140)]  # once for all tiles
    np.testing.assert_array_equal(result, whole)  # constant kernels: tiles change nothing


def test_random_network_tiles_close_to_whole_frame(fixture_pair) -> None:
    first, _, last = fixture_pair
    model = make_flow_model(seed=2)
    whole = Interpolator(model, device="cpu").interpolate(first, last)
    tiled = Interpolator(model, device="cpu", tile_size=128, tile_margin=32).interpolate(
        first, last
    )
    assert np.abs(whole.astype(int) - tiled).mean() < 1.0


@pytest.mark.parametrize("precision", ["bfloat16", "float32"])
def test_fast_cpu_path_matches_the_reference(fixture_pair, precision: str) -> None:
    first, _, last = fixture_pair
    model = make_flow_model(seed=3)
    reference = Interpolator(model, device="cpu", optimize=False).interpolate(first, last)
    fast = Interpolator(model, device="cpu", optimize=True, precision=precision)
    difference = np.abs(fast.interpolate(first, last).astype(int) - reference)
    assert difference.max() <= (1 if precision == "float32" else 12)
    assert difference.mean() < (0.01 if precision == "float32" else 1.0)


def test_alpha_grey_and_ensemble(fixture_pair) -> None:
    first, _, last = fixture_pair
    model = make_flow_model(seed=4)
    rgba = [np.dstack([frame, np.full(frame.shape[:2], 200, np.uint8)]) for frame in (first, last)]
    out = Interpolator(model, device="cpu").interpolate(*rgba)
    assert out.shape == (100, 140, 4) and np.abs(out[..., 3].astype(int) - 200).max() <= 1
    grey = [frame.mean(axis=2).astype(np.uint8) for frame in (first, last)]
    assert Interpolator(model, device="cpu").interpolate(*grey).shape == (100, 140)
    single = Interpolator(model, device="cpu").interpolate(first, last)
    ensemble = Interpolator(model, device="cpu", ensemble=4).interpolate(first, last)
    assert ensemble.shape == single.shape and not np.array_equal(ensemble, single)


def test_compiled_pass_matches_eager(fixture_pair) -> None:
    first, _, last = fixture_pair
    model = make_flow_model(seed=5)
    eager = Interpolator(model, device="cpu").interpolate(first, last)
    import sepconv.inference as inference

    original = inference.COMPILE_BACKEND
    inference.COMPILE_BACKEND = "eager"
    try:
        compiled = Interpolator(model, device="cpu", compile=True).interpolate(first, last)
    finally:
        inference.COMPILE_BACKEND = original
    assert np.abs(compiled.astype(int) - eager).max() <= 1


def test_tiny_config_is_small() -> None:
    model = FlowSepConvNet(FlowSepConvConfig(**TINY_FLOW_CONFIG_KWARGS))
    assert sum(p.numel() for p in model.parameters()) < 5000
    default = FlowSepConvNet()
    assert sum(p.numel() for p in default.parameters()) < 1_000_000


def test_eval_command_scores_the_flow_family_beside_the_dis_baseline(
    tmp_path: Path, fixture_pair, capsys
) -> None:
    """`sepconv eval` with flow-guided weights and the DIS baseline in one run: a new network
    scores what the baseline scores."""
    import json

    from PIL import Image

    from sepconv.cli import main

    first, middle, last = fixture_pair
    folder = tmp_path / "triplets" / "clip_3"
    folder.mkdir(parents=True)
    for name, frame in zip(("im1", "im2", "im3"), (first, middle, last), strict=True):
        Image.fromarray(frame).save(folder / f"{name}.png")
    weights = tmp_path / "flow.safetensors"
    save_safetensors(weights, make_flow_model())
    report = tmp_path / "eval.json"
    args = ["eval", "triplets", str(tmp_path / "triplets"), "--weights", str(weights)]
    assert main([*args, "--method", "sepconv", "flow", "--json", str(report)]) == 0
    results = json.loads(report.read_text())
    scores = {method: entry["mean"]["psnr"] for method, entry in results["methods"].items()}
    assert set(scores) == {"sepconv", "flow"}
    assert scores["sepconv"] == pytest.approx(scores["flow"], abs=0.05)
    assert "flow" in capsys.readouterr().out


def test_eval_prior_method_is_the_models_step_zero(tmp_path: Path, fixture_pair) -> None:
    """`--method prior` scores the weights' own motion prior: a new network equals it."""
    import json

    from PIL import Image

    from sepconv.cli import main

    folder = tmp_path / "triplets" / "clip_1"
    folder.mkdir(parents=True)
    for name, frame in zip(("im1", "im2", "im3"), fixture_pair, strict=True):
        Image.fromarray(frame).save(folder / f"{name}.png")
    weights = tmp_path / "cubic.safetensors"
    config = FlowSepConvConfig(**TINY_FLOW_CONFIG_KWARGS, warp_interpolation="cubic")
    save_safetensors(weights, FlowSepConvNet(config))
    report = tmp_path / "eval.json"
    args = ["eval", "triplets", str(tmp_path / "triplets"), "--weights", str(weights)]
    assert main([*args, "--method", "sepconv", "prior", "--json", str(report)]) == 0
    methods = json.loads(report.read_text())["methods"]
    prior, model = methods["prior"]["mean"]["psnr"], methods["sepconv"]["mean"]["psnr"]
    assert model == pytest.approx(prior, abs=0.05)
    assert "cubic warps" in methods["prior"]["description"]
