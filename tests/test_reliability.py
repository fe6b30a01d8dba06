"""Reliability and safety: the real ``sepconv`` command in subprocesses, as a user runs it.

Every failure case checks the exit code, a single stderr line naming the problem, no
traceback, and that no output (nor a temporary file) is left. Inputs are tiny; the models are
``make_blend_model()`` (output = the average of the two frames) and ``make_random_model()``,
saved with ``save_checkpoint``.

Every reliability case and the tests that cover it ("here" = this file;
"in-process" = through ``sepconv.cli.main`` or the Python API rather than a subprocess):

======================================  ====================================================
case                                    tests
======================================  ====================================================
missing image                           test_cli.py::test_bad_images_fail_cleanly[missing]
unreadable image (chmod 000)            here: test_bad_images_fail_cleanly[unreadable],
                                        SKIPPED as root (chmod does not stop root reading);
                                        test_imageio.py::test_read_permission_denied
                                        (in-process, simulated)
truncated image                         test_cli.py::test_bad_images_fail_cleanly[truncated]
corrupt image                           here: test_bad_images_fail_cleanly[corrupt]
text file with an image extension       test_cli.py::test_bad_images_fail_cleanly[text]
                                        (and [empty])
missing / unreadable / truncated /      here: test_bad_videos_fail_cleanly[missing,
corrupt video                           unreadable (SKIPPED as root), truncated, corrupt]
empty (0-byte) video                    here: test_bad_videos_fail_cleanly[empty]
one-frame video (a PNG named .mp4)      here: test_bad_videos_fail_cleanly[one-frame]
audio-only file (no video stream)       here: test_bad_videos_fail_cleanly[audio-only]
frames of different sizes               here: test_bad_images_fail_cleanly[sizes] (both
                                        sizes named)
weights file that is not a checkpoint   test_cli.py::test_bad_weights_fail_cleanly (empty,
                                        text, foreign state dict)
checkpoint of the wrong architecture    here: test_wrong_architecture_names_what_is_missing
output folder does not exist            here: test_tiny_1x1_frames_into_a_new_folder,
                                        test_portrait_rotated_video_with_subtitles (created)
output equal to an input                test_cli.py::test_existing_output_needs_force_and_
                                        input_is_never_overwritten; here:
                                        test_bad_videos_fail_cleanly[same-as-input]
existing output (refused / --force)     test_cli.py::test_existing_output_needs_force_and_
                                        input_is_never_overwritten; test_video.py::
                                        test_bad_inputs_give_one_line_errors (in-process)
out of GPU memory: tiles, says so       here: test_out_of_memory_falls_back_to_tiles,
                                        test_out_of_memory_gives_up_clearly (CPU, simulated
                                        torch.OutOfMemoryError)
generic out of memory -> --tile         here: test_generic_out_of_memory_suggests_tile
usage errors exit 2 (argparse's and     test_cli.py::test_usage_errors_exit_2; here:
the commands' own: --factor with        test_video_usage_error_exits_2, test_factor_and_
--fps, --fps 0, --crf 52, --tile 8...)  fps_together_exit_2, test_out_of_range_or_
                                        conflicting_options_exit_2
Ctrl-C / SIGTERM: 130, no output,      here: test_ctrl_c_exits_130_and_leaves_no_output
--resume                                (real signals; retried with a longer clip)
a short job (under one segment)         here: test_short_job_interrupted_by_ctrl_c_resumes_
interrupted: its finished frames are    to_the_same_output (real SIGINT, lossy output
kept, the line says how many            equal to an uninterrupted run); test_video.py::
("nothing" included), --resume gives    test_short_job_interrupted_mid_segment_keeps_its_
the same file                           frames (exact counts, work done on resume),
                                        test_cli_interrupt_leaves_no_output ("nothing is
                                        kept", no work folder)
read-only output (video, frames,        here: test_read_only_output_is_a_one_line_error
interpolate, --save-adapted)            (a real read-only tmpfs in a user namespace,
                                        skipped where unshare cannot mount), and
                                        test_read_only_output_is_a_one_line_error_
                                        simulated (EROFS, in-process, everywhere)
one precision default (float32) for     here: test_one_precision_default_for_every_entry_
the API and every command               point
grayscale, RGBA, 16-bit PNG             test_cli.py::test_grayscale_16_bit_and_alpha_keep_
                                        their_kind; test_inference.py::test_alpha_is_
                                        interpolated_with_the_colours
odd sizes keep their exact size         test_cli.py::test_grayscale_16_bit_and_alpha_keep_
                                        their_kind (41x30, 23x17); test_inference.py::
                                        test_any_size_channels_and_dtype_come_back_in_kind
tiny frames down to 1x1, with every     here: test_tiny_1x1_frames_into_a_new_folder,
family (1x1, 8x8, 4000x1, 1x4000)       test_frames_of_any_size_from_1x1_with_every_family
                                        (interpolate and video); test_flow.py::test_frames_
                                        too_small_for_dis_are_padded_for_the_flow
very large frames (tiling)              here: test_tiled_300x200_matches_whole_frame (API,
                                        float), test_nothing_written_outside_output_and_
                                        temp (CLI --tile 128 vs untiled, 8-bit);
                                        test_inference.py::test_tiled_result_matches_whole_
                                        frame
portrait video                          here: test_portrait_rotated_video_with_subtitles
rotated phone video                     here: test_portrait_rotated_video_with_subtitles
                                        (.mkv), test_rotated_mp4_keeps_its_rotation (.mp4,
                                        in-process); FIXED in video.py (display matrix)
variable frame rate                     test_video.py::test_variable_frame_rate_input_
                                        follows_timestamps
subtitles copied untouched              here: test_portrait_rotated_video_with_subtitles
                                        (SubRip in .mkv); audio: test_video.py::
                                        test_factor_two_doubles_rate_keeps_audio
malicious pickle refused, never runs    models/test_checkpoint.py::test_malicious_pickle_
                                        is_refused_and_never_runs; test_cli.py::
                                        test_bad_weights_fail_cleanly[malicious]
registry weights checked (sha256)       weights/test_registry.py::test_sha256_is_checked_
                                        before_use
nothing written outside output, temp    here: test_nothing_written_outside_output_and_temp
                                        (interpolate and video; HOME, cwd, TMPDIR fresh)
training survives SIGKILL               here: test_training_survives_sigkill_and_resumes
training stops cleanly on SIGTERM/^C    here: test_training_stops_cleanly_on_sigterm_and_resumes
                                        (exit 130, checkpoint of the last step, one line);
                                        in process: engine/test_train.py::test_a_signal_...
NaN loss skipped and reported           engine/test_train.py::test_non_finite_steps_are_
                                        skipped
property-based sizes, dtypes,           test_inference.py::test_any_size_channels_and_
channels                                dtype_come_back_in_kind; ops/test_reference.py::
                                        test_reference_random_shapes; ops/test_cpu_ops.py::
                                        test_cpu_random_shapes_match_reference ("cpu")
======================================  ====================================================
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import make_blend_model, make_random_model, write_audio_only
from PIL import Image

from sepconv.errors import SepconvError
from sepconv.inference import MIN_TILE_SIZE, Interpolator, OutOfMemoryFallbackWarning

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ROOT_REASON = "runs as root, where chmod 000 does not stop reading"


# -- helpers ---------------------------------------------------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **extra}
    env.pop("SEPCONV_DEBUG", None)
    return env


def sepconv(
    *args: object, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sepconv", *map(str, args)],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        cwd=cwd,
        timeout=180,
    )


def assert_failed(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_nothing_left(folder: Path, output: Path) -> None:
    """No output, no temporary file and no work folder named after it."""
    assert not output.exists()
    stem = output.stem
    assert not [p.name for p in folder.iterdir() if p.name.startswith(f".{stem}")]


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def moving(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 2] = np.linspace(0, 255, width).astype(np.uint8)[None]
        frame[4:20, 2 + i % (width - 18) : 14 + i % (width - 18), 0] = 255
        frames.append(frame)
    return frames


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    *,
    codec: str = "ffv1",
    rotation: int | None = None,
    subtitles: Path | None = None,
) -> Path:
    """Encode rgb frames at 25 fps; optionally a display rotation and an .srt's subtitles."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        source = av.open(str(subtitles)) if subtitles is not None else None
        try:
            text = container.add_stream_from_template(source.streams[0]) if source else None
            for index, array in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 25)
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
            if source is not None:
                for packet in source.demux(source.streams[0]):
                    if packet.size:
                        packet.stream = text
                        container.mux(packet)
        finally:
            if source is not None:
                source.close()
    return path


