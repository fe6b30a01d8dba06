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


def _one_clip_folder(root: Path) -> Path:
    """A triplet folder with one item, ``clip_1``, of the Middlebury fixture."""
    import shutil

    item = root / "clip_1"
    item.mkdir(parents=True)
    fixtures = REPO / "tests" / "fixtures"
    for name, fixture in (("im1", "frame10"), ("im2", "frame10i11"), ("im3", "frame11")):
        shutil.copy(fixtures / f"rubberwhale_{fixture}.png", item / f"{name}.png")
    return root


def test_hedging_scores_every_blur_plainly_and_aligned(tmp_path: Path) -> None:
    folder = _one_clip_folder(tmp_path / "triplets")
    script = str(REPO / "benchmarks" / "hedging.py")
    report = tmp_path / "hedging.json"
    result = subprocess.run(
        [sys.executable, script, str(folder), "--clips", "clip", "--sigmas", "1.5"]
        + ["--json", str(report)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    import json

    rows = json.loads(report.read_text())["rows"]
    assert [(row["method"], row["sigma"]) for row in rows] == [
        ("sepconv", 0.0),
        ("sepconv", 1.5),
        ("dis-flow", 0.0),
        ("dis-flow", 1.5),
    ]
    # A still camera: nothing to hedge, so blurring a sharp prediction only loses.
    assert rows[1]["plain"] < rows[0]["plain"] and rows[3]["plain"] < rows[2]["plain"]
    missing = subprocess.run(
        [sys.executable, script, str(folder), "--clips", "other"], capture_output=True, text=True
    )
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines() == [f"error: no triplets of other in {folder}"]


def _on_rubberwhale(tmp_path: Path, script: str, *args: str) -> tuple[str, dict]:
    """Run a benchmark script with ``--middlebury --json`` on a data folder holding Middlebury's
    RubberWhale alone (the fixtures); returns its stdout and its JSON report."""
    import json
    import os
    import shutil

    item = tmp_path / "data" / "middlebury" / "RubberWhale"
    item.mkdir(parents=True)
    for name in ("frame10", "frame10i11", "frame11"):
        shutil.copy(REPO / "tests" / "fixtures" / f"rubberwhale_{name}.png", item / f"{name}.png")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--middlebury", *args]
        + ["--json", str(report)],
        capture_output=True,
        text=True,
        env={**os.environ, "SEPCONV_DATA": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(report.read_text())


def test_candidates_scores_each_variant_of_the_classic_candidate(tmp_path: Path) -> None:
    """benchmarks/candidates.py on Middlebury's RubberWhale: one row per variant, and the
    finer candidate (DIS at full detail on these small frames, splatted) scores above the
    coarse one on this real pair."""
    pytest.importorskip("cv2")
    variants = ("half-fs1-average", "max640-fs0-splat-r0")
    stdout, report = _on_rubberwhale(tmp_path, "candidates.py", "--variants", *variants)
    assert stdout.count("| half-fs1-average |") == 1
    scores = report["results"]
    coarse = scores["half-fs1-average"]["middlebury"]["mean"]["psnr"]
    fine = scores["max640-fs0-splat-r0"]["middlebury"]["mean"]["psnr"]
    assert fine > coarse


def test_selection_oracle_bounds_both_motions(tmp_path: Path) -> None:
    """benchmarks/selection.py on Middlebury's RubberWhale with the bundled learned-motion
    model: the per-block oracle is at least as good as either motion alone (it picks the
    better of the two in every block) and as the agreement chooser, and the smaller blocks at
    least as good as the larger."""
    pytest.importorskip("cv2")
    stdout, report = _on_rubberwhale(tmp_path, "selection.py", "--blocks", "1", "8")
    assert stdout.count("| oracle per 8x8 block |") == 1
    scores = report["results"]["middlebury"]
    alone = max(scores["learned flows alone"], scores["candidate alone"])
    assert scores["oracle per 1x1 block"] >= scores["oracle per 8x8 block"] >= alone
    # The agreement chooser picks between the same two blends without the truth.
    assert scores["oracle per 8x8 block"] >= scores["agreement per 8x8 block"]
    assert 0.0 <= scores["kept share"] <= 1.0
    assert abs(scores["selection = warps"] - scores["candidate alone"]) < 1.5


def test_selection_reversed_asks_the_other_way_round(tmp_path: Path) -> None:
    """``--reversed`` swaps the frames (t -> 1 - t) and says so; on RubberWhale at t = 1/2 the
    bundled model, close to symmetric in time, scores within 0.5 dB of the forward pass."""
    pytest.importorskip("cv2")
    forward_out, forward = _on_rubberwhale(tmp_path / "forward", "selection.py", "--blocks", "4")
    stdout, report = _on_rubberwhale(
        tmp_path / "back", "selection.py", "--blocks", "4", "--reversed"
    )
    assert "reversed" in stdout and "reversed" not in forward_out
    assert report["reversed"] is True and forward["reversed"] is False
    back, ahead = report["results"]["middlebury"], forward["results"]["middlebury"]
    assert back["selection = warps"] != ahead["selection = warps"]
    assert abs(back["selection = warps"] - ahead["selection = warps"]) < 0.5
