"""The ``sepconv ui`` server over HTTP, without a browser: the reliability battery's bad inputs
give the command's own one-line errors, tabs are isolated, uploads are bounded, jobs run one
at a time, a cancelled video resumes from its segments, and every file goes at the end.

The server runs in-process (``make_server``) with the tiny blend model of tests/conftest.py
preselected; one test runs the real ``sepconv ui`` command.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from conftest import make_blend_model, make_clip, write_audio_only
from PIL import Image
from uitools import moving, start_server

from sepconv.cli import main as sepconv_main
from sepconv.ui.jobs import App, ModelChoice, Settings, model_choices, safe_name
from sepconv.ui.server import UiServer, make_server

TIMEOUT = 120


class Tab:
    """What one browser tab does, over HTTP."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token or self.post("/api/client")[1]["token"]

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url.rstrip("/") + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, data = response.status, response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, data, kind = error.code, error.read(), error.headers.get("Content-Type", "")
        return status, json.loads(data) if kind == "application/json" else data

    def post(self, path: str, payload: Any = None) -> tuple[int, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        return self.request("POST", path, body, {"Content-Type": "application/json"})

    def upload(self, path: Path, name: str | None = None) -> str:
        status, payload = self.request(
            "POST", f"/api/s/{self.token}/uploads?name={name or path.name}", path.read_bytes()
        )
        assert status == 200, payload
        return payload["id"]

    def submit(self, kind: str, *paths: Path, **options: Any) -> dict[str, Any]:
        inputs = [self.upload(path) for path in paths]
        status, payload = self.post(
            f"/api/s/{self.token}/jobs", {"kind": kind, "inputs": inputs, "options": options}
        )
        assert status == 200, payload
        return payload

    def jobs(self) -> dict[str, Any]:
        status, payload = self.request("GET", f"/api/s/{self.token}/jobs")
        assert status == 200, payload
        return payload

    def job(self, job_id: str) -> dict[str, Any]:
        return next(job for job in self.jobs()["jobs"] if job["id"] == job_id)

    def wait(self, job_id: str, *states: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached {states}: {job}")

    def act(self, job_id: str, action: str) -> None:
        status, payload = self.post(f"/api/s/{self.token}/jobs/{job_id}/{action}")
        assert status == 200, payload


@pytest.fixture(scope="module")
def blend_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sepconv.models.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "blend.pt"
    save_checkpoint(path, make_blend_model())
    return path


@pytest.fixture(scope="module")
def server(blend_weights: Path) -> Iterator[UiServer]:
    settings = Settings(weights=(str(blend_weights),), segment_frames=4, cancel_grace=20)
    server = make_server(settings)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        server.app.shutdown()
        thread.join()
    assert not server.app.root.exists()


def client_folder(app: App, tab: Tab) -> Path:
    return app.client(tab.token).folder


# -- the reliability battery -----------------------------------------------------------------


def _png(path: Path, shape: tuple[int, int] = (12, 16), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*shape, 3), np.uint8)).save(path)
    return path


