"""Clients, jobs and the one-at-a-time queue behind ``sepconv ui``.

Every job runs the ``sepconv`` command itself in a child process (``python -m sepconv
interpolate ...`` or ``python -m sepconv video ...``), in the job's own folder: the page gets
the command's code paths and results, its one-line errors (the child's last ``sepconv`` line on
stderr), its progress bar (parsed for frames done, rate and ETA), its Ctrl-C (Cancel sends
SIGINT: the conversion stops between frames, no half file is left, finished frames are kept)
and its ``--resume`` (Resume). A crash, or the memory of a long job, stays in the child.

Files live in one private temporary folder per server (``mkdtemp``, mode 0700)::

    ROOT/CLIENT/uploads/ID/NAME            an upload not yet given to a job
    ROOT/CLIENT/JOB/in/NAME                the job's inputs (the command runs here)
    ROOT/CLIENT/JOB/out/NAME               its result (and, while it runs, the command's
                                            hidden work folder of segments)
    ROOT/CLIENT/JOB/preview/...            what the page shows when a browser cannot show
                                            the files themselves
    ROOT/scratch/                           $TMPDIR of every child (the compiled CPU
                                            kernel is cached there once per server)

A client is one browser tab (a random token the page keeps in memory and never stores), so
two tabs never see each other's jobs. Nothing is read or written outside ROOT but the weights
the person who started the server named on its command line. A job's temporary files go when
it ends (a failed job keeps nothing; a cancelled one keeps its finished frames for Resume until
it is discarded); a client's folder goes when its tab closes or after :attr:`Settings.
client_timeout` seconds without a request; ROOT goes when the server stops.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from sepconv.errors import SepconvError

KINDS = ("pair", "video")
CONTAINERS = (".mp4", ".mkv")
MAX_NAME = 120  # characters kept of an uploaded file's name
MAX_OPTION = 40  # characters of an option's value
KEPT_LINES = 200  # stderr lines of a step kept for its error and summary

_INTERPOLATING = re.compile(r"^interpolating:.*?\|\s*(\d+)/(\d+)\s*\[")
_READING = re.compile(r"^reading:\s*(\d+)\s*frame")
_ADAPTING = re.compile(r"^adapting:.*?\|\s*(\d+)/(\d+) s")
_ERROR = re.compile(r"^sepconv(?: [a-z]+)?: (?:error|internal error|interrupted)")
_WROTE_IMAGE = re.compile(r"^wrote .* \((\d+x\d+), ([\d.]+ s)\)$")
_WROTE_VIDEO = re.compile(r"^wrote .*?: (\d+ frames at .*)$")


class UiError(SepconvError):
    """A request the page cannot honour: one line for the page, and an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: ``key`` is what the page sends back, ``weights`` the
    ``--weights`` value given to the command (None: the command's default model)."""

    key: str
    label: str
    weights: str | None


def model_choices(
    given: Sequence[str], installed: Sequence[dict[str, object]]
) -> list[ModelChoice]:
    """The models the page offers, in its order (it preselects the first): those given to
    ``sepconv ui --weights`` (files or names), then the registry's installed weights
    (``python -m sepconv.ui.child models`` rows), the default model first."""
    choices: list[ModelChoice] = []
    for number, name_or_path in enumerate(given):
        path = Path(name_or_path).expanduser()
        if path.is_file():
            choices.append(ModelChoice(f"file{number}", path.name, str(path.resolve())))
        else:
            choices.append(ModelChoice(name_or_path, name_or_path, name_or_path))
    default_name = next((m["name"] for m in installed if m.get("default")), None)
    for model in sorted(installed, key=lambda model: model["name"] != default_name):
        name = str(model["name"])
        if not model.get("installed") or any(choice.key == name for choice in choices):
            continue
        label = f"{name} (default)" if name == default_name else name
        choices.append(ModelChoice(name, label, None if name == default_name else name))
    if not choices:
        choices.append(ModelChoice("default", "the default model", None))
    return choices


@dataclass
class Settings:
    """What ``sepconv ui``'s options set."""

    max_upload_bytes: int = 4096 * 2**20
    weights: Sequence[str] = ()  # --weights given to `sepconv ui`: offered first
    client_timeout: float = 900.0
    cancel_grace: float = 10.0  # seconds between SIGINT, a second SIGINT, and SIGKILL
    segment_frames: int | None = None  # `sepconv video --segment` (None: its default)
    python: str = sys.executable


@dataclass
class Client:
    """One browser tab's files and jobs."""

    token: str
    folder: Path
    last_seen: float
    jobs: dict[str, Job] = field(default_factory=dict)
    uploads: dict[str, Path] = field(default_factory=dict)
    closed: bool = False


@dataclass
class Job:
    """One conversion: the ``sepconv`` command's arguments, its state and its progress."""

    id: str
    client: Client
    kind: str
    inputs: list[str]
    output: str
    command: list[str]  # the sepconv command's arguments (after "sepconv")
    options: dict[str, Any]
    folder: Path
    state: str = "queued"  # queued, running, done, failed, cancelled
    phase: str = ""
    done: int | None = None
    total: int | None = None
    unit: str = "frames"
    rate: float | None = None
    eta: float | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    summary: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    converted: bool = False  # the command finished; only the previews may be missing
    resume: bool = False
    cancel_requested: bool = False
    discard_requested: bool = False
    process: subprocess.Popen[bytes] | None = None
    rate_origin: tuple[float, int] | None = None


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def safe_name(name: str, reserved: Collection[str] = (), fallback: str = "upload") -> str:
    """An uploaded file's name, safe as a file name and as a command argument.

    Only the last path component is kept, without control characters, leading dots (no hidden
    files) or dashes (no option look-alikes); it is cut to :data:`MAX_NAME` characters
    (keeping the extension). A name in ``reserved`` (the registry's weights names) gets a
    leading underscore: ``--weights NAME`` prefers an existing file of that name.
    """
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
    name = name.strip().lstrip(".-").strip()
    if len(name) > MAX_NAME:
        stem, dot, suffix = name.rpartition(".")
        suffix = suffix[:16] if dot else ""
        name = (stem if dot else name)[: MAX_NAME - len(suffix) - 1] + (f".{suffix}" if dot else "")
    if name in reserved:
        name = f"_{name}"
    return name or fallback


def size_text(count: float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop returns


def remove(path: Path) -> None:
    """Remove a file or folder tree; nothing if it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def stderr_lines(stream: IO[bytes]) -> Iterator[str]:
    """The lines of a child's stderr as they come; a progress bar's ``\\r`` ends a line too."""
    pending = b""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        pending += chunk
        *complete, pending = re.split(rb"[\r\n]", pending)
        for raw in complete:
            if raw.strip():
                yield raw.decode("utf-8", "replace").strip()
    if pending.strip():
        yield pending.decode("utf-8", "replace").strip()


def error_line(lines: Sequence[str], code: int) -> str:
    """The command's one-line error: its last ``sepconv...: error`` line, as it printed it."""
    for line in reversed(lines):
        if _ERROR.match(line):
            return line
    if code < 0:
        return f"sepconv: error: the command was stopped by signal {-code}"
    return f"sepconv: error: the command failed (exit code {code})"


def check_arguments(command: Sequence[str]) -> None:
    """Parse ``command`` with the ``sepconv`` command's own parser: its usage error, if any,
    as the one line the command prints (``sepconv video: error: argument --factor: ...``)."""
    from sepconv.cli import build_parser

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(list(command))
    except SystemExit:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        raise UiError(400, lines[-1] if lines else "sepconv: error: invalid options") from None


def _option(options: dict[str, Any], name: str, default: str = "") -> str:
    value = str(options.get(name, default)).strip()
    if len(value) > MAX_OPTION or not value.isprintable():
        raise UiError(400, f"sepconv ui: error: the value of {name} is not valid")
    return value


def _flag(options: dict[str, Any], name: str, default: bool = False) -> bool:
    return bool(options.get(name, default))


def video_command(
    name: str, options: dict[str, Any], weights: str | None
) -> tuple[list[str], str, dict[str, Any]]:
    """The ``sepconv video`` arguments for an input ``name`` in the working folder: (command,
    output name, options as the page shows them)."""
    stem = Path(name).stem or "video"
    container = _option(options, "container", ".mp4")
    if container not in CONTAINERS:
        raise UiError(400, f"sepconv ui: error: unknown container {container}")
    shown: dict[str, Any] = {}
    if _option(options, "mode", "factor") == "fps":
        fps = _option(options, "fps", "60")
        rate_args = [f"--fps={fps}"]
        tag = f"{fps.replace('/', '_').replace('.', '_')}fps"
        shown["fps"] = fps
    else:
        factor = _option(options, "factor", "2")
        rate_args = [f"--factor={factor}"]
        tag = f"x{factor}"
        shown["factor"] = factor
    if _flag(options, "slowmo"):
        rate_args.append("--slowmo")
        tag = f"slowmo-{tag}"
        shown["slowmo"] = True
    if _flag(options, "adapt"):
        seconds = _option(options, "adaptSeconds", "60")
        rate_args.append(f"--adapt={seconds}")
        shown["adapt"] = seconds
    if not _flag(options, "audio", True):
        rate_args.append("--no-audio")
        shown["audio"] = False
    output = f"{stem}-{tag}{container}"
    command = ["video", name, "-o", f"../out/{output}", *rate_args]
    if weights is not None:
        command.append(f"--weights={weights}")
    return command, output, shown


def pair_command(first: str, second: str, weights: str | None) -> tuple[list[str], str]:
    """The ``sepconv interpolate`` arguments for two inputs in the working folder."""
    output = f"{Path(first).stem or 'frame'}-middle.png"
    command = ["interpolate", first, second, "-o", f"../out/{output}"]
    if weights is not None:
        command.append(f"--weights={weights}")
    return command, output


def child_environment(temporary: Path) -> dict[str, str]:
    """The environment of a job's child: its own $TMPDIR, unbuffered, no tracebacks."""
    environment = dict(os.environ)
    environment.pop("SEPCONV_DEBUG", None)  # the page shows one-line errors, never tracebacks
    for variable in ("TMPDIR", "TEMP", "TMP"):
        environment[variable] = str(temporary)
    environment["PYTHONUNBUFFERED"] = "1"
    environment["PYTHONIOENCODING"] = "utf-8"
    return environment


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for a child (SIGINT; where there is none, terminate it)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(OSError):
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
        else:  # pragma: no cover - no SIGINT to send to another process
            process.terminate()


# --------------------------------------------------------------------------------------------
# The application state
# --------------------------------------------------------------------------------------------


class App:
    """Clients, uploads, jobs and the worker thread that runs them one at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="sepconv-ui-"))
        self.temporary = self.root / "scratch"
        self.temporary.mkdir()
        self.lock = threading.RLock()
        self._wakeup = threading.Condition(self.lock)
        self._clients: dict[str, Client] = {}
        self._waiting: deque[Job] = deque()
        self._current: Job | None = None
        self._stopping = False
        self._closed = False
        self._models: list[ModelChoice] | None = None
        self._reserved: frozenset[str] = frozenset()
        self._models_ready = threading.Event()
        threading.Thread(target=self._load_models, name="sepconv-ui-models", daemon=True).start()
        self._worker = threading.Thread(target=self._work, name="sepconv-ui-jobs", daemon=True)
        self._worker.start()
        self._janitor = threading.Thread(target=self._sweep, name="sepconv-ui-sweep", daemon=True)
        self._janitor.start()

    # -- models ----------------------------------------------------------------------------

    def _load_models(self) -> None:
        """Ask a child for the installed weights (the registry imports torch); add those
        named on the command line, first."""
        try:
            result = subprocess.run(
                [self.settings.python, "-m", "sepconv.ui.child", "models"],
                capture_output=True,
                text=True,
                timeout=300,
                env=child_environment(self.temporary),
                cwd=self.root,
            )
            installed = json.loads(result.stdout) if result.returncode == 0 else []
        except (OSError, subprocess.SubprocessError, ValueError):
            installed = []
        self._reserved = frozenset(str(model["name"]) for model in installed)
        choices = model_choices(self.settings.weights, installed)
        self._models = choices
        self._models_ready.set()

    def models(self) -> list[ModelChoice]:
        """The models the page offers (waits for the list at the first call)."""
        self._models_ready.wait(timeout=300)
        return self._models or [ModelChoice("default", "the default model", None)]

    def _model(self, key: Any) -> ModelChoice:
        models = self.models()
        if key in (None, ""):
            return models[0]
        for model in models:
            if model.key == key:
                return model
        raise UiError(400, f"sepconv ui: error: unknown model {str(key)[:40]!r}")

    # -- clients --------------------------------------------------------------------------

    def new_client(self) -> Client:
        token = secrets.token_urlsafe(24)
        folder = self.root / secrets.token_hex(8)
        folder.mkdir()
        client = Client(token, folder, time.monotonic())
        with self.lock:
            if self._closed:
                raise UiError(503, "sepconv ui: error: the server is stopping")
            self._clients[token] = client
        return client

    def client(self, token: str) -> Client:
        """The client of ``token`` (404 when it ended or never was)."""
        with self.lock:
            client = self._clients.get(token)
            if client is None:
                raise UiError(
                    404, "sepconv ui: error: this page's client has ended; reload the page"
                )
            client.last_seen = time.monotonic()
            return client

    def close_client(self, client: Client) -> None:
        """End a client: its jobs are cancelled and its files removed."""
        with self.lock:
            if client.closed:
                return
            client.closed = True
            self._clients.pop(client.token, None)
            running = None
            for job in list(client.jobs.values()):
                job.discard_requested = True
                if job.state == "queued":
                    self._waiting.remove(job)
                    job.state = "cancelled"
                elif job.state == "running":
                    running = job
            if running is None:
                remove(client.folder)
        if running is not None:
            self.cancel(running)  # the worker removes the folder when the child has stopped

    def _sweep(self) -> None:
        """Close clients that went quiet (a tab closed without saying so)."""
        while True:
            with self._wakeup:
                self._wakeup.wait(timeout=min(30.0, self.settings.client_timeout / 4))
                if self._stopping:
                    return
                now = time.monotonic()
                idle = [
                    client
                    for client in self._clients.values()
                    if now - client.last_seen > self.settings.client_timeout
                    and not any(j.state in ("queued", "running") for j in client.jobs.values())
                ]
            for client in idle:
                self.close_client(client)

    # -- uploads ---------------------------------------------------------------------------

    def save_upload(self, client: Client, name: str, body: IO[bytes], length: int) -> str:
        """Store ``length`` bytes of ``body`` as an upload of ``client``; its id."""
        self.models()  # the registry's names are reserved (see safe_name)
        shown = safe_name(name, self._reserved)
        limit = self.settings.max_upload_bytes
        if length > limit:
            raise UiError(
                413,
                f"sepconv ui: error: {shown} is {size_text(length)}, more than the "
                f"{size_text(limit)} this page accepts (sepconv ui --max-upload-mb)",
            )
        upload_id = secrets.token_hex(8)
        folder = client.folder / "uploads" / upload_id
        path = folder / shown
        try:
            folder.mkdir(parents=True)
            remaining = length
            with open(path, "wb") as handle:
                while remaining:
                    chunk = body.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise UiError(400, f"sepconv ui: error: the upload of {shown} stopped")
                    handle.write(chunk)
                    remaining -= len(chunk)
        except OSError as error:
            remove(folder)
            reason = error.strerror or type(error).__name__
            raise UiError(507, f"sepconv ui: error: cannot store {shown}: {reason}") from None
        except BaseException:
            remove(folder)
            raise
        with self.lock:
            if client.closed:
                remove(folder)
                raise UiError(404, "sepconv ui: error: this page's client has ended")
            client.uploads[upload_id] = path
        return upload_id

    # -- jobs ------------------------------------------------------------------------------

    def _command(
        self, kind: Any, names: list[str], options: Any, model_key: Any
    ) -> tuple[list[str], str, dict[str, Any]]:
        """The command of a job (checked with the command's parser), its output name and its
        options as the page shows them."""
        if kind not in KINDS:
            raise UiError(400, "sepconv ui: error: unknown kind of job")
        if not isinstance(options, dict):
            raise UiError(400, "sepconv ui: error: invalid options")
        model = self._model(model_key)
        if kind == "pair":
            command, output = pair_command(names[0], names[1], model.weights)
            shown: dict[str, Any] = {}
        else:
            command, output, shown = video_command(names[0], options, model.weights)
            if self.settings.segment_frames is not None:
                command.append(f"--segment={self.settings.segment_frames}")
        shown["model"] = model.label
        check_arguments(command)
        return command, output, shown

    def check_job(self, request: dict[str, Any]) -> None:
        """Refuse a job's options (the command's usage error) before its files are uploaded."""
        kind = request.get("kind")
        names = ["first.png", "second.png"] if kind == "pair" else ["input.mp4"]
        self._command(kind, names, request.get("options") or {}, request.get("model"))

    def create_job(self, client: Client, request: dict[str, Any]) -> Job:
        """A job from the page's request (kind, upload ids, model, options), queued. The
        uploads it names are used up: moved into the job, or removed if it is refused."""
        kind = request.get("kind")
        ids = request.get("inputs")
        wanted = 2 if kind == "pair" else 1
        if not isinstance(ids, list) or len(ids) != wanted:
            files = "two images" if kind == "pair" else "one video"
            raise UiError(400, f"sepconv ui: error: give {files}")
        with self.lock:
            uploads = [client.uploads.pop(str(upload_id), None) for upload_id in ids]
        try:
            if any(upload is None for upload in uploads):
                raise UiError(400, "sepconv ui: error: an upload is missing; add the file again")
            names: list[str] = []
            for upload in uploads:
                assert upload is not None
                name = upload.name
                if name in names:
                    name = f"{Path(name).stem} (2){Path(name).suffix}"
                names.append(name)
            command, output, shown = self._command(
                kind, names, request.get("options") or {}, request.get("model")
            )
            job_id = secrets.token_hex(6)
            folder = client.folder / job_id
            for part in ("in", "out"):
                (folder / part).mkdir(parents=True)
            for upload, name in zip(uploads, names, strict=True):
                assert upload is not None
                upload.rename(folder / "in" / name)
        finally:
            for upload in uploads:
                if upload is not None:
                    remove(upload.parent)
        job = Job(job_id, client, kind, names, output, command, shown, folder)
        with self.lock:
            if client.closed or self._stopping:
                remove(folder)
                raise UiError(404, "sepconv ui: error: this page's client has ended")
            client.jobs[job_id] = job
            self._waiting.append(job)
            job.phase = "waiting"
            self._wakeup.notify_all()
        return job

    def job(self, client: Client, job_id: str) -> Job:
        with self.lock:
            job = client.jobs.get(job_id)
        if job is None:
            raise UiError(404, "sepconv ui: error: no such job")
        return job

    def cancel(self, job: Job) -> None:
        """Stop a job: a queued one leaves the queue; a running one gets Ctrl-C (SIGINT),
        a second one after :attr:`Settings.cancel_grace` seconds, then SIGKILL."""
        with self.lock:
            if job.state == "queued":
                self._waiting.remove(job)
                job.state, job.phase = "cancelled", ""
                return
            if job.state != "running" or job.cancel_requested:
                return
            job.cancel_requested = True
            job.phase = "cancelling"
            process = job.process
        if process is not None:
            _interrupt(process)
            self._escalate(process)

    def _escalate(self, process: subprocess.Popen[bytes]) -> None:
        grace = self.settings.cancel_grace

        def again() -> None:
            _interrupt(process)  # a second Ctrl-C stops the command at once
            last = threading.Timer(grace, kill)
            last.daemon = True
            last.start()

        def kill() -> None:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.kill()

        timer = threading.Timer(grace, again)
        timer.daemon = True
        timer.start()

    def resume(self, job: Job) -> None:
        """Queue a cancelled job again; a video continues from its finished frames."""
        with self.lock:
            if job.state != "cancelled":
                raise UiError(409, "sepconv ui: error: only a cancelled job can be resumed")
            job.state, job.phase = "queued", "waiting"
            job.resume = True
            job.cancel_requested = False
            job.error = None
            job.done = job.total = None
            job.rate = job.eta = None
            self._waiting.append(job)
            self._wakeup.notify_all()

    def discard(self, job: Job) -> None:
        """Forget a job and remove its files (a running job is cancelled first)."""
        with self.lock:
            job.discard_requested = True
            running = job.state == "running"
            if job.state == "queued":
                self._waiting.remove(job)
                job.state = "cancelled"
            if not running:
                job.client.jobs.pop(job.id, None)
                remove(job.folder)
        if running:
            self.cancel(job)

    # -- views for the page ----------------------------------------------------------------

    def job_view(self, job: Job) -> dict[str, Any]:
        with self.lock:
            position = None
            if job.state == "queued":
                position = next(i for i, j in enumerate(self._waiting) if j is job) + 1
            token = job.client.token
            files = {
                key: f"/files/{token}/{job.id}/{key}/{quote(path.name)}"
                for key, path in job.files.items()
            }
            return {
                "id": job.id,
                "kind": job.kind,
                "state": job.state,
                "inputs": job.inputs,
                "output": job.output,
                "options": job.options,
                "phase": job.phase,
                "done": job.done,
                "total": job.total,
                "unit": job.unit,
                "rate": job.rate,
                "eta": job.eta,
                "error": job.error,
                "notes": job.notes,
                "summary": job.summary,
                "position": position,
                "files": files,
                "resumable": job.state == "cancelled",
            }

    def client_view(self, client: Client) -> dict[str, Any]:
        with self.lock:
            jobs = [self.job_view(job) for job in client.jobs.values() if not job.discard_requested]
            mine = sum(1 for job in self._waiting if job.client is client)
            return {
                "jobs": jobs,
                "queue": {
                    "running": self._current is not None,
                    "runningMine": self._current is not None and self._current.client is client,
                    "waiting": len(self._waiting),
                    "waitingMine": mine,
                },
            }

    def file(self, client: Client, job_id: str, key: str) -> Path:
        """A job's file the page may show or download (404 for anything else)."""
        job = self.job(client, job_id)
        with self.lock:
            path = job.files.get(key)
        if path is None or not path.is_file():
            raise UiError(404, "sepconv ui: error: no such file")
        return path

    # -- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._wakeup:
                while not self._waiting and not self._stopping:
                    self._wakeup.wait()
                if self._stopping:
                    return
                job = self._waiting.popleft()
                job.state, job.phase = "running", "starting"
                job.rate_origin = None
                self._current = job
            try:
                self._run(job)
            except Exception as error:  # noqa: BLE001 - a bug here must not stop the queue
                with self.lock:
                    job.state = "failed"
                    text = " ".join(str(error).split())[:300]
                    job.error = f"sepconv ui: internal error: {type(error).__name__}: {text}"
            finally:
                with self.lock:
                    self._current = None
                    job.process = None
                self._finish(job)

    def _run(self, job: Job) -> None:
        python = [self.settings.python, "-m"]
        if not job.converted:
            resume = ["--resume"] if job.resume and job.kind == "video" else []
            code, lines = self._step(job, [*python, "sepconv", *job.command, *resume])
            if job.cancel_requested:
                self._set(job, state="cancelled", phase="")
                return
            if code != 0:
                self._set(job, state="failed", phase="", error=error_line(lines, code))
                return
            summary = self._summary(lines)
            self._set(job, converted=True, summary=summary, phase="preparing the comparison")
        inputs = [job.folder / "in" / name for name in job.inputs]
        result = job.folder / "out" / job.output
        preview = job.folder / "preview"
        if job.kind == "pair":
            arguments = ["images", *map(str, inputs), str(result), str(preview)]
        else:
            arguments = ["video", str(inputs[0]), str(result), str(preview)]
        code, lines = self._step(job, [*python, "sepconv.ui.child", *arguments])
        if job.cancel_requested:
            self._set(job, state="cancelled", phase="")
            return
        files: dict[str, Path] = {"download": result}
        if code != 0:
            self._note(job, f"no comparison: {error_line(lines, code)}")
        elif job.kind == "pair":
            files |= {name: preview / f"{name}.png" for name in ("first", "middle", "last")}
        else:
            for key, source in (("original", inputs[0]), ("result", result)):
                made = preview / f"{key}.mp4"
                files[key] = made if made.is_file() else source
        self._set(job, files=files, state="done", phase="")

    def _step(self, job: Job, argv: list[str]) -> tuple[int, list[str]]:
        """Run one child in the job's input folder; follow its stderr; (exit code, lines)."""
        with self.lock:
            if job.cancel_requested:
                return 130, []
            process = subprocess.Popen(
                argv,
                cwd=job.folder / "in",
                env=child_environment(self.temporary),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C goes to the server only
            )
            job.process = process
        lines: deque[str] = deque(maxlen=KEPT_LINES)
        assert process.stderr is not None
        with process.stderr:
            for line in stderr_lines(process.stderr):
                lines.append(line)
                self._progress(job, line)
        code = process.wait()
        with self.lock:
            job.process = None
        return code, list(lines)

    def _progress(self, job: Job, line: str) -> None:
        """Follow the command's progress bars (tqdm) and its one-line notes."""
        with self.lock:
            if job.cancel_requested:
                return
            if match := _INTERPOLATING.match(line):
                done, total = int(match[1]), int(match[2])
                now = time.monotonic()
                if job.rate_origin is None or job.unit != "frames" or done < job.rate_origin[1]:
                    job.rate_origin = (now, done)
                start, first = job.rate_origin
                job.phase, job.unit, job.done, job.total = "interpolating", "frames", done, total
                if now - start >= 0.5 and done > first:
                    job.rate = (done - first) / (now - start)
                    job.eta = (total - done) / job.rate
                if done >= total:
                    job.phase, job.eta = "writing the file", 0.0
            elif match := _ADAPTING.match(line):
                job.phase, job.unit = "adapting the model to the video", "s"
                job.done, job.total = int(match[1]), int(match[2])
                job.rate = job.eta = None
            elif match := _READING.match(line):
                job.phase, job.unit, job.done, job.total = "reading the video", "frames", None, None
                job.done = int(match[1])
            elif line.startswith("sepconv: ") and not _ERROR.match(line):
                self._note(job, line.removeprefix("sepconv: "))

    def _note(self, job: Job, text: str) -> None:
        with self.lock:
            if text not in job.notes:
                job.notes.append(text)

    def _set(self, job: Job, **values: Any) -> None:
        with self.lock:
            for name, value in values.items():
                setattr(job, name, value)

    @staticmethod
    def _summary(lines: Sequence[str]) -> str | None:
        for line in reversed(lines):
            if match := _WROTE_IMAGE.match(line):
                return f"{match[1]} in {match[2]}"
            if match := _WROTE_VIDEO.match(line):
                return match[1]
        return None

    def _finish(self, job: Job) -> None:
        """Remove what a job no longer needs once its child has stopped."""
        with self.lock:
            client = job.client
            if job.discard_requested or client.closed:
                client.jobs.pop(job.id, None)
                remove(job.folder)
                if client.closed and not any(j.state == "running" for j in client.jobs.values()):
                    remove(client.folder)
                return
            out = job.folder / "out"
            if job.state == "failed":
                remove(job.folder)  # nothing to resume: inputs, segments and all go
                job.files = {}
            elif job.state == "done":
                for path in out.iterdir():
                    if path.name != job.output:
                        remove(path)  # the command's work folders (it removes them itself)
            elif job.state == "cancelled":
                for path in list(out.rglob("*")):
                    if ".tmp-" in path.name:
                        remove(path)  # a temporary file of a child that had to be killed

    # -- stopping --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the running job (Ctrl-C, then kill), end the worker, remove every file."""
        with self.lock:
            if self._closed:
                return
            self._closed = self._stopping = True
            current = self._current
            for job in self._waiting:
                job.state = "cancelled"
            self._waiting.clear()
            self._wakeup.notify_all()
        if current is not None:
            with self.lock:
                current.cancel_requested = True
                process = current.process
            if process is not None:
                _interrupt(process)
                try:
                    process.wait(timeout=self.settings.cancel_grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._worker.join(timeout=30)
        remove(self.root)
