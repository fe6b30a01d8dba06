"""The command line as a user runs it: subprocesses, exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from authors_transcription import AuthorsNetwork, authors_estimate, plausible_random_state_dict
from conftest import FIXTURES, REPO_ROOT
from PIL import Image


def run_cli(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEPCONV_WEIGHTS_DIR": str(cwd or Path.cwd()), "PYTHONWARNINGS": "ignore"}
    env.pop("SEPCONV_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sepconv", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0], lines[0]


@pytest.fixture()
def frames(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    shutil.copy(FIXTURES / "rubberwhale_frame10.png", first)
    shutil.copy(FIXTURES / "rubberwhale_frame11.png", second)
    return first, second


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("sepconv ")
    for command in ([], ["interpolate"], ["eval"], ["weights"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout


def test_usage_errors_exit_2():
    assert run_cli().returncode == 2
    assert run_cli("interpolate", "a.png").returncode == 2
    assert run_cli("eval", "nosuchset", "dir").returncode == 2


def test_the_readme_example_pair_makes_a_middle_frame(tmp_path):
    """The quick start's command, as written, with the default bundled model: a real pair
    (examples/README.md) gives a 640x480 frame that is neither input."""
    output = tmp_path / "middle.png"
    result = run_cli(
        "interpolate", "examples/box_first.png", "examples/box_second.png", "-o", output,
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, middle, second = (
        np.asarray(Image.open(path)).astype(int)
        for path in (
            REPO_ROOT / "examples/box_first.png",
            output,
            REPO_ROOT / "examples/box_second.png",
        )
    )
    assert middle.shape == first.shape == (480, 640, 3)
    assert np.abs(first - second).mean() > 5  # visible motion
    assert np.abs(middle - first).mean() > 1 and np.abs(middle - second).mean() > 1


def test_cli_and_video_commands_share_model_options_without_an_import_cycle():
    """commands_video imports the shared options from sepconv.model_options, not the CLI."""
    check = (
        "import sys; import sepconv.commands_video; "
        "assert 'sepconv.cli' not in sys.modules, 'commands_video imported the CLI'; "
        "import sepconv.cli as cli, sepconv.model_options as options; "
        "assert cli.add_model_options is options.add_model_options; "
        "assert cli.build_interpolator is options.build_interpolator; "
        "assert 'torch' not in sys.modules, 'torch imported at module level'"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_interpolate_reproduces_the_authors_forward_pass(tmp_path, frames, authors_checkpoint):
    output = tmp_path / "out" / "middle.png"
    result = run_cli("interpolate", *frames, "-o", output, "--weights", authors_checkpoint)
    assert result.returncode == 0, result.stderr
    ours = np.asarray(Image.open(output))
    network = AuthorsNetwork()
    network.load_state_dict(plausible_random_state_dict(seed=0))
    first, second = (np.asarray(Image.open(path)) for path in frames)
    expected = authors_estimate(network.eval(), first, second, "improved")
    assert ours.shape == expected.shape
    assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1


def test_without_weights_the_bundled_model_runs_and_beats_averaging(tmp_path, frames):
    from sepconv.metrics import psnr

    output = tmp_path / "middle.png"
    result = run_cli("interpolate", *frames, "-o", output)
    assert result.returncode == 0, result.stderr
    middle = np.asarray(Image.open(output).convert("RGB"))
    first, second = (np.asarray(Image.open(path).convert("RGB")) for path in frames)
    truth = np.asarray(Image.open(FIXTURES / "rubberwhale_frame10i11.png").convert("RGB"))
    average = np.rint((first.astype(float) + second.astype(float)) / 2).astype(np.uint8)
    assert middle.shape == truth.shape
    assert psnr(middle, truth) > psnr(average, truth) + 0.5


@pytest.fixture(scope="module")
def blend_weights(tmp_path_factory) -> Path:
    from conftest import make_blend_model

    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("blend") / "blend.pt"
    save_checkpoint(path, make_blend_model())
    return path


def test_existing_output_needs_force_and_input_is_never_overwritten(
    tmp_path, frames, blend_weights
):
    first, second = frames
    original = first.read_bytes()
    result = run_cli(
        "interpolate", first, second, "-o", first, "--weights", blend_weights, "--force"
    )
    assert_clean_failure(result, 1, "is the same file as input")
    assert first.read_bytes() == original
    output = tmp_path / "middle.png"
    output.write_bytes(b"keep me")
    result = run_cli("interpolate", first, second, "-o", output, "--weights", blend_weights)
    assert_clean_failure(result, 1, "--force")
    assert output.read_bytes() == b"keep me"
    result = run_cli(
        "interpolate", first, second, "-o", output, "--weights", blend_weights, "--force"
    )
    assert result.returncode == 0 and Image.open(output).size == (140, 100)


def test_grayscale_16_bit_and_alpha_keep_their_kind(tmp_path, blend_weights):
    rng = np.random.default_rng(0)
    gray = [rng.integers(0, 65536, (30, 41), dtype=np.uint16) for _ in range(2)]
    for index, frame in enumerate(gray):
        Image.fromarray(frame).save(tmp_path / f"g{index}.png")
    result = run_cli(
        "interpolate", tmp_path / "g0.png", tmp_path / "g1.png", "-o", tmp_path / "g.png",
        "--weights", blend_weights,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    middle = np.asarray(Image.open(tmp_path / "g.png"))
    assert middle.shape == (30, 41) and middle.dtype == np.uint16
    expected = (gray[0].astype(float) + gray[1]) / 2
    assert np.abs(middle - expected).max() <= 1.5

    rgba = [rng.integers(0, 256, (17, 23, 4), dtype=np.uint8) for _ in range(2)]
    for index, frame in enumerate(rgba):
        Image.fromarray(frame, "RGBA").save(tmp_path / f"a{index}.png")
    result = run_cli(
        "interpolate", tmp_path / "a0.png", tmp_path / "a1.png", "-o", tmp_path / "a.png",
        "--weights", blend_weights,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "a.png").mode == "RGBA"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("text", "first.png"),
        ("empty", "first.png"),
        ("truncated", "first.png"),
        ("size", "differ in size"),
    ],
)
def test_bad_images_fail_cleanly(tmp_path, frames, blend_weights, case, message):
    first, second = frames
    if case == "missing":
        first.unlink()
    elif case == "text":
        first.write_text("not an image\n")
    elif case == "empty":
        first.write_bytes(b"")
    elif case == "truncated":
        first.write_bytes(first.read_bytes()[:2000])
    elif case == "size":
        Image.open(second).crop((0, 0, 100, 80)).save(second)
    output = tmp_path / "middle.png"
    result = run_cli("interpolate", first, second, "-o", output, "--weights", blend_weights)
    assert_clean_failure(result, 1, message)
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".middle")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable checkpoint"),
        (b"plain text", "weights.pt"),
        ("malicious", "refused to load"),
        ("foreign", "not a SepConv checkpoint"),
    ],
)
def test_bad_weights_fail_cleanly(tmp_path, frames, content, message):
    weights = tmp_path / "weights.pt"
    marker = tmp_path / "pwned"
    if content == "malicious":
        import pickle

        class Payload:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        weights.write_bytes(pickle.dumps({"moduleConv1.0.weight": Payload()}, protocol=2))
    elif content == "foreign":
        torch.save({"fc.weight": torch.zeros(2)}, weights)
    else:
        weights.write_bytes(content)
    output = tmp_path / "middle.png"
    result = run_cli("interpolate", *frames, "-o", output, "--weights", weights)
    assert_clean_failure(result, 1, message)
    assert not output.exists() and not marker.exists()


def test_missing_weights_file_and_unknown_name(tmp_path, frames):
    result = run_cli("interpolate", *frames, "-o", tmp_path / "m.png", "--weights", "nope")
    assert_clean_failure(result, 1, "neither an existing file nor a known name")
    result = run_cli("interpolate", *frames, "-o", tmp_path / "m.png", "--weights", "authors-l1")
    assert_clean_failure(result, 1, "not installed")


def test_weights_lists_the_registry(tmp_path):
    result = run_cli("weights", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()[1:]
    rows = {line.split()[0]: line.split()[1] for line in lines if line[:1].isalnum()}
    rows.pop("authors'", None)  # the closing note
    expected = {
        "sepconv-flow": "yes",
        "sepconv-l1": "yes",
        "sepconv-motion": "yes",
        "authors-l1": "no",
        "authors-lf": "no",
    }
    assert rows == expected, result.stdout
    assert result.stdout.count("(default)") == 1


@pytest.fixture()
def tiny_middlebury(tmp_path: Path) -> Path:
    root = tmp_path / "middlebury"
    for sequence in ("RubberWhale", "Crop"):
        (root / sequence).mkdir(parents=True)
        for name in ("frame10", "frame10i11", "frame11"):
            shutil.copy(FIXTURES / f"rubberwhale_{name}.png", root / sequence / f"{name}.png")
    return root


def test_eval_prints_a_table_and_saves(tmp_path, tiny_middlebury, blend_weights):
    saved = tmp_path / "predictions"
    report = tmp_path / "result.json"
    result = run_cli(
        "eval", "middlebury", tiny_middlebury, "--weights", blend_weights, "--save", saved,
        "--json", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "RubberWhale" in result.stdout and "mean" in result.stdout.lower()
    assert len(list(saved.glob("*.png"))) == 2
    import json

    data = json.loads(report.read_text())
    assert data["method"] == "sepconv" and "psnr" in json.dumps(data).lower()
    assert len(data["weights_sha256"]) == 64 and data["ensemble"] == 1
    assert data["precision"] == "float32"


def test_ensemble_option(tmp_path, tiny_middlebury, blend_weights):
    report = tmp_path / "result.json"
    result = run_cli(
        "eval", "middlebury", tiny_middlebury, "--weights", blend_weights, "--ensemble", "2",
        "--json", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ensemble=2" in result.stdout
    import json

    assert json.loads(report.read_text())["ensemble"] == 2
    assert run_cli("eval", "middlebury", tiny_middlebury, "--ensemble", "3").returncode == 2


def test_eval_baseline_needs_no_weights(tiny_middlebury):
    result = run_cli("eval", "middlebury", tiny_middlebury, "--method", "average")
    assert result.returncode == 0, result.stderr
    assert "average" in result.stdout


def test_eval_on_a_missing_folder_fails_cleanly(tmp_path):
    result = run_cli("eval", "triplets", tmp_path / "nothing", "--method", "average")
    assert_clean_failure(result, 1, "nothing")


def test_eval_align_scores_after_removing_the_global_shift(tmp_path, tiny_middlebury):
    report = tmp_path / "aligned.json"
    result = run_cli(
        "eval", "middlebury", tiny_middlebury, "--method", "average", "--align", "--json", report,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "global alignment" in result.stdout and "dx" in result.stdout
    import json

    data = json.loads(report.read_text())
    assert data["align"] is True
    assert all(len(item["shift"]) == 2 for item in data["items"])


def test_eval_by_clip_prints_one_row_per_clip(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("alpha_1", "alpha_2", "beta_7"):
        for index in (1, 2, 3):
            folder = tmp_path / "triplets" / name
            folder.mkdir(parents=True, exist_ok=True)
            frame = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(frame).save(folder / f"im{index}.png")
    result = run_cli(
        "eval", "triplets", tmp_path / "triplets", "--method", "average", "flow", "--by-clip",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("mean PSNR per clip:")[1].splitlines()
    rows = [line.split() for line in table if line.startswith(("alpha", "beta"))]
    assert [row[0] for row in rows] == ["alpha", "beta"]
    assert [row[-1] for row in rows] == ["(2)", "(1)"]
    assert "average" in table[1] and "flow" in table[1]


def test_a_closed_standard_output_is_not_an_internal_error() -> None:
    """`sepconv weights | head -1`: the reader is gone before the listing is written; a quiet
    non-zero exit, neither an internal error nor a traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sepconv", "weights"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # long before the child has imported anything
    errors = process.stderr.read()
    assert process.wait(timeout=120) != 0
    assert "internal error" not in errors and "Traceback" not in errors, errors
