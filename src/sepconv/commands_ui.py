"""The ``sepconv ui`` command: a local web page over ``interpolate`` and ``video``.

``add_ui_command(commands)`` adds it to the CLI's sub-parsers; the server is
:mod:`sepconv.ui.server` (standard library only, imported inside the handler).
"""

from __future__ import annotations

import argparse

UI_DESCRIPTION = """\
Serve a page on http://127.0.0.1:PORT and open it in the browser: drop two images to get the
frame halfway between them, or a video to convert its frame rate (the options of `sepconv
video`: factor, target fps, slow motion, the model, --adapt), then compare the result with the
original and download it. Jobs run one at a time, each as the `sepconv` command would run it;
the others wait in a queue. Files stay in a private temporary folder, one per browser tab,
and are removed when the tab closes or the server stops. See docs/ui.md.
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 0 and 65535, got {port}")
    return port


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of megabytes, got {text!r}") from None
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"expected a positive number of megabytes, got {text}")
    return value


def add_ui_command(commands: argparse._SubParsersAction) -> None:
    """Add the ``ui`` command to the CLI's sub-parsers."""
    ui = commands.add_parser(
        "ui",
        help="a local web page: convert a video or a pair of frames and compare",
        description=UI_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ui.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; anything else is "
        "reachable by others and prints a warning)",
    )
    ui.add_argument(
        "--port", type=_port, default=8765, help="port (default: 8765; 0: any free port)"
    )
    ui.add_argument("--no-browser", action="store_true", help="do not open the browser")
    ui.add_argument(
        "--max-upload-mb",
        type=_megabytes,
        default=4096.0,
        metavar="MB",
        help="largest file the page accepts, in MiB (default: 4096)",
    )
    ui.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME_OR_PATH",
        help="also offer this model (registry name or weights file), preselected; repeat to "
        "offer several. The page offers the installed named weights in any case",
    )
    ui.set_defaults(handler=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    """Handler of ``sepconv ui``."""
    from sepconv.ui.jobs import Settings
    from sepconv.ui.server import serve

    settings = Settings(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        weights=tuple(args.weights),
    )
    return serve(settings, host=args.host, port=args.port, open_browser=not args.no_browser)
