"""Trainer: config files, schedule, exact resume, checkpoints, NaN handling, validation, DDP."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sepconv.engine.config import TrainConfig, load_train_config
from sepconv.engine.train import (
    CHECKPOINT_NAME,
    EXPORT_NAME,
    LOG_NAME,
    Trainer,
    TranslationBatches,
    learning_rate,
)
from sepconv.errors import SepconvError
from sepconv.models.checkpoint import load_weights

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {"kernel_size": 5, "encoder_channels": [4, 8, 8, 8, 8]}
TINY_FLOW_MODEL = {"architecture": "flow-sepconv", "kernel_size": 5, "widths": [4, 8, 8]}


pytestmark = pytest.mark.usefixtures("one_thread")


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    settings = {
        "model": dict(TINY_MODEL),
        "data": {"kind": "translation", "max_shift": 2},
        "batch_size": 4,
        "crop_size": 32,
        "total_steps": 8,
        "lr": 3e-3,
        "checkpoint_every_steps": 0,
        "checkpoint_every_seconds": 0,
        "log_every_steps": 1,
        "output_dir": str(tmp_path / "run"),
    }
    settings.update(overrides)
    return TrainConfig(**settings)


def test_config_files(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        'loss = "l1+0.1*lap"\nbatch_size = 8\n[model]\nkernel_size = 5\n'
        "encoder_channels = [4, 8, 8, 8, 8]\nkernel_normalization = true\n"
    )
    config = load_train_config(toml)
    assert config.batch_size == 8 and config.model_config().kernel_normalization
    as_json = tmp_path / "c.json"
    as_json.write_text(json.dumps(config.to_dict()))
    assert load_train_config(as_json) == config
    (tmp_path / "bad.json").write_text('{"batch_sise": 3}')
    with pytest.raises(SepconvError, match="batch_sise"):
        load_train_config(tmp_path / "bad.json")
    with pytest.raises(SepconvError, match="optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(SepconvError, match="does not exist"):
        load_train_config(tmp_path / "none.toml")
    for path in sorted((REPO / "configs").glob("*.toml")):
        assert load_train_config(path).model_config(), path.name


def test_configs_of_the_bundled_model_share_its_network() -> None:
    """The stages that made the bundled file, and the runs that continue it (init_weights,
    time-boxed remote GPU runs), must declare its exact network, else the trainer refuses the
    weights."""
    from sepconv.weights import get_spec

    bundled = get_spec("sepconv-l1")
    names = ("cpu-l1", "cpu-l1-continue", "remote-gpu-l1", "cpu-videos-finetune")
    for name in names:
        config = load_train_config(REPO / "configs" / f"{name}.toml")
        assert config.model_config() == bundled.config, name
    # The flow-guided model: stage 4 has its exact network and prior; the earlier stages the
    # same network with other prior fields, which init_weights may change: stage 3 with DIS's
    # variational refinement, stage 2 also with the averaged halfway flow, stage 1 also with
    # the preset's own finest scale.
    flow = get_spec("sepconv-flow").config
    assert load_train_config(REPO / "configs" / "cpu-flow-fast.toml").model_config() == flow
    # The learned-motion model: the runs that continue it declare its exact network.
    motion = get_spec("sepconv-motion").config
    for name in ("cpu-motion", "remote-gpu-motion"):
        assert load_train_config(REPO / "configs" / f"{name}.toml").model_config() == motion
    stage3 = load_train_config(REPO / "configs" / "cpu-flow-splat.toml").model_config()
    assert dataclasses.replace(stage3, flow_refinement_iterations=0) == flow
    stage2 = load_train_config(REPO / "configs" / "cpu-flow-fine.toml").model_config()
    assert dataclasses.replace(stage2, flow_halfway="splat", flow_refinement_iterations=0) == flow
    stage1 = load_train_config(REPO / "configs" / "cpu-flow.toml").model_config()
    assert (
        dataclasses.replace(
            stage1, flow_finest_scale=0, flow_halfway="splat", flow_refinement_iterations=0
        )
        == flow
    )


def test_learning_rate_schedule() -> None:
    config = TrainConfig(lr=1.0, schedule="cosine", warmup_steps=10, total_steps=110)
    assert learning_rate(config, 0) == pytest.approx(0.1)
    assert learning_rate(config, 9) == pytest.approx(1.0)
    assert learning_rate(config, 60) == pytest.approx(0.5)
    assert learning_rate(config, 110) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(TrainConfig(lr=0.5), 1000) == 0.5


def test_translation_batches_are_deterministic_per_step() -> None:
    a = TranslationBatches(2, 32, seed=1).batch(5)
    b = next(iter(TranslationBatches(2, 32, seed=1, start_step=5)))
    for name in ("first", "middle", "last"):
        assert a[name].shape == (2, 3, 32, 32)
        assert torch.equal(a[name], b[name])
    assert not torch.equal(a["first"], TranslationBatches(2, 32, seed=2).batch(5)["first"])


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {f"net.{k}": v for k, v in trainer.net.state_dict().items()}
    state.update({f"ema.{k}": v for k, v in trainer.ema.state_dict().items()})
    for index, values in trainer.optimizer.state_dict()["state"].items():
        state.update({f"opt.{index}.{k}": v for k, v in values.items()})
    return state


RESUME_SETTINGS = [
    {
        "schedule": "cosine",
        "warmup_steps": 2,
        "ema_decay": 0.9,
        "grad_clip": 0.5,
        "optimizer": "adamw",
        "weight_decay": 0.01,
    },
    {
        "optimizer": "adamax",
        "ema_decay": 0.5,
        "bf16": True,
        "channels_last": True,
        "loss": "l1+0.1*lap+0.1*census",
        "model": {**TINY_MODEL, "input_normalization": True, "kernel_normalization": True},
    },
    {
        "model": dict(TINY_FLOW_MODEL),
        "optimizer": "adamw",
        "ema_decay": 0.9,
        "bf16": True,
        "crop_size": 64,
    },
]


@pytest.mark.parametrize(
    "settings", RESUME_SETTINGS, ids=["adamw-cosine-clip", "bf16-plus", "flow-sepconv"]
)
def test_resume_is_exact(tmp_path: Path, settings: dict) -> None:
    """8 steps in one run == 4 steps, save, new process state, resume, 4 more (bitwise)."""
    whole = Trainer(tiny_config(tmp_path / "a", **settings), log_stream=None)
    whole.run(export=False)
    first = Trainer(tiny_config(tmp_path / "b", **settings), log_stream=None)
    first.run(steps=4, export=False)
    assert first.step == 4
    torch.manual_seed(1234)  # disturb the global RNG: resume must restore it
    second = Trainer(tiny_config(tmp_path / "b", **settings), log_stream=None)
    assert second.resume("auto")
    assert second.step == 4 and second.samples == 16
    assert torch.equal(torch.get_rng_state(), first_rng(tmp_path / "b"))
    second.run(export=False)
    assert second.step == 8
    expected, got = _state(whole), _state(second)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # The resumed run continued the schedule (the lr of its last step matches).
    rows = read_log(tmp_path / "b" / "run" / LOG_NAME)
    assert [int(row["step"]) for row in rows] == list(range(1, 9))
    assert float(rows[-1]["lr"]) == pytest.approx(learning_rate(whole.config, 7), rel=1e-5)


def first_rng(run_dir: Path) -> torch.Tensor:
    # the RNG state saved with the checkpoint (python and numpy are restored alongside)
    state = torch.load(run_dir / "run" / CHECKPOINT_NAME, weights_only=True)
    return state["rng"]["torch"]


def test_checkpoint_contents_and_export(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(tmp_path, ema_decay=0.5, total_steps=3), log_stream=None)
    trainer.run()
    path = tmp_path / "run" / CHECKPOINT_NAME
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("config", "model", "optimizer", "ema", "rng", "train_config", "data", "metrics"):
        assert key in state, key
    assert state["step"] == 3 and state["samples"] == 12
    assert state["torch_version"] == str(torch.__version__)
    assert state["code_version"].startswith("0.")
    assert set(state["rng"]) >= {"torch", "numpy", "python"}
    assert TrainConfig.from_dict(state["train_config"]) == trainer.config
    assert math.isfinite(state["metrics"]["loss"])
    assert load_weights(path).model.config == trainer.net.config
    exported = load_weights(tmp_path / "run" / EXPORT_NAME)
    assert exported.metadata["step"] == "3"
    for name, value in trainer.ema.state_dict().items():
        torch.testing.assert_close(
            exported.model.state_dict()[name], value.half().float(), rtol=0, atol=0
        )
    # Fine-tuning starts from exported weights (fresh optimizer); the config must match.
    tuned = Trainer(
        tiny_config(tmp_path / "t", init_weights=str(tmp_path / "run" / EXPORT_NAME)),
        log_stream=None,
    )
    for name, value in tuned.net.state_dict().items():
        assert torch.equal(value, exported.model.state_dict()[name])
    assert tuned.step == 0 and not tuned.optimizer.state_dict()["state"]
    other = {**TINY_MODEL, "kernel_size": 3}
    with pytest.raises(SepconvError, match="model config"):
        Trainer(
            tiny_config(
                tmp_path / "u", model=other, init_weights=str(tmp_path / "run" / EXPORT_NAME)
            )
        )
    with pytest.raises(SepconvError, match="no validation triplets"):
        Trainer(tiny_config(tmp_path / "v", validate_every_steps=5), log_stream=None)


def test_non_finite_steps_are_skipped(tmp_path: Path) -> None:
    source = TranslationBatches(4, 32)

    def batches():
        for step in range(6):
            batch = source.batch(step)
            if step == 2:
                batch["middle"] = batch["middle"].clone()
                batch["middle"][0, 0, 0, 0] = math.nan
            yield batch

    trainer = Trainer(tiny_config(tmp_path, total_steps=6), log_stream=None)
    trainer.run(batches(), steps=2, export=False)
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    iterator = batches()
    for _ in range(2):
        next(iterator)
    result = trainer.train_step(next(iterator))
    assert result["skipped"] and math.isnan(result["loss"])
    for key, value in trainer.net.state_dict().items():
        assert torch.equal(value, before[key])
    rest = trainer.run(iterator, export=False)
    assert rest["step"] == 6 and math.isfinite(rest["loss"])

    def poisoned():
        while True:
            batch = source.batch(0)
            yield {**batch, "middle": batch["middle"] * math.inf}

    stopper = Trainer(tiny_config(tmp_path / "p", total_steps=10, max_bad_steps=3), log_stream=None)
    with pytest.raises(SepconvError, match="3 consecutive"):
        stopper.run(poisoned())
    events = [row["event"] for row in read_log(tmp_path / "p" / "run" / LOG_NAME)]
    assert events == ["skipped"] * 3


def test_training_reduces_the_loss_on_translations(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, total_steps=40, log_every_steps=10)
    trainer = Trainer(config, log_stream=None)
    source = TranslationBatches(4, 32, seed=3)
    initial = _held_out_loss(trainer, source)
    trainer.run(export=False)
    final = _held_out_loss(trainer, source)
    assert final < 0.5 * initial


def _flow_error_batches(seed: int):
    """Static frames whose truth is shifted one pixel right: the flow (zero) is off by a pixel,
    the kind of error the flow-guided kernels are there to fix."""
    source = TranslationBatches(4, 64, seed=seed, max_shift=1)
    for step in range(10_000):
        texture = source.batch(step)["middle"]
        yield {"first": texture, "middle": torch.roll(texture, 1, dims=-1), "last": texture}


def test_a_tiny_flow_guided_model_learns_to_fix_its_flow(tmp_path: Path) -> None:
    """Starts at the DIS baseline (flow on each crop, in the training step) and training
    lowers the loss well below it."""
    pytest.importorskip("cv2")
    config = tiny_config(
        tmp_path,
        model=dict(TINY_FLOW_MODEL),
        crop_size=64,
        optimizer="adamw",
        lr=1e-2,
        total_steps=40,
    )
    trainer = Trainer(config, log_stream=None)
    held_out = next(_flow_error_batches(seed=99))

    def loss() -> float:
        with torch.no_grad():
            prediction = trainer.net(held_out["first"], held_out["last"])
        return float((prediction - held_out["middle"]).abs().mean())

    initial = loss()
    trainer.run(_flow_error_batches(seed=0), export=False)
    assert loss() < 0.5 * initial


def _held_out_loss(trainer: Trainer, source: TranslationBatches) -> float:
    batch = source.batch(10_000)
    with torch.no_grad():
        prediction = trainer.net(batch["first"], batch["last"])
    return float((prediction - batch["middle"]).abs().mean())


def test_bf16_channels_last_and_plus_options_run(tmp_path: Path) -> None:
    model = {**TINY_MODEL, "input_normalization": True, "kernel_normalization": True}
    config = tiny_config(
        tmp_path, model=model, bf16=True, channels_last=True, total_steps=2, loss="l1+0.1*census"
    )
    result = Trainer(config, log_stream=None).run(export=False)
    assert result["step"] == 2 and math.isfinite(result["loss"])


def test_validation_uses_evaluate(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "val" / "item"
    folder.mkdir(parents=True)
    for name in ("im1", "im2", "im3"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    config = tiny_config(
        tmp_path, total_steps=4, validate_every_steps=2, validation=str(tmp_path / "val")
    )
    trainer = Trainer(config, log_stream=None)
    trainer.run(export=False)
    assert trainer.net.training
    rows = read_log(tmp_path / "run" / LOG_NAME)
    psnrs = [float(row["val_psnr"]) for row in rows if row["event"] == "validated"]
    assert len(psnrs) == 2 and all(math.isfinite(value) for value in psnrs)
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert state["metrics"]["val_psnr"] == pytest.approx(psnrs[-1], abs=1e-3)


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from sepconv.engine.config import TrainConfig
    from sepconv.engine.train import Trainer

    torch.set_num_threads(1)
    config = TrainConfig(**json.loads(sys.argv[1]))
    trainer = Trainer(config, device="cpu", log_stream=None)
    assert trainer.dist.world_size == 2 and trainer.local_batch_size == 2
    batch = next(iter(trainer.batches()))
    rank = trainer.dist.rank

    def batches():
        # Rank 1's second batch is poisoned: every rank must skip that step together.
        for step, item in enumerate(trainer.batches()):
            if step == 1 and rank == 1:
                item = {**item, "middle": item["middle"] * float("nan")}
            yield item

    result = trainer.run(batches())
    torch.save(
        {"state": trainer.net.state_dict(), "first": batch["first"], "loss": result["loss"]},
        os.path.join(sys.argv[2], f"rank{rank}.pt"),
    )
    trainer.close()
    """
)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    script = tmp_path / "ddp_worker.py"
    script.write_text(DDP_SCRIPT)
    config = tiny_config(tmp_path, total_steps=3, log_every_steps=1).to_dict()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        json.dumps(config),
        str(tmp_path),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
    assert not torch.equal(rank0["first"], rank1["first"])  # each rank draws its own data
    assert math.isfinite(rank0["loss"]) and rank0["loss"] == rank1["loss"]  # all-reduced
    initial = Trainer(tiny_config(tmp_path / "x"), log_stream=None).net.state_dict()
    assert any(not torch.equal(initial[k], v) for k, v in rank0["state"].items())
    # Equal to one process training on both ranks' batches at once (gradients are averaged).
    sources = [TranslationBatches(2, 32, seed=rank) for rank in (0, 1)]

    def joined():
        for step in range(3):
            halves = [source.batch(step) for source in sources]
            batch = {k: torch.cat([halves[0][k], halves[1][k]]) for k in halves[0]}
            if step == 1:
                batch["middle"][2:] = math.nan
            yield batch

    single = Trainer(tiny_config(tmp_path / "single", total_steps=3), log_stream=None)
    single.run(joined(), export=False)
    for key, value in single.net.state_dict().items():
        torch.testing.assert_close(rank0["state"][key], value, rtol=1e-5, atol=1e-6)
    # Only rank 0 wrote the log and checkpoint.
    rows = read_log(tmp_path / "run" / LOG_NAME)
    assert [int(row["step"]) for row in rows] == [1, 2, 3]
    assert [row["event"] for row in rows] == ["", "skipped", ""]
    assert torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)["world_size"] == 2


