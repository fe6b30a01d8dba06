"""Take the README's screenshot of ``sepconv ui`` (docs/images/ui.png).

Starts the real ``sepconv ui`` command (its own temporary folder, no browser window), drives a
headless Chromium with Selenium as a person would: drops the two RubberWhale frames of
``tests/fixtures`` (the middle frame appears with its comparison), then converts a short clip
made of those frames at x2 (the original and the result side by side). Then it saves the page.

    pip install ".[ui]" selenium     # and Chromium + chromedriver (Debian: apt-get install
                                     # chromium chromium-driver)
    python scripts/ui_screenshot.py                      # -> docs/images/ui.png
    python scripts/ui_screenshot.py --frames a.png b.png --output ui.png

Nothing is fetched from the network: the page ships with the package, Chromium runs with its
background networking, component updates and sync switched off, in a new empty profile.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
# The browser helpers the page's tests use (flags, where the browser is, polling).
sys.path.insert(0, str(REPO / "tests" / "ui"))
from uitools import CHROMIUM_FLAGS, find_browser, wait_for  # noqa: E402


def wait(condition: Callable[[], Any], what: str) -> Any:
    """Poll until ``condition`` is true; exit with a message after 5 minutes."""
    return wait_for(condition, what, 300, interval=0.2, failure=SystemExit)


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 6) -> Path:
    """H.264 4:2:0 MP4 (so the browser plays the original itself), even size."""
    height, width = (size - size % 2 for size in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "12"}
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(array[:height, :width]), format="rgb24"
            )
            frame.pts, frame.time_base = index, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def start_server(temp: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "TMPDIR": str(temp)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sepconv", "ui", "--no-browser", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if match := re.search(r"serving on (http://\S+/)", line):
            return process, match[1]
    raise SystemExit("ui_screenshot: sepconv ui did not start")


def browser(profile: Path, width: int, height: int) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if isinstance(found, str):
        raise SystemExit(f"ui_screenshot: {found}")
    chromium, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    flags = (*CHROMIUM_FLAGS, "--hide-scrollbars", f"--user-data-dir={profile}")
    for flag in (*flags, f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames",
        nargs=2,
        type=Path,
        default=[FIXTURES / "rubberwhale_frame10.png", FIXTURES / "rubberwhale_frame11.png"],
        metavar=("FIRST", "SECOND"),
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "images" / "ui.png")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By

    work = Path(tempfile.mkdtemp(prefix="sepconv-ui-screenshot-"))
    process, url = start_server(work / "server")
    driver = None
    try:
        first = np.asarray(Image.open(args.frames[0]).convert("RGB"))
        second = np.asarray(Image.open(args.frames[1]).convert("RGB"))
        inputs = work / "inputs"
        inputs.mkdir()
        pair = [inputs / "frame10.png", inputs / "frame11.png"]
        Image.fromarray(first).save(pair[0])
        Image.fromarray(second).save(pair[1])
        clip = write_clip(inputs / "rubberwhale.mp4", [first, second, first, second])

        driver = browser(work / "profile", args.width, 1000)
        driver.get(url)
        wait(lambda: driver.execute_script("return document.body.dataset.ready"), "the page")
        driver.find_element(By.ID, "video-file").send_keys(str(clip))
        driver.find_element(By.ID, "convert").click()
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".job"), "the video job")
        driver.find_element(By.ID, "pair-files").send_keys("\n".join(map(str, pair)))
        wait(
            lambda: len(driver.find_elements(By.CSS_SELECTOR, ".job[data-state=done]")) == 2,
            "both jobs",
        )
        wait(
            lambda: driver.execute_script(
                "return [...document.querySelectorAll('.compare img')].every(i => i.naturalWidth)"
                " && [...document.querySelectorAll('video')].every(v => v.readyState >= 2)"
            ),
            "the comparisons",
        )
        height, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, outerHeight - innerHeight]"
        )
        driver.set_window_size(args.width, height + chrome)
        time.sleep(0.5)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(work / "page.png"))
        page = Image.open(work / "page.png").convert("RGB")  # 256 colours: a third the bytes
        page.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.output, optimize=True)
        print(f"wrote {args.output}")
    finally:
        if driver is not None:
            driver.quit()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
