"""The HTTP side of ``sepconv ui``: the standard library's threading HTTP server.

Routes (``TOKEN`` is the client of one browser tab, see :mod:`sepconv.ui.jobs`)::

    GET  /                                   the page (static/index.html)
    GET  /static/NAME                        its script and style sheet
    POST /api/client                        a new client: token, models, upload limit
    GET  /api/s/TOKEN/jobs                   the tab's jobs and the queue
    POST /api/s/TOKEN/uploads?name=NAME      an upload (the request body is the file)
    POST /api/s/TOKEN/jobs                   a job (JSON: kind, inputs, model, options; with
                                             "check": true, only its options are checked)
    POST /api/s/TOKEN/jobs/ID/ACTION         cancel, resume or discard a job
    POST /api/s/TOKEN/close                  the tab is closing: remove its files
    GET  /files/TOKEN/ID/KEY/NAME            a job's result or preview (byte ranges for video)

Errors are JSON ``{"error": "one line"}``. Requests must name the server itself in ``Host``
(when it listens on the loopback interface: no DNS rebinding) and, for POST, in ``Origin``
when the browser sends one (no other site can drive the page). Responses forbid scripts,
styles, images and media from anywhere but the server (Content-Security-Policy).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import socket
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sepconv.errors import SepconvError
from sepconv.ui.jobs import App, Settings, UiError

STATIC = {  # name -> content type: the only files the page itself is made of
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
MEDIA_TYPES = {
    ".png": "image/png",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
MAX_JSON = 64 * 1024
ACTIONS = ("cancel", "resume", "discard")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return resources.files("sepconv.ui").joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """One request; the routes of the module docstring."""

    server: UiServer
    server_version = "sepconv-ui"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the terminal shows the server's address, not every request."""

    # -- responses -------------------------------------------------------------------------

    def _headers(self, status: int, content_type: str, length: int, **extra: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self._headers(status, content_type, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self.close_connection = True  # the request's body may not have been read
        self._json({"error": message}, status)

    # -- checks ----------------------------------------------------------------------------

    def _check_origin(self) -> None:
        host = self.headers.get("Host", "")
        allowed = self.server.allowed_hosts
        if allowed is not None and host not in allowed:
            raise UiError(403, "sepconv ui: error: unexpected Host header")
        origin = self.headers.get("Origin")
        if self.command == "POST" and origin is not None and origin != f"http://{host}":
            raise UiError(403, "sepconv ui: error: requests from another site are refused")

    def _length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None:
            raise UiError(411, "sepconv ui: error: the request has no length")
        try:
            length = int(text)
        except ValueError:
            raise UiError(400, "sepconv ui: error: bad Content-Length") from None
        if length < 0:
            raise UiError(400, "sepconv ui: error: bad Content-Length")
        return length

    def _read_json(self) -> dict[str, Any]:
        length = self._length()
        if length > MAX_JSON:
            raise UiError(413, "sepconv ui: error: request too large")
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise UiError(400, "sepconv ui: error: the request is not JSON") from None
        if not isinstance(payload, dict):
            raise UiError(400, "sepconv ui: error: the request is not a JSON object")
        return payload

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._dispatch(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(self._post)

    def _dispatch(self, route: Any) -> None:
        try:
            self._check_origin()
            url = urlsplit(self.path)
            parts = [unquote(part) for part in url.path.split("/")[1:]]
            route(parts, parse_qs(url.query))
        except UiError as error:
            self._error(error.status, str(error))
        except SepconvError as error:
            self._error(400, " ".join(str(error).split()))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - one line on the page, never a traceback
            text = " ".join(str(error).split())[:300]
            self._error(500, f"sepconv ui: internal error: {type(error).__name__}: {text}")

    def _get(self, parts: list[str], query: dict[str, list[str]]) -> None:
        app = self.server.app
        if parts in ([""], ["index.html"]):
            self._send(200, _static("index.html"), STATIC["index.html"])
        elif len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC:
            self._send(200, _static(parts[1]), STATIC[parts[1]])
        elif len(parts) == 4 and parts[:2] == ["api", "s"] and parts[3] == "jobs":
            self._json(app.client_view(app.client(parts[2])))
        elif len(parts) >= 4 and parts[0] == "files":
            client = app.client(parts[1])
            path = app.file(client, parts[2], parts[3])
            self._file(path, download="download" in query)
        else:
            raise UiError(404, "sepconv ui: error: not found")

    def _post(self, parts: list[str], query: dict[str, list[str]]) -> None:
        app = self.server.app
        if parts == ["api", "client"]:
            client = app.new_client()
            models = [{"key": m.key, "label": m.label} for m in app.models()]
            self._json(
                {
                    "token": client.token,
                    "models": models,
                    "maxUploadBytes": app.settings.max_upload_bytes,
                }
            )
            return
        if len(parts) < 4 or parts[:2] != ["api", "s"]:
            raise UiError(404, "sepconv ui: error: not found")
        if parts[3] == "close" and len(parts) == 4:
            with contextlib.suppress(UiError):
                app.close_client(app.client(parts[2]))
            self._json({})
            return
        client = app.client(parts[2])
        if parts[3] == "uploads" and len(parts) == 4:
            name = (query.get("name") or ["upload"])[0]
            upload_id = app.save_upload(client, name, self.rfile, self._length())
            self._json({"id": upload_id})
        elif parts[3] == "jobs" and len(parts) == 4:
            request = self._read_json()
            if request.get("check"):
                app.check_job(request)
                self._json({})
            else:
                self._json(app.job_view(app.create_job(client, request)))
        elif parts[3] == "jobs" and len(parts) == 6 and parts[5] in ACTIONS:
            job = app.job(client, parts[4])
            getattr(app, parts[5])(job)
            self._json({})
        else:
            raise UiError(404, "sepconv ui: error: not found")

    def _file(self, path: Path, download: bool) -> None:
        """Send a file, or the byte range asked (browsers seek in videos with ranges)."""
        size = path.stat().st_size
        start, end = 0, size - 1
        status = 200
        extra: dict[str, str] = {"Accept_Ranges": "bytes"}
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and "," not in wanted and size:
            first, _, last = wanted[6:].partition("-")
            try:
                if first:
                    start, end = int(first), min(int(last), size - 1) if last else size - 1
                else:
                    start, end = max(0, size - int(last)), size - 1
            except ValueError:
                start, end = 0, size - 1
            else:
                if start > end or start >= size:
                    self._headers(416, "text/plain", 0, Content_Range=f"bytes */{size}")
                    return
                status = 206
                extra["Content_Range"] = f"bytes {start}-{end}/{size}"
        if download:
            ascii_name = path.name.encode("ascii", "replace").decode().replace('"', "_")
            extra["Content_Disposition"] = (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(path.name)}"
            )
        media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        self._headers(status, media_type, end - start + 1 if size else 0, **extra)
        if self.command == "HEAD" or not size:
            return
        with open(path, "rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)


class UiServer(ThreadingHTTPServer):
    """The threading HTTP server, holding the :class:`App` its handlers use."""

    daemon_threads = True

    def __init__(self, app: App, host: str, port: int) -> None:
        self.app = app
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), Handler)
        self.allowed_hosts: set[str] | None = None
        if is_loopback(host):
            port = self.server_port
            self.allowed_hosts = {
                f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", host)
            }

    @property
    def url(self) -> str:
        host = self.server_address[0]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{self.server_port}/"


def make_server(settings: Settings, host: str = "127.0.0.1", port: int = 0) -> UiServer:
    """A server with a fresh :class:`App` (not yet serving); one-line error if the address
    cannot be used."""
    app = App(settings)
    try:
        return UiServer(app, host, port)
    except OSError as error:
        app.shutdown()
        reason = error.strerror or str(error)
        hint = " (another --port, or --port 0 for any free one)" if port else ""
        raise SepconvError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = True,
) -> int:
    """Run ``sepconv ui`` until Ctrl-C or SIGTERM; every file it made is removed then."""
    if not is_loopback(host):
        print(
            f"sepconv: warning: listening on {host}, not the loopback interface: anyone who "
            "can reach this machine can use the page, its models and its files",
            file=sys.stderr,
        )
    server = make_server(settings, host, port)
    app = server.app
    url = server.url
    if host in ("0.0.0.0", "::"):  # noqa: S104 - said above
        url = f"http://127.0.0.1:{server.server_port}/"
    print(f"sepconv ui: serving on {url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        server.server_close()
        app.shutdown()
    print("sepconv ui: stopped; its files are removed", file=sys.stderr)
    return 0