def display_rotation(path: Path) -> int:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).rotation


def subtitle_packets(path: Path) -> list[tuple[float, float, bytes]]:
    with av.open(str(path)) as container:
        return [
            (float(p.pts * p.time_base), float(p.duration * p.time_base), bytes(p))
            for p in container.demux(container.streams.subtitles[0])
            if p.size
        ]


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def blend_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "blend.pt"
    save_checkpoint(path, make_blend_model())
    return path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "random.pt"
    save_checkpoint(path, make_random_model())
    return path


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("corrupt", ("first.png", "corrupt")),
        pytest.param(
            "unreadable",
            ("first.png", "permission denied"),
            marks=pytest.mark.skipif(IS_ROOT, reason=ROOT_REASON),
        ),
        ("sizes", ("differ in size", "16x12", "12x10")),
    ],
)
def test_bad_images_fail_cleanly(tmp_path, blend_weights, case, fragments):
    rng = np.random.default_rng(0)
    first = save_png(tmp_path / "first.png", rng.integers(0, 256, (12, 16, 3), np.uint8))
    second = save_png(tmp_path / "second.png", rng.integers(0, 256, (12, 16, 3), np.uint8))
    if case == "corrupt":  # a valid header, garbled compressed data
        data = bytearray(first.read_bytes())
        data[60:90] = bytes(30)
        first.write_bytes(bytes(data))
    elif case == "unreadable":
        first.chmod(0)
    elif case == "sizes":
        save_png(second, rng.integers(0, 256, (10, 12, 3), np.uint8))
    output = tmp_path / "middle.png"
    result = sepconv("interpolate", first, second, "-o", output, "--weights", blend_weights)
    assert_failed(result, 1, *fragments)
    assert_nothing_left(tmp_path, output)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing", "no such file"),
        pytest.param(
            "unreadable", "permission", marks=pytest.mark.skipif(IS_ROOT, reason=ROOT_REASON)
        ),
        ("truncated", "truncated"),  # "no streams found" or "corrupt, truncated..."
        ("corrupt", "corrupt, truncated or not a video"),
        ("empty", "the file is empty"),
        ("audio-only", "no video stream"),
        ("same-as-input", "same file"),
        ("one-frame", "only one frame"),  # a still image named .mp4
    ],
)
def test_bad_videos_fail_cleanly(tmp_path, blend_weights, case, fragment):
    source = tmp_path / "in.mp4"
    output = tmp_path / "out.mp4"
    if case in ("unreadable", "truncated", "same-as-input"):
        write_clip(source, moving(6), codec="libx264")
    if case == "unreadable":
        source.chmod(0)
    elif case == "truncated":  # an .mp4 cut short: its index (moov) is at the end
        data = source.read_bytes()
        source.write_bytes(data[: len(data) // 2])
    elif case == "corrupt":
        source.write_bytes(np.random.default_rng(0).bytes(5000))
    elif case == "empty":
        source.write_bytes(b"")
    elif case == "audio-only":
        source = tmp_path / "in.m4a"
        write_audio_only(source)
    elif case == "same-as-input":
        output = source
    elif case == "one-frame":
        from PIL import Image

        Image.fromarray(moving(1)[0]).save(source, format="PNG")
    before = source.read_bytes() if source.exists() and os.access(source, os.R_OK) else None
    result = sepconv("video", source, "-o", output, "-q", "--weights", blend_weights)
    assert_failed(result, 1, fragment)
    if case == "same-as-input":
        assert source.read_bytes() == before
    else:
        assert_nothing_left(tmp_path, output)


def test_wrong_architecture_names_what_is_missing(tmp_path, blend_weights):
    raw = torch.load(blend_weights, weights_only=True)
    del raw["model"]["moduleVertical2.7.bias"]
    weights = tmp_path / "partial.pt"
    torch.save(raw, weights)
    frame = save_png(tmp_path / "f.png", np.zeros((8, 8, 3), np.uint8))
    output = tmp_path / "middle.png"
    result = sepconv("interpolate", frame, frame, "-o", output, "--weights", weights)
    assert_failed(result, 1, "not a SepConv network", "missing 1 tensors", "moduleVertical2.7")
    assert_nothing_left(tmp_path, output)


def test_video_usage_error_exits_2(tmp_path):
    result = sepconv("video", tmp_path / "in.mp4", "-o", tmp_path / "out.mp4", "--factor", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "argument --factor: expected a whole number >= 2, got 1" in result.stderr
    assert not list(tmp_path.iterdir())


def test_factor_and_fps_together_exit_2(tmp_path):
    result = sepconv("video", tmp_path / "in.mp4", "-o", tmp_path / "out.mp4",
                     "--factor", "2", "--fps", "60")  # fmt: skip
    assert_failed(result, 2, "give --factor or --fps, not both")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--fps=0"], "argument --fps: frame rate must be positive, got 0"),
        (["--fps=-24"], "argument --fps: frame rate must be positive, got -24"),
        (
            ["--fps", "24", "--slowmo"],
            "--slowmo works with --factor (it keeps the input frame rate)",
        ),
        (["--crf", "52"], "--crf must be between 0 and 51"),
        (["--tile", "8"], "--tile must be at least 128 pixels"),
        (["--scene-threshold", "2"], "--scene-threshold must be between 0 and 1"),
        (["--save-adapted", "w.safetensors"], "--save-adapted and --adapt-steps need --adapt"),
    ],
)
def test_out_of_range_or_conflicting_options_exit_2(tmp_path, capsys, options, message):
    """Usage errors exit 2 whether argparse or the command finds them, before the input is
    looked at (it does not exist here); in-process."""
    from sepconv.cli import main

    try:
        code = main(["video", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out.mp4"), *options])
    except SystemExit as exit_:  # argparse: the usage line, then the error
        code = exit_.code
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message)
    assert not list(tmp_path.iterdir())


# -- one precision default -------------------------------------------------------------------


def test_one_precision_default_for_every_entry_point(tmp_path, blend_weights):
    """float32 unless asked otherwise: the Python API and every command that runs a model,
    on any CPU (bfloat16-capable or not), so the same command gives the same frames."""
    import inspect

    from sepconv import model_options
    from sepconv.cli import build_parser
    from sepconv.inference import DEFAULT_PRECISION

    assert DEFAULT_PRECISION == model_options.DEFAULT_PRECISION == "float32"
    assert inspect.signature(Interpolator).parameters["precision"].default == DEFAULT_PRECISION
    assert Interpolator(make_blend_model(), device="cpu").precision == "float32"
    assert Interpolator.from_weights(blend_weights, device="cpu").precision == "float32"
    parser = build_parser()
    weights = ["--weights", str(blend_weights), "--device", "cpu"]
    for argv in (
        ["interpolate", "a.png", "b.png", "-o", "c.png"],
        ["eval", "middlebury", "folder"],
        ["video", "in.mp4", "-o", "out.mp4"],
        ["frames", "in", "-o", "out"],
    ):
        args = parser.parse_args([*argv, *weights])
        assert args.precision == DEFAULT_PRECISION, argv
        assert model_options.build_interpolator(args).precision == "float32", argv
    args = parser.parse_args(["video", "in.mp4", "-o", "out.mp4", *weights, "--precision", "auto"])
    built = model_options.build_interpolator(args).precision  # auto: asked for, depends on CPU
    assert built in ("float32", "bfloat16")


# -- read-only output ------------------------------------------------------------------------


def _can_mount_read_only(folder: Path) -> bool:
    """Whether a read-only tmpfs can be mounted here in a user namespace (unshare)."""
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    folder.mkdir(exist_ok=True)
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         'mount -t tmpfs -o ro tmpfs "$0" && ! touch "$0/x" 2>/dev/null', str(folder)],
        capture_output=True,
    )  # fmt: skip
    return probe.returncode == 0


