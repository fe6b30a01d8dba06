"""CPU inference at 720p: the eager float32 reference pass against the fast path, one run.

Prints, on this machine and in this run, for each instruction set asked for (``--isa``):

  (a) the eager float32 reference pass of the model (any family): its whole-frame
      preparation (``prepare``: for the flow-guided family the DIS flows and warps), the
      network in float32 (default contiguous layout) and the reference local convolution,
      1280x720 padded to 1280x768, under torch.no_grad;
  (b) the fast path (Interpolator(optimize=True, precision=auto): channels_last, fused
      conv + ReLU in oneDNN, bfloat16 weights where the CPU has bfloat16, the compiled
      ``cpu`` local convolution) and its difference from (a) in 8-bit levels;
  (c) whole one-shot commands, wall time from process start to exit (start-up, model load,
      PNG reading and writing included): the CLI as it stands with the given flags, and the
      same steps with the fast path;
  (d) per-frame time with the model loaded once (what a video mode pays per frame);
  (e) peak resident memory of each process;
  (f) RIFE 4.0, as a peer, per frame with its network loaded once, as (d) (float32, frames
      uint8 in and out; ``--rife`` picks the variants of benchmarks/rife_peer.py, each skipped
      with one line where its wheel is not installed).

``--isa native`` is this CPU as it is; ``--isa avx2`` measures what a CPU with AVX2 and no
AVX-512 (most laptops) runs, on this one: torch limited to AVX2 (``ATEN_CPU_CAPABILITY=avx2``,
``ONEDNN_MAX_CPU_ISA=AVX2``, so no native bfloat16 either) and the compiled local convolution
built for ``x86-64-v3`` (``SEPCONV_CPU_MARCH``), in every process of the measurement. The
default measures both where this CPU has AVX-512, and ends with the ratios side by side.

By default the network is the authors' architecture with plausible random weights
(tests/authors_transcription.py); --weights FILE (or a registry name) measures a real model
(the bfloat16 error depends on the kernels: peaked kernels show it more). The frames are
Middlebury Urban2 ($SEPCONV_DATA, else ../shared/data) resized to 1280x720, or smooth
synthetic frames when that is absent.
Every time is the best and the median over --repeat rounds, each round running every
measurement once (so that load from other work on a shared machine falls on all of them
alike; such load only ever makes a run slower).

    python benchmarks/bench_cpu.py                 # about 3 minutes per ISA on 2 cores
    python benchmarks/bench_cpu.py --weights sepconv-flow --cli-args "" --isa avx2
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
from rife_peer import RIFE_VERSIONS, weights_file

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


#: Environment of every process measuring an AVX2-only CPU on a CPU with AVX-512.
ISA_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "SEPCONV_CPU_MARCH": "x86-64-v3",
    },
}


def child_reference(work: Path, repeat: int, weights: Path) -> dict:
    """(a): eager float32 reference pass on the padded 1280x768 canvas (any family: the
    model interface's prepare, kernels_for and synthesize, as the Interpolator calls them)."""
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
    seconds, preparation, network, local = [], [], [], []
    with torch.no_grad():
        for _ in range(repeat):  # model(first, second), timed in its three parts
            start = time.perf_counter()
            inputs = {
                name: F.pad(value, pad, mode="replicate")
                for name, value in model.prepare(first, second).items()
            }
            network_start = time.perf_counter()
            kernels = model.kernels_for(inputs)
            middle_start = time.perf_counter()
            middle = model.synthesize(
                inputs["first"], inputs["second"], kernels, backend="reference"
            )
            end = time.perf_counter()
            seconds.append(end - start)
            preparation.append(network_start - start)
            network.append(middle_start - network_start)
            local.append(end - middle_start)
    middle = middle[0, :, :HEIGHT, :WIDTH].clamp(0, 1).permute(1, 2, 0).numpy()
    np.save(work / "reference.npy", middle)
    return {
        "reference": _stats(seconds),
        "prepare": _stats(preparation),
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


def child_rife(work: Path, pairs: int, version: str) -> dict:
    """(f): a RIFE peer (benchmarks/rife_peer.py) loaded once, then ``pairs`` 720p frame pairs
    as in the video loop of (d), uint8 in and out."""
    import numpy as np
    import torch
    from rife_peer import load_rife

    frames, _, _ = _frames(work)
    start = time.perf_counter()
    rife, reason = load_rife(version)
    if rife is None:
        raise RuntimeError(reason)
    predict = rife.uint8_predictor()
    setup = time.perf_counter() - start
    start = time.perf_counter()
    predict(*frames)
    first_call = time.perf_counter() - start
    video = []
    for k in range(pairs):
        a, b = (np.ascontiguousarray(np.roll(frame, k, axis=1)) for frame in frames)
        start = time.perf_counter()
        predict(a, b)
        video.append(time.perf_counter() - start)
    return {
        "name": rife.name,
        "setup_ms": round(setup * 1000, 1),
        "first_call_ms": round(first_call * 1000, 1),
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


def _child(
    mode: str, work: Path, weights: Path, args: argparse.Namespace, env: dict, rife: str = ""
) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--work", str(work)]
    command += ["--weights", str(weights)] + (["--rife", rife] if rife else [])
    command += ["--repeat", str(args.repeat), "--pairs", str(args.pairs)]
    command += ["--precision", args.precision]
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _default_isas() -> list[str]:
    """Both instruction sets where this CPU has AVX-512 (AVX2 is then emulated), else native."""
    _, flags = _cpu_description()
    return ["native", "avx2"] if "avx512f" in flags.split() else ["native"]


def measure(isa: str, args: argparse.Namespace, work: Path, weights: Path, paths) -> dict:
    """Every measurement of the module docstring with the environment of ``isa``."""
    env = {**os.environ, **ISA_ENVIRONMENTS[isa]}
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
    rifes: dict[str, list[dict]] = {version: [] for version in args.rife_available}
    for _ in range(args.repeat):
        references.append(_child("reference", work, weights, args, env))
        fasts.append(_child("fast", work, weights, args, env))
        for version, runs in rifes.items():
            runs.append(_child("rife", work, weights, args, env, version))
        for name, command in probes.items():
            timed[name].append(_timed_process(command, env))

    def summary(name: str) -> dict:
        runs = timed[name]
        return {
            **_stats([seconds for seconds, _, _ in runs]),
            "peak_rss_mib": round(max(rss for _, rss, _ in runs)),
            "said": runs[-1][2].splitlines()[-1] if runs[-1][2] else "",
        }

    import numpy as np

    # Kernel build on an empty cache (paid once per machine).
    check_kernel = [
        *python,
        "-c",
        "from sepconv.ops.cpu import cpu_kernel_available as a; assert a()",
    ]
    build = _timed_process(check_kernel, {**env, "SEPCONV_CACHE_DIR": str(work / f"cache-{isa}")})
    warm = _timed_process(check_kernel, env)
    expected = np.load(work / "reference.npy") * 255.0
    actual = np.load(work / "fast.npy") * 255.0
    raw = np.abs(actual - expected)
    levels = np.abs(np.rint(actual).astype(int) - np.rint(expected).astype(int))
    return {
        "isa": isa,
        "environment": ISA_ENVIRONMENTS[isa],
        "startup": {name: summary(name) for name in ("import torch", "sepconv --help")},
        "cli": summary("cli"),
        "one_shot_fast": summary("fast"),
        "reference": {
            **{
                key: _merge(references, key)
                for key in ("reference", "prepare", "network", "local_conv")
            },
            "peak_rss_mib": max(result["peak_rss_mib"] for result in references),
        },
        "fast": {
            **fasts[-1],
            "fast": _merge(fasts, "fast"),
            "video_per_frame": _merge(fasts, "video_per_frame"),
            "peak_rss_mib": max(result["peak_rss_mib"] for result in fasts),
        },
        "rife": {
            version: {
                **runs[-1],
                "video_per_frame": _merge(runs, "video_per_frame"),
                "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
            }
            for version, runs in rifes.items()
        },
        "build_ms": round(build[0] * 1000),
        "load_ms": round(warm[0] * 1000),
        "levels": {
            "raw_max": float(raw.max()),
            "raw_mean": float(raw.mean()),
            "rounded_max": int(levels.max()),
            "rounded_mean": float(levels.mean()),
            "differ_percent": float((levels > 0).mean() * 100),
        },
    }


def ratios(result: dict) -> dict[str, float]:
    """The fast path's per-frame times over the eager reference pass (best times)."""
    reference = result["reference"]["reference"]["best_ms"]
    return {
        "fast path": result["fast"]["fast"]["best_ms"] / reference,
        "video frame": result["fast"]["video_per_frame"]["best_ms"] / reference,
    }


def report(result: dict, args: argparse.Namespace) -> None:
    """One ISA's table."""
    env = " ".join(f"{key}={value}" for key, value in result["environment"].items())
    print(f"\n## {result['isa']}{': ' + env if env else ''}")
    print(f"{'measurement':<62} {'best ms':>9} {'median ms':>10} {'peak RSS MiB':>13}")

    def row(name: str, stats: dict, rss: float | None = None) -> None:
        rss_text = f"{rss:>13.0f}" if rss is not None else f"{'':>13}"
        print(f"{name:<62} {stats['best_ms']:>9.1f} {stats['median_ms']:>10.1f} {rss_text}")

    reference, fast = result["reference"], result["fast"]
    row("start-up: python -c 'import torch'", result["startup"]["import torch"])
    row("start-up: python -m sepconv --help", result["startup"]["sepconv --help"])
    row(
        "(a) eager fp32 reference pass, 720p (process peak)",
        reference["reference"],
        reference["peak_rss_mib"],
    )
    row("    of which the whole-frame preparation (prepare)", reference["prepare"])
    row("    of which the network (kernels_for)", reference["network"])
    row("    of which the two reference local convolutions", reference["local_conv"])
    row(
        f"(b) fast path: {fast['precision']}, local conv '{fast['local_conv_backend']}'",
        fast["fast"],
    )
    row(f"(c1) sepconv interpolate {args.cli_args}", result["cli"], result["cli"]["peak_rss_mib"])
    row(
        "(c2) one-shot command, fast path",
        result["one_shot_fast"],
        result["one_shot_fast"]["peak_rss_mib"],
    )
    row(
        f"(d) video mode, per frame ({args.pairs} pairs; process peak)",
        fast["video_per_frame"],
        fast["peak_rss_mib"],
    )
    for peer in result.get("rife", {}).values():
        row(
            f"(f) {peer['name']}, per frame ({args.pairs} pairs; process peak)",
            peer["video_per_frame"],
            peer["peak_rss_mib"],
        )
    print(
        f"fast path set-up (optimized copy, kernel load) {fast['setup_ms']:.0f} ms, first call "
        f"{fast['first_call_ms']:.0f} ms; a process that builds the kernel (empty cache, once "
        f"per machine) {result['build_ms']} ms, one that loads it {result['load_ms']} ms"
    )
    print(f"the CLI reported: {result['cli']['said']}")
    print("ratios to (a) best: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios(result).items()))
    levels = result["levels"]
    print(
        f"(b) vs (a) in 8-bit levels: before rounding max {levels['raw_max']:.4f}, mean "
        f"{levels['raw_mean']:.5f}; after rounding max {levels['rounded_max']}, mean "
        f"{levels['rounded_mean']:.5f}, {levels['differ_percent']:.3f}% of values differ"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (runs per measurement)")
    parser.add_argument("--pairs", type=int, default=4, help="frame pairs in the video loop")
    parser.add_argument("--precision", default="auto", help="fast path precision (auto)")
    parser.add_argument(
        "--cli-args",
        default="",
        help='extra flags for the `sepconv interpolate` run (c1), e.g. "--precision float32"',
    )
    parser.add_argument(
        "--weights",
        help="weights file or registry name (e.g. sepconv-flow; default: the authors' "
        "architecture with plausible random weights)",
    )
    parser.add_argument(
        "--isa",
        nargs="+",
        choices=sorted(ISA_ENVIRONMENTS),
        help="instruction sets to measure (default: native, and avx2 where this CPU has AVX-512)",
    )
    parser.add_argument(
        "--rife",
        nargs="*",
        default=["4.0"],
        choices=sorted(RIFE_VERSIONS),
        help="RIFE variants timed as peers in (f) (default: 4.0; none: a bare --rife)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--child", choices=("reference", "fast", "rife"), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "reference":
        print(json.dumps(child_reference(args.work, 1, Path(args.weights))))
        return
    if args.child == "fast":
        print(json.dumps(child_fast(args.work, 1, args.pairs, args.precision, Path(args.weights))))
        return
    if args.child == "rife":
        print(json.dumps(child_rife(args.work, args.pairs, args.rife[0])))
        return
    args.rife_available = []
    for version in args.rife:
        _, reason = weights_file(version)
        if reason:
            print(f"{RIFE_VERSIONS[version].name}: skipped ({reason})")
        else:
            args.rife_available.append(version)

    import numpy as np
    import torch

    import sepconv
    from sepconv.inference import cpu_has_bfloat16
    from sepconv.weights import resolve_weights

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
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        _, paths, source = _frames(work)
        if args.weights is not None:
            weights, _ = resolve_weights(args.weights)
            described = f"weights {weights}"
        else:  # the authors' architecture, random weights
            weights = work / "network-bench.pytorch"
            sys.path.insert(0, str(REPO / "tests"))
            from authors_transcription import plausible_random_state_dict

            torch.save(plausible_random_state_dict(seed=0), weights)
            described = "authors' architecture, plausible random weights"
        print(f"# frames: {source}; network: {described}")
        for isa in args.isa or _default_isas():
            results.append(measure(isa, args, work, weights, paths))
            report(results[-1], args)
    if len(results) > 1:
        print("\nratios to (a), best times, side by side:")
        names = list(ratios(results[0]))
        print(f"{'':<24}" + "".join(f"{result['isa']:>10}" for result in results))
        for name in names:
            print(f"{name:<24}" + "".join(f"{ratios(result)[name]:>10.3f}" for result in results))
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"started": started, "cpu": model_name, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
