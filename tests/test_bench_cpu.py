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
    for option in ("--repeat", "--pairs", "--precision", "--cli-args", "--weights", "--isa"):
        assert option in completed.stdout
