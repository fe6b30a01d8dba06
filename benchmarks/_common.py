"""Helpers shared by the benchmark scripts (imported as ``_common`` from benchmarks/).

Peak memory on Linux: the kernel keeps a process' peak resident set (VmHWM), which writing
"5" to /proc/self/clear_refs resets to the current one, so each measurement can report its
own peak.

Data (Middlebury, triplets, photos, videos) is read from :data:`DATA`: ``$SEPCONV_DATA``, else
``../shared/data`` beside the repository (:func:`sepconv.data.files.data_root`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

from sepconv.data.files import data_root

REPO = Path(__file__).resolve().parents[1]
DATA = data_root(REPO)
URBAN2 = DATA / "middlebury" / "Urban2"


def missing_data(path: Path | str, option: str = "") -> str:
    """What to say when `path` (under :data:`DATA`) is absent: the option or SEPCONV_DATA."""
    instead = f"pass {option}, or " if option else ""
    return (
        f"{path} not found: {instead}set SEPCONV_DATA to the data folder "
        "(default ../shared/data beside the repository)"
    )


def add_ensemble_option(parser: argparse.ArgumentParser) -> None:
    """``--ensemble N [N ...]``: a row per model and size, that many symmetric variants of the
    pass averaged (the Interpolator's ``ensemble``; default 1 alone)."""
    from sepconv.inference import ENSEMBLE_SIZES

    parser.add_argument(
        "--ensemble",
        type=int,
        nargs="+",
        default=[1],
        choices=ENSEMBLE_SIZES,
        help="a row per model and size: that many symmetric variants averaged (default 1)",
    )


def ensemble_label(name: str, ensemble: int) -> str:
    """A model's row name in a table with ``--ensemble`` rows: ``NAME --ensemble N`` (N > 1)."""
    return name if ensemble == 1 else f"{name} --ensemble {ensemble}"


def proc_status_bytes(field: str) -> int:
    """A size field of /proc/self/status (VmRSS, VmHWM...) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the peak-RSS mark and return the current RSS in bytes."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return proc_status_bytes("VmRSS")


def peak_rss() -> int:
    """Peak RSS in bytes since start or the last :func:`reset_peak_rss`."""
    return proc_status_bytes("VmHWM")


def load_model(weights: str | None):
    """(float32 CPU network, description): `weights`, or the authors' architecture with the
    plausible random weights of tests/authors_transcription.py (no trained weights ship yet)."""
    from sepconv.models.checkpoint import AUTHORS_CONFIG, build_model, load_weights

    if weights:
        return load_weights(weights).model, f"weights {weights}"
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from authors_transcription import plausible_random_state_dict

    state = plausible_random_state_dict(seed=0)
    return build_model(AUTHORS_CONFIG, state, Path("random")), "authors' architecture, random"


def benchmark_frames(height: int, width: int):
    """Two uint8 HxWx3 numpy frames: Urban2 resized (bicubic), else smooth synthetic ones."""
    import numpy as np

    if (URBAN2 / "frame10.png").exists():
        from PIL import Image

        return [
            np.asarray(
                Image.open(URBAN2 / name).convert("RGB").resize((width, height), Image.BICUBIC)
            )
            for name in ("frame10.png", "frame11.png")
        ], "Middlebury Urban2 resized"
    y, x = np.mgrid[0:height, 0 : width + 3].astype(np.float32)
    image = np.stack([np.sin(x / 37.0), np.cos(y / 23.0), np.sin((x + y) / 51.0)], axis=2)
    image = np.rint((image * 0.5 + 0.5) * 255).astype(np.uint8)
    frames = [image[:, :width].copy(), image[:, 3:].copy()]
    return frames, f"synthetic ({missing_data(URBAN2)})"


def environment(device: str) -> dict:
    """Date, device, versions and load: the header of every benchmark's output."""
    import torch

    import sepconv

    if device == "cuda":
        name = torch.cuda.get_device_name()
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        name = f"{name} ({total:.0f} GiB), CUDA {torch.version.cuda}"
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                name = next(
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                )
        except (OSError, StopIteration):
            pass
        from sepconv.inference import cpu_has_bfloat16

        name += f", {os.cpu_count()} logical CPUs, native bf16: {cpu_has_bfloat16()}"
        name += f", features: {', '.join(cpu_features()) or 'unknown'}"
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "absent"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "device_name": name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "sepconv": sepconv.__version__,
        "threads": torch.get_num_threads(),
        "load_average": round(os.getloadavg()[0], 2),
    }


# /proc/cpuinfo flags that decide the CPU paths' speed, and the names printed for them.
_CPU_FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("amx_bf16", "AMX-BF16"),
)


def cpu_features() -> list[str]:
    """Which of AVX2, AVX-512, AVX512-BF16 and AMX-BF16 this CPU reports (Linux), and
    ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA when set (they cap what torch uses)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return []
    flags = set(line.split(":", 1)[-1].split())
    found = [name for flag, name in _CPU_FEATURES if flag in flags]
    for variable in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        if os.environ.get(variable):
            found.append(f"{variable}={os.environ[variable]}")
    return found
