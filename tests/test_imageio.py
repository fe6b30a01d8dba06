"""Tests for sepconv.imageio: round trips, odd modes, EXIF, error messages, atomic writes."""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps

from sepconv.errors import InputError, OutputError
from sepconv.imageio import (
    ImageInfo,
    atomic_write,
    check_output_path,
    read_image,
    to_uint8,
    to_uint16,
    write_image,
)

MODES = {1: "gray", 2: "gray_alpha", 3: "rgb", 4: "rgba"}


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def png16(samples: np.ndarray) -> bytes:
    """A minimal 16-bit PNG encoder (filter 0), independent of the module's own."""
    h, w, c = samples.shape
    rows = samples.astype(">u2").view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + tag
            + body
            + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def random_samples(rng: np.random.Generator, h: int, w: int, c: int, bits: int) -> np.ndarray:
    top = 255 if bits == 8 else 65535
    dtype = np.uint8 if bits == 8 else np.uint16
    samples = rng.integers(0, top + 1, size=(h, w, c), dtype=np.int64).astype(dtype)
    samples.flat[0] = 0  # make sure both extremes appear
    samples.flat[-1] = top
    return samples


def save_source(path: Path, samples: np.ndarray) -> None:
    """Write samples in their own kind: Pillow where it can, a hand-made PNG otherwise."""
    c = samples.shape[2]
    if samples.dtype == np.uint8:
        Image.fromarray(samples[..., 0] if c == 1 else samples).save(path)
    elif c == 1:
        Image.fromarray(samples[..., 0]).save(path)  # mode I;16
    else:
        path.write_bytes(png16(samples))


def expand(samples: np.ndarray) -> np.ndarray:
    """Gray (+alpha) samples repeated into RGB (+alpha); colour samples unchanged."""
    if samples.shape[2] in (1, 2):
        return np.concatenate([np.repeat(samples[..., :1], 3, axis=2), samples[..., 1:]], axis=2)
    return samples


def expected_float(samples: np.ndarray) -> np.ndarray:
    """What read_image should return for source samples (gray expanded, alpha last)."""
    top = np.float32(255.0 if samples.dtype == np.uint8 else 65535.0)
    return expand(samples).astype(np.float32) / top