def _read_only_commands(tmp_path: Path, weights: Path, folder: Path) -> dict[str, list[str]]:
    """Each command that writes, with its output (the path named in the error) in `folder`."""
    rng = np.random.default_rng(0)
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(2):
        save_png(frames / f"{index}.png", rng.integers(0, 256, (12, 16, 3), np.uint8))
    clip = write_clip(tmp_path / "in.mkv", moving(4))
    model = ["--weights", str(weights), "-q"]
    return {
        "interpolate": ["interpolate", str(frames / "0.png"), str(frames / "1.png"),
                        "-o", str(folder / "middle.png"), "--weights", str(weights)],
        "video": ["video", str(clip), "-o", str(folder / "out.mp4"), *model],
        "frames": ["frames", str(frames), "-o", str(folder / "out"), *model],
        "save-adapted": ["video", str(clip), "-o", str(tmp_path / "out.mp4"), *model,
                         "--adapt", "5", "--save-adapted", str(folder / "w.safetensors")],
    }  # fmt: skip


READ_ONLY_PATHS = {  # the path each command names in its error
    "interpolate": "middle.png",
    "video": "out.mp4",
    "frames": "out/000000.png",
    "save-adapted": "w.safetensors",
}


@pytest.mark.parametrize("command", list(READ_ONLY_PATHS))
def test_read_only_output_is_a_one_line_error(tmp_path, blend_weights, command):
    """A real read-only file system (a tmpfs mounted read-only in a user namespace), where
    the machine allows it: the error names the output and the reason, nothing else."""
    folder = tmp_path / "read-only"
    if not _can_mount_read_only(folder):
        pytest.skip("cannot mount a read-only tmpfs here (unshare --user --mount)")
    args = _read_only_commands(tmp_path, blend_weights, folder)[command]
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"', "sh", str(folder),
         sys.executable, "-m", "sepconv", *args],
        capture_output=True, text=True, env=cli_env(), timeout=180,
    )  # fmt: skip
    expected = f"cannot write {folder / READ_ONLY_PATHS[command]}: Read-only file system"
    assert_failed(result, 1, expected)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("command", list(READ_ONLY_PATHS))
