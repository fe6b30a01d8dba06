"""Helpers of the ``sepconv ui`` tests: the real command as a child process, where the
browser is, tiny frames."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def wait_for(
    condition: Callable[[], Any],
    what: str,
    timeout: float = 120,
    *,
    interval: float = 0.1,
    failure: type[BaseException] = AssertionError,
) -> Any:
    """Poll ``condition`` until it returns something true (exceptions count as not yet: the
    page may be changing under us); raise ``failure`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - the page is changing under us
            value = None
        if value:
            return value
        time.sleep(interval)
    raise failure(f"timed out waiting for {what}")


def find_browser() -> tuple[str, str] | str:
    """(chromium, chromedriver), or why the browser tests cannot run."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; .ci/run installs it)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        return (
            "no chromium and chromedriver on PATH (Debian: apt-get install chromium "
            "chromium-driver; .ci/run installs them where it can)"
        )
    return chromium, driver


def moving(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """``count`` RGB frames: a red square moving right over a blue ramp."""
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 2] = np.linspace(0, 255, width).astype(np.uint8)[None]
        frame[4:20, 2 + i % (width - 18) : 14 + i % (width - 18), 0] = 255
        frames.append(frame)
    return frames


@dataclass
class RunningServer:
    """A `sepconv ui` child process: its address and its private temporary folder."""

    url: str
    process: subprocess.Popen[str]
    temp: Path  # the child's $TMPDIR: its folder sepconv-ui-* is made there
    warning: str = ""  # what it printed before its address

    @property
    def root(self) -> Path:
        (root,) = self.temp.glob("sepconv-ui-*")
        return root

    def stop(self) -> str:
        """Ctrl-C; the rest of its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def start_server(temp: Path, *args: str) -> RunningServer:
    """Start `python -m sepconv ui --no-browser --port 0 ARGS` with $TMPDIR ``temp``."""
    temp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temp)}
    env.pop("SEPCONV_DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "sepconv", "ui", "--no-browser", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if match := re.search(r"serving on (http://\S+/)", line):
            return RunningServer(match[1], process, temp, "".join(seen[:-1]).strip())
    process.kill()
    raise AssertionError(f"sepconv ui did not start: {''.join(seen)}")