def file_samples(path: Path) -> np.ndarray:
    """Read raw samples of a written file independently of sepconv (HxWxC integers): OpenCV
    for 16-bit colour (Pillow would truncate it), Pillow otherwise."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is not None and raw.dtype == np.uint16 and raw.ndim == 3:
        return raw[..., [2, 1, 0, 3][: raw.shape[2]]]
    with Image.open(path) as im:
        arr = np.asarray(im)
    return arr[..., None] if arr.ndim == 2 else arr


def assert_one_line_naming(exc: BaseException, name: str) -> None:
    message = str(exc)
    assert "\n" not in message and "\r" not in message
    assert name in message, message


# ------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, database=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 2, 3, 4]),
    bits=st.sampled_from([8, 16]),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_png(h: int, w: int, c: int, bits: int, seed: int) -> None:
    samples = random_samples(np.random.default_rng(seed), h, w, c, bits)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.png"
        save_source(src, samples)
        array, info = read_image(src)
        assert info == ImageInfo(MODES[c], bits, h, w, c)
        assert array.dtype == np.float32 and array.shape == (h, w, 4 if c in (2, 4) else 3)
        np.testing.assert_array_equal(array, expected_float(samples))
        quantise = to_uint8 if bits == 8 else to_uint16
        np.testing.assert_array_equal(quantise(array), expand(samples))

        out = Path(tmp) / "out.png"
        write_image(out, array, info)
        again, info2 = read_image(out)
        if bits == 16 and c == 2:  # OpenCV has no 16-bit gray+alpha: RGBA, gray repeated
            np.testing.assert_array_equal(file_samples(out), expand(samples))
            assert info2 == ImageInfo("rgba", 16, h, w, 4)
        else:
            np.testing.assert_array_equal(file_samples(out), samples)
            assert info2 == info
        np.testing.assert_array_equal(again, array)


@settings(max_examples=15, deadline=None, database=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.sampled_from([1, 2, 3, 4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_tiff_8bit(h: int, w: int, c: int, seed: int) -> None:
    samples = random_samples(np.random.default_rng(seed), h, w, c, 8)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.tif"
        save_source(src, samples)
        array, info = read_image(src)
        assert info == ImageInfo(MODES[c], 8, h, w, c)
        np.testing.assert_array_equal(array, expected_float(samples))
        out = Path(tmp) / "out.tiff"
        write_image(out, array, info)
        np.testing.assert_array_equal(file_samples(out), samples)


def test_round_trip_16bit_gray_tiff(tmp_path: Path) -> None:
    samples = random_samples(np.random.default_rng(1), 7, 9, 1, 16)
    src = tmp_path / "g16.tif"
    Image.fromarray(samples[..., 0]).save(src)
    array, info = read_image(src)
    assert info == ImageInfo("gray", 16, 7, 9, 1)
    np.testing.assert_array_equal(array, expected_float(samples))
    write_image(tmp_path / "out.tif", array, info)
    np.testing.assert_array_equal(file_samples(tmp_path / "out.tif"), samples)


@pytest.mark.parametrize(
    ("ext", "c"), [(".png", 3), (".png", 4), (".tif", 3), (".tif", 4), (".ppm", 3)]
)
def test_16bit_colour_written_by_opencv(tmp_path: Path, ext: str, c: int) -> None:
    rgb = random_samples(np.random.default_rng(c), 6, 11, c, 16)
    src = tmp_path / f"src{ext}"
    assert cv2.imwrite(str(src), rgb[..., [2, 1, 0, 3][:c]])
    array, info = read_image(src)
    assert info == ImageInfo(MODES[c], 16, 6, 11, c)
    np.testing.assert_array_equal(to_uint16(array), rgb)
    out = tmp_path / "out.tif"
    write_image(out, array, info)
    again, info2 = read_image(out)
    assert info2 == info
    np.testing.assert_array_equal(again, array)


def test_16bit_output_is_what_other_readers_see(tmp_path: Path) -> None:
    """16-bit PNG and TIFF are written by OpenCV: Pillow (gray) and OpenCV (colour) read back
    the exact samples, and no temporary file is left."""
    for channels in (1, 3, 4):
        samples = random_samples(np.random.default_rng(channels), 5, 4, channels, 16)
        info = ImageInfo(MODES[channels], 16, 5, 4, channels)
        for ext in (".png", ".tif"):
            out = tmp_path / f"out{channels}{ext}"
            write_image(out, expected_float(samples), info)
            np.testing.assert_array_equal(file_samples(out), samples)
    assert not list(tmp_path.glob(".out*"))


def test_palette_images(tmp_path: Path) -> None:
    rgb = Image.fromarray(random_samples(np.random.default_rng(3), 9, 8, 3, 8))
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    array, info = read_image(tmp_path / "p.png")
    assert info == ImageInfo("rgb", 8, 9, 8, 3)
    np.testing.assert_array_equal(to_uint8(array), np.asarray(pal.convert("RGB")))

    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    pal.save(tmp_path / "pt.gif", transparency=0)
    for name in ("pt.png", "pt.gif"):
        array, info = read_image(tmp_path / name)
        assert info.mode == "rgba" and array.shape == (9, 8, 4)
        with Image.open(tmp_path / name) as im:
            np.testing.assert_array_equal(to_uint8(array), np.asarray(im.convert("RGBA")))


def test_rgb_colour_key_becomes_alpha(tmp_path: Path) -> None:
    samples = np.zeros((2, 2, 3), np.uint8)
    samples[0, 0] = (10, 20, 30)
    Image.fromarray(samples).save(tmp_path / "key.png", transparency=(10, 20, 30))
    array, info = read_image(tmp_path / "key.png")
    assert info.mode == "rgba"
    assert array[0, 0, 3] == 0 and array[1, 1, 3] == 1


@pytest.mark.parametrize(("mode", "name"), [("1", "x.png"), ("CMYK", "x.jpg"), ("LAB", "x.tif")])
def test_other_modes_become_rgb_or_gray(tmp_path: Path, mode: str, name: str) -> None:
    base = Image.fromarray(random_samples(np.random.default_rng(4), 8, 6, 3, 8))
    path = tmp_path / name
    base.convert(mode).save(path)
    with Image.open(path) as im:
        assert im.mode == mode
        expected = np.asarray(im.convert("RGB"))
    array, info = read_image(path)
    np.testing.assert_array_equal(to_uint8(array), expected)
    assert info.mode == ("gray" if mode == "1" else "rgb") and info.bit_depth == 8


def test_float_and_int32_tiff(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(values, mode="F").save(tmp_path / "f.tif")
    array, info = read_image(tmp_path / "f.tif")
    assert info == ImageInfo("gray", 16, 3, 4, 1)
    np.testing.assert_array_equal(array[..., 0], values)

    Image.fromarray(values * 3, mode="F").save(tmp_path / "hdr.tif")
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "hdr.tif")
    assert_one_line_naming(err.value, "hdr.tif")

    bad = values.copy()
    bad[0, 0] = np.nan
    Image.fromarray(bad, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "nan.tif")
    assert_one_line_naming(err.value, "nan.tif")

    ints = np.array([[0, 1000], [65535, 7]], np.int32)
    Image.fromarray(ints, mode="I").save(tmp_path / "i.tif")
    array, info = read_image(tmp_path / "i.tif")
    assert info.bit_depth == 16
    np.testing.assert_array_equal(to_uint16(array[..., 0]), ints)
    Image.fromarray(ints * 2, mode="I").save(tmp_path / "big.tif")
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "big.tif")
    assert_one_line_naming(err.value, "big.tif")


# ------------------------------------------------------------------------------------------------
# EXIF orientation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    samples = random_samples(np.random.default_rng(orientation), 3, 5, 3, 8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(samples).save(path, exif=exif)
    array, info = read_image(path)
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(to_uint8(array), upright)
    assert (info.height, info.width) == upright.shape[:2]


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    samples = np.zeros((16, 32, 3), np.uint8)
    samples[:, :16] = (255, 0, 0)
    samples[:, 16:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(samples).save(path, exif=exif, quality=95)
    array, info = read_image(path)
    assert array.shape == (32, 16, 3) and (info.height, info.width) == (32, 16)
    with Image.open(path) as im:
        np.testing.assert_array_equal(to_uint8(array), np.asarray(ImageOps.exif_transpose(im)))
    assert array[2, 8, 0] > 0.9 and array[-2, 8, 2] > 0.9  # red on top, blue below


def test_16bit_gray_alpha_png(tmp_path: Path) -> None:
    samples = random_samples(np.random.default_rng(5), 4, 6, 2, 16)
    (tmp_path / "ga.png").write_bytes(png16(samples))
    array, info = read_image(tmp_path / "ga.png")
    assert info == ImageInfo("gray_alpha", 16, 4, 6, 2)
    np.testing.assert_array_equal(array, expected_float(samples))


# ------------------------------------------------------------------------------------------------
# Read errors
# ------------------------------------------------------------------------------------------------


def _good_png(path: Path) -> bytes:
    Image.fromarray(random_samples(np.random.default_rng(6), 32, 32, 3, 8)).save(path)
    return path.read_bytes()


def _bad_files(tmp: Path) -> dict[str, Path]:
    good = _good_png(tmp / "good.png")
    Image.fromarray(random_samples(np.random.default_rng(7), 32, 32, 3, 8)).save(tmp / "good.jpg")
    jpeg = (tmp / "good.jpg").read_bytes()
    files = {
        "missing": tmp / "missing.png",
        "directory": tmp / "folder.png",
        "empty": tmp / "empty.png",
        "text": tmp / "notes.png",
        "truncated_png": tmp / "cut.png",
        "truncated_jpeg": tmp / "cut.jpg",
        "garbage": tmp / "garbage.png",
        "corrupt_idat": tmp / "flipped.png",
    }
    files["directory"].mkdir()
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is not an image\nsecond line\n")
    files["truncated_png"].write_bytes(good[: len(good) // 2])
    files["truncated_jpeg"].write_bytes(jpeg[: len(jpeg) // 2])
    files["garbage"].write_bytes(good[:8] + os.urandom(200))
    flipped = bytearray(good)
    start = good.index(b"IDAT") + 20
    flipped[start : start + 40] = bytes(b ^ 0xFF for b in flipped[start : start + 40])
    files["corrupt_idat"].write_bytes(bytes(flipped))
    return files


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "directory",
        "empty",
        "text",
        "truncated_png",
        "truncated_jpeg",
        "garbage",
        "corrupt_idat",
    ],
)
def test_read_errors_are_one_line_input_errors(tmp_path: Path, case: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(InputError) as err:
        read_image(path)
    assert_one_line_naming(err.value, path.name)
    assert err.value.__cause__ is None
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_read_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    _good_png(path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # running as root: simulate the failure instead

            def deny(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied", str(path))

            import sepconv.imageio as module

            monkeypatch.setattr(module, "open", deny, raising=False)
        with pytest.raises(InputError) as err:
            read_image(path)
        assert_one_line_naming(err.value, "secret.png")
        assert "permission denied" in str(err.value)
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_read_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError) as err:
        read_image(fifo)
    assert_one_line_naming(err.value, "pipe.png")


def test_file_name_with_newline_stays_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        read_image(tmp_path / "two\nlines.png")
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def test_write_rounds_and_clips(tmp_path: Path) -> None:
    array = np.array([[[254.6 / 255, 0.4 / 255, 1.5], [-0.2, 127.5001 / 255, 0.6 / 255]]])
    write_image(tmp_path / "r.png", array.astype(np.float32))
    np.testing.assert_array_equal(file_samples(tmp_path / "r.png"), [[[255, 0, 255], [0, 128, 1]]])
    np.testing.assert_array_equal(to_uint16(np.array([0.5 / 65535 + 1e-9, 2.0])), [1, 65535])


def test_write_gray_is_channel_mean(tmp_path: Path) -> None:
    array = np.array([[[0.0, 0.4, 0.8], [1.0, 1.0, 1.0]]], np.float32)
    write_image(tmp_path / "g.png", array, ImageInfo("gray", 8, 1, 2, 1))
    np.testing.assert_array_equal(file_samples(tmp_path / "g.png")[..., 0], [[102, 255]])


def test_write_alpha_rules(tmp_path: Path) -> None:
    rgba = np.full((3, 4, 4), 0.5, np.float32)
    rgba[..., 3] = 0.25
    write_image(tmp_path / "a.jpg", rgba)  # JPEG: alpha dropped
    assert read_image(tmp_path / "a.jpg")[1].mode == "rgb"
    write_image(tmp_path / "a.bmp", rgba)  # BMP: alpha dropped
    array, info = read_image(tmp_path / "a.bmp")
    assert info.mode == "rgb"
    np.testing.assert_array_equal(to_uint8(array), to_uint8(rgba[..., :3]))
    write_image(tmp_path / "a.webp", rgba)  # WebP: lossless, alpha kept
    array, info = read_image(tmp_path / "a.webp")
    assert info.mode == "rgba"
    np.testing.assert_array_equal(to_uint8(array), to_uint8(rgba))
    # Source had alpha, result has none: written opaque.
    write_image(tmp_path / "o.png", rgba[..., :3], ImageInfo("rgba", 8, 3, 4, 4))
    assert (file_samples(tmp_path / "o.png")[..., 3] == 255).all()


def test_write_16bit_to_jpeg_is_8bit(tmp_path: Path) -> None:
    array = np.full((2, 2, 3), 0.5, np.float32)
    write_image(tmp_path / "x.jpeg", array, ImageInfo("rgb", 16, 2, 2, 3))
    with Image.open(tmp_path / "x.jpeg") as im:
        assert im.mode == "RGB"


def test_write_unknown_extension_and_directory(tmp_path: Path) -> None:
    array = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(OutputError) as err:
        write_image(tmp_path / "frame.xyz", array)
    assert_one_line_naming(err.value, "frame.xyz")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(OutputError) as err:
        write_image(tmp_path / "dir.png", array, overwrite=True)
    assert_one_line_naming(err.value, "dir.png")
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", np.zeros((2, 2), np.float32))


def test_write_creates_parents_and_reports_blocked_parent(tmp_path: Path) -> None:
    array = np.zeros((2, 2, 3), np.float32)
    write_image(tmp_path / "a" / "b" / "c.png", array)
    assert (tmp_path / "a" / "b" / "c.png").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError) as err:
        write_image(tmp_path / "file" / "c.png", array)
    assert_one_line_naming(err.value, "c.png")


def test_existing_output_refused_then_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    array = np.ones((2, 3, 3), np.float32)
    with pytest.raises(OutputError) as err:
        write_image(out, array)
    assert_one_line_naming(err.value, "out.png")
    assert "--force" in str(err.value)
    assert out.read_bytes() == b"precious"
    write_image(out, array, overwrite=True)
    assert file_samples(out).shape == (2, 3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_output_permissions_follow_umask(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    write_image(tmp_path / "p.png", np.zeros((1, 1, 3), np.float32))
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    out = tmp_path / "frame.png"
    if existing:
        out.write_bytes(b"old frame")

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        with open(fp, "wb") as handle:  # type: ignore[arg-type]
            handle.write(b"\x89PNG half written")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_image(out, np.zeros((4, 4, 3), np.float32), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["frame.png"] if existing else [])
    if existing:
        assert out.read_bytes() == b"old frame"


def test_atomic_write_no_clobber_race(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    with pytest.raises(OutputError), atomic_write(out, overwrite=False) as temp:
        assert temp.parent == tmp_path and temp.suffix == ".mp4" and temp.name.startswith(".")
        temp.write_bytes(b"new")
        out.write_bytes(b"appeared meanwhile")
    assert out.read_bytes() == b"appeared meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]
    with atomic_write(out) as temp:
        temp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


# ------------------------------------------------------------------------------------------------
# check_output_path
# ------------------------------------------------------------------------------------------------


def test_check_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    _good_png(a)
    _good_png(b)
    out = tmp_path / "out.png"
    assert check_output_path(out, [a, b], overwrite=False) == out.resolve()

    for same in (a, tmp_path / "." / "a.png"):
        with pytest.raises(OutputError) as err:
            check_output_path(same, [a, b], overwrite=True)
        assert_one_line_naming(err.value, "a.png")

    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError):
        check_output_path("b.png", [a, b], overwrite=True)

    link = tmp_path / "link.png"
    link.symlink_to(a)
    with pytest.raises(OutputError) as err:
        check_output_path(link, [a, b], overwrite=True)
    assert "same file" in str(err.value)
    with pytest.raises(OutputError):
        check_output_path(a, [link], overwrite=True)

    hard = tmp_path / "hard.png"
    os.link(b, hard)
    with pytest.raises(OutputError) as err:
        check_output_path(hard, [a, b], overwrite=True)
    assert "same file" in str(err.value)

    out.write_bytes(b"x")
    with pytest.raises(OutputError) as err:
        check_output_path(out, [a, b], overwrite=False)
    assert "--force" in str(err.value) and "\n" not in str(err.value)
    assert check_output_path(out, [a, b], overwrite=True) == out.resolve()

    with pytest.raises(OutputError) as err:
        check_output_path(tmp_path, [a], overwrite=True)
    assert "directory" in str(err.value)
