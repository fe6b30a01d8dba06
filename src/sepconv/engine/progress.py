"""The training loop's progress plumbing: the CSV log and durations."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

__all__ = ["LOG_FIELDS", "CsvLog", "format_duration"]

LOG_FIELDS = (
    "step",
    "samples",
    "loss",
    "lr",
    "samples_per_s",
    "grad_norm",
    "unix_time",
    "val_psnr",
    "event",
)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class CsvLog:
    """Appends rows to ``log.csv`` (header written once), flushing every row.

    With ``through_step``, rows of later steps are dropped first: those of a run that stopped
    after its last checkpoint, which the run resumed from that checkpoint writes again.
    """

    def __init__(self, path: Path, through_step: int | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if through_step is not None and path.exists() and path.stat().st_size > 0:
            _drop_rows_after(path, through_step)
        new = not path.exists() or path.stat().st_size == 0
        self.handle = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = csv.DictWriter(self.handle, fieldnames=LOG_FIELDS)
        if new:
            self.writer.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _drop_rows_after(path: Path, step: int) -> None:
    """Rewrite ``path`` (atomically) without the rows of steps after ``step``."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [row for row in rows if not row.get("step", "").isdigit() or int(row["step"]) <= step]
    if len(kept) == len(rows):
        return
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    partial.replace(path)
