"""Reading and writing still images for the sepconv CLI.

Every image is handed to the rest of the package as a float32 ``H x W x C`` array in ``[0, 1]``
with ``C = 3`` (RGB) or ``C = 4`` (RGBA, straight alpha, alpha last), plus an :class:`ImageInfo`
that records what the source file looked like, so a result can be written back in the same kind.

Reading (:func:`read_image`) -- anything Pillow can open; the first frame of a multi-frame file:

=====================================  ==============  =========  =============================
Source (Pillow mode)                   mode            bit_depth  Array returned
=====================================  ==============  =========  =============================
``1`` (bilevel), ``L``                 ``gray``        8          C=3, gray repeated
``LA``, ``La``                         ``gray_alpha``  8          C=4, gray repeated
``P`` without transparency             ``rgb``         8          C=3
``P`` with transparency, ``PA``        ``rgba``        8          C=4
``RGB``, ``RGBX``, ``YCbCr``, ``HSV``  ``rgb``         8          C=3
``CMYK``, ``LAB``                      ``rgb``         8          C=3 (Pillow's formula)
``RGB`` with a tRNS colour key         ``rgba``        8          C=4
``RGBA``, ``RGBa``                     ``rgba``        8          C=4
``I;16``, ``I;16L/B/N`` (16-bit gray)  ``gray``        16         C=3, value / 65535
``I`` (32-bit int) within 0..65535     ``gray``        16         C=3, value / 65535
``F`` (float TIFF) within [0, 1]       ``gray``        16         C=3, values as stored
16-bit RGB / RGBA PNG, TIFF, PPM       ``rgb/rgba``    16         C=3/4, value / 65535 [*]
16-bit gray + alpha PNG                ``gray_alpha``  16         C=4, value / 65535 [*]
=====================================  ==============  =========  =============================

[*] Pillow only decodes 16-bit colour images to 8 bits, so these are decoded again with OpenCV
(``opencv-python-headless``, a dependency) to keep their precision.

The EXIF orientation tag is applied (like :func:`PIL.ImageOps.exif_transpose`), so
``ImageInfo.height``/``width`` are those of the upright image. ICC profiles are not applied.
Refused with a one-line :class:`~sepconv.errors.InputError` naming the file: a missing file, a
directory or other non-regular file, an unreadable file, an empty file, a file that is not an
image, a truncated or corrupt image, an over-large image (Pillow's decompression-bomb limit),
``I``/``F`` images outside the ranges above, NaN or infinite float pixels, and modes not listed.

Writing (:func:`write_image`) -- the format comes from the extension:

====================  ==========================================================================
Extension             What is written
====================  ==========================================================================
``.png``              gray / gray+alpha / RGB / RGBA, 8 or 16 bits, as given by the ImageInfo;
                      16 bits are written by OpenCV, which has no gray+alpha: RGBA instead
``.tif``, ``.tiff``   same as PNG
``.jpg``, ``.jpeg``   8-bit gray or RGB, quality 95, no chroma subsampling; alpha is dropped
``.bmp``              8-bit gray or RGB; alpha is dropped (BMP readers ignore it)
``.webp``             8-bit RGB / RGBA, lossless; gray is stored as RGB
====================  ==========================================================================

JPEG, BMP and WebP cannot hold 16 bits, so 16-bit sources are written with 8 bits there.
Values are clipped to ``[0, 1]`` and rounded to the nearest integer. Gray output is the mean of
the R, G and B channels. Files are written atomically (see :func:`atomic_write`).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from sepconv.errors import InputError, OutputError, SepconvError

__all__ = [
    "ImageInfo",
    "atomic_write",
    "check_output_path",
    "read_image",
    "to_uint8",
    "to_uint16",
    "write_image",
]

ColorMode = Literal["gray", "gray_alpha", "rgb", "rgba"]

_CHANNELS: dict[str, int] = {"gray": 1, "gray_alpha": 2, "rgb": 3, "rgba": 4}

# Extension -> (Pillow format name, can hold alpha).
_WRITE_FORMATS: dict[str, tuple[str, bool]] = {
    ".png": ("PNG", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".bmp": ("BMP", False),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
    ".webp": ("WEBP", True),
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What a source image looked like: enough to write a result back in the same kind.

    Attributes:
        mode: ``"gray"``, ``"gray_alpha"``, ``"rgb"`` or ``"rgba"``.
        bit_depth: bits per sample of the source, 8 or 16.
        height: rows of the (upright, EXIF-rotated) image.
        width: columns of the (upright, EXIF-rotated) image.
        channels: samples per pixel of the source: 1, 2, 3 or 4 (follows ``mode``).
    """

    mode: ColorMode
    bit_depth: int
    height: int
    width: int
    channels: int

    def __post_init__(self) -> None:
        if self.mode not in _CHANNELS:
            raise ValueError(
                f"ImageInfo.mode must be one of {sorted(_CHANNELS)}, not {self.mode!r}"
            )
        if self.bit_depth not in (8, 16):
            raise ValueError(f"ImageInfo.bit_depth must be 8 or 16, not {self.bit_depth!r}")
        if self.channels != _CHANNELS[self.mode]:
            raise ValueError(f"ImageInfo.channels must be {_CHANNELS[self.mode]} for {self.mode!r}")
        if self.height < 1 or self.width < 1:
            raise ValueError("ImageInfo.height and width must be positive")

    @property
    def has_alpha(self) -> bool:
        """Whether the source had an alpha channel."""
        return self.mode in ("gray_alpha", "rgba")

    @property
    def is_gray(self) -> bool:
        """Whether the source was grayscale."""
        return self.mode in ("gray", "gray_alpha")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