def test_train_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from sepconv.commands_train import add_train_command

    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers(dest="command"))
    config = tmp_path / "c.json"
    config.write_text(json.dumps(tiny_config(tmp_path, total_steps=5, log_every_steps=2).to_dict()))

    def train(*extra: str) -> int:
        args = parser.parse_args(["train", "--config", str(config), "--device", "cpu", *extra])
        return args.handler(args)

    assert train("--steps", "3") == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    with pytest.raises(SepconvError, match="--resume auto"):
        train()
    assert train("--resume", "auto") == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["step"] == 5
    assert "step 3" in captured.err and "samples/s" in captured.err
    assert load_weights(tmp_path / "run" / EXPORT_NAME).metadata["step"] == "5"
    with pytest.raises(SepconvError, match="does not exist"):
        train("--resume", str(tmp_path / "missing.pt"))


def test_time_limit_stops_cleanly(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(tmp_path, total_steps=1000), log_stream=None)
    result = trainer.run(max_seconds=0.0, export=False)
    assert result["stopped"] == "time limit" and result["step"] == 1
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 1


def test_synthetic_data_kind(tmp_path: Path) -> None:
    pytest.importorskip("sepconv.data.synthetic")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        pixels = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"p{index}.png")
    data = {"kind": "synthetic", "photos": str(photos), "options": {"max_translation": 2.0}}
    trainer = Trainer(tiny_config(tmp_path, data=data, total_steps=2), log_stream=None)
    batch = next(iter(trainer.batches()))
    assert batch["middle"].shape == (4, 3, 32, 32)
    again = next(iter(trainer.batches()))
    assert torch.equal(batch["first"], again["first"])  # batch s is a function of (seed, s)
    assert math.isfinite(trainer.run(export=False)["loss"])
    with pytest.raises(SepconvError, match="data kind"):
        Trainer(tiny_config(tmp_path, data={"kind": "nope"}), log_stream=None).batches()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_step_and_saves(tmp_path: Path, signum: int) -> None:
    trainer = Trainer(tiny_config(tmp_path, total_steps=50), log_stream=None)

    def signalling_batches():
        for index, batch in enumerate(trainer.batches()):
            if index == 3:
                os.kill(os.getpid(), signum)  # arrives during step 4
            yield batch

    handler_before = signal.getsignal(signum)
    result = trainer.run(signalling_batches())
    assert result["stopped"] == "interrupted"
    assert result["step"] == 4
    assert torch.load(trainer.checkpoint_path(), weights_only=True)["step"] == 4
    assert signal.getsignal(signum) is handler_before  # handlers are restored
    resumed = Trainer(tiny_config(tmp_path, total_steps=50), log_stream=None)
    assert resumed.resume("auto") and resumed.step == 4


