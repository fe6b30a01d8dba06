"""`sepconv video` and `sepconv frames` end to end, on tiny synthetic clips made with PyAV.

The model is make_blend_model() (output = average of the two frames), so every new frame has
a known value. Commands run through sepconv.cli.main, in process.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import make_blend_model, make_clip, write_audio_only

from sepconv.cli import main
from sepconv.commands_video import parse_rate

WIDTH, HEIGHT = 64, 48


# -- helpers ---------------------------------------------------------------------------------


def run(*argv: object) -> int:
    """Run a command through the real entry point, sepconv.cli.main (errors -> one line)."""
    return main([str(item) for item in argv])


def moving_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """A bright square moving right over a horizontal gradient."""
    frames = []
    for i in range(count):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[:, :, 2] = np.linspace(0, 255, WIDTH, dtype=np.float32).astype(np.uint8)[None]
        frame[10:30, 4 + 3 * i : 20 + 3 * i, 0] = 255
        frame[:, :, 1] = (seed * 40) % 256
        frames.append(frame)
    return frames


def other_scene(count: int) -> list[np.ndarray]:
    """A different, bright scene (for hard cuts)."""
    frames = []
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    for i in range(count):
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0] = 200 + 40 * np.sin((x + 2 * i) / 5.0)
        frame[..., 1] = 230
        frame[..., 2] = 180 + 50 * np.cos(y / 4.0)
        frames.append(frame)
    return frames


def decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        pairs = [
            (frame.to_ndarray(format="rgb24"), float(frame.time))
            for frame in container.decode(video=0)
        ]
    return [array for array, _ in pairs], [time for _, time in pairs]


def audio_duration(path: Path) -> float | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        last = 0.0
        for packet in container.demux(stream):
            if packet.pts is not None and packet.duration:
                last = max(last, float((packet.pts + packet.duration) * packet.time_base))
        return last


def average(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    return (first.astype(np.float32) + second.astype(np.float32)) / 2


def assert_close(actual: np.ndarray, expected: np.ndarray, tolerance: float = 1.0) -> None:
    assert np.abs(actual.astype(np.float32) - expected.astype(np.float32)).max() <= tolerance


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "blend.pt"
    save_checkpoint(path, make_blend_model())
    return path


# -- --factor, audio, slow motion ------------------------------------------------------------


def test_factor_two_doubles_rate_keeps_audio(tmp_path: Path, weights: Path):
    source = make_clip(tmp_path / "in.mov", moving_frames(12))
    inputs, _ = decode(source)
    output = tmp_path / "out.mov"
    assert run("video", source, "-o", output, "--codec", "png", "-q", "--weights", weights) == 0

    frames, times = decode(output)
    assert len(frames) == 24  # N input frames -> 2N output frames, the last one held
    assert times == pytest.approx([k / 50 for k in range(24)], abs=1e-6)
    with av.open(str(output)) as container:
        assert container.streams.video[0].average_rate == 50
        assert [stream.type for stream in container.streams] == ["video", "audio"]
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=1e-6)
    for i in range(11):
        np.testing.assert_array_equal(frames[2 * i], inputs[i])
        middle = frames[2 * i + 1]
        assert_close(middle, average(inputs[i], inputs[i + 1]))
        assert not np.array_equal(middle, inputs[i]) and not np.array_equal(middle, inputs[i + 1])
    np.testing.assert_array_equal(frames[23], inputs[11])
    assert not list(tmp_path.glob(".*"))  # no temporary file or work folder left


def test_default_h264_mp4_and_slowmo(tmp_path: Path, weights: Path):
    source = make_clip(tmp_path / "in.mp4", moving_frames(12), codec="libx264")
    output = tmp_path / "out.mp4"
    assert run("video", source, "-o", output, "--factor", "4", "-q", "--weights", weights) == 0
    frames, times = decode(output)
    assert len(frames) == 48
    assert times == pytest.approx([k / 100 for k in range(48)], abs=1e-6)
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=1e-6)

    slow = tmp_path / "slow.mp4"
    assert run("video", source, "-o", slow, "--slowmo", "-q", "--weights", weights) == 0
    frames, times = decode(slow)
    assert len(frames) == 24
    assert times == pytest.approx([k / 25 for k in range(24)], abs=1e-6)
    assert audio_duration(slow) is None  # the audio would not match: dropped


def mix(first: np.ndarray, second: np.ndarray, eighths: int) -> np.ndarray:
    """``eighths / 8`` of the way from ``first`` to ``second`` (what the blend model's
    midpoint tree gives at a node of level 3)."""
    return (first.astype(np.float32) * (8 - eighths) + second.astype(np.float32) * eighths) / 8


def test_factor_three_is_timed_like_fps(tmp_path: Path, weights: Path, capsys):
    source = make_clip(tmp_path / "in.mov", moving_frames(12))
    inputs, _ = decode(source)
    output = tmp_path / "out.mov"
    assert run("video", source, "-o", output, "--factor", "3", "--codec", "png", "--weights",
               weights) == 0  # fmt: skip
    err = capsys.readouterr().err
    # 1/3 and 2/3 of each interval are shown as the nodes 3/8 and 5/8: 1/24 of 40 ms off
    assert (
        "sepconv: --factor 3 is not a power of two: each new frame is shown at the nearest 1/8 "
        "of its input frame interval (--levels 3); largest timing error 1/24 of an interval "
        "(1.67 ms at 25 fps)\n"
    ) in err
    assert "max timing error 1.67 ms" in err

    frames, times = decode(output)
    assert len(frames) == 36  # N input frames -> 3N output frames, the last one held
    assert times == pytest.approx([k / 75 for k in range(36)], abs=1e-6)
    with av.open(str(output)) as container:
        assert container.streams.video[0].average_rate == 75
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=1e-6)
    for i in range(11):  # frames 3i + 1 and 3i + 2 come from the pair (i, i + 1), in order
        np.testing.assert_array_equal(frames[3 * i], inputs[i])
        assert_close(frames[3 * i + 1], mix(inputs[i], inputs[i + 1], 3))
        assert_close(frames[3 * i + 2], mix(inputs[i], inputs[i + 1], 5))
    for k in (33, 34, 35):
        np.testing.assert_array_equal(frames[k], inputs[11])

    quiet = tmp_path / "quiet.mov"
    args = ("video", source, "-o", quiet, "--factor", "3", "--codec", "png", "-q")
    assert run(*args, "--weights", weights, "--slowmo") == 0
    assert capsys.readouterr().err == ""  # -q: no timing line either
    frames, times = decode(quiet)
    assert len(frames) == 36 and times == pytest.approx([k / 25 for k in range(36)], abs=1e-6)
    assert_close(frames[4], mix(inputs[1], inputs[2], 3))


def test_factor_must_be_a_whole_number_of_at_least_two(capsys):
    for bad in ("1", "0", "2.5", "x"):
        with pytest.raises(SystemExit) as caught:
            run("video", "in.mp4", "-o", "out.mp4", "--factor", bad)
        assert caught.value.code == 2
        assert "argument --factor: expected a whole number >= 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as caught:
        run("frames", "in", "-o", "out", "--factor", "1")
    assert caught.value.code == 2


# -- --fps ----------------------------------------------------------------------------------


def test_fps_60_from_24(tmp_path: Path, weights: Path):
    source = make_clip(tmp_path / "in.mov", moving_frames(12), rate=24)
    inputs, _ = decode(source)
    output = tmp_path / "out.mov"
    args = ("video", source, "-o", output, "--fps", "60", "--codec", "png", "-q")
    assert run(*args, "--weights", weights) == 0
    frames, times = decode(output)
    assert len(frames) == 30  # 12 frames at 24 fps = 0.5 s = 30 frames at 60 fps
    assert times == pytest.approx([k / 60 for k in range(30)], abs=1e-6)
    for k in range(0, 30, 5):  # k / 60 = i / 24 for i = 2k / 5: the input frames themselves
        np.testing.assert_array_equal(frames[k], inputs[2 * k // 5])
    # k = 1: u = 0.4 of the first interval -> node 3/8 = average(1/4, 1/2)
    quarter = average(inputs[0], average(inputs[0], inputs[1]))
    three_eighths = average(quarter, average(inputs[0], inputs[1]))
    assert_close(frames[1], three_eighths)


def test_variable_frame_rate_input_follows_timestamps(tmp_path: Path, weights: Path):
    inputs = moving_frames(6)
    stamps_ms = [0, 40, 120, 160, 200, 280]  # a 40 ms frame, then a gap of 80 ms...
    source = tmp_path / "vfr.nut"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "rgb24"
        stream.codec_context.time_base = Fraction(1, 1000)
        for array, stamp in zip(inputs, stamps_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    output = tmp_path / "out.nut"
    args = ("video", source, "-o", output, "--fps", "50", "--codec", "png", "-q")
    assert run(*args, "--weights", weights) == 0
    frames, times = decode(output)
    assert times == pytest.approx([k / 50 for k in range(len(frames))], abs=1e-6)
    assert len(frames) == 16  # until 0.28 s + the last frame's 40 ms
    np.testing.assert_array_equal(frames[2], inputs[1])  # 0.04 s
    assert_close(frames[4], average(inputs[1], inputs[2]))  # 0.08 s: halfway through the gap
    np.testing.assert_array_equal(frames[6], inputs[2])  # 0.12 s


def test_parse_rate():
    assert parse_rate("60") == 60
    assert parse_rate("59.94") == Fraction(60000, 1001)
    assert parse_rate("60000/1001") == Fraction(60000, 1001)
    assert parse_rate("12.5") == Fraction(25, 2)
    for bad in ("0", "-3", "abc", "1/0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_rate(bad)


# -- scene cuts and duplicates ---------------------------------------------------------------


def test_no_blend_across_scene_cut(tmp_path: Path, weights: Path):
    source = make_clip(tmp_path / "cut.mov", moving_frames(6) + other_scene(6), audio=False)
    inputs, _ = decode(source)
    output = tmp_path / "out.mov"
    assert run("video", source, "-o", output, "--codec", "png", "-q", "--weights", weights) == 0
    frames, _ = decode(output)
    assert len(frames) == 24
    np.testing.assert_array_equal(frames[11], inputs[5])  # held up to the cut
    np.testing.assert_array_equal(frames[12], inputs[6])
    for i in (*range(5), *range(6, 11)):
        assert_close(frames[2 * i + 1], average(inputs[i], inputs[i + 1]))
    # with the detector off, the cut is morphed (what the detector prevents)
    morphed = tmp_path / "morphed.mov"
    args = ("video", source, "-o", morphed, "--codec", "png", "-q", "--weights", weights)
    assert run(*args, "--scene-threshold", "1") == 0
    assert_close(decode(morphed)[0][11], average(inputs[5], inputs[6]))


def test_duplicates_are_interpolated_across(tmp_path: Path, weights: Path):
    drawings = moving_frames(4)
    on_twos = [drawings[i // 2] for i in range(8)]  # A A B B C C D D
    source = make_clip(tmp_path / "twos.mov", on_twos, audio=False)
    output = tmp_path / "out.mov"
    assert run("video", source, "-o", output, "--codec", "png", "-q", "--weights", weights) == 0
    frames, _ = decode(output)
    assert len(frames) == 16
    a, b = drawings[0], drawings[1]
    half = average(a, b)
    np.testing.assert_array_equal(frames[0], a)
    assert_close(frames[1], average(a, half))  # 1/4
    assert_close(frames[2], half)  # at the duplicate's time: halfway A -> B, not A again
    assert_close(frames[3], average(half, b))  # 3/4
    np.testing.assert_array_equal(frames[4], b)
    for k in range(1, 16):  # never the same picture twice in a row before the held end
        if k < 13:
            assert not np.array_equal(frames[k], frames[k - 1])


# -- interruption and resume ----------------------------------------------------------------


@pytest.mark.parametrize("codec", ["ffv1", "libx264"])
def test_interrupted_run_resumes_to_the_same_output(tmp_path: Path, weights: Path, codec: str):
    """A resumed run gives the frames of an uninterrupted one: exactly with a lossless codec;
    with libx264 up to the encoder's noise (its multithreaded encode of one segment is not
    always bit-identical between runs), and no frame nearer than its counterpart but its
    like."""
    from sepconv.inference import Interpolator
    from sepconv.video import EncoderSettings, VideoJob, convert_video

    source = make_clip(tmp_path / "in.mp4", moving_frames(12), codec="libx264")
    interpolator = Interpolator(make_blend_model(), device="cpu")
    encoder = EncoderSettings(codec=codec, crf=23)
    job = VideoJob(factor=4, segment_frames=8, batch_pairs=1, encoder=encoder)
    whole = tmp_path / "whole.mp4"
    convert_video(source, whole, interpolator.interpolate_tensor, job, quiet=True)

    calls = {"count": 0}

    def failing(first, second):
        calls["count"] += 1
        if calls["count"] > 8:  # 2 calls (levels) per pair: 4 pairs = 2 segments of 8 frames
            raise KeyboardInterrupt
        return interpolator.interpolate_tensor(first, second)

    output = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        convert_video(source, output, failing, job, resume=True, quiet=True)
    assert not output.exists()
    (work,) = tmp_path.glob(".out.mp4.sepconv-*")
    assert len(list(work.glob("segment-*"))) == 2
    assert not [p for p in work.iterdir() if ".tmp-" in p.name]

    calls["count"] = -1000  # no more failures; count the work done on resume
    summary = convert_video(source, output, failing, job, resume=True, quiet=True)
    assert summary["resumed_frames"] == 16
    assert calls["count"] == -1000 + 2 * 7  # the 7 remaining pairs only
    assert not work.exists()
    resumed, resumed_times = decode(output)
    expected, expected_times = decode(whole)
    assert len(resumed) == len(expected) == 48
    assert resumed_times == expected_times
    if codec == "ffv1":
        for got, want in zip(resumed, expected, strict=True):
            np.testing.assert_array_equal(got, want)
    else:
        for index, got in enumerate(resumed):
            errors = [np.abs(got.astype(np.float32) - want).mean() for want in expected]
            assert errors[index] < 1.0, (index, errors[index])
            for other, error in enumerate(errors):  # nothing nearer, but a frame like it
                if error < errors[index]:
                    twin = np.abs(expected[other].astype(np.float32) - expected[index]).mean()
                    assert twin < 0.25, (index, other)
    assert audio_duration(output) == pytest.approx(audio_duration(source), abs=1e-6)


def test_cli_interrupt_leaves_no_output(tmp_path: Path, weights: Path, monkeypatch, capsys):
    from sepconv.inference import Interpolator

    def interrupt(self, first, second):
        raise KeyboardInterrupt

    monkeypatch.setattr(Interpolator, "interpolate_tensor", interrupt)
    source = make_clip(tmp_path / "in.mov", moving_frames(4), audio=False)
    output = tmp_path / "out.mov"
    code = run("video", source, "-o", output, "--codec", "png", "-q", "--weights", weights)
    assert code == 130
    assert not output.exists()
    assert capsys.readouterr().err.splitlines() == [
        "sepconv: error: interrupted before any output frame was finished: nothing is kept"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mov"]  # no work folder left


def test_short_job_interrupted_mid_segment_keeps_its_frames(
    tmp_path: Path, weights: Path, monkeypatch, capsys
):
    """A job shorter than one segment (the default is 240 output frames) keeps every batch of
    frame pairs finished before Ctrl-C; --resume computes only the rest and writes the same
    (lossy) file as an uninterrupted run."""
    from sepconv.inference import Interpolator

    source = make_clip(tmp_path / "in.mp4", moving_frames(9), codec="libx264", audio=False)
    options = ["--factor", "4", "-q", "--weights", weights, "--precision", "float32"]
    assert run("video", source, "-o", tmp_path / "whole.mp4", *options) == 0
    original = Interpolator.interpolate_tensor
    calls = {"count": 0, "limit": 5}

    def counted(self, first, second):
        calls["count"] += 1
        if calls["count"] > calls["limit"]:
            raise KeyboardInterrupt
        return original(self, first, second)

    monkeypatch.setattr(Interpolator, "interpolate_tensor", counted)
    output = tmp_path / "out.mp4"
    # 8 pairs of 3 new frames, 2 calls per batch of 2 pairs: calls 1-4 finish output frames
    # 0-15 (two batches); call 5 starts the third and call 6 stops the job.
    assert run("video", source, "-o", output, *options) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"sepconv: error: interrupted: 16 of 36 output frames are finished and kept in "
        f"{next(tmp_path.glob('.out.mp4.sepconv-*'))}; run the same command with --resume "
        "to continue from there"
    ]
    assert not output.exists()
    calls.update(count=0, limit=1000)
    assert run("video", source, "-o", output, *options, "--resume") == 0
    assert calls["count"] == 4  # only the two remaining batches
    assert not list(tmp_path.glob(".out.mp4.*"))
    resumed, resumed_times = decode(output)
    expected, expected_times = decode(tmp_path / "whole.mp4")
    assert len(resumed) == 36 and resumed_times == expected_times
    for got, want in zip(resumed, expected, strict=True):
        np.testing.assert_array_equal(got, want)


# -- bad input ------------------------------------------------------------------------------


def assert_one_line_error(
    capsys: pytest.CaptureFixture[str], code: int, message: str, expected_code: int = 1
) -> None:
    assert code == expected_code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sepconv: error: "), lines
    assert message in lines[0], lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path: Path, weights: Path, capsys):
    output = tmp_path / "out.mp4"

    def video(source: Path, *extra: object) -> int:
        return run("video", source, "-o", output, "-q", "--weights", weights, *extra)

    assert_one_line_error(capsys, video(tmp_path / "missing.mp4"), "no such file")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_one_line_error(capsys, video(empty), "empty")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_one_line_error(capsys, video(corrupt), "cannot read video")
    sound_only = write_audio_only(tmp_path / "sound.m4a")
    assert_one_line_error(capsys, video(sound_only), "no video stream")
    assert not output.exists()

    source = make_clip(tmp_path / "in.mov", moving_frames(3), audio=False)
    code = run("video", source, "-o", source, "-q", "--weights", weights)
    assert_one_line_error(capsys, code, "same file")
    output.write_bytes(b"keep")
    assert_one_line_error(capsys, video(source), "exists (use --force")
    assert output.read_bytes() == b"keep"
    code = video(source, "--fps", "30", "--factor", "4", "--force")
    assert_one_line_error(capsys, code, "give --factor or --fps, not both", expected_code=2)
    assert_one_line_error(capsys, video(source, "--codec", "nope", "--force"), "--codec")
    mkv = tmp_path / "x.mkv"
    code = run("video", source, "-o", mkv, "--codec", "png", "-q", "--weights", weights)
    assert_one_line_error(capsys, code, "cannot write png video into a .mkv file")
    assert not mkv.exists()
    assert output.read_bytes() == b"keep"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- image sequences ------------------------------------------------------------------------


def _png_folder(folder: Path, frames: list[np.ndarray]) -> tuple[Path, list[np.ndarray]]:
    from PIL import Image

    folder.mkdir()
    for index, array in enumerate(frames):
        Image.fromarray(array).save(folder / f"f{index:03d}.png")
    return folder, frames


def test_frames_command(tmp_path: Path, weights: Path, capsys):
    from PIL import Image

    folder, inputs = _png_folder(tmp_path / "in", moving_frames(4))
    output = tmp_path / "out"
    assert run("frames", folder, "-o", output, "--factor", "4", "-q", "--weights", weights) == 0
    written = sorted(output.glob("*.png"))
    assert [p.name for p in written] == [f"{k:06d}.png" for k in range(13)]  # (N-1)*4+1
    frames = [np.asarray(Image.open(p)) for p in written]
    for i in range(4):
        np.testing.assert_array_equal(frames[4 * i], inputs[i])
    for i in range(3):
        assert_close(frames[4 * i + 2], average(inputs[i], inputs[i + 1]))

    again = run("frames", folder, "-o", output, "-q", "--weights", weights)
    assert_one_line_error(capsys, again, "not empty")
    assert_one_line_error(capsys, run("frames", folder, "-o", folder, "--force"), "input folder")
    assert_one_line_error(capsys, run("frames", tmp_path / "none", "-o", output), "not a folder")


def test_frames_factor_three(tmp_path: Path, weights: Path, capsys):
    """Frame i is at time i, output frame k at time k / 3: new frames at 3/8 and 5/8."""
    from PIL import Image

    folder, inputs = _png_folder(tmp_path / "in", moving_frames(4))
    output = tmp_path / "out"
    assert run("frames", folder, "-o", output, "--factor", "3", "-q", "--weights", weights) == 0
    assert capsys.readouterr().err == ""
    written = sorted(output.glob("*.png"))
    assert [p.name for p in written] == [f"{k:06d}.png" for k in range(10)]  # (N-1)*3+1
    frames = [np.asarray(Image.open(p)) for p in written]
    for i in range(4):
        np.testing.assert_array_equal(frames[3 * i], inputs[i])
    for i in range(3):  # from the pair (i, i + 1), in order
        assert_close(frames[3 * i + 1], mix(inputs[i], inputs[i + 1], 3))
        assert_close(frames[3 * i + 2], mix(inputs[i], inputs[i + 1], 5))

    coarse = tmp_path / "coarse"
    args = ("frames", folder, "-o", coarse, "--factor", "3", "--levels", "1")
    assert run(*args, "--weights", weights) == 0
    err = capsys.readouterr().err
    assert (
        "sepconv: --factor 3 is not a power of two: each new frame is shown at the nearest 1/2 "
        "of its input frame interval (--levels 1); largest timing error 1/6 of an interval; "
        "only 1 new picture per interval, so some repeat (--levels 2 avoids that)\n"
    ) in err  # no rate: no milliseconds
    frames = [np.asarray(Image.open(p)) for p in sorted(coarse.glob("*.png"))]
    assert len(frames) == 10
    for i in range(3):  # one level: both new frames are the midpoint
        assert_close(frames[3 * i + 1], average(inputs[i], inputs[i + 1]))
        np.testing.assert_array_equal(frames[3 * i + 2], frames[3 * i + 1])


def test_a_flow_guided_model_converts_a_clip(tmp_path: Path):
    """The second family through `sepconv video`: a new flow model is the DIS baseline, so
    the new frames are the flow interpolation of their neighbours."""
    pytest.importorskip("cv2")
    from conftest import make_flow_model

    from sepconv.baselines import make_flow_predictor
    from sepconv.models.checkpoint import save_safetensors

    weights = tmp_path / "flow.safetensors"
    save_safetensors(weights, make_flow_model())
    source = make_clip(tmp_path / "in.mov", moving_frames(6), audio=False)
    inputs, _ = decode(source)
    output = tmp_path / "out.mov"
    code = run("video", source, "-o", output, "--codec", "png", "-q", "--weights", weights)
    assert code == 0
    frames, _ = decode(output)
    assert len(frames) == 12
    predict = make_flow_predictor()
    for i in range(5):
        np.testing.assert_array_equal(frames[2 * i], inputs[i])
        assert_close(frames[2 * i + 1], predict(inputs[i], inputs[i + 1]), tolerance=2.0)
