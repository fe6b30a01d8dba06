"""Work the ``sepconv ui`` server hands to short-lived child processes.

``python -m sepconv.ui.child models``
    Print the registry's named weights as JSON (importing the registry imports torch, which the
    server itself never does).
``python -m sepconv.ui.child images FIRST SECOND MIDDLE FOLDER``
    Write 8-bit PNG copies of the three frames (``first.png``, ``middle.png``, ``last.png``) for
    the page: any image ``sepconv interpolate`` reads (16-bit, TIFF, EXIF-rotated...) can then be
    shown by a browser. The downloaded result is the command's own file, not these.
``python -m sepconv.ui.child video ORIGINAL RESULT FOLDER``
    For each of the two videos that a browser may not play (not H.264 4:2:0 in MP4/MOV, nor
    VP8/VP9/AV1 in WebM), write an H.264 preview (``original.mp4``, ``result.mp4``) at most
    :data:`PREVIEW_WIDTH` pixels wide, without sound.

Errors are one line on stderr (exit code 1), as with the ``sepconv`` command.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from sepconv.errors import SepconvError

PREVIEW_WIDTH = 960
# (extensions, codecs, pixel formats or None for any) that Chromium, Firefox and Safari play.
PLAYABLE: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...] | None], ...] = (
    ((".mp4", ".m4v", ".mov"), ("h264",), ("yuv420p", "yuvj420p")),
    ((".webm",), ("vp8", "vp9", "av1"), None),
)


def registry_models() -> list[dict[str, object]]:
    """The registry's weights: name, description, whether installed, whether the default."""
    from sepconv.weights import list_weights

    return [
        {
            "name": row.spec.name,
            "description": row.spec.description,
            "installed": row.installed,
            "default": row.default,
        }
        for row in list_weights()
    ]


def write_image_previews(first: Path, second: Path, middle: Path, folder: Path) -> None:
    """8-bit PNG copies of the frames (upright, alpha kept) as first/middle/last.png."""
    from PIL import Image

    from sepconv.imageio import read_image, to_uint8

    folder.mkdir(parents=True, exist_ok=True)
    for source, name in ((first, "first"), (middle, "middle"), (second, "last")):
        pixels, _ = read_image(source)
        Image.fromarray(to_uint8(pixels)).save(folder / f"{name}.png")


def browser_plays(path: Path) -> bool:
    """True when every common browser plays ``path`` as it is (by extension, codec, pixels)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        pixels = stream.codec_context.pix_fmt
    suffix = path.suffix.lower()
    for extensions, codecs, formats in PLAYABLE:
        if suffix in extensions and codec in codecs:
            return formats is None or pixels in formats
    return False


def write_video_preview(source: Path, target: Path, max_width: int = PREVIEW_WIDTH) -> None:
    """Re-encode ``source`` as H.264 4:2:0 in MP4 (even size, at most ``max_width`` wide),
    keeping each frame's time and the display rotation; no sound."""
    import av

    with av.open(str(source)) as container, av.open(str(target), mode="w") as output:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_width / max(width, 1))
        out_width = max(2, round(width * scale / 2) * 2)
        out_height = max(2, round(height * scale / 2) * 2)
        video = output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = out_width, out_height, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        video.options = {"crf": "20", "preset": "veryfast"}
        first_time: float | None = None
        last_pts = -1
        for frame in container.decode(stream):
            if first_time is None:
                first_time = frame.time or 0.0
                rotation = getattr(frame, "rotation", 0)
                # (an older PyAV: the preview shows the stored orientation)
                if rotation:
                    with contextlib.suppress(AttributeError, ValueError, av.error.FFmpegError):
                        video.set_display_rotation(rotation)
            time = frame.time if frame.time is not None else first_time
            pts = max(round((time - first_time) * 1000), last_pts + 1)
            last_pts = pts
            picture = frame.reformat(width=out_width, height=out_height, format="yuv420p")
            picture.pts, picture.time_base = pts, Fraction(1, 1000)
            for packet in video.encode(picture):
                output.mux(packet)
        for packet in video.encode(None):
            output.mux(packet)


def write_video_previews(original: Path, result: Path, folder: Path) -> list[str]:
    """Previews of whichever of the two videos browsers may not play; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source, name in ((original, "original.mp4"), (result, "result.mp4")):
        if not browser_plays(source):
            write_video_preview(source, folder / name)
            written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sepconv.ui.child`` (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args == ["models"]:
            print(json.dumps(registry_models()))
        elif len(args) == 5 and args[0] == "images":
            write_image_previews(*(Path(arg) for arg in args[1:]))
        elif len(args) == 4 and args[0] == "video":
            write_video_previews(*(Path(arg) for arg in args[1:]))
        else:
            print("usage: python -m sepconv.ui.child models|images|video ...", file=sys.stderr)
            return 2
    except SepconvError as error:
        print(f"sepconv: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - one line, as the sepconv command does
        text = " ".join(str(error).split())[:300]
        print(
            f"sepconv: error: cannot make a preview: {type(error).__name__}: {text}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