def test_read_only_output_is_a_one_line_error_simulated(
    tmp_path, blend_weights, command, monkeypatch, capsys
):
    """The same everywhere (in-process): creating anything under the folder fails with EROFS,
    as on a read-only file system."""
    import errno

    from sepconv.cli import main

    folder = tmp_path / "read-only"
    folder.mkdir()
    args = _read_only_commands(tmp_path, blend_weights, folder)[command]
    real_open, real_mkdir = os.open, os.mkdir

    def refuse(path: object) -> None:
        if Path(os.fsdecode(path)).is_relative_to(folder) and Path(os.fsdecode(path)) != folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def read_only_open(path, flags, *rest, **options):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *rest, **options)

    def read_only_mkdir(path, *rest, **options):
        refuse(path)
        return real_mkdir(path, *rest, **options)

    monkeypatch.setattr(os, "open", read_only_open)
    monkeypatch.setattr(os, "mkdir", read_only_mkdir)
    assert main(args) == 1
    expected = f"cannot write {folder / READ_ONLY_PATHS[command]}: Read-only file system"
    assert capsys.readouterr().err.splitlines() == [f"sepconv: error: {expected}"]
    assert list(folder.iterdir()) == []


# -- out of memory ---------------------------------------------------------------------------


def _limit_network_size(monkeypatch, interpolator: Interpolator, limit: int) -> list[int]:
    """Make the network "run out of GPU memory" on canvases wider or taller than `limit`.

    Patches ``interpolator.model``: the interpolator must run it, not a CPU fast-path copy
    (``optimize=False``, as on a GPU, where the fallback matters).
    """
    assert interpolator._fast_model is None
    original = interpolator.model.predict_kernels
    sizes: list[int] = []

    def predict_kernels(first, second, **options):
        sizes.append(max(first.shape[-2:]))
        if max(first.shape[-2:]) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(first, second, **options)

    monkeypatch.setattr(interpolator.model, "predict_kernels", predict_kernels)
    return sizes


