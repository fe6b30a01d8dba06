"""Helpers shared by the benchmark scripts (imported as ``_common`` from benchmarks/).

Peak memory on Linux: the kernel keeps a process' peak resident set (VmHWM), which writing
"5" to /proc/self/clear_refs resets to the current one, so each measurement can report its
own peak.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
