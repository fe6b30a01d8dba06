"""Command line: thin commands over :class:`sepconv.inference.Interpolator` and evaluate().

Exit codes: 0 success, 1 failed work (bad input, missing weights...), 2 usage error,
130 interrupted (Ctrl-C). Errors are one line on stderr; set SEPCONV_DEBUG=1 for tracebacks.
Heavy imports (torch) happen inside the commands so ``--help`` and ``--version`` are instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sepconv import __version__
from sepconv.errors import InputError, SepconvError, UsageError
from sepconv.model_options import add_model_options, build_interpolator

if TYPE_CHECKING:
    from sepconv.engine.evaluate import EvalResult

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
METHODS = ("sepconv", "average", "flow", "flow-cubic", "prior")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepconv",
        description="Video frame interpolation by adaptive separable convolution (SepConv).",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage error, 130 interrupted. "
        "SEPCONV_DEBUG=1 shows tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"sepconv {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    interpolate = commands.add_parser(
        "interpolate",
        help="write the frame halfway between two images",
        description="Write the frame halfway between FIRST and SECOND. Grayscale, alpha and "
        "16-bit inputs keep their kind in the output.",
    )
    interpolate.add_argument("first", type=Path, help="first frame (PNG, JPEG, ...)")
    interpolate.add_argument("second", type=Path, help="second frame, same size")
    interpolate.add_argument("-o", "--output", type=Path, required=True, help="output image")
    interpolate.add_argument("--force", action="store_true", help="overwrite an existing output")
    interpolate.add_argument(
        "--time",
        type=float,
        default=0.5,
        metavar="T",
        help="where between the frames, in [0, 1] (default 0.5, the middle; 0 and 1 give back "
        "the inputs; other times need a model that takes t, such as --weights sepconv-motion)",
    )
    add_model_options(interpolate)
    interpolate.set_defaults(handler=_cmd_interpolate)

    evaluate = commands.add_parser(
        "eval",
        help="score a model (or a baseline) on Middlebury or a folder of triplets",
        description="Per-item and mean PSNR, SSIM and interpolation error (IE) on 8-bit RGB "
        "outputs, scored as in the authors' benchmark (scikit-image, data_range=255).",
    )
    evaluate.add_argument(
        "dataset",
        choices=("middlebury", "triplets"),
        help="middlebury: DIR/*/frame10,frame11 -> frame10i11; triplets: im1,im3 -> im2",
    )
    evaluate.add_argument("directory", type=Path, help="dataset folder")
    evaluate.add_argument(
        "--method",
        nargs="+",
        choices=METHODS,
        default=["sepconv"],
        help="sepconv (the model, default), and/or baselines scored in the same run: average "
        "of the frames, OpenCV DIS optical flow halfway with bilinear (flow) or bicubic "
        "(flow-cubic) warps, the motion prior of the --weights flow-guided model alone (prior)",
    )
    evaluate.add_argument(
        "--clips",
        nargs="+",
        metavar="NAME",
        help="triplets: only those cut from these clips (folders named CLIP_FRAME)",
    )
    evaluate.add_argument("--save", type=Path, metavar="DIR", help="keep the predictions here")
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    evaluate.add_argument(
        "--split",
        choices=("test", "train"),
        default=None,
        help="Vimeo-90k layout: use tri_testlist.txt / tri_trainlist.txt (default: every folder)",
    )
    evaluate.add_argument("--limit", type=int, default=None, help="only the first N items")
    evaluate.add_argument(
        "--align",
        action="store_true",
        help="score after removing the global sub-pixel translation between each output and "
        "the truth (at most 4 px; 4 px borders not scored): camera shake that two frames "
        "cannot predict. A diagnostic for hand-held footage, not comparable with published "
        "scores",
    )
    evaluate.add_argument(
        "--by-clip",
        action="store_true",
        help="also print the mean PSNR per clip (triplet folders named CLIP_FRAME), one "
        "column per method",
    )
    add_model_options(evaluate)
    evaluate.set_defaults(handler=_cmd_eval)

    from sepconv.commands_train import add_train_command
    from sepconv.commands_ui import add_ui_command
    from sepconv.commands_video import add_video_commands

    add_video_commands(commands)
    add_train_command(commands)
    add_ui_command(commands)

    weights = commands.add_parser("weights", help="list the named weights and which are installed")
    weights.set_defaults(handler=_cmd_weights)
    return parser


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from sepconv.imageio import check_output_path, read_image, write_image

    if not 0.0 <= args.time <= 1.0:
        raise UsageError(f"--time must be between 0 and 1, got {args.time:g}")
    output = check_output_path(args.output, [args.first, args.second], overwrite=args.force)
    first, first_info = read_image(args.first)
    second, second_info = read_image(args.second)
    if first.shape[:2] != second.shape[:2]:
        raise InputError(
            f"frames differ in size: {args.first} is {first.shape[1]}x{first.shape[0]}, "
            f"{args.second} is {second.shape[1]}x{second.shape[0]}"
        )
    interpolator = build_interpolator(args, max(first_info.bit_depth, second_info.bit_depth))
    if args.time not in (0.0, 0.5, 1.0) and not interpolator.takes_time:
        raise UsageError(
            f"--time {args.time:g} needs a model that takes t (--weights sepconv-motion); "
            "this one makes the middle frame only"
        )
    start = time.perf_counter()
    middle = interpolator.interpolate(first, second, args.time)
    elapsed = time.perf_counter() - start
    write_image(output, middle, first_info, overwrite=args.force)
    print(f"wrote {output} ({first.shape[1]}x{first.shape[0]}, {elapsed:.2f} s)", file=sys.stderr)
    return EXIT_OK


def _sepconv_predictor(interpolator: Any):
    import numpy as np

    def predict(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return interpolator.interpolate(first, second)

    return predict


def _method_predictor(method: str, args: argparse.Namespace) -> tuple[Any, str, Any]:
    """(predict, description, interpolator or None) of one ``--method``."""
    if method == "average":
        from sepconv.baselines import average_predictor

        return average_predictor, "average of the two frames", None
    if method == "prior":
        return _prior_predictor(args)
    if method in ("flow", "flow-cubic"):
        from sepconv.baselines import make_flow_predictor
        from sepconv.flow import FlowSettings

        interpolation = "cubic" if method == "flow-cubic" else "linear"
        predict = make_flow_predictor(FlowSettings(interpolation=interpolation))
        return predict, f"OpenCV DIS optical flow (medium), {interpolation} warps halfway", None
    interpolator = build_interpolator(args)
    described = (
        f"sepconv weights={args.weights or 'default'} padding={args.padding} "
        f"precision={interpolator.precision} ensemble={args.ensemble}"
    )
    return _sepconv_predictor(interpolator), described, interpolator


def _prior_predictor(args: argparse.Namespace) -> tuple[Any, str, None]:
    """``--method prior``: the motion prior of the ``--weights`` flow-guided model alone (what
    that model outputs at step 0), i.e. its DIS flow settings and warps, averaged."""
    from sepconv.baselines import make_flow_predictor
    from sepconv.models.checkpoint import load_weights
    from sepconv.weights import resolve_weights

    path, _ = resolve_weights(args.weights)
    config = load_weights(path).model.config
    if not hasattr(config, "flow_settings"):
        raise InputError(f"--method prior needs flow-guided weights; {path.name} is not")
    settings = config.flow_settings()
    described = (
        f"the motion prior of {args.weights or 'the default model'} alone: DIS {settings.preset}"
        f", finest scale {settings.finest_scale}"
        + (
            f", {settings.refinement_iterations} refinement iterations"
            if settings.refinement_iterations >= 0
            else ""
        )
        + f", {settings.interpolation} warps halfway"
        f" ({settings.halfway} halfway flow)"
    )
    return make_flow_predictor(settings), described, None


def _model_report(args: argparse.Namespace, interpolator: Any) -> dict[str, Any]:
    from sepconv.models.checkpoint import sha256_of

    # A registry entry's digest was checked when the weights loaded: no second read.
    digest = interpolator.weights_sha256 or sha256_of(interpolator.weights_path)
    return {
        "weights": args.weights or "default",
        "weights_sha256": digest,
        "padding": args.padding,
        "precision": interpolator.precision,
        "ensemble": args.ensemble,
        "tile": args.tile,
        "exact": args.exact,
        "device": str(interpolator.device),
    }


def _cmd_eval(args: argparse.Namespace) -> int:
    from sepconv.data.triplets import folder_triplets, middlebury_triplets, of_clips
    from sepconv.engine.evaluate import evaluate

    if args.dataset == "middlebury":
        items = middlebury_triplets(args.directory)
    else:
        items = folder_triplets(args.directory, split=args.split)
    if args.clips:
        items = of_clips(items, args.clips)
        if not items:
            raise InputError(f"no triplets of clips {', '.join(args.clips)} in {args.directory}")
    if args.limit is not None:
        items = items[: args.limit]
    methods = list(dict.fromkeys(args.method))  # each once, in the order given

    def progress(done: int, total: int, name: str) -> None:
        print(f"\r[{done}/{total}] {name[:40]:<40}", end="", file=sys.stderr, flush=True)

    reports: dict[str, dict[str, Any]] = {}
    results: dict[str, EvalResult] = {}
    for method in methods:
        predict, described, interpolator = _method_predictor(method, args)
        save_dir = args.save / method if args.save is not None and len(methods) > 1 else args.save
        result = evaluate(predict, items, save_dir=save_dir, progress=progress, align=args.align)
        print(file=sys.stderr)
        aligned = " (scored after global alignment)" if args.align else ""
        print(f"{args.dataset} {args.directory}: {described}{aligned}")
        print(result.to_table())
        report = {"method": method, "description": described}
        if interpolator is not None:
            report |= _model_report(args, interpolator)
        reports[method] = report | result.to_dict()
        results[method] = result
    if args.by_clip:
        print(_clip_table(results))
    if len(methods) > 1:
        means = ", ".join(f"{m} {r['mean']['psnr']:.2f} dB" for m, r in reports.items())
        print(f"mean PSNR: {means}")
    if args.json is not None:
        import torch

        from sepconv.imageio import atomic_write

        payload: dict[str, Any] = {
            "dataset": args.dataset,
            "directory": str(args.directory),
            "clips": args.clips,
            "align": args.align,
            "sepconv_version": __version__,
            "torch_version": torch.__version__,
        }
        # The first method's fields at the top level (as with a single method); every
        # method's under "methods".
        payload |= reports[methods[0]]
        payload["methods"] = reports
        with atomic_write(args.json) as temporary:
            Path(temporary).write_text(json.dumps(payload, indent=2))
    return EXIT_OK


def _clip_table(results: dict[str, EvalResult]) -> str:
    """Mean PSNR per clip (rows) and method (columns), then the count of triplets per clip."""
    per_method = [result.by_clip() for result in results.values()]
    clips = per_method[0]  # every method scored the same items
    width = max(len("clip"), *(len(clip) for clip in clips))
    columns = [max(len(method), 7) for method in results]
    header = f"{'clip':<{width}}" + "".join(
        f"  {method:>{column}}" for method, column in zip(results, columns, strict=True)
    )
    lines = ["mean PSNR per clip:", header, "-" * (len(header) + 9)]
    for clip, group in clips.items():
        cells = "".join(
            f"  {by_clip[clip].psnr:>{column}.2f}"
            for by_clip, column in zip(per_method, columns, strict=True)
        )
        lines.append(f"{clip:<{width}}{cells}  ({len(group.rows)})")
    return "\n".join(lines)


def _cmd_weights(args: argparse.Namespace) -> int:
    from sepconv.weights import DEFAULT_WEIGHTS, list_weights, user_weights_dir

    rows = list_weights()
    print(f"{'name':<14} {'installed':<10} {'source':<8} {'Middlebury':<11} description")
    for row in rows:
        mark = "yes" if row.installed else "no"
        default = " (default)" if row.default else ""
        score = f"{row.spec.middlebury_psnr:.2f} dB" if row.spec.middlebury_psnr else "-"
        print(
            f"{row.spec.name:<14} {mark:<10} {row.spec.source:<8} {score:<11} "
            f"{row.spec.description}{default}"
        )
        print(f"{'':<14} {'':<10} {'':<8} {'':<11} file: {row.path}")
    if DEFAULT_WEIGHTS is None:
        print("no trained weights are bundled with this version yet; pass --weights to commands")
    print(f"authors' files are looked for in {user_weights_dir()} (set SEPCONV_WEIGHTS_DIR)")
    return EXIT_OK


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _install_warning_format() -> None:
    """Show our own warnings (e.g. the out-of-memory fallback to tiles) as one stderr line;
    others as before."""
    original = warnings.showwarning
    if getattr(original, "sepconv", False):
        return

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if category.__name__ == "OutOfMemoryFallbackWarning":
            print(f"sepconv: warning: {message}", file=sys.stderr)
            return
        original(message, category, filename, lineno, file, line)

    show.sepconv = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _discard_stdout() -> None:
    """Point standard output at the null device (after its reader went away)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture): nothing is flushed to a closed pipe


def main(argv: Sequence[str] | None = None) -> int:
    _install_warning_format()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    debug = os.environ.get("SEPCONV_DEBUG") == "1"
    try:
        return args.handler(args)
    except SepconvError as error:
        if debug:
            raise
        print(f"sepconv: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sepconv: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read standard output stopped (`sepconv weights | head -2`): nothing to say,
        # and Python's own flush at exit must not fail on the closed pipe either.
        _discard_stdout()
        return EXIT_FAILED
    except MemoryError:
        print("sepconv: error: out of memory; try --tile 512", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - last resort: one line, no traceback
        if debug:
            raise
        text = str(error).lower()
        if type(error).__name__ == "OutOfMemoryError" or any(
            sign in text for sign in ("out of memory", "not enough memory", "can't allocate memory")
        ):
            print("sepconv: error: out of memory; try --tile 512", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"sepconv: internal error: {type(error).__name__}: {_one_line(error)[:300]} "
            "(SEPCONV_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
