"""CPU inference at 720p: the eager float32 reference pass against the fast path, one run.

Prints, on this machine and in this run:

  (a) the eager float32 reference pass: SepConvNet in float32 (default contiguous layout),
      the reference local convolution, 1280x720 padded to 1280x768, under torch.no_grad;
  (b) the fast path (Interpolator(optimize=True, precision=auto): channels_last, fused
      conv + ReLU in oneDNN, bfloat16 weights where the CPU has bfloat16, the compiled
      ``cpu`` local convolution) and its difference from (a) in 8-bit levels;
  (c) whole one-shot commands, wall time from process start to exit (start-up, model load,
      PNG reading and writing included): the CLI as it stands with the given flags, and the
      same steps with the fast path;
  (d) per-frame time with the model loaded once (what a video mode pays per frame);
  (e) peak resident memory of each process.

No trained weights exist yet, so by default the network is the authors' architecture with
plausible random weights (tests/authors_transcription.py); --weights FILE measures a real
model (the bfloat16 error depends on the kernels: peaked kernels show it more). The frames
are Middlebury Urban2 ($SEPCONV_DATA, else ../shared/data) resized to 1280x720, or smooth
synthetic frames when that is absent.
Every time is the best and the median over --repeat rounds, each round running every
measurement once (so that load from other work on a shared machine falls on all of them
alike; such load only ever makes a run slower).

    python benchmarks/bench_cpu.py                 # about 2-3 minutes on 2 cores
    python benchmarks/bench_cpu.py --repeat 5 --pairs 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, URBAN2, missing_data, peak_rss

WIDTH, HEIGHT = 1280, 720


def _stats(seconds: list[float]) -> dict:
    return {
        "best_ms": round(min(seconds) * 1000, 1),
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "runs": len(seconds),
        "seconds": seconds,
    }


def _merge(rounds: list[dict], *keys: str) -> dict:
    """Stats over every run of every round of the measurement rounds[i][keys...]."""
    seconds = []
    for result in rounds:
        for key in keys:
            result = result[key]
        seconds += result["seconds"]
    return _stats(seconds)


def _frames(directory: Path):
    """Two 720p uint8 RGB frames (and where they came from)."""
    import numpy as np
    from PIL import Image

    if (URBAN2 / "frame10.png").exists():
        frames = [
            np.asarray(
                Image.open(URBAN2 / name).convert("RGB").resize((WIDTH, HEIGHT), Image.BICUBIC)
            )
            for name in ("frame10.png", "frame11.png")
        ]
        source = f"{URBAN2} resized to {WIDTH}x{HEIGHT}"
    else:  # smooth synthetic frames, the second shifted by 3 pixels
        y, x = np.mgrid[0:HEIGHT, 0 : WIDTH + 3].astype(np.float32)
        image = np.stack([np.sin(x / 37.0), np.cos(y / 23.0), np.sin((x + y) / 51.0)], axis=2)
        image = np.rint((image * 0.5 + 0.5) * 255).astype(np.uint8)
        frames = [image[:, :WIDTH].copy(), image[:, 3:].copy()]
        source = f"synthetic ({missing_data(URBAN2)})"
    paths = []
    for index, frame in enumerate(frames):
        path = directory / f"frame{index}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return frames, paths, source


def _model(weights: Path):
    from sepconv.models.checkpoint import load_weights

    return load_weights(weights).model


def child_reference(work: Path, repeat: int, weights: Path) -> dict:
    """(a): eager float32 reference pass on the padded 1280x768 canvas."""
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812

    frames, _, _ = _frames(work)
    model = _model(weights).eval()
    first, second = (
        torch.from_numpy(frame.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        for frame in frames
    )
    pad = [0, 0, 0, 768 - HEIGHT]  # the Interpolator's "improved" padding: right/bottom to 128
    first, second = (F.pad(frame, pad, mode="replicate") for frame in (first, second))
    seconds, network, local = [], [], []
    with torch.no_grad():
        for _ in range(repeat):  # model(first, second), timed in its two halves
            start = time.perf_counter()
            kernels = model.predict_kernels(first, second)
            middle_start = time.perf_counter()
            middle = model.synthesize(first, second, kernels, backend="reference")
            end = time.perf_counter()
            seconds.append(end - start)
            network.append(middle_start - start)
            local.append(end - middle_start)
    middle = middle[0, :, :HEIGHT, :WIDTH].clamp(0, 1).permute(1, 2, 0).numpy()
    np.save(work / "reference.npy", middle)
    return {
        "reference": _stats(seconds),
        "network": _stats(network),
        "local_conv": _stats(local),
        "peak_rss_mib": round(peak_rss() / 2**20),
    }


def child_fast(work: Path, repeat: int, pairs: int, precision: str, weights: Path) -> dict:
    """(b) and (d): the fast path through the Interpolator, the model loaded once."""
    import numpy as np
    import torch

    from sepconv.inference import Interpolator

    frames, _, _ = _frames(work)
    start = time.perf_counter()
    interpolator = Interpolator(_model(weights), device="cpu", precision=precision, optimize=True)
    setup = time.perf_counter() - start
    first, second = frames
    start = time.perf_counter()
    middle = interpolator.interpolate(first / 255.0, second / 255.0)  # float out: no rounding
    first_call = time.perf_counter() - start
    np.save(work / "fast.npy", middle.astype(np.float32))
    single = []
    for _ in range(repeat):
        start = time.perf_counter()
        interpolator.interpolate(first, second)
        single.append(time.perf_counter() - start)
    # Video mode: consecutive pairs of a sequence (here: the pair, shifted by k pixels).
    video = []
    for k in range(pairs):
        a, b = (np.ascontiguousarray(np.roll(frame, k, axis=1)) for frame in frames)
        start = time.perf_counter()
        interpolator.interpolate(a, b)
        video.append(time.perf_counter() - start)
    return {
        "precision": interpolator.precision,
        "local_conv_backend": interpolator._synthesis_backend,
        "setup_ms": round(setup * 1000, 1),
        "first_call_ms": round(first_call * 1000, 1),
        "fast": _stats(single),
        "video_per_frame": _stats(video),
        "threads": torch.get_num_threads(),
        "peak_rss_mib": round(peak_rss() / 2**20),
    }


FAST_ONE_SHOT = """
import sys, time
from pathlib import Path
from sepconv.imageio import read_image, write_image
from sepconv.inference import Interpolator
first, info = read_image(Path(sys.argv[1]))
second, _ = read_image(Path(sys.argv[2]))
interpolator = Interpolator.from_weights(sys.argv[4], precision=sys.argv[5], optimize=True)
write_image(Path(sys.argv[3]), interpolator.interpolate(first, second), info, overwrite=True)
"""


def _timed_process(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) of one child process, and its stderr."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024, stderr.strip()


def _cpu_description() -> tuple[str, str]:
    model, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")
                    flags = " ".join(flag for flag in line.split() if flag in wanted)
    except OSError:
        pass
    return model, flags


def _child(mode: str, work: Path, weights: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--work", str(work)]
    command += ["--weights", str(weights)]
    command += ["--repeat", str(args.repeat), "--pairs", str(args.pairs)]
    command += ["--precision", args.precision]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (runs per measurement)")
    parser.add_argument("--pairs", type=int, default=4, help="frame pairs in the video loop")
    parser.add_argument("--precision", default="auto", help="fast path precision (auto)")
    parser.add_argument(
        "--cli-args",
        default="--precision bfloat16",
        help="flags for the `sepconv interpolate` run (c1), e.g. the fast defaults once the "
        "CLI has them",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        help="weights file (e.g. trained weights; default: plausible random weights)",
    )
    parser.add_argument("--child", choices=("reference", "fast"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "reference":
        print(json.dumps(child_reference(args.work, 1, args.weights)))
        return
    if args.child == "fast":
        print(json.dumps(child_fast(args.work, 1, args.pairs, args.precision, args.weights)))
        return

    import numpy as np
    import torch

    import sepconv
    from sepconv.inference import cpu_has_bfloat16

    model_name, flags = _cpu_description()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"# {started}; python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{np.__version__}, sepconv {sepconv.__version__}"
    )
    print(f"# CPU: {model_name}, {os.cpu_count()} logical CPUs; flags: {flags}")
    print(
        f"# torch threads {torch.get_num_threads()}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bf16: {cpu_has_bfloat16()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        frames, paths, source = _frames(work)
        if args.weights is not None:
            weights = args.weights.resolve()
            described = f"weights {weights}"
        else:  # no trained weights ship yet: the authors' architecture, random weights
            weights = work / "network-bench.pytorch"
            sys.path.insert(0, str(REPO / "tests"))
            from authors_transcription import plausible_random_state_dict

            torch.save(plausible_random_state_dict(seed=0), weights)
            described = "authors' architecture, plausible random weights"
        print(f"# frames: {source}; network: {described}")

        python = [sys.executable]
        out = work / "middle.png"
        cli = [*python, "-m", "sepconv", "interpolate", str(paths[0]), str(paths[1])]
        cli += ["-o", str(out), "--force", "--weights", str(weights), *args.cli_args.split()]
        fast_command = [*python, "-c", FAST_ONE_SHOT, str(paths[0]), str(paths[1]), str(out)]
        fast_command += [str(weights), args.precision]
        probes = {
            "import torch": [*python, "-c", "import torch"],
            "sepconv --help": [*python, "-m", "sepconv", "--help"],
            "cli": cli,
            "fast": fast_command,
        }
        # Rounds: every measurement once per round, so load from other work on a shared
        # machine falls on all of them alike; best and median over the rounds.
        timed: dict[str, list[tuple[float, float, str]]] = {name: [] for name in probes}
        references, fasts = [], []
        for _ in range(args.repeat):
            references.append(_child("reference", work, weights, args))
            fasts.append(_child("fast", work, weights, args))
            for name, command in probes.items():
                timed[name].append(_timed_process(command))

        def summary(name: str) -> dict:
            runs = timed[name]
            return {
                **_stats([seconds for seconds, _, _ in runs]),
                "peak_rss_mib": round(max(rss for _, rss, _ in runs)),
                "said": runs[-1][2].splitlines()[-1] if runs[-1][2] else "",
            }

        startup = {
            "import torch": summary("import torch"),
            "sepconv --help": summary("sepconv --help"),
        }
        one_shot_cli, one_shot_fast = summary("cli"), summary("fast")
        reference = {
            "reference": _merge(references, "reference"),
            "network": _merge(references, "network"),
            "local_conv": _merge(references, "local_conv"),
            "peak_rss_mib": max(result["peak_rss_mib"] for result in references),
        }
        fast = {
            **fasts[-1],
            "fast": _merge(fasts, "fast"),
            "video_per_frame": _merge(fasts, "video_per_frame"),
            "peak_rss_mib": max(result["peak_rss_mib"] for result in fasts),
        }

        # Kernel build on an empty cache (paid once per machine).
        build_env = {**os.environ, "SEPCONV_CACHE_DIR": str(work / "kernel-cache")}
        build = _timed_process(
            [
                *python,
                "-c",
                "from sepconv.ops.cpu import cpu_kernel_available as a; assert a()",
            ],
            env=build_env,
        )
        warm = _timed_process(
            [*python, "-c", "from sepconv.ops.cpu import cpu_kernel_available as a; assert a()"]
        )

        expected = np.load(work / "reference.npy") * 255.0
        actual = np.load(work / "fast.npy") * 255.0
        raw = np.abs(actual - expected)
        levels = np.abs(np.rint(actual).astype(int) - np.rint(expected).astype(int))

    ref_best = reference["reference"]["best_ms"]
    print()
    print(f"{'measurement':<62} {'best ms':>9} {'median ms':>10} {'peak RSS MiB':>13}")

    def row(name: str, stats: dict, rss: float | None = None) -> None:
        rss_text = f"{rss:>13.0f}" if rss is not None else f"{'':>13}"
        print(f"{name:<62} {stats['best_ms']:>9.1f} {stats['median_ms']:>10.1f} {rss_text}")

    row("start-up: python -c 'import torch'", startup["import torch"])
    row("start-up: python -m sepconv --help", startup["sepconv --help"])
    row(
        "(a) eager fp32 reference pass, 720p (process peak)",
        reference["reference"],
        reference["peak_rss_mib"],
    )
    row("    of which the network (predict_kernels)", reference["network"])
    row("    of which the two reference local convolutions", reference["local_conv"])
    row(
        f"(b) fast path: {fast['precision']}, local conv '{fast['local_conv_backend']}'",
        fast["fast"],
    )
    row(f"(c1) sepconv interpolate {args.cli_args}", one_shot_cli, one_shot_cli["peak_rss_mib"])
    row("(c2) one-shot command, fast path", one_shot_fast, one_shot_fast["peak_rss_mib"])
    row(
        f"(d) video mode, per frame ({args.pairs} pairs; process peak)",
        fast["video_per_frame"],
        fast["peak_rss_mib"],
    )
    print()
    print(
        f"fast path set-up (optimized copy, kernel load) {fast['setup_ms']:.0f} ms, first call "
        f"{fast['first_call_ms']:.0f} ms; a process that builds the kernel (empty cache, once "
        f"per machine) {build[0] * 1000:.0f} ms, one that loads it {warm[0] * 1000:.0f} ms"
    )
    print(f"the CLI reported: {one_shot_cli['said']}")
    print(
        f"ratios to (a) best: fast path {fast['fast']['best_ms'] / ref_best:.3f}, one-shot fast "
        f"command {one_shot_fast['best_ms'] / ref_best:.3f}, one-shot CLI "
        f"{one_shot_cli['best_ms'] / ref_best:.3f}, video frame "
        f"{fast['video_per_frame']['best_ms'] / ref_best:.3f}"
    )
    print(
        f"(b) vs (a) in 8-bit levels: before rounding max {raw.max():.4f}, mean {raw.mean():.5f}; "
        f"after rounding max {levels.max()}, mean {levels.mean():.5f}, "
        f"{(levels > 0).mean() * 100:.3f}% of values differ"
    )
    print(f"# torch threads {fast['threads']}; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
