"""Smoke tests of the comparison benchmarks and the figure script (their real runs are slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "script", ["benchmarks/peers.py", "benchmarks/bench_models.py", "scripts/make_figures.py"]
)
def test_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout


def test_peers_says_what_to_pass_without_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "peers.py"), "middlebury", str(tmp_path / "x")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "SEPCONV_DATA" in result.stderr