def test_out_of_memory_falls_back_to_tiles(monkeypatch):
    rng = np.random.default_rng(0)
    first, second = (rng.random((100, 600, 3), dtype=np.float32) for _ in range(2))
    expected = Interpolator(
        make_random_model(), device="cpu", tile_size=256, optimize=False
    ).interpolate(first, second)
    interpolator = Interpolator(make_random_model(), device="cpu", optimize=False)
    sizes = _limit_network_size(monkeypatch, interpolator, 256)
    with pytest.warns(OutOfMemoryFallbackWarning) as caught:
        middle = interpolator.interpolate(first, second)
    # whole frame (640-wide canvas) fails, 512-pixel tiles fail, 256-pixel tiles work
    assert [str(w.message) for w in caught] == [
        "out of GPU memory at 600x100: retrying in 512-pixel tiles"
    ]
    assert 640 in sizes and 512 in sizes
    np.testing.assert_array_equal(middle, expected)
    sizes.clear()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: not again
        again = interpolator.interpolate(first, second)
    np.testing.assert_array_equal(again, expected)
    assert max(sizes) <= 256  # the tile size that worked is kept


def test_out_of_memory_gives_up_clearly(monkeypatch):
    frames = [np.zeros((40, 70, 3), np.uint8)] * 2
    interpolator = Interpolator(make_blend_model(), device="cpu", optimize=False)
    _limit_network_size(monkeypatch, interpolator, 0)
    with pytest.raises(SepconvError, match="out of GPU memory at 70x40.*--tile"):
        interpolator.interpolate(*frames)
    tiled = Interpolator(make_blend_model(), device="cpu", tile_size=MIN_TILE_SIZE, optimize=False)
    _limit_network_size(monkeypatch, tiled, 0)
    with pytest.raises(SepconvError, match="smaller --tile"):
        tiled.interpolate(*frames)


