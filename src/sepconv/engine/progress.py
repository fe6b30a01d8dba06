"""The training loop's progress plumbing: graceful stop requests, the CSV log, durations."""

from __future__ import annotations

import csv
import math
import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["LOG_FIELDS", "CsvLog", "StopRequests", "format_duration"]

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


class StopRequests:
    """While active, SIGINT and SIGTERM set ``requested`` instead of killing the process; a
    second signal raises KeyboardInterrupt. Only in the main thread; a SIGINT that the parent
    ignored (a background job) stays ignored."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(signum)
                if signum == signal.SIGINT and current is signal.SIG_IGN:
                    continue
                self._previous[signum] = current
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


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
