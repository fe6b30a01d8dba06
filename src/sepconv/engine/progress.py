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
    """Appends rows to ``log.csv`` (header written once), flushing every row."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
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