def test_generic_out_of_memory_suggests_tile(tmp_path, monkeypatch, capsys, blend_weights):
    from sepconv.cli import main

    def fail(self, first, second, time=0.5):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate ...")

    monkeypatch.setattr(Interpolator, "interpolate", fail)
    frame = save_png(tmp_path / "f.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["interpolate", str(frame), str(frame), "-o", str(tmp_path / "m.png"),
                 "--weights", str(blend_weights)]) == 1  # fmt: skip
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["sepconv: error: out of memory; try --tile 512"]
    assert not (tmp_path / "m.png").exists()


# -- Ctrl-C ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_exits_130_and_leaves_no_output(tmp_path, blend_weights, signum):
    for count in (80, 400):
        source = write_clip(tmp_path / f"in{count}.mkv", moving(count))
        output = tmp_path / f"out{count}.mkv"
        args = [sys.executable, "-m", "sepconv", "video", str(source), "-o", str(output)]
        args += ["--factor", "4", "--codec", "ffv1", "--segment", "8", "-q"]
        args += ["--weights", str(blend_weights), "--precision", "float32"]
        stderr_path = tmp_path / f"stderr{count}.txt"
        with open(stderr_path, "w") as stderr:
            process = subprocess.Popen(args, stderr=stderr, env=cli_env())
            try:
                deadline = time.monotonic() + 120
                while process.poll() is None and time.monotonic() < deadline:
                    if list(tmp_path.glob(f".{output.name}.sepconv-*/pending-*/*.png")):
                        break  # converting: a first frame is kept
                    time.sleep(0.02)
                if process.poll() is None:
                    process.send_signal(signum)
                code = process.wait(timeout=60)
            finally:
                if process.poll() is None:
                    process.kill()
        if code == 0:
            continue  # finished before the signal: try a longer clip
        err = stderr_path.read_text()
        assert code == 130, err
        assert "Traceback" not in err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "--resume" in lines[0], err
        assert not output.exists()
        (work,) = tmp_path.glob(f".{output.name}.sepconv-*")  # kept for --resume
        assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
        assert not [p for p in work.iterdir() if ".tmp-" in p.name]
        return
    pytest.skip("the conversion always finished before SIGINT arrived")


def _interrupt_when_kept(args: list[str], work_glob: str, folder: Path) -> tuple[int, str]:
    """Run ``sepconv`` with `args`, send SIGINT once a frame is kept in the work folder, and
    return the exit code and stderr."""
    stderr_path = folder / "stderr.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sepconv", *args], stderr=stderr, env=cli_env()
        )
        try:
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                if list(folder.glob(work_glob)):
                    process.send_signal(signal.SIGINT)
                    break
                time.sleep(0.01)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    return code, stderr_path.read_text()


