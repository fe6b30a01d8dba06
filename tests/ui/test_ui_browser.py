"""End to end: the real ``sepconv ui`` command driven in headless Chromium (Selenium).

Two frames give the middle frame ``sepconv interpolate`` writes; a short clip converted at x2
has twice the frame rate and twice the frames, and plays beside the original; a cancelled job
leaves no file behind; a bad file shows the command's one-line error. Skipped, with the
reason, where Selenium or Chromium is missing (``.ci/run`` installs both where it can).
The models: the bundled default (64x48 frames).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from conftest import make_clip
from PIL import Image
from uitools import RunningServer, moving, wait_for

TIMEOUT = 120  # seconds for one job on a busy 2-core machine (each takes a few)


def open_page(browser: Any, server: RunningServer) -> None:
    browser.get(server.url)
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready"), "the page")


def choose(browser: Any, input_id: str, *paths: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, input_id).send_keys("\n".join(str(p) for p in paths))


def job_card(browser: Any, state: str, index: int = 0) -> Any:
    """The newest job card in ``state`` (a failed job raises with its error)."""
    from selenium.webdriver.common.by import By

    def found() -> Any:
        cards = browser.find_elements(By.CSS_SELECTOR, ".job")
        if not cards:
            return None
        card = cards[index]
        current = card.get_attribute("data-state")
        if current == "failed" and state != "failed":
            error = card.find_element(By.CSS_SELECTOR, ".error").text
            raise pytest.fail.Exception(f"the job failed: {error}")
        return card if current == state else None

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        card = found()
        if card is not None:
            return card
        time.sleep(0.1)
    raise AssertionError(f"no job reached {state}")


def download(browser: Any, card: Any) -> tuple[str, bytes]:
    from selenium.webdriver.common.by import By

    link = card.find_element(By.CSS_SELECTOR, "a.download")
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
        return link.get_attribute("download"), response.read()


def job_folder(server: RunningServer, card: Any) -> Path:
    (folder,) = server.root.glob(f"*/{card.get_attribute('data-job-id')}")
    return folder


def test_two_frames_give_the_middle_frame_of_sepconv_interpolate(browser, ui_server, tmp_path):
    from selenium.webdriver.common.by import By

    frames = moving(5)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(frames[0]).save(first)
    Image.fromarray(frames[2]).save(second)
    open_page(browser, ui_server)
    choose(browser, "pair-files", second, first)  # given in any order: sorted by name
    card = job_card(browser, "done")
    name, data = download(browser, card)
    assert name == "a-middle.png"

    reference = tmp_path / "reference.png"
    result = subprocess.run(
        [sys.executable, "-m", "sepconv", "interpolate", first, second, "-o", reference],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert data == reference.read_bytes()

    # the comparison: the inputs overlaid, the result, and a loop of first, middle, last
    images = card.find_elements(By.CSS_SELECTOR, ".compare img")
    assert len(images) == 4
    wait_for(
        lambda: all(
            browser.execute_script("return arguments[0].naturalWidth", image) == 64
            for image in images
        ),
        "the comparison's images",
    )
    loop = card.find_element(By.CSS_SELECTOR, "img.loop")
    shown: set[str] = set()

    def looped() -> bool:
        shown.add(loop.get_attribute("src").rsplit("/", 1)[-1])
        return len(shown) == 3

    wait_for(looped, "the loop to show first, middle and last", timeout=10)
    assert shown == {"first.png", "middle.png", "last.png"}


def test_a_clip_at_x2_doubles_rate_and_frames_and_plays_beside_the_original(
    browser, ui_server, tmp_path
):
    from selenium.webdriver.common.by import By

    clip = make_clip(tmp_path / "clip.mp4", moving(6), codec="libx264", audio=False)
    open_page(browser, ui_server)
    choose(browser, "video-file", clip)
    browser.find_element(By.ID, "convert").click()
    card = job_card(browser, "done")
    name, data = download(browser, card)
    assert name == "clip-x2.mp4"
    result = tmp_path / name
    result.write_bytes(data)
    with av.open(str(result)) as container:
        stream = container.streams.video[0]
        assert Fraction(stream.average_rate) == 50
        assert sum(1 for _ in container.decode(stream)) == 12
    assert "12 frames at 50 fps from 6" in card.text

    # side by side: both load; Play starts both
    videos = card.find_elements(By.CSS_SELECTOR, ".compare video")
    assert [v.get_attribute("class") for v in videos] == ["original", "result"]
    wait_for(
        lambda: all(browser.execute_script("return arguments[0].readyState", v) >= 2
                    for v in videos),
        "both videos to load",
    )  # fmt: skip
    card.find_element(By.CSS_SELECTOR, "button.play").click()
    wait_for(
        lambda: all(browser.execute_script("return arguments[0].currentTime > 0", v)
                    for v in videos),
        "both videos to play",
    )  # fmt: skip


def test_a_cancelled_job_leaves_nothing_behind(browser, ui_server, tmp_path):
    from selenium.webdriver.common.by import By

    clip = make_clip(tmp_path / "long.mkv", moving(40), codec="ffv1", audio=False)
    open_page(browser, ui_server)
    choose(browser, "video-file", clip)
    factor = browser.find_element(By.ID, "factor")
    factor.clear()
    factor.send_keys("8")
    browser.find_element(By.ID, "convert").click()
    card = job_card(browser, "running")
    progress = card.find_element(By.CSS_SELECTOR, "progress")
    wait_for(lambda: float(progress.get_attribute("value") or 0) > 0, "the first frames")
    assert "/ 320 frames" in card.text
    folder = job_folder(ui_server, card)
    card.find_element(By.CSS_SELECTOR, "button.cancel").click()
    card = job_card(browser, "cancelled")
    assert card.find_element(By.CSS_SELECTOR, "button.resume").is_displayed()
    # no output, no temporary file: only the input and the finished segments for Resume
    out = folder / "out"
    assert [p.name for p in out.iterdir() if not p.name.startswith(".long-x8.mp4.sepconv-")] == []
    assert not [p for p in folder.rglob("*") if ".tmp-" in p.name]
    card.find_element(By.CSS_SELECTOR, "button.discard").click()
    wait_for(lambda: not browser.find_elements(By.CSS_SELECTOR, ".job"), "the job to go")
    assert not folder.exists()


def test_a_bad_file_shows_the_command_s_one_line_error(browser, ui_server, tmp_path):
    from selenium.webdriver.common.by import By

    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    open_page(browser, ui_server)
    choose(browser, "video-file", notes)
    browser.find_element(By.ID, "convert").click()
    card = job_card(browser, "failed")
    shown = card.find_element(By.CSS_SELECTOR, ".error").text
    # what `sepconv video` prints for the same file, run the way the page runs it
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.mp4").write_bytes(notes.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "sepconv", "video", "notes.mp4", "-o", "../out/notes-x2.mp4",
         "--factor=2"],
        capture_output=True, text=True, cwd=tmp_path / "in", timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 1
    assert shown == result.stderr.strip()
    assert shown.startswith("sepconv: error: cannot read video notes.mp4: ")
    assert "\n" not in shown and "Traceback" not in card.text

    # an option the command refuses: its usage error, before anything is queued
    choose(browser, "video-file", notes)
    factor = browser.find_element(By.ID, "factor")
    factor.clear()
    factor.send_keys("1")
    browser.find_element(By.ID, "convert").click()
    message = browser.find_element(By.ID, "message")
    wait_for(message.is_displayed, "the message")
    assert (
        message.text
        == "sepconv video: error: argument --factor: expected a whole number >= 2, got 1"
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, ".job")) == 1
    assert not list(ui_server.root.glob("*/uploads/*"))
