"""Graceful Ctrl-C: turn SIGINT and SIGTERM into a flag that long work checks at safe points.

A KeyboardInterrupt raised by Python's default handler lands wherever the main thread happens
to be, including inside PyAV's FFmpeg encode and decode calls, and the codec state it leaves
is then flushed and freed during unwinding (a CI run of the Ctrl-C test once ended in
"corrupted double-linked list" and SIGABRT right after the one-line message). Training and
video conversion therefore install :class:`StopRequests` and stop between steps or frames.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["StopRequests"]


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

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was requested: call it where stopping is safe."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