def test_short_job_interrupted_by_ctrl_c_resumes_to_the_same_output(tmp_path, blend_weights):
    """Shorter than one segment (240 output frames): Ctrl-C still keeps the finished frames,
    the line says how many, and --resume ends with the same file as an uninterrupted run."""
    for count, size in ((50, (64, 48)), (50, (320, 240))):
        source = write_clip(tmp_path / f"in{count}.mkv", moving(count, *size))
        output = tmp_path / f"out{size[0]}.mp4"
        args = [str(source), "-o", str(output), "--factor", "4", "-q"]
        args += ["--weights", str(blend_weights), "--precision", "float32"]
        code, err = _interrupt_when_kept(
            ["video", *args], f".{output.name}.sepconv-*/pending-*/*.png", tmp_path
        )
        if code == 0:
            output.unlink()
            continue  # finished before the signal: try larger frames
        assert code == 130, err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        (work,) = tmp_path.glob(f".{output.name}.sepconv-*")
        kept = int(lines[0].split("interrupted: ")[1].split(" of ")[0])
        assert 0 < kept < 4 * count, lines[0]
        assert f"{kept} of {4 * count} output frames are finished and kept in {work}" in lines[0]
        assert not output.exists()
        resumed = sepconv("video", *args, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert not work.exists()
        whole = tmp_path / "whole.mp4"
        assert sepconv("video", *args[:2], str(whole), *args[3:]).returncode == 0
        got, want = decode(output), decode(whole)
        assert len(got) == len(want) == 4 * count
        for got_frame, want_frame in zip(got, want, strict=True):
            np.testing.assert_array_equal(got_frame, want_frame)
        return
    pytest.skip("the conversion always finished before SIGINT arrived")


# -- awkward but valid input -----------------------------------------------------------------


def test_tiny_1x1_frames_into_a_new_folder(tmp_path, blend_weights):
    first = save_png(tmp_path / "a.png", np.array([[[10, 200, 30]]], np.uint8))
    second = save_png(tmp_path / "b.png", np.array([[[30, 100, 31]]], np.uint8))
    output = tmp_path / "new" / "deeper" / "middle.png"
    result = sepconv("interpolate", first, second, "-o", output, "--weights", blend_weights)
    assert result.returncode == 0, result.stderr
    middle = np.asarray(Image.open(output))
    assert middle.shape == (1, 1, 3)
    assert np.abs(middle.astype(int) - [20, 150, 30.5]).max() <= 1
    assert [p.name for p in output.parent.iterdir()] == ["middle.png"]


@pytest.fixture(scope="module")
def flow_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny flow-guided model (the DIS prior with random kernels on top)."""
    from conftest import make_flow_model

    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "flow.pt"
    save_checkpoint(path, make_flow_model(seed=0))
    return path


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (1, 4000), (4000, 1), (11, 3)])
@pytest.mark.parametrize("family", ["sepconv", "flow"])
def test_frames_of_any_size_from_1x1_with_every_family(
    tmp_path, blend_weights, flow_weights, family, size
):
    """Sizes that OpenCV's DIS refuses (or crashes on) work with the flow-guided family too:
    in-process, a frame pair through `interpolate` and a 3-frame clip through `video`."""
    from sepconv.cli import main

    weights = {"sepconv": blend_weights, "flow": flow_weights}[family]
    height, width = size
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(3)]
    first, second = (save_png(tmp_path / f"{i}.png", frames[i]) for i in range(2))
    output = tmp_path / "middle.png"
    assert main(["interpolate", str(first), str(second), "-o", str(output),
                 "--weights", str(weights)]) == 0  # fmt: skip
    middle = np.asarray(Image.open(output))
    assert middle.shape == (height, width, 3)
    if family == "sepconv":  # the blend model: the average, exactly
        expected = (frames[0].astype(float) + frames[1]) / 2
        assert np.abs(middle - expected).max() <= 1
    if width * height <= 64:
        clip = write_clip(tmp_path / "in.mkv", frames)
        video = tmp_path / "out.mp4"
        assert main(["video", str(clip), "-o", str(video), "-q", "--weights", str(weights)]) == 0
        assert len(decode(video)) == 6 and decode(video)[0].shape == (height, width, 3)


def test_tiled_300x200_matches_whole_frame():
    rng = np.random.default_rng(1)
    first = rng.random((200, 300, 3), dtype=np.float32)
    second = np.roll(first, 3, axis=1)
    model = make_random_model()
    whole = Interpolator(model, device="cpu").interpolate(first, second)
    tiled = Interpolator(model, device="cpu", tile_size=128).interpolate(first, second)
    # Measured 0.009 gray levels for this tiny random model (not 1e-3: 128-pixel windows
    # see less context); the full model: docs/inference.md "Tiling" table (0.0013).
    assert np.abs(tiled - whole).max() * 255 < 0.05


def _srt(path: Path) -> Path:
    path.write_text(
        "1\n00:00:00,000 --> 00:00:00,080\nfirst line\n\n"
        "2\n00:00:00,120 --> 00:00:00,200\nsecond line\n\n"
    )
    return path


def test_portrait_rotated_video_with_subtitles(tmp_path, blend_weights):
    """A portrait (48x64) phone clip with a 90-degree display rotation and SubRip subtitles."""
    source = write_clip(
        tmp_path / "phone.mkv",
        moving(6, width=48, height=64),
        rotation=90,
        subtitles=_srt(tmp_path / "subs.srt"),
    )
    assert display_rotation(source) == 90
    output = tmp_path / "new" / "phone2x.mkv"
    result = sepconv(
        "video", source, "-o", output, "--factor", "2", "--codec", "ffv1", "-q",
        "--weights", blend_weights,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    frames = decode(output)
    assert len(frames) == 12 and all(frame.shape == (64, 48, 3) for frame in frames)
    assert display_rotation(output) == 90
    assert subtitle_packets(output) == subtitle_packets(source)
    assert [p.name for p in output.parent.iterdir()] == ["phone2x.mkv"]


def test_rotated_mp4_keeps_its_rotation(tmp_path, blend_weights):
    from sepconv.cli import main

    source = write_clip(tmp_path / "phone.mp4", moving(4), codec="libx264", rotation=-90)
    output = tmp_path / "out.mp4"
    assert main(["video", str(source), "-o", str(output), "-q", "--weights",
                 str(blend_weights)]) == 0  # fmt: skip
    assert display_rotation(source) == display_rotation(output) == -90


# -- nothing written outside the output and the temp folder ---------------------------------


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_nothing_written_outside_output_and_temp(tmp_path, random_weights):
    inputs, outputs = tmp_path / "inputs", tmp_path / "outputs"
    home, work, temp = tmp_path / "home", tmp_path / "cwd", tmp_path / "tmp"
    for folder in (inputs, outputs, home, work, temp):
        folder.mkdir()
    weights = inputs / "random.pt"
    shutil.copy(random_weights, weights)
    rng = np.random.default_rng(2)
    first = rng.integers(0, 256, (200, 300, 3), np.uint8)
    second = np.roll(first, 2, axis=1)
    save_png(inputs / "a.png", first)
    save_png(inputs / "b.png", second)
    clip = write_clip(inputs / "clip.mkv", moving(4))
    env = cli_env(HOME=str(home), TMPDIR=str(temp))
    for variable in [name for name in env if name.startswith("XDG_")] + ["SEPCONV_CACHE_DIR"]:
        env.pop(variable, None)
    before = _tree(inputs)

    result = sepconv(
        "interpolate", inputs / "a.png", inputs / "b.png", "-o", outputs / "middle.png",
        "--weights", weights, "--tile", "128", cwd=work, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = sepconv(
        "video", clip, "-o", outputs / "clip2x.mkv", "--codec", "ffv1", "-q",
        "--weights", weights, cwd=work, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    assert _tree(home) == set() and _tree(work) == set()
    assert _tree(outputs) == {"middle.png", "clip2x.mkv"}
    assert _tree(inputs) == before
    # and --tile 128 gave the untiled result, to 8-bit rounding
    untiled = Interpolator(make_random_model(), device="cpu").interpolate(first, second)
    tiled = np.asarray(Image.open(outputs / "middle.png")).astype(int)
    assert np.abs(tiled - untiled.astype(int)).max() <= 1


# -- training faults -------------------------------------------------------------------------

TINY_TRAIN = """\
output_dir = "{output}"
batch_size = 2
crop_size = 32
total_steps = {steps}
lr = 1e-3
optimizer = "adamax"
loss = "l1"
log_every_steps = 1000
checkpoint_every_steps = 5
checkpoint_every_seconds = 0

[model]
kernel_size = 5
encoder_channels = [4, 8, 8, 8, 8]

[data]
kind = "translation"
max_shift = 2
"""


def test_training_survives_sigkill_and_resumes(tmp_path):
    from sepconv.models.checkpoint import load_weights

    for steps in (60, 600):
        run = tmp_path / f"run{steps}"
        config = tmp_path / f"tiny{steps}.toml"
        config.write_text(TINY_TRAIN.format(output=run.as_posix(), steps=steps))
        command = [sys.executable, "-m", "sepconv", "train", "--config", str(config)]
        process = subprocess.Popen(
            [*command, "--device", "cpu"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
        try:
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                if (run / "last.pt").exists():
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        if code == 0:
            continue  # finished before the kill: a longer run
        assert code == -signal.SIGKILL
        killed_at = torch.load(run / "last.pt", weights_only=True)["step"]
        assert 5 <= killed_at < steps
        result = subprocess.run(
            [*command, "--device", "cpu", "--resume", "auto"],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert f"step {killed_at}" in result.stderr
        assert f'"step": {steps}' in result.stdout
        loaded = load_weights(run / "last.pt")
        assert loaded.model.config.kernel_size == 5
        assert torch.load(run / "last.pt", weights_only=True)["step"] == steps
        return
    pytest.skip("training always finished before SIGKILL arrived")


def test_training_stops_cleanly_on_sigterm_and_resumes(tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TRAIN.format(output=run.as_posix(), steps=100_000))
    command = [sys.executable, "-m", "sepconv", "train", "--config", str(config), "--device", "cpu"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    step = torch.load(run / "last.pt", weights_only=True)["step"]
    assert step >= 5 and f'"step": {step}' in stdout  # saved at the step it stopped
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("sepconv: ") and "--resume auto" in lines[-1]
    assert "Traceback" not in stderr
    config.write_text(TINY_TRAIN.format(output=run.as_posix(), steps=step + 2))
    resumed = subprocess.run(
        [*command, "--resume", "auto"], capture_output=True, text=True, env=cli_env(), timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {step}" in resumed.stderr and f'"step": {step + 2}' in resumed.stdout
