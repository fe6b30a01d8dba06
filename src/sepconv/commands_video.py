"""The ``sepconv video`` and ``sepconv frames`` commands (frame-rate conversion).

``add_video_commands(commands)`` adds both to the CLI's sub-parsers; the work is done by
:mod:`sepconv.video`. Heavy imports (torch, av) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

from sepconv.errors import (
    InputError,
    OutputError,
    SepconvError,
    UsageError,
    WorkInterruptedError,
)
from sepconv.model_options import add_model_options, build_interpolator, check_model_options

NTSC_BASES = (24, 30, 48, 60, 120, 240)
MAX_LEVELS = 6  # --levels 1-6
MAX_RATE = 10000  # --fps at most

VIDEO_DESCRIPTION = """\
Convert the frame rate of a video with SepConv. Reads anything FFmpeg can read; writes a new
file (the container comes from OUTPUT's extension).

--factor F (default 2; any whole number >= 2): output at F x the input rate, same duration.
Each input frame is followed by F - 1 new frames; after the last input frame the last picture
is held for F - 1 frames, so N input frames give N * F output frames and the duration (and
audio sync) is kept. With a power of two (2, 4, 8, 16...) the new frames are exact midpoints;
any other F (3, 5, 6...) is timed as with --fps F x the input rate: each new frame is the
nearest point of the midpoint tree, --levels deep, and a line says how far off that is.

--fps RATE: output at any rate (24, 59.94, 60000/1001...): output frame k is shown at
start + k / RATE and is the nearest point of the midpoint tree built between the two input
frames around that time, interpolated --levels deep (default 3). The timing error is at most
1 / 2**(levels + 1) of the input frame interval (1/16 by default: 2.6 ms at 24 fps); times
that are exact midpoints (as with a power-of-two --factor on a constant-rate input) are exact.

--slowmo: keep the input frame rate, so the clip plays F times slower (audio is dropped).

Timestamps, not frame counts, place the frames, so variable-rate input works. Scene cuts
(mean difference of blurred thumbnails above --scene-threshold) are never morphed across:
the frame before the cut is held. Runs of duplicate frames (animation on twos, screen
captures) count as one picture at the time of their first frame, and new frames are made
across them; a run longer than 4 frames is a freeze and is held. Audio and subtitle streams
are copied unchanged.

The output appears only when complete (a temporary file renamed at the end). Finished work is
kept in a hidden folder next to OUTPUT: encoded segments of --segment frames, and every new
frame of the segment in progress as a PNG. After Ctrl-C (which stops after the batch of frame
pairs in flight) or a crash, the same command with --resume continues from the last finished
batch, and the result is the same file as an uninterrupted run.
"""


def parse_rate(text: str) -> Fraction:
    """Parse a frame rate: ``60``, ``59.94`` (read as 60000/1001), ``60000/1001``."""
    try:
        if "/" in text:
            numerator, denominator = text.split("/", 1)
            rate = Fraction(int(numerator), int(denominator))
        else:
            rate = Fraction(text)
            if "." in text:
                for base in NTSC_BASES:
                    ntsc = Fraction(base * 1000, 1001)
                    if abs(rate - ntsc) < Fraction(1, 100):
                        rate = ntsc
                        break
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"invalid frame rate {text!r} (use 60, 59.94 or 60000/1001)"
        ) from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"frame rate must be positive, got {text}")
    if rate > MAX_RATE:
        raise argparse.ArgumentTypeError(f"frame rate must be at most {MAX_RATE}, got {text}")
    return rate


def _whole_number_at_least(minimum: int):
    """An argparse type: a whole number >= `minimum`, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole_number_at_least(1)
_factor = _whole_number_at_least(2)  # the type of --factor
DEFAULT_ADAPT_SECONDS = 60.0
ADAPT_READ_SECONDS = 15.0  # reading the input's frames for --adapt stops after this...
ADAPT_READ_SHARE = 0.2  # ...or after this share of the budget, which covers the reading too


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def factor_timing_note(factor: int, levels: int, input_rate: Fraction | None = None) -> str:
    """The line shown for a ``--factor`` that is not a power of two: how exact its timing is.

    ``input_rate`` (frames per second, None when unknown or for image sequences) adds the
    error in milliseconds.
    """
    from sepconv.video import factor_timing_error

    steps = 2**levels
    error = factor_timing_error(factor, levels)
    text = (
        f"sepconv: --factor {factor} is not a power of two: each new frame is shown at the "
        f"nearest 1/{steps} of its input frame interval (--levels {levels}); largest timing "
        f"error {error} of an interval"
    )
    if input_rate is not None and input_rate > 0:
        text += f" ({float(error / input_rate) * 1000:.2f} ms at {float(input_rate):.6g} fps)"
    if steps < factor:
        needed = (factor - 1).bit_length()
        pictures = "picture" if steps == 2 else "pictures"
        text += f"; only {steps - 1} new {pictures} per interval, so some repeat"
        if needed <= MAX_LEVELS:
            text += f" (--levels {needed} avoids that)"
    return text


def _add_levels(parser: argparse.ArgumentParser, *, fps: bool) -> None:
    """Add ``--levels`` (``fps``: the parser also has ``--fps``, which uses it too)."""
    used = "a --factor that is not a power of two"
    if fps:
        used = f"--fps or {used}"
    parser.add_argument(
        "--levels",
        type=int,
        choices=range(1, MAX_LEVELS + 1),
        default=3,
        metavar="L",
        help=f"with {used}: midpoint-tree depth (1-{MAX_LEVELS}); timing error <= 1/2**(L+1) of an "
        "input frame interval (default: 3)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scene-threshold",
        type=float,
        default=0.12,
        metavar="X",
        help="scene-cut threshold: mean absolute difference (0..1) of block-averaged "
        "thumbnails (16 blocks wide) of consecutive frames; above it nothing is interpolated "
        "across (default: 0.12)",
    )
    parser.add_argument(
        "--dup-threshold",
        type=float,
        default=0.004,
        metavar="X",
        help="frames whose 8x8 blocks all differ by at most X (0..1) from the previous frame "
        "are duplicates; 0: exact duplicates only; negative: off (default: 0.004)",
    )
    parser.add_argument(
        "--batch",
        type=_positive_int,
        default=2,
        metavar="N",
        help="frame pairs interpolated together (more is faster on GPUs, uses more memory)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    adapting = parser.add_argument_group(
        "adaptation to the input",
        # Wrapped here: the video command's raw description formatter keeps line breaks as is.
        "--adapt fine-tunes a copy of the model on triplets of neighbouring frames of\n"
        "the input itself before interpolating it. A few of them are held out, and the\n"
        "adapted weights are used only if they interpolate those better than the given\n"
        "weights; one line says which way it went. The weights file is never changed.",
    )
    adapting.add_argument(
        "--adapt",
        type=_positive_seconds,
        nargs="?",
        const=DEFAULT_ADAPT_SECONDS,
        default=None,
        metavar="SECONDS",
        help=f"adapt for about SECONDS (default: {DEFAULT_ADAPT_SECONDS:g}) before interpolating",
    )
    adapting.add_argument(
        "--adapt-steps",
        type=_positive_int,
        default=None,
        metavar="N",
        help="at most N adaptation steps (the budget alone makes the step count depend on the "
        "machine; N and --adapt-seed reproduce an adaptation exactly)",
    )
    adapting.add_argument(
        "--adapt-seed", type=int, default=0, metavar="S", help="adaptation seed (default: 0)"
    )
    adapting.add_argument(
        "--save-adapted",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the weights used after adaptation to PATH (safetensors; metadata "
        "names the input's sha256 and the budget); reuse them with --weights PATH",
    )


def add_video_commands(commands: argparse._SubParsersAction) -> None:
    """Add the ``video`` and ``frames`` commands to the CLI's sub-parsers."""
    video = commands.add_parser(
        "video",
        help="convert a video's frame rate (2x, 4x, 8x, any fps, slow motion)",
        description=VIDEO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    video.add_argument("input", type=Path, help="input video (any format FFmpeg reads)")
    video.add_argument(
        "-o", "--output", type=Path, required=True, help="output video (.mp4, .mkv, .mov, ...)"
    )
    video.add_argument(
        "--factor",
        type=_factor,
        default=None,
        metavar="F",
        help="frame-rate multiplier, a whole number >= 2: N input frames -> N x F output "
        "frames, the last one held; powers of two are exact, other factors are timed like "
        "--fps (see --levels) (default: 2)",
    )
    video.add_argument(
        "--fps",
        type=parse_rate,
        metavar="RATE",
        help="output frame rate instead of --factor (60, 59.94, 60000/1001)",
    )
    _add_levels(video, fps=True)
    video.add_argument(
        "--slowmo",
        action="store_true",
        help="keep the input frame rate: plays F times slower, without audio",
    )
    video.add_argument(
        "--codec",
        default="libx264",
        help="video encoder: libx264 (default), libx265, mpeg4, ffv1 (lossless; .mkv, .nut) "
        "or png (lossless; .mov, .nut)",
    )
    video.add_argument(
        "--crf",
        type=int,
        default=18,
        metavar="N",
        help="libx264/libx265 quality, 0 (lossless) to 51 (default: 18)",
    )
    video.add_argument(
        "--preset",
        default="medium",
        help="libx264/libx265 speed preset (ultrafast ... veryslow; default: medium)",
    )
    video.add_argument(
        "--no-audio", action="store_true", help="do not copy audio and subtitle streams"
    )
    video.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted conversion with the same input and options",
    )
    video.add_argument(
        "--segment",
        type=_positive_int,
        default=240,
        metavar="N",
        help="output frames per encoded segment, each starting with a keyframe (default: "
        "240); --resume also keeps the finished frames of the segment in progress",
    )
    _add_common(video)
    add_model_options(video)
    video.set_defaults(handler=cmd_video)

    frames = commands.add_parser(
        "frames",
        help="interpolate a folder of PNG frames",
        description="Interpolate an image sequence: the .png files of INPUT, sorted by name, "
        "give (N - 1) x F + 1 frames written to OUTPUT as 000000.png, 000001.png, ... "
        "(the input frames are outputs 0, F, 2F, ...; input frame i is at time i, output "
        "frame k at time k / F). Scene cuts and duplicates are handled as by `sepconv video`, "
        "and so is a factor that is not a power of two (see --levels).",
    )
    frames.add_argument("input", type=Path, help="folder of .png frames")
    frames.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    frames.add_argument(
        "--factor",
        type=_factor,
        default=2,
        metavar="F",
        help="frame multiplier, a whole number >= 2 (default: 2)",
    )
    _add_levels(frames, fps=False)
    _add_common(frames)
    add_model_options(frames)
    frames.set_defaults(handler=cmd_frames)


def _model_key(args: argparse.Namespace) -> dict[str, Any]:
    """What identifies the model for resuming (a weights file by path, size and time)."""
    key: dict[str, Any] = {
        "weights": args.weights,
        "precision": args.precision,
        "padding": args.padding,
        "tile": args.tile,
        "ensemble": args.ensemble,
        "adapt": [args.adapt, args.adapt_steps, args.adapt_seed],
    }
    if args.weights is not None:
        path = Path(args.weights)
        if path.is_file():
            stat = path.stat()
            key["weights"] = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    return key


def _check_thresholds(args: argparse.Namespace) -> None:
    """Refuse (exit 2) options out of range or that need another, before any input is read."""
    check_model_options(args)
    if not 0.0 <= args.scene_threshold <= 1.0:
        raise UsageError("--scene-threshold must be between 0 and 1")
    if args.dup_threshold > 1.0:
        raise UsageError("--dup-threshold must be at most 1")
    if args.adapt is None and (args.save_adapted is not None or args.adapt_steps is not None):
        raise UsageError("--save-adapted and --adapt-steps need --adapt")


def _check_save_adapted(args: argparse.Namespace) -> None:
    """Refuse a --save-adapted path that is an input, the weights in use, or exists."""
    if args.save_adapted is None:
        return
    from sepconv.imageio import check_output_path, check_writable
    from sepconv.weights import resolve_weights

    try:
        weights_path, _ = resolve_weights(args.weights)
        protected = [args.input, weights_path]
    except SepconvError:
        protected = [args.input]  # the model's own error comes when it loads
    args.save_adapted = check_output_path(args.save_adapted, protected, overwrite=args.force)
    check_writable(args.save_adapted)


def adapt_work_folder(output: Path) -> Path:
    """The hidden folder next to ``output`` where --adapt keeps its checkpoint."""
    return output.parent / f".{output.name}.sepconv-adapt"


def _adapt(
    args: argparse.Namespace, interpolator: Any, read_clip: Callable[..., Any], work: Path | None
) -> Any:
    """Read the input's windows with ``read_clip(max_seconds=...)`` and run --adapt on them
    (the reading counts against the budget); print its line; write --save-adapted; return the
    interpolator to use."""
    from sepconv.engine.adapt import AdaptSettings, adapt, save_adapted

    settings = AdaptSettings(seconds=args.adapt, steps=args.adapt_steps, seed=args.adapt_seed)
    reading_started = time.perf_counter()
    try:
        clip = read_clip(max_seconds=min(ADAPT_READ_SECONDS, ADAPT_READ_SHARE * args.adapt))
    except KeyboardInterrupt:
        raise WorkInterruptedError("interrupted; nothing written") from None
    try:
        result = adapt(
            interpolator,
            clip,
            settings,
            work_dir=work,
            resume=args.resume,
            quiet=args.quiet,
            reading_seconds=time.perf_counter() - reading_started,
        )
    except KeyboardInterrupt:
        raise WorkInterruptedError("interrupted during adaptation; nothing written") from None
    if not args.quiet:
        print(f"sepconv: {result.summary}", file=sys.stderr)
    if args.save_adapted is not None:
        try:
            save_adapted(
                args.save_adapted,
                result,
                clip_sha256=_input_sha256(args.input),
                base_weights=str(interpolator.weights_path or args.weights or ""),
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise OutputError(f"cannot write {args.save_adapted}: {reason}") from None
    return result.interpolator


def _input_sha256(path: Path) -> str:
    """sha256 of a video file; of an image sequence, sha256 of its frames' digests in order."""
    from sepconv.models.checkpoint import sha256_of
    from sepconv.video import list_sequence

    if path.is_file():
        return sha256_of(path)
    digest = hashlib.sha256()
    for frame in list_sequence(path):
        digest.update(bytes.fromhex(sha256_of(frame)))
    return digest.hexdigest()


def interrupted_message(stop: KeyboardInterrupt) -> str:
    """What an interrupted ``sepconv video`` says: exactly how much a ``--resume`` keeps."""
    kept = getattr(stop, "kept", 0)
    if not kept:
        return "interrupted before any output frame was finished: nothing is kept"
    total, work = getattr(stop, "total", "?"), getattr(stop, "work", "the work folder")
    return (
        f"interrupted: {kept} of {total} output frames are finished and kept in {work}; "
        "run the same command with --resume to continue from there"
    )


def cmd_video(args: argparse.Namespace) -> int:
    """Handler of ``sepconv video``."""
    import av

    from sepconv.imageio import check_output_path, check_writable
    from sepconv.video import (
        EncoderSettings,
        VideoJob,
        check_codec_container,
        convert_video,
        is_power_of_two,
        open_input,
        stream_rate,
    )

    _check_thresholds(args)
    if args.fps is not None and args.factor is not None:
        raise UsageError("give --factor or --fps, not both")
    if args.fps is not None and args.slowmo:
        raise UsageError("--slowmo works with --factor (it keeps the input frame rate)")
    if not 0 <= args.crf <= 51:
        raise UsageError("--crf must be between 0 and 51")
    output = check_output_path(args.output, [args.input], overwrite=args.force)
    check_codec_container(output, args.codec)
    check_writable(output)
    with open_input(args.input) as container:  # bad input fails here, before the model loads
        input_rate = stream_rate(container.streams.video[0])
    factor = args.factor or 2

    job = VideoJob(
        factor=factor,
        fps=args.fps,
        slowmo=args.slowmo,
        levels=args.levels,
        scene_threshold=args.scene_threshold,
        dup_threshold=args.dup_threshold,
        segment_frames=args.segment,
        batch_pairs=args.batch,
        copy_audio=not args.no_audio,
        encoder=EncoderSettings(codec=args.codec, crf=args.crf, preset=args.preset),
    )
    _check_save_adapted(args)
    interpolator = build_interpolator(args)
    # A model that takes t makes every frame at its exact time; the others round times to
    # the midpoint tree (and say so for a factor that is not a power of two).
    job = dataclasses.replace(job, exact_times=interpolator.takes_time)
    if not job.exact_times and args.fps is None and not is_power_of_two(factor) and not args.quiet:
        print(factor_timing_note(factor, args.levels, input_rate), file=sys.stderr)
    start = time.perf_counter()
    work = adapt_work_folder(output)
    if args.adapt is not None:
        from sepconv.video import video_windows

        interpolator = _adapt(args, interpolator, partial(video_windows, args.input), work)
    try:
        summary = convert_video(
            args.input,
            output,
            interpolator.interpolate_tensor,
            job,
            resume=args.resume,
            overwrite=args.force,
            quiet=args.quiet,
            key_extra=_model_key(args),
        )
    except KeyboardInterrupt as stop:
        raise WorkInterruptedError(interrupted_message(stop)) from None
    except av.error.FFmpegError as error:
        raise OutputError(f"cannot encode {args.output}: {error}") from None
    shutil.rmtree(work, ignore_errors=True)
    if not args.quiet:
        elapsed = time.perf_counter() - start
        rate = summary["rate"]
        print(
            f"wrote {args.output}: {summary['frames']} frames at {float(rate):.6g} fps "
            f"from {summary['input_frames']} ({summary['cuts']} scene cuts, "
            f"{summary['duplicates']} duplicates; max timing error "
            f"{float(summary['max_timing_error']) * 1000:.2f} ms) in {elapsed:.1f} s",
            file=sys.stderr,
        )
    return 0


def cmd_frames(args: argparse.Namespace) -> int:
    """Handler of ``sepconv frames``."""
    from sepconv.imageio import check_writable
    from sepconv.video import convert_sequence, is_power_of_two, list_sequence

    _check_thresholds(args)
    files = list_sequence(args.input)
    output: Path = args.output
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is not a folder")
    try:
        same = output.resolve() == args.input.resolve()
    except OSError:
        same = False
    if same:
        raise OutputError(f"output folder {output} is the input folder")
    if output.is_dir() and any(output.iterdir()) and not args.force:
        raise OutputError(f"{output} exists and is not empty (use --force to write into it)")
    if len(files) < 2:
        raise InputError(f"{args.input} has only one .png frame; need at least two")
    check_writable(output / f"{0:06d}.png")
    if not is_power_of_two(args.factor) and not args.quiet:
        print(factor_timing_note(args.factor, args.levels), file=sys.stderr)
    args.resume = False  # frames has no --resume: an adaptation starts afresh
    _check_save_adapted(args)
    interpolator = build_interpolator(args)
    start = time.perf_counter()
    if args.adapt is not None:
        from sepconv.video import sequence_windows

        interpolator = _adapt(args, interpolator, partial(sequence_windows, files), None)
    count = convert_sequence(
        files,
        output,
        interpolator.interpolate_tensor,
        args.factor,
        levels=args.levels,
        scene_threshold=args.scene_threshold,
        dup_threshold=args.dup_threshold,
        batch_pairs=args.batch,
        overwrite=True,
        quiet=args.quiet,
        exact_times=interpolator.takes_time,
    )
    if not args.quiet:
        print(
            f"wrote {count} frames to {output} from {len(files)} "
            f"in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    return 0
