"""Fixtures of the ``sepconv ui`` tests: the real command and a headless Chromium."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Lets the tests here import uitools.py (appended: `import conftest` stays tests/conftest.py).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent))

from uitools import CHROMIUM_FLAGS, RunningServer, find_browser, start_server  # noqa: E402


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The real `sepconv ui` command, for the module's tests."""
    server = start_server(tmp_path_factory.mktemp("ui-temp"))
    root = server.root
    yield server
    server.stop()
    assert not root.exists(), "the server left its temporary folder behind"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Selenium, the distribution's chromedriver), new empty profile."""
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    chromium, driver_path = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sepconv-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, "--window-size=1200,1000"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except Exception as error:  # noqa: BLE001 - e.g. a driver of another version
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"headless chromium does not start: {type(error).__name__}: {error}")
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
