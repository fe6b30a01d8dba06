"""benchmarks/bench_cpu.py: it imports and its options parse (the measurements are 720p, too
slow for the suite; docs/benchmarks.md has their output)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "bench_cpu.py"


def test_help_lists_the_options():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True
    )
    options = ("--repeat", "--pairs", "--precision", "--cli-args", "--weights", "--isa")
    for option in (*options, "--rife"):
        assert option in completed.stdout


def _bench_module():
    import importlib.util

    sys.path.insert(0, str(SCRIPT.parent))  # for its `_common` import
    try:
        spec = importlib.util.spec_from_file_location("bench_cpu", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return module


def test_ratios_compare_the_fast_path_per_frame_only():
    """The fast path and a video frame over the eager reference pass; no whole-command ratio
    (a command's start-up and model load have nothing to do with one pass of the network)."""
    bench = _bench_module()

    def best(ms: float) -> dict:
        return {"best_ms": ms}

    result = {
        "startup": {"import torch": best(1500.0)},
        "reference": {"reference": best(5000.0), "prepare": best(1000.0)},
        "fast": {"fast": best(1000.0), "video_per_frame": best(900.0)},
        "one_shot_fast": best(4000.0),
        "cli": best(4200.0),
    }
    assert bench.ratios(result) == {"fast path": 0.2, "video frame": 0.18}
    assert not hasattr(bench, "one_shot_floor_ms")
