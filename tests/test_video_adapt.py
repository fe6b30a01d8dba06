"""`sepconv video --adapt` and `sepconv frames --adapt` end to end, with a tiny flow-guided
model on a tiny panning clip (commands run in process through sepconv.cli.main)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_clip, make_flow_model
from PIL import Image

from sepconv.cli import main

WIDTH, HEIGHT = 96, 80


def run(*argv: object) -> int:
    return main([str(item) for item in argv])


def panning_frames(count: int = 20, speed: int = 2) -> list[np.ndarray]:
    import cv2

    noise = np.random.default_rng(0).random((HEIGHT, WIDTH + speed * count, 3)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 2.0)
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255.0
    texture = np.round(texture).astype(np.uint8)
    return [
        np.ascontiguousarray(texture[:, speed * (count - k) : speed * (count - k) + WIDTH])
        for k in range(count)
    ]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def flow_weights(tmp_path: Path) -> Path:
    from sepconv.models.checkpoint import save_safetensors

    path = tmp_path / "flow.safetensors"
    save_safetensors(path, make_flow_model(seed=1))
    return path


def test_video_adapt_writes_the_video_and_the_adapted_weights(
    tmp_path: Path, flow_weights: Path, capsys
) -> None:
    from safetensors import safe_open

    source = make_clip(tmp_path / "in.mov", panning_frames(), audio=False)
    output, adapted = tmp_path / "out.mov", tmp_path / "adapted.safetensors"
    weights_digest = sha256(flow_weights)
    code = run(
        "video", source, "-o", output, "--codec", "png", "--weights", flow_weights,
        "--adapt", "30", "--adapt-steps", "2", "--save-adapted", adapted,
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "adaptation " in err and "held-out PSNR" in err
    assert output.is_file() and sha256(flow_weights) == weights_digest  # weights untouched
    assert not any(p.name.endswith(".sepconv-adapt") for p in tmp_path.iterdir())
    with safe_open(str(adapted), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["adapted_to_sha256"] == sha256(source)
    assert '"steps": 2' in metadata["adaptation"]
    # The adapted weights load like any weights file.
    again = tmp_path / "again.mov"
    assert run("video", source, "-o", again, "--codec", "png", "-q", "--weights", adapted) == 0


def test_frames_adapt(tmp_path: Path, flow_weights: Path, capsys) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(panning_frames(12)):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    out = tmp_path / "out"
    code = run(
        "frames", folder, "-o", out, "--weights", flow_weights, "--adapt", "--adapt-steps", "2"
    )
    assert code == 0
    assert len(list(out.glob("*.png"))) == 23
    assert "adaptation " in capsys.readouterr().err


def test_save_adapted_never_overwrites_the_weights_or_the_input(
    tmp_path: Path, flow_weights: Path, capsys
) -> None:
    source = make_clip(tmp_path / "in.mov", panning_frames(8), audio=False)
    digest = sha256(flow_weights)
    code = run(
        "video", source, "-o", tmp_path / "out.mov", "--weights", flow_weights,
        "--adapt", "--save-adapted", flow_weights,
    )  # fmt: skip
    assert code == 1 and sha256(flow_weights) == digest
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sepconv: error: ")
    code = run("video", source, "-o", tmp_path / "o.mov", "--save-adapted", tmp_path / "a.st")
    assert code == 2  # a usage error
    assert "need --adapt" in capsys.readouterr().err


def test_an_interrupted_conversion_resumes_with_the_finished_adaptation(
    tmp_path: Path, flow_weights: Path, monkeypatch, capsys
) -> None:
    import sepconv.video
    from sepconv.engine import adapt as adapt_module

    source = make_clip(tmp_path / "in.mov", panning_frames(), audio=False)
    output = tmp_path / "out.mov"
    command = (
        "video", source, "-o", output, "--codec", "png", "--weights", flow_weights,
        "--adapt", "30", "--adapt-steps", "2",
    )  # fmt: skip
    convert = sepconv.video.convert_video

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sepconv.video, "convert_video", interrupted)
    assert run(*command) == 130
    work = tmp_path / ".out.mov.sepconv-adapt"
    assert (work / "result.json").is_file() and not output.exists()
    first_line = next(line for line in capsys.readouterr().err.splitlines() if "adaptation" in line)

    def no_training(*args, **kwargs):
        raise AssertionError("the finished adaptation is reused")

    monkeypatch.setattr(sepconv.video, "convert_video", convert)
    monkeypatch.setattr(adapt_module, "_progress", no_training)
    assert run(*command, "--resume") == 0
    assert output.is_file() and not work.exists()
    second_line = next(
        line for line in capsys.readouterr().err.splitlines() if "adaptation" in line
    )
    assert second_line.split(";")[0] == first_line.split(";")[0]  # same verdict and PSNRs


def test_the_adapt_benchmark_scores_plain_and_aligned(tmp_path: Path, flow_weights: Path) -> None:
    import json
    import subprocess
    import sys

    from conftest import REPO_ROOT

    source = make_clip(tmp_path / "pan.mov", panning_frames(24), audio=False)

    def benchmark(*options: str) -> dict:
        report = tmp_path / "adapt.json"
        completed = subprocess.run(
            [
                sys.executable, str(REPO_ROOT / "benchmarks" / "adapt.py"), str(source),
                "--weights", str(flow_weights), "--seconds", "20", "--steps", "2",
                "--max-scored", "3", "--precision", "float32", "--json", str(report), *options,
            ],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        assert ("aligned: mean gain" in completed.stdout) == ("--align" in options)
        (row,) = json.loads(report.read_text())["rows"]
        return row

    row = benchmark("--align")
    assert row["scored"] == 3
    assert row["gain_aligned"] == pytest.approx(
        row["psnr_after_aligned"] - row["psnr_before_aligned"]
    )
    # The oracle adapts on every frame (the scored ones among them), scored on the same frames.
    oracle = benchmark("--oracle")
    assert oracle["scored"] == 3
    assert oracle["psnr_before"] == pytest.approx(row["psnr_before"])
    assert oracle["train_triplets"] > row["train_triplets"]


def test_the_adapt_benchmark_adapts_on_even_frames_and_the_oracle_on_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "adapt_benchmark", REPO_ROOT / "benchmarks" / "adapt.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    source = make_clip(tmp_path / "pan.mov", panning_frames(12), audio=False)
    fair, items = bench.decode_halves(source, max_scored=3)
    oracle, oracle_items = bench.decode_halves(source, max_scored=3, every_frame=True)
    assert (len(fair.frames), len(oracle.frames)) == (6, 12)
    assert [item.name for item in items] == [item.name for item in oracle_items]
    for item in items:
        scored = int(item.name.rsplit("/", 1)[1])
        assert scored % 2 == 1
        middle = torch.from_numpy(item.middle).permute(2, 0, 1)
        # Never among the frames adapted on, but for the oracle, which has it at its index.
        assert not any(torch.equal(middle, frame) for frame in fair.frames)
        assert torch.equal(oracle.frames[scored], middle)