def _bad_images(folder: Path, case: str) -> list[Path]:
    first, second = _png(folder / "first.png"), _png(folder / "second.png", seed=1)
    if case == "corrupt":  # a valid header, garbled compressed data
        data = bytearray(first.read_bytes())
        data[60:90] = bytes(30)
        first.write_bytes(bytes(data))
    elif case == "truncated":
        data = first.read_bytes()
        first.write_bytes(data[: len(data) // 2])
    elif case == "text":
        first.write_text("not an image\n")
    elif case == "empty":
        first.write_bytes(b"")
    elif case == "sizes":
        _png(second, (10, 12))
    return [first, second]


def _bad_video(folder: Path, case: str) -> Path:
    source = folder / "in.mp4"
    if case == "truncated":  # an .mp4 cut short: its index (moov) is at the end
        make_clip(source, moving(6), codec="libx264", audio=False)
        data = source.read_bytes()
        source.write_bytes(data[: len(data) // 2])
    elif case == "corrupt":
        source.write_bytes(np.random.default_rng(0).bytes(5000))
    elif case == "empty":
        source.write_bytes(b"")
    elif case == "audio-only":
        source = write_audio_only(folder / "in.m4a")
    elif case == "one-frame":  # a still image named .mp4
        Image.fromarray(moving(1)[0]).save(source, format="PNG")
    return source


BATTERY = [
    ("pair", "corrupt", "corrupt"),
    ("pair", "truncated", "truncated"),
    ("pair", "text", "not a recognised image"),
    ("pair", "empty", "the file is empty"),
    ("pair", "sizes", "differ in size"),
    ("video", "truncated", "truncated"),
    ("video", "corrupt", "corrupt, truncated or not a video"),
    ("video", "empty", "the file is empty"),
    ("video", "audio-only", "no video stream"),
    ("video", "one-frame", "only one frame"),
]


def test_every_bad_input_gives_the_command_s_one_line_error(server, tmp_path, monkeypatch, capsys):
    """Each bad input of tests/test_reliability.py a page can be given (a file's bytes: not a
    missing or unreadable path, an output equal to an input, or a weights file) fails with
    the line the `sepconv` command prints for the same arguments, and leaves no file."""
    tab = Tab(server.url)
    app = server.app
    for kind, case, fragment in BATTERY:
        folder = tmp_path / f"{kind}-{case}"
        folder.mkdir()
        files = _bad_images(folder, case) if kind == "pair" else [_bad_video(folder, case)]
        job = tab.wait(tab.submit(kind, *files)["id"], "failed", "done")
        assert job["state"] == "failed", (case, job)
        line = job["error"]
        assert fragment in line and "\n" not in line and "Traceback" not in line, (case, line)
        assert not (client_folder(app, tab) / job["id"]).exists()  # nothing kept

        # the command itself, with the page's arguments, in a folder laid out like the job's
        command = app.job(app.client(tab.token), job["id"]).command
        (folder / "in").mkdir()
        for path in files:
            os.replace(path, folder / "in" / path.name)
        monkeypatch.chdir(folder / "in")
        capsys.readouterr()
        assert sepconv_main(command) == 1
        printed = [text.strip() for text in capsys.readouterr().err.replace("\r", "\n").split("\n")]
        assert printed[-2 if printed[-1] == "" else -1] == line, case  # after its progress bar


def test_a_usage_error_comes_before_any_upload(server):
    tab = Tab(server.url)
    status, payload = tab.post(
        f"/api/s/{tab.token}/jobs", {"check": True, "kind": "video", "options": {"factor": "1"}}
    )
    assert status == 400
    assert payload["error"] == (
        "sepconv video: error: argument --factor: expected a whole number >= 2, got 1"
    )
    status, payload = tab.post(
        f"/api/s/{tab.token}/jobs",
        {"check": True, "kind": "video", "options": {"mode": "fps", "fps": "fast"}},
    )
    assert status == 400 and "invalid frame rate 'fast'" in payload["error"]
    status, _ = tab.post(f"/api/s/{tab.token}/jobs", {"check": True, "kind": "video"})
    assert status == 200


# -- limits ----------------------------------------------------------------------------------


def test_tabs_do_not_see_each_other_s_files(server, tmp_path):
    first, second = (_png(tmp_path / f"{n}.png", (16, 16), seed) for seed, n in enumerate("ab"))
    one, two = Tab(server.url), Tab(server.url)
    job = one.wait(one.submit("pair", first, second)["id"], "done")
    status, data = one.request("GET", job["files"]["download"])
    assert status == 200 and data.startswith(b"\x89PNG")

    assert two.jobs()["jobs"] == []
    other = job["files"]["download"].replace(one.token, two.token)
    assert two.request("GET", other)[0] == 404
    assert two.post(f"/api/s/{two.token}/jobs/{job['id']}/discard")[0] == 404
    upload = one.upload(first)
    status, payload = two.post(f"/api/s/{two.token}/jobs", {"kind": "video", "inputs": [upload]})
    assert status == 400 and "upload is missing" in payload["error"]
    assert Tab(server.url, token="not-a-client").request("GET", "/api/s/x/jobs")[0] == 404


def test_uploads_are_bounded_by_the_size_setting(server, tmp_path):
    tab = Tab(server.url)
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(3000))
    limit = server.app.settings.max_upload_bytes
    server.app.settings.max_upload_bytes = 2048
    try:
        status, payload = tab.request(
            "POST", f"/api/s/{tab.token}/uploads?name=big.mp4", big.read_bytes()
        )
    finally:
        server.app.settings.max_upload_bytes = limit
    assert status == 413
    assert payload["error"] == (
        "sepconv ui: error: big.mp4 is 2.9 KB, more than the 2.0 KB this page accepts "
        "(sepconv ui --max-upload-mb)"
    )
    assert not list(client_folder(server.app, tab).rglob("*.mp4"))


def test_requests_from_other_sites_are_refused(server):
    tab = Tab(server.url)
    status, payload = tab.request("GET", "/", headers={"Host": "attacker.example:80"})
    assert status == 403 and "Host" in payload["error"]
    status, payload = tab.request(
        "POST", "/api/client", b"", headers={"Origin": "http://attacker.example"}
    )
    assert status == 403 and "another site" in payload["error"]
    status, page = tab.request("GET", "/")
    assert status == 200 and b"/static/app.js" in page
    assert tab.request("GET", "/static/../jobs.py")[0] == 404


def test_the_page_offers_given_models_then_the_default_first(tmp_path):
    """The page preselects its first model: a model given to ``sepconv ui --weights``, else
    the registry's default (whatever its place in the registry), so the page makes what
    ``sepconv interpolate`` makes."""
    installed = [
        {"name": "sepconv-flow", "installed": True, "default": False},
        {"name": "sepconv-l1", "installed": True, "default": False},
        {"name": "sepconv-motion", "installed": True, "default": True},
        {"name": "authors-l1", "installed": False, "default": False},
    ]
    choices = model_choices((), installed)
    assert choices == [
        ModelChoice("sepconv-motion", "sepconv-motion (default)", None),
        ModelChoice("sepconv-flow", "sepconv-flow", "sepconv-flow"),
        ModelChoice("sepconv-l1", "sepconv-l1", "sepconv-l1"),
    ]
    weights = tmp_path / "mine.safetensors"
    weights.write_bytes(b"")
    given = model_choices((str(weights), "sepconv-l1"), installed)
    assert [choice.key for choice in given] == [
        "file0",
        "sepconv-l1",
        "sepconv-motion",
        "sepconv-flow",
    ]
    assert model_choices((), []) == [ModelChoice("default", "the default model", None)]


def test_uploaded_names_cannot_escape_or_pose_as_options():
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\clip.mp4") == "clip.mp4"
    assert safe_name("--weights=x.mp4") == "weights=x.mp4"
    assert safe_name(".hidden.png") == "hidden.png"
    assert safe_name("a\nb\x00.png") == "ab.png"
    assert safe_name("sepconv-flow", reserved={"sepconv-flow"}) == "_sepconv-flow"
    assert safe_name("...") == "upload"
    assert len(safe_name("x" * 500 + ".png")) <= 120 and safe_name("y" * 500 + ".png").endswith(
        ".png"
    )


# -- the queue, cancel and resume ------------------------------------------------------------


def test_jobs_run_one_at_a_time_and_the_others_wait_in_the_queue(server, tmp_path):
    tab = Tab(server.url)
    first, second = (_png(tmp_path / f"{n}.png", (16, 16), seed) for seed, n in enumerate("ab"))
    ids = [tab.submit("pair", first, second)["id"] for _ in range(3)]
    view = tab.jobs()
    states = {job["id"]: job for job in view["jobs"]}
    assert states[ids[2]]["state"] == "queued" and states[ids[2]]["position"] >= 1
    assert view["queue"]["waitingMine"] >= 2
    tab.act(ids[2], "cancel")  # a queued job leaves the queue, never runs
    assert tab.job(ids[2])["state"] == "cancelled"
    most = 0
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        jobs = tab.jobs()["jobs"]
        most = max(most, sum(job["state"] == "running" for job in jobs))
        if all(job["state"] in ("done", "cancelled") for job in jobs):
            break
        time.sleep(0.02)
    assert most == 1
    assert [tab.job(job_id)["state"] for job_id in ids] == ["done", "done", "cancelled"]
    assert not list((client_folder(server.app, tab) / ids[2] / "out").iterdir())


def test_a_cancelled_video_leaves_no_half_file_and_resumes(server, tmp_path):
    app = server.app
    tab = Tab(server.url)
    for count in (16, 96):  # a longer clip if the first one finished before Cancel
        clip = make_clip(tmp_path / f"clip{count}.mkv", moving(count), codec="ffv1", audio=False)
        job = tab.submit("video", clip, factor="2", container=".mkv")
        folder = client_folder(app, tab) / job["id"]
        deadline = time.monotonic() + TIMEOUT
        while not list(folder.glob("out/.*.sepconv-*/segment-*")):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        tab.act(job["id"], "cancel")
        job = tab.wait(job["id"], "cancelled", "done")
        if job["state"] == "cancelled":
            break
    else:
        pytest.skip("the conversion always finished before Cancel arrived")
    assert job["resumable"] and job["error"] is None
    out = folder / "out"
    output = out / f"clip{count}-x2.mkv"
    assert not output.exists()
    assert not [p for p in folder.rglob("*") if ".tmp-" in p.name]
    (work,) = out.iterdir()
    assert list(work.glob("segment-*"))  # finished segments, kept for Resume

    tab.act(job["id"], "resume")
    job = tab.wait(job["id"], "done")
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        assert Fraction(stream.average_rate) == 50
        assert sum(1 for _ in container.decode(stream)) == 2 * count
    assert [p.name for p in out.iterdir()] == [output.name]  # the work folder went
    status, data = tab.request("GET", job["files"]["result"], headers={"Range": "bytes=0-99"})
    assert status == 206 and len(data) == 100
    tab.act(job["id"], "discard")
    assert not folder.exists() and tab.jobs()["jobs"] == []


# -- the end of a tab, of the server ---------------------------------------------------------


def test_a_closed_tab_s_files_go(server, tmp_path):
    tab = Tab(server.url)
    folder = client_folder(server.app, tab)
    tab.upload(_png(tmp_path / "a.png"))
    assert list(folder.rglob("a.png"))
    assert tab.post(f"/api/s/{tab.token}/close")[0] == 200
    assert not folder.exists()
    status, payload = tab.request("GET", f"/api/s/{tab.token}/jobs")
    assert status == 404 and "reload the page" in payload["error"]


def test_the_command_warns_off_loopback_and_removes_everything_when_stopped(tmp_path):
    server = start_server(tmp_path / "temp", "--host", "0.0.0.0")
    root = server.root
    local = server.url.replace("0.0.0.0", "127.0.0.1")
    tab = Tab(local)
    tab.upload(_png(tmp_path / "a.png"))
    assert list(root.rglob("a.png"))
    err = server.stop()
    assert server.process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert not root.exists() and not list((tmp_path / "temp").iterdir())
    assert server.warning.startswith("sepconv: warning: listening on 0.0.0.0")