def test_resume_is_exact_with_a_mixture(tmp_path: Path) -> None:
    """Step-indexed mixed batches (synthetic photos + a triplet folder): 4 steps in one run
    == 2 steps, save, resume, 2 more (bitwise)."""
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(
            photos / f"p{index}.png"
        )
    for index in range(3):
        folder = tmp_path / "triplets" / f"t{index}"
        folder.mkdir(parents=True)
        for name in ("im1", "im2", "im3"):
            pixels = rng.integers(0, 256, (60, 72, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}.png")
    data = {
        "kind": "mixture",
        "sources": [
            {"kind": "synthetic", "weight": 1, "photos": str(photos)},
            {"kind": "triplets", "weight": 1, "path": str(tmp_path / "triplets")},
        ],
    }
    settings = {"data": data, "total_steps": 4, "ema_decay": 0.5}
    whole = Trainer(tiny_config(tmp_path / "a", **settings), log_stream=None)
    whole.run(export=False)
    first = Trainer(tiny_config(tmp_path / "b", **settings), log_stream=None)
    first.run(steps=2, export=False)
    torch.manual_seed(99)
    second = Trainer(tiny_config(tmp_path / "b", **settings), log_stream=None)
    assert second.resume("auto") and second.step == 2
    second.run(export=False)
    assert second.step == 4
    expected, got = _state(whole), _state(second)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_average_initialisation_starts_at_the_frame_average(tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(tmp_path, model_init="average"), log_stream=None)
    first, second = torch.rand(2, 1, 3, 32, 32)
    with torch.no_grad():
        middle = trainer.net(first, second)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert (middle - (first + second) / 2)[inner].abs().max() < 0.02
    with pytest.raises(SepconvError, match="model_init"):
        tiny_config(tmp_path, model_init="zeros")


def test_a_flow_guided_run_may_continue_weights_of_another_motion_prior(tmp_path: Path) -> None:
    """init_weights across flow settings (same network shapes) is allowed; other config
    differences are refused."""
    pytest.importorskip("cv2")
    from sepconv.models.checkpoint import save_safetensors
    from sepconv.models.flow_sepconv import FlowSepConvConfig, FlowSepConvNet

    source = FlowSepConvNet(FlowSepConvConfig(kernel_size=5, widths=(4, 8, 8)))
    with torch.no_grad():
        source.head[0].weight.normal_()
    weights = tmp_path / "stage1.safetensors"
    save_safetensors(weights, source, dtype=torch.float32)
    finer = {**TINY_FLOW_MODEL, "flow_finest_scale": 0, "warp_interpolation": "cubic"}
    trainer = Trainer(
        tiny_config(tmp_path, model=finer, init_weights=str(weights)), log_stream=None
    )
    assert trainer.net.config.flow_finest_scale == 0
    torch.testing.assert_close(trainer.net.head[0].weight, source.head[0].weight)
    wider = {**TINY_FLOW_MODEL, "kernel_size": 7}
    with pytest.raises(SepconvError, match="init_weights"):
        Trainer(tiny_config(tmp_path, model=wider, init_weights=str(weights)), log_stream=None)


def test_a_motion_run_may_add_the_classic_candidate_to_weights_without_it(tmp_path: Path) -> None:
    """ADDED_FIELDS: continuing weights trained without the candidate selector adds it at its
    initialisation and keeps every loaded weight; weights with it do not load without it."""
    pytest.importorskip("cv2")
    from conftest import TINY_MOTION_CONFIG_KWARGS

    from sepconv.models.checkpoint import save_safetensors
    from sepconv.models.motion_sepconv import MotionSepConvConfig, MotionSepConvNet

    tiny = {"architecture": "motion-sepconv", **TINY_MOTION_CONFIG_KWARGS}
    source = MotionSepConvNet(MotionSepConvConfig(**TINY_MOTION_CONFIG_KWARGS))
    with torch.no_grad():
        source.motion.estimators[0].out.weight.normal_()
    weights = tmp_path / "stage1.safetensors"
    save_safetensors(weights, source, dtype=torch.float32)
    grown = {**tiny, "classic_candidate": True, "selector_width": 8}
    trainer = Trainer(
        tiny_config(tmp_path, model=grown, init_weights=str(weights)), log_stream=None
    )
    net = trainer.net
    assert net.motion.selector is not None
    torch.testing.assert_close(
        net.motion.estimators[0].out.weight, source.motion.estimators[0].out.weight
    )
    assert float(net.motion.selector.out.bias[0].detach()) < 0  # the selector's own initialisation
    with_selector = tmp_path / "grown.safetensors"
    save_safetensors(with_selector, net, dtype=torch.float32)
    with pytest.raises(SepconvError, match="does not fit"):
        Trainer(tiny_config(tmp_path, model=tiny, init_weights=str(with_selector)), log_stream=None)