# zlib levels of written PNGs: the default (Pillow's), and the fast one image sequences use
# (several times faster to encode than 6, for files about a fifth larger).
PNG_COMPRESSION = 6
FAST_PNG_COMPRESSION = 1


def _show(path: os.PathLike[str] | str) -> str:
    """A path for a one-line message: quoted if it holds control characters (e.g. newlines)."""
    text = os.fspath(path)
    return text if text.isprintable() else repr(text)


def _reason(exc: BaseException) -> str:
    """An exception as a short single-line reason."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Clip ``array`` to ``[0, 1]`` and round it to the nearest of 0..255 (uint8)."""
    return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint16(array: np.ndarray) -> np.ndarray:
    """Clip ``array`` to ``[0, 1]`` and round it to the nearest of 0..65535 (uint16)."""
    return np.rint(np.clip(array, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an ``H x W x C`` array, as ``exif_transpose`` does."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.transpose(1, 0, 2)
    elif orientation == 6:
        array = np.rot90(array, -1)
    elif orientation == 7:
        array = array.transpose(1, 0, 2)[::-1, ::-1]
    elif orientation == 8:
        array = np.rot90(array, 1)
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """Read a whole regular file, mapping every OS problem to a one-line InputError."""
    where = _show(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"cannot read image {where}: no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read image {where}: {_reason(exc)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"cannot read image {where}: it is a directory, not a file") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"cannot read image {where}: not a regular file") from None
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except PermissionError:
        raise InputError(f"cannot read image {where}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read image {where}: {_reason(exc)}") from None
    if not data:
        raise InputError(f"cannot read image {where}: the file is empty (0 bytes)")
    return data


def _rawmode(im: Image.Image) -> str:
    """The raw mode of the first decoder tile ('' when unknown)."""
    tiles = getattr(im, "tile", None) or []
    if not tiles:
        return ""
    args = tiles[0][3]
    if isinstance(args, str):
        return args
    if isinstance(args, tuple) and args and isinstance(args[0], str):
        return args[0]
    return ""


def _needs_16bit_color(im: Image.Image, data: bytes) -> bool:
    """Whether Pillow would squeeze a high-bit-depth colour (or gray+alpha) image to 8 bits."""
    if im.mode not in ("RGB", "RGBA", "LA"):
        return False
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 26:
        return data[24] == 16  # IHDR bit depth
    if ";16" in _rawmode(im):
        return True
    tiles = getattr(im, "tile", None) or []
    if im.format == "PPM" and tiles:
        args = tiles[0][3]
        return (
            isinstance(args, tuple)
            and len(args) > 1
            and isinstance(args[1], int)
            and (args[1] > 255)
        )
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(isinstance(b, int) and b > 8 for b in bits)
    return False


def _decode_16bit_color(data: bytes, where: str, size: tuple[int, int], alpha: bool) -> np.ndarray:
    """Decode a 16-bit colour image with OpenCV; returns uint16 RGB(A), ``H x W x (3|4)``."""
    import cv2

    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except Exception as exc:  # cv2.error
        raise InputError(f"cannot read image {where}: OpenCV failed: {_reason(exc)}") from None
    width, height = size
    if (
        decoded is None
        or decoded.ndim != 3
        or decoded.shape[:2] != (height, width)
        or decoded.shape[2] not in (3, 4)
    ):
        raise InputError(f"cannot read image {where}: OpenCV could not decode the 16-bit image")
    if decoded.dtype == np.uint8:
        decoded = decoded.astype(np.uint16) * 257
    elif decoded.dtype != np.uint16:
        raise InputError(f"cannot read image {where}: unsupported sample type {decoded.dtype}")
    rgb = decoded[..., 2::-1]
    if alpha:
        a = decoded[..., 3:] if decoded.shape[2] == 4 else np.full_like(rgb[..., :1], 65535)
        rgb = np.concatenate([rgb, a], axis=2)
    return np.ascontiguousarray(rgb)


def _decode_pil(im: Image.Image, where: str) -> tuple[np.ndarray, ColorMode, int]:
    """Decode a loaded 8-bit or 16-bit gray Pillow image to float32 ``H x W x C``; describe it."""
    mode = im.mode
    if mode in ("1", "L"):
        if mode == "L" and "transparency" in im.info:
            gray = np.asarray(im.convert("RGBA"))[..., [0, 3]]
            return gray.astype(np.float32) / 255.0, "gray_alpha", 8
        gray = np.asarray(im.convert("L"))
        return gray[..., None].astype(np.float32) / 255.0, "gray", 8
    if mode in ("LA", "La"):
        gray = np.asarray(im.convert("LA") if mode == "La" else im)
        return gray.astype(np.float32) / 255.0, "gray_alpha", 8
    if mode.startswith("I;16"):
        gray = np.asarray(im).astype(np.float32)
        return gray[..., None] / 65535.0, "gray", 16
    if mode == "I":
        gray = np.asarray(im)
        low, high = int(gray.min()), int(gray.max())
        if low < 0 or high > 65535:
            raise InputError(
                f"cannot read image {where}: 32-bit integer pixels outside 0..65535 "
                f"(found {low}..{high}) are not supported"
            )
        return gray[..., None].astype(np.float32) / 65535.0, "gray", 16
    if mode == "F":
        gray = np.asarray(im, dtype=np.float32)
        if not np.isfinite(gray).all():
            raise InputError(f"cannot read image {where}: float pixels include NaN or infinity")
        low, high = float(gray.min()), float(gray.max())
        if low < 0.0 or high > 1.0:
            raise InputError(
                f"cannot read image {where}: float pixels must lie in [0, 1] "
                f"(found {low:g}..{high:g}); rescale the image first"
            )
        return gray[..., None].copy(), "gray", 16
    has_alpha = mode in ("RGBA", "RGBa", "PA") or (
        mode in ("P", "RGB") and "transparency" in im.info
    )
    if mode in ("P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "YCbCr", "HSV", "CMYK", "LAB"):
        target = "RGBA" if has_alpha else "RGB"
        rgb = np.asarray(im if mode == target else im.convert(target))
        return rgb.astype(np.float32) / 255.0, ("rgba" if has_alpha else "rgb"), 8
    raise InputError(f"cannot read image {where}: unsupported image mode {mode!r}")


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1 when absent or unreadable)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a corrupt EXIF block must not make a good image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, ImageInfo]:
    """Read an image file as a float32 ``H x W x C`` array in ``[0, 1]`` and describe its source.

    ``C`` is 3 (RGB) or 4 (RGBA, straight alpha last); gray is repeated into R, G and B. 16-bit
    sources keep their precision (value / 65535). The EXIF orientation is applied. See the module
    docstring for the table of supported modes.

    Raises:
        InputError: with a one-line message naming the file, for any file that cannot be read
            or decoded (no Pillow or OS exception escapes).
    """
    path = Path(path)
    where = _show(path)
    data = _read_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            wide_color = _needs_16bit_color(im, data)
            # Pillow reads 16-bit gray+alpha PNGs as RGBA from raw mode "LA;16B".
            is_gray = im.mode == "LA" or _rawmode(im).startswith("LA")
            im.load()  # full decode: truncated or corrupt data fails here
            orientation = _orientation(im)
            if wide_color:
                alpha = im.mode in ("RGBA", "LA")
                pixels16 = _decode_16bit_color(data, where, size, alpha)
                pixels = pixels16.astype(np.float32) / 65535.0
                if is_gray:
                    pixels = pixels[..., [0, 3]] if alpha else pixels[..., :1]
                mode: ColorMode = (
                    ("gray_alpha" if alpha else "gray") if is_gray else ("rgba" if alpha else "rgb")
                )
                bit_depth = 16
            else:
                pixels, mode, bit_depth = _decode_pil(im, where)
    except SepconvError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"cannot read image {where}: too large ({_reason(exc)})") from None
    except Image.UnidentifiedImageError:
        raise InputError(f"cannot read image {where}: not a recognised image file") from None
    except MemoryError:
        raise InputError(f"cannot read image {where}: not enough memory to decode it") from None
    except Exception as exc:  # OSError, SyntaxError, ValueError, zlib.error, struct.error, ...
        raise InputError(
            f"cannot read image {where}: corrupt or truncated image ({_reason(exc)})"
        ) from None

    pixels = _orient(pixels, orientation)
    channels = _CHANNELS[mode]
    if mode in ("gray", "gray_alpha"):
        gray = np.repeat(pixels[..., :1], 3, axis=2)
        pixels = np.concatenate([gray, pixels[..., 1:]], axis=2) if mode == "gray_alpha" else gray
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    height, width = pixels.shape[:2]
    return pixels, ImageInfo(mode, bit_depth, height, width, channels)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _new_temp(path: Path) -> Path:
    """Create an empty, unique temp file next to ``path`` (``.name.tmp-XXXXXXXX.ext``)."""
    for _ in range(100):
        temp = path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")
        try:
            # 0o666 so the final file gets the usual umask-derived permissions.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"no free temporary name next to {path}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success move it onto ``path`` atomically.

    The temp file is created empty in the same directory (so the final rename never crosses a
    file system) and keeps the extension of ``path``, so writers that choose a format from the
    extension work. Missing parent directories are created. If the body raises anything
    (including ``KeyboardInterrupt``) the temp file is removed and ``path`` is left untouched.
    With ``overwrite=False`` the final step refuses to replace a file that appeared meanwhile
    (hard link + unlink, falling back to a check + rename where links are unsupported).

    Raises:
        OutputError: the directory or temp file cannot be created, or the final move fails.
    """
    path = Path(path)
    where = _show(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _new_temp(path)
    except OSError as exc:
        raise OutputError(f"cannot write {where}: {_reason(exc)}") from None
    try:
        yield temp
        try:
            _finish(temp, path, overwrite=overwrite)
        except OSError as exc:
            raise OutputError(f"cannot write {where}: {_reason(exc)}") from None
    except BaseException:  # includes KeyboardInterrupt and GeneratorExit
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _finish(temp: Path, path: Path, *, overwrite: bool) -> None:
    """Move ``temp`` onto ``path`` (replacing only when ``overwrite``)."""
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)
    except FileExistsError:
        raise OutputError(f"{_show(path)} exists (use --force to overwrite)") from None
    except OSError:  # no hard links here (e.g. FAT, some network shares)
        if os.path.lexists(path):
            raise OutputError(f"{_show(path)} exists (use --force to overwrite)") from None
        os.replace(temp, path)
        return
    with contextlib.suppress(OSError):
        os.unlink(temp)  # the data is safely at ``path`` already


def check_output_path(
    output: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    *,
    overwrite: bool,
) -> Path:
    """Check that ``output`` may be written and return it resolved (symlinks followed).

    Refused (one-line :class:`OutputError`): an output that is a directory, an output that is
    the same file as any input (after resolving symlinks, or by ``os.path.samefile`` when both
    exist, which also catches hard links), and an existing output without ``overwrite``.
    """
    out = Path(output)
    where = _show(out)
    if out.is_dir():
        raise OutputError(f"output {where} is a directory; give a file name")
    try:
        resolved = out.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise OutputError(f"cannot use output {where}: {_reason(exc)}") from None
    for item in inputs:
        inp = Path(item)
        same = False
        try:
            same = inp.resolve() == resolved
            if not same and out.exists() and inp.exists():
                same = os.path.samefile(out, inp)
        except (OSError, RuntimeError):
            pass
        if same:
            raise OutputError(f"output {where} is the same file as input {_show(inp)}")
    if os.path.lexists(out) and not overwrite:
        raise OutputError(f"{where} exists (use --force to overwrite)")
    return resolved


def check_writable(path: str | os.PathLike[str]) -> None:
    """Refuse (one-line :class:`OutputError`) an output that cannot be written where asked,
    before any work is done: a read-only file system, a folder without write permission, a
    parent that is a file. Creates missing parent folders (as the write would), then a
    temporary file next to ``path``, removed at once."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _new_temp(path)
    except OSError as exc:
        raise OutputError(f"cannot write {_show(path)}: {_reason(exc)}") from None
    with contextlib.suppress(OSError):
        os.unlink(temp)


def _check_array(array: np.ndarray) -> np.ndarray:
    """Validate a float ``H x W x (3|4)`` image array (programming errors -> ValueError)."""
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected an H x W x 3 or H x W x 4 image array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected a float image array in [0, 1], got dtype {array.dtype}")
    if np.isnan(array).any():
        raise ValueError("image array contains NaN")
    return array


def write_image(
    path: str | os.PathLike[str],
    array: np.ndarray,
    info: ImageInfo | None = None,
    *,
    overwrite: bool = False,
    png_compression: int = PNG_COMPRESSION,
) -> None:
    """Write a float ``H x W x C`` array in ``[0, 1]`` (C 3 or 4) atomically, in the source kind.

    ``png_compression`` is zlib's level for PNG (0-9; :data:`FAST_PNG_COMPRESSION` for image
    sequences, where the encoder's time would otherwise be a large share of each frame's).

    ``info`` (from :func:`read_image`) selects gray vs colour and 8 vs 16 bits; without it the
    output is 8-bit RGB(A). Gray output is the mean of R, G and B. Alpha is written when the
    array has a fourth channel or ``info`` had alpha (then fully opaque if the array has none),
    except for JPEG and BMP, which drop it. JPEG, BMP and WebP are always 8-bit. Values are
    clipped to ``[0, 1]`` and rounded. Missing parent directories are created. The data goes
    to a temp file in the target directory that is renamed onto ``path`` only once complete.

    Raises:
        OutputError: unknown extension, ``path`` exists and not ``overwrite``, ``path`` is a
            directory, or the file cannot be written (one-line message naming the file).
        ValueError: ``array`` is not a float ``H x W x 3|4`` array or contains NaN.
    """
    path = Path(path)
    where = _show(path)
    spec = _WRITE_FORMATS.get(path.suffix.lower())
    if spec is None:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise OutputError(f"cannot write {where}: unknown image extension (use one of {known})")
    fmt, format_has_alpha = spec
    array = _check_array(array)
    if os.path.isdir(path):
        raise OutputError(f"cannot write {where}: it is a directory")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(f"{where} exists (use --force to overwrite)")

    if info is None:
        info = ImageInfo("rgb", 8, array.shape[0], array.shape[1], 3)
    alpha = (array.shape[2] == 4 or info.has_alpha) and format_has_alpha
    bits = 16 if info.bit_depth == 16 and fmt in ("PNG", "TIFF") else 8

    color = array[..., :3]
    planes = [color.mean(axis=2, keepdims=True)] if info.is_gray else [color]
    if alpha:
        planes.append(array[..., 3:] if array.shape[2] == 4 else np.ones_like(color[..., :1]))
    samples = np.concatenate(planes, axis=2)
    samples = to_uint16(samples) if bits == 16 else to_uint8(samples)

    writer = _pick_writer(fmt, samples, where, png_compression)
    try:
        with atomic_write(path, overwrite=overwrite) as temp:
            writer(temp)
    except SepconvError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {where}: {_reason(exc)}") from None


def _pick_writer(
    fmt: str, samples: np.ndarray, where: str, png_compression: int = 6
) -> Callable[[Path], None]:
    """Return a function that writes ``samples`` (uint8/uint16 ``H x W x C``) to a path."""
    channels = samples.shape[2]
    if samples.dtype == np.uint16:  # Pillow cannot write 16-bit colour, nor 16-bit gray PNG
        data = _encode_16bit(samples, fmt, where, png_compression)

        def write_bytes(target: Path) -> None:
            with open(target, "wb") as handle:
                handle.write(data)

        return write_bytes

    # Pillow infers the mode: L, LA, RGB, RGBA for uint8; I;16 for 2-D uint16.
    image = Image.fromarray(np.ascontiguousarray(samples[..., 0] if channels == 1 else samples))
    pil_mode = image.mode
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options = {"quality": 95, "subsampling": 0}
    elif fmt == "PNG":
        options = {"compress_level": png_compression}
    elif fmt == "WEBP":
        options = {"lossless": True}
        if pil_mode == "L":
            image = image.convert("RGB")
        elif pil_mode == "LA":
            image = image.convert("RGBA")

    def write_pil(target: Path) -> None:
        image.save(target, format=fmt, **options)

    return write_pil


def _encode_16bit(samples: np.ndarray, fmt: str, where: str, png_compression: int = 6) -> bytes:
    """Encode uint16 ``H x W x C`` samples (C 1..4) as a 16-bit PNG or TIFF with OpenCV.

    OpenCV has no gray+alpha layout, so C = 2 is written as RGBA with the gray repeated (no
    precision is lost; the file then reads back as ``rgba``).
    """
    import cv2

    if samples.shape[2] == 2:
        samples = samples[..., [0, 0, 0, 1]]
    channels = samples.shape[2]
    # OpenCV orders colour channels BGR(A).
    pixels = np.ascontiguousarray(
        samples[..., 0] if channels == 1 else samples[..., [2, 1, 0, 3][:channels]]
    )
    extension, options = (
        (".png", [cv2.IMWRITE_PNG_COMPRESSION, png_compression]) if fmt == "PNG" else (".tiff", [])
    )
    try:
        ok, encoded = cv2.imencode(extension, pixels, options)
    except Exception as exc:  # cv2.error
        raise OutputError(f"cannot write {where}: OpenCV failed: {_reason(exc)}") from None
    if not ok:
        raise OutputError(f"cannot write {where}: OpenCV could not encode the image")
    return encoded.tobytes()
