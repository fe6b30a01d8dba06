"""A vectorised CPU separable local convolution (backend ``cpu``).

The reference op (:mod:`sepconv.ops.reference`) makes K*K + K passes over whole frames, so on
a CPU it is bound by memory bandwidth (0.8 s and more per 720p frame on 2 cores, much more
when other work shares the memory bus). This backend computes the same sums in the same
order, 16 output pixels (one AVX-512 register, or two AVX2 ones) at a time with every partial
sum kept in registers: for each block of 16 pixels of one output row it reads the block's K
horizontal taps once (they stay in L1 for all K vertical taps) and the frame rows from cache.
Rows are shared between ``torch.get_num_threads()`` threads (ctypes releases the GIL). About
0.1 s per 720p frame on 2 cores (``benchmarks/bench_op.py --backend cpu``).

Kernels may be contiguous (B, K, H, W) or channels_last, as a channels_last network returns
them (read in place, transposed block by block in cache); :func:`forward_bfloat16_kernels`
also reads a bfloat16 network's kernels without casting them first.

The kernel is a small C file compiled once per machine with the system C compiler
(``cc``/``gcc``/``clang`` or ``$CC``, ``-O3 -march=native``, or ``-march=$SEPCONV_CPU_MARCH``;
well under a second) into a user cache folder (``$SEPCONV_CACHE_DIR``, default a private
``sepconv-UID`` folder in the system temp folder, under ``kernels/``; the file name hashes
the source, flags, compiler and CPU flags) and loaded with ctypes: no torch
headers, nothing built at install time. Where no compiler works the backend reports itself
unavailable (:func:`cpu_kernel_error` says why) and the Interpolator keeps the reference op.

Forward and the kernel gradients run in float32 or float64 (other dtypes go through the
reference). The kernel gradients share every frame load between both sums, 16 pixels at a
time like the forward; the frame gradient (not needed for training, where frames are inputs)
is the reference's. Gradients agree with the reference's to float rounding.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sepconv.ops import reference

CACHE_DIR_ENV = "SEPCONV_CACHE_DIR"
#: The target CPU of the build (``-march=``), default ``native``: e.g. ``x86-64-v3`` (AVX2 and
#: FMA, no AVX-512) to build and measure what an AVX2-only CPU runs.
MARCH_ENV = "SEPCONV_CPU_MARCH"
_CFLAGS = ("-O3", "-shared", "-fPIC", "-std=gnu99", "-fno-math-errno")


def _cflags() -> tuple[str, ...]:
    return (*_CFLAGS, f"-march={os.environ.get(MARCH_ENV) or 'native'}")


# out[b, c, y, x] = sum_i v[b, i, y, x] * (sum_j h[b, j, y, x] * frame[b, c, y + i, x + j]),
# in this order (the reference's). BLOCK pixels of one row at a time, NC channels at once.
_SOURCE = r"""
#include <stdint.h>

#define BLOCK 16

/* BLOCK pixels (x0..x0+BLOCK) of output row y, channels c0..c0+NC. The taps of kernel tap t
   for these pixels are at v[t * tap] and h[t * tap] (tap = H * W in NCHW, BLOCK for a
   transposed copy of NHWC kernels). */
#define DEFINE_BLOCK(T, NAME, NC)                                                            \
static inline __attribute__((always_inline)) void NAME(                                    \
    const T *frame, const T *v, const T *h0, int64_t tap, T *out, int64_t C, int64_t H,      \
    int64_t W, int64_t K, int64_t b, int64_t y, int64_t c0, int64_t x0) {                    \
    typedef T V __attribute__((vector_size(BLOCK * sizeof(T)), aligned(sizeof(T)), may_alias)); \
    const int64_t Hp = H + K - 1, Wp = W + K - 1;                                            \
    V acc[NC];                                                                               \
    const T *src[NC];                                                                        \
    for (int n = 0; n < NC; ++n) {                                                           \
        acc[n] = (V){0};                                                                     \
        src[n] = frame + (((b * C + c0 + n) * Hp) + y) * Wp + x0;                            \
    }                                                                                        \
    for (int64_t i = 0; i < K; ++i) {                                                        \
        V row[NC];                                                                           \
        for (int n = 0; n < NC; ++n) row[n] = (V){0};                                        \
        const T *h = h0;                                                                     \
        for (int64_t j = 0; j < K; ++j) {                                                    \
            const V hj = *(const V *)h;                                                      \
            for (int n = 0; n < NC; ++n) row[n] += hj * *(const V *)(src[n] + j);            \
            h += tap;                                                                        \
        }                                                                                    \
        const V vi = *(const V *)v;                                                          \
        for (int n = 0; n < NC; ++n) {                                                       \
            acc[n] += vi * row[n];                                                           \
            src[n] += Wp;                                                                    \
        }                                                                                    \
        v += tap;                                                                            \
    }                                                                                        \
    for (int n = 0; n < NC; ++n)                                                             \
        *(V *)(out + (((b * C + c0 + n) * H) + y) * W + x0) = acc[n];                        \
}

/* One output pixel, all channels (NCHW kernels): for widths below BLOCK. */
#define DEFINE_PIXEL(T, NAME)                                                                \
static void NAME(const T *frame, const T *vert, const T *horiz, T *out, int64_t C,           \
                 int64_t H, int64_t W, int64_t K, int64_t b, int64_t y, int64_t x) {         \
    const int64_t Hp = H + K - 1, Wp = W + K - 1;                                            \
    for (int64_t c = 0; c < C; ++c) {                                                        \
        T acc = 0;                                                                           \
        for (int64_t i = 0; i < K; ++i) {                                                    \
            T row = 0;                                                                       \
            const T *s = frame + (((b * C + c) * Hp) + y + i) * Wp + x;                      \
            for (int64_t j = 0; j < K; ++j)                                                  \
                row += horiz[((b * K + j) * H + y) * W + x] * s[j];                          \
            acc += vert[((b * K + i) * H + y) * W + x] * row;                                \
        }                                                                                    \
        out[(((b * C + c) * H) + y) * W + x] = acc;                                          \
    }                                                                                        \
}

#define CHANNELS(SUFFIX, V, Hk, TAP, X)                                                      \
    do {                                                                                     \
        int64_t c = 0;                                                                       \
        for (; c + 4 <= C; c += 4)                                                           \
            block4_##SUFFIX(frame, V, Hk, TAP, out, C, H, W, K, b, y, c, X);                 \
        switch (C - c) {                                                                     \
            case 3: block3_##SUFFIX(frame, V, Hk, TAP, out, C, H, W, K, b, y, c, X); break;  \
            case 2: block2_##SUFFIX(frame, V, Hk, TAP, out, C, H, W, K, b, y, c, X); break;  \
            case 1: block1_##SUFFIX(frame, V, Hk, TAP, out, C, H, W, K, b, y, c, X); break;  \
            default: break;                                                                  \
        }                                                                                    \
    } while (0)

#define DEFINE_FORWARD(T, SUFFIX)                                                            \
DEFINE_BLOCK(T, block1_##SUFFIX, 1)                                                          \
DEFINE_BLOCK(T, block2_##SUFFIX, 2)                                                          \
DEFINE_BLOCK(T, block3_##SUFFIX, 3)                                                          \
DEFINE_BLOCK(T, block4_##SUFFIX, 4)                                                          \
DEFINE_PIXEL(T, pixel_##SUFFIX)                                                              \
/* Kernels (B, K, H, W) contiguous. */                                                       \
void sepconv_forward_##SUFFIX(const T *frame, const T *vert, const T *horiz, T *out,         \
                              int64_t B, int64_t C, int64_t H, int64_t W, int64_t K,         \
                              int64_t row_begin, int64_t row_end) {                          \
    (void)B;                                                                                 \
    for (int64_t r = row_begin; r < row_end; ++r) {                                          \
        const int64_t b = r / H, y = r % H;                                                  \
        if (W < BLOCK) {                                                                     \
            for (int64_t x = 0; x < W; ++x)                                                  \
                pixel_##SUFFIX(frame, vert, horiz, out, C, H, W, K, b, y, x);                \
            continue;                                                                        \
        }                                                                                    \
        for (int64_t x0 = 0; x0 < W; x0 += BLOCK) {                                          \
            const int64_t x = x0 + BLOCK <= W ? x0 : W - BLOCK; /* last block overlaps */    \
            const T *v = vert + (b * K * H + y) * W + x;                                     \
            const T *h = horiz + (b * K * H + y) * W + x;                                    \
            CHANNELS(SUFFIX, v, h, H * W, x);                                                \
        }                                                                                    \
    }                                                                                        \
}

/* Kernels of element type KT with each pixel's K taps adjacent and pixels S >= K elements
   apart ((B, H, W, K) channels_last when S = K; S > K for K channels sliced out of a wider
   channels_last tensor), W >= BLOCK: each block's taps are first transposed (and converted
   by LOAD) into (K, BLOCK) buffers. */
#define DEFINE_NHWC(T, KT, NAME, SUFFIX, LOAD)                                               \
void NAME(const T *frame, const KT *vert, const KT *horiz, T *out, int64_t B, int64_t C,      \
          int64_t H, int64_t W, int64_t K, int64_t S, int64_t row_begin, int64_t row_end) {   \
    (void)B;                                                                                 \
    T vt[K * BLOCK], ht[K * BLOCK];                                                          \
    for (int64_t r = row_begin; r < row_end; ++r) {                                          \
        const int64_t b = r / H, y = r % H;                                                  \
        for (int64_t x0 = 0; x0 < W; x0 += BLOCK) {                                          \
            const int64_t x = x0 + BLOCK <= W ? x0 : W - BLOCK;                              \
            const KT *vs = vert + ((b * H + y) * W + x) * S;                                 \
            const KT *hs = horiz + ((b * H + y) * W + x) * S;                                \
            for (int p = 0; p < BLOCK; ++p)                                                  \
                for (int64_t t = 0; t < K; ++t) {                                            \
                    vt[t * BLOCK + p] = LOAD(vs[p * S + t]);                                 \
                    ht[t * BLOCK + p] = LOAD(hs[p * S + t]);                                 \
                }                                                                            \
            CHANNELS(SUFFIX, vt, ht, BLOCK, x);                                              \
        }                                                                                    \
    }                                                                                        \
}

static inline float bf16_to_f32(uint16_t value) {
    union { uint32_t bits; float number; } convert = {(uint32_t)value << 16};
    return convert.number;
}
#define SAME(value) (value)

DEFINE_FORWARD(float, f32)
DEFINE_FORWARD(double, f64)
DEFINE_NHWC(float, float, sepconv_forward_nhwc_f32, f32, SAME)
DEFINE_NHWC(double, double, sepconv_forward_nhwc_f64, f64, SAME)
/* float32 frames, bfloat16 kernels (exactly as a bfloat16 network returns them). */
DEFINE_NHWC(float, uint16_t, sepconv_forward_nhwc_bf16_f32, f32, bf16_to_f32)

/* Kernel gradients, kernels and grad_out (B, C, H, W) contiguous:
     gv[b, i, y, x] = sum_c g[b, c, y, x] * sum_j h[b, j, y, x] * frame[b, c, y + i, x + j]
     gh[b, j, y, x] = sum_c g[b, c, y, x] * sum_i v[b, i, y, x] * frame[b, c, y + i, x + j]
   BLOCK pixels of one row at a time; both sums share every frame load. Each block computes
   its pixels' gradients completely (the overlapping last block rewrites equal values), so
   rows split between threads never write to the same place. */
#define DEFINE_BACKWARD(T, SUFFIX)                                                           \
static void pixel_backward_##SUFFIX(const T *frame, const T *vert, const T *horiz,           \
                                    const T *grad, T *gv, T *gh, int64_t C, int64_t H,       \
                                    int64_t W, int64_t K, int64_t b, int64_t y, int64_t x) { \
    const int64_t Hp = H + K - 1, Wp = W + K - 1;                                            \
    for (int64_t t = 0; t < K; ++t) {                                                        \
        gv[((b * K + t) * H + y) * W + x] = 0;                                               \
        gh[((b * K + t) * H + y) * W + x] = 0;                                               \
    }                                                                                        \
    for (int64_t c = 0; c < C; ++c) {                                                        \
        const T g = grad[(((b * C + c) * H) + y) * W + x];                                   \
        for (int64_t i = 0; i < K; ++i) {                                                    \
            const T *s = frame + (((b * C + c) * Hp) + y + i) * Wp + x;                      \
            const T a = g * vert[((b * K + i) * H + y) * W + x];                             \
            T row = 0;                                                                       \
            for (int64_t j = 0; j < K; ++j) {                                                \
                row += horiz[((b * K + j) * H + y) * W + x] * s[j];                          \
                gh[((b * K + j) * H + y) * W + x] += a * s[j];                               \
            }                                                                                \
            gv[((b * K + i) * H + y) * W + x] += g * row;                                    \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
void sepconv_backward_kernels_##SUFFIX(const T *frame, const T *vert, const T *horiz,        \
                                       const T *grad, T *grad_v, T *grad_h, int64_t B,       \
                                       int64_t C, int64_t H, int64_t W, int64_t K,           \
                                       int64_t row_begin, int64_t row_end) {                 \
    typedef T V __attribute__((vector_size(BLOCK * sizeof(T)), aligned(sizeof(T)), may_alias)); \
    (void)B;                                                                                 \
    const int64_t Hp = H + K - 1, Wp = W + K - 1, tap = H * W;                               \
    V acc_v[K], acc_h[K];                                                                    \
    for (int64_t r = row_begin; r < row_end; ++r) {                                          \
        const int64_t b = r / H, y = r % H;                                                  \
        if (W < BLOCK) {                                                                     \
            for (int64_t x = 0; x < W; ++x)                                                  \
                pixel_backward_##SUFFIX(frame, vert, horiz, grad, grad_v, grad_h, C, H, W,   \
                                        K, b, y, x);                                         \
            continue;                                                                        \
        }                                                                                    \
        for (int64_t x0 = 0; x0 < W; x0 += BLOCK) {                                          \
            const int64_t x = x0 + BLOCK <= W ? x0 : W - BLOCK;                              \
            const T *v = vert + (b * K * H + y) * W + x;                                     \
            const T *h = horiz + (b * K * H + y) * W + x;                                    \
            for (int64_t t = 0; t < K; ++t) acc_v[t] = acc_h[t] = (V){0};                    \
            for (int64_t c = 0; c < C; ++c) {                                                \
                const V g = *(const V *)(grad + (((b * C + c) * H) + y) * W + x);            \
                const T *src = frame + (((b * C + c) * Hp) + y) * Wp + x;                    \
                for (int64_t i = 0; i < K; ++i) {                                            \
                    const V a = g * *(const V *)(v + i * tap);                               \
                    V row = (V){0};                                                          \
                    for (int64_t j = 0; j < K; ++j) {                                        \
                        const V pixels = *(const V *)(src + j);                              \
                        row += *(const V *)(h + j * tap) * pixels;                           \
                        acc_h[j] += a * pixels;                                              \
                    }                                                                        \
                    acc_v[i] += g * row;                                                     \
                    src += Wp;                                                               \
                }                                                                            \
            }                                                                                \
            for (int64_t t = 0; t < K; ++t) {                                                \
                *(V *)(grad_v + (b * K + t) * tap + y * W + x) = acc_v[t];                   \
                *(V *)(grad_h + (b * K + t) * tap + y * W + x) = acc_h[t];                   \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}

DEFINE_BACKWARD(float, f32)
DEFINE_BACKWARD(double, f64)
"""

_FUNCTIONS = {torch.float32: "sepconv_forward_f32", torch.float64: "sepconv_forward_f64"}
_BACKWARD_FUNCTIONS = {
    torch.float32: "sepconv_backward_kernels_f32",
    torch.float64: "sepconv_backward_kernels_f64",
}
_BF16_KERNELS = "sepconv_forward_nhwc_bf16_f32"
_BLOCK = 16  # pixels per block in the C source
_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_load_error: str | None = None
_executor: ThreadPoolExecutor | None = None
_executor_key = (0, 0)  # (threads, pid)


def _cache_dir() -> Path:
    """$SEPCONV_CACHE_DIR/kernels, or a private per-user folder in the system temp folder.

    The default stays inside the temp folder (sepconv writes nothing else outside its outputs).
    A library is only ever loaded from a folder this user owns and nobody else can write to.
    """
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured) / "kernels"
    user = os.getuid() if hasattr(os, "getuid") else 0
    base = Path(tempfile.gettempdir()) / f"sepconv-{user}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.stat()
    if (hasattr(os, "getuid") and info.st_uid != user) or info.st_mode & 0o022:
        raise RuntimeError(f"{base} is not a private folder of this user; set {CACHE_DIR_ENV}")
    return base / "kernels"


def _cpu_signature() -> str:
    """What -march=native depends on: a library built for one CPU is never loaded on another."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _build(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        source = Path(scratch) / "sepconv_cpu.c"
        source.write_text(_SOURCE)
        built = Path(scratch) / target.name
        subprocess.run(
            [compiler, *_cflags(), str(source), "-o", str(built)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        os.replace(built, target)  # atomic: concurrent builders each write a whole file


def _load() -> ctypes.CDLL | None:
    """The compiled kernel library (built on first use), or None with _load_error set."""
    global _library, _load_error
    with _lock:
        if _library is not None or _load_error is not None:
            return _library
        try:
            compiler = _compiler()
            if compiler is None:
                raise RuntimeError("no C compiler found (cc, gcc or clang; or set CC)")
            key = "\n".join([_SOURCE, " ".join(_cflags()), compiler, _cpu_signature()])
            digest = hashlib.sha256(key.encode()).hexdigest()[:20]
            target = _cache_dir() / f"sepconv_cpu_{digest}.so"
            if not target.exists():
                _build(compiler, target)
            library = ctypes.CDLL(str(target))
            for name in _FUNCTIONS.values():
                function = getattr(library, name)
                function.restype = None
                function.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 7
            for name in [*map(_nhwc, _FUNCTIONS.values()), _BF16_KERNELS]:  # and a pixel stride
                function = getattr(library, name)
                function.restype = None
                function.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 8
            for name in _BACKWARD_FUNCTIONS.values():
                function = getattr(library, name)
                function.restype = None
                function.argtypes = [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 7
            _library = library
        except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as error:
            detail = getattr(error, "stderr", None) or str(error)
            _load_error = f"{type(error).__name__}: {detail}".strip()[:500]
        return _library


def _nhwc(name: str) -> str:
    return name.replace("sepconv_forward_", "sepconv_forward_nhwc_")


def cpu_kernel_available() -> bool:
    """True when the compiled kernel builds (or is cached) and loads on this machine."""
    return _load() is not None


def cpu_kernel_error() -> str | None:
    """Why the kernel is unavailable (None when it is available)."""
    _load()
    return _load_error


def _pool(threads: int) -> ThreadPoolExecutor:
    """A pool of `threads` workers, made anew after a fork (a child has none of its threads)."""
    global _executor, _executor_key
    key = (threads, os.getpid())
    with _lock:
        if _executor is None or _executor_key != key:
            if _executor is not None and _executor_key[1] == os.getpid():
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(threads, thread_name_prefix="sepconv-cpu")
            _executor_key = key
        return _executor


def _run_rows(function: Any, pointers: tuple[int, ...], sizes: tuple[int, ...], rows: int) -> None:
    """Call the C ``function`` on rows [0, rows), shared between torch's thread count."""
    threads = max(1, min(torch.get_num_threads(), rows))
    if threads == 1:
        function(*pointers, *sizes, 0, rows)
        return
    bounds = [rows * part // threads for part in range(threads + 1)]
    jobs = [
        _pool(threads).submit(function, *pointers, *sizes, begin, end)
        for begin, end in zip(bounds[:-1], bounds[1:], strict=True)
        if end > begin
    ]
    for job in jobs:
        job.result()


def _launch(
    name: str, frame: Tensor, vertical: Tensor, horizontal: Tensor, stride: int | None = None
) -> Tensor:
    """Run the forward C function `name` on dense tensors (the channels_last functions with
    the kernels' pixel ``stride``, see :func:`_pixel_stride`)."""
    library = _load()
    assert library is not None
    batch, channels = frame.shape[:2]
    kernel_size, height, width = vertical.shape[1:]
    out = frame.new_empty(batch, channels, height, width)
    if out.numel() == 0:
        return out
    pointers = (frame.data_ptr(), vertical.data_ptr(), horizontal.data_ptr(), out.data_ptr())
    sizes = (batch, channels, height, width, kernel_size)
    if stride is not None:
        sizes = (*sizes, stride)
    _run_rows(getattr(library, name), pointers, sizes, batch * height)
    return out


def backward_kernels(
    grad_out: Tensor, frame: Tensor, vertical: Tensor, horizontal: Tensor
) -> tuple[Tensor, Tensor] | None:
    """Gradients of the output for (vertical, horizontal), without autograd.

    Same sums as :func:`sepconv.ops.reference.backward` (in another order). Returns None where
    the compiled kernel does not apply (no library, dtypes other than float32/float64, other
    devices): then use the reference.
    """
    library = _load()
    dtype = frame.dtype
    if (
        library is None
        or dtype not in _BACKWARD_FUNCTIONS
        or any(t.dtype != dtype or t.device.type != "cpu" for t in (grad_out, vertical, horizontal))
    ):
        return None
    frame, vertical, horizontal = frame.contiguous(), vertical.contiguous(), horizontal.contiguous()
    grad_out = grad_out.contiguous()
    grad_vertical = torch.empty_like(vertical)
    grad_horizontal = torch.empty_like(horizontal)
    if grad_vertical.numel() == 0:
        return grad_vertical.zero_(), grad_horizontal.zero_()
    batch, channels = frame.shape[:2]
    kernel_size, height, width = vertical.shape[1:]
    pointers = tuple(
        t.data_ptr()
        for t in (frame, vertical, horizontal, grad_out, grad_vertical, grad_horizontal)
    )
    sizes = (batch, channels, height, width, kernel_size)
    _run_rows(getattr(library, _BACKWARD_FUNCTIONS[dtype]), pointers, sizes, batch * height)
    return grad_vertical, grad_horizontal


def _pixel_stride(vertical: Tensor, horizontal: Tensor) -> int | None:
    """The distance S between neighbouring pixels' taps when both kernels (B, K, H, W) keep
    each pixel's K taps adjacent and the pixels dense, S >= K apart (channels_last: S = K; K
    channels sliced out of a wider channels_last tensor, as from a network whose one head
    predicts all four kernels: S > K); None for other layouts, plain contiguous ones included.
    """
    if vertical.stride() != horizontal.stride() or vertical.shape != horizontal.shape:
        return None
    batch, kernel_size, height, width = vertical.shape
    batch_stride, tap_stride, row_stride, stride = vertical.stride()
    if tap_stride != 1 or kernel_size == 1 or stride < kernel_size:
        return None
    if (height > 1 and row_stride != width * stride) or (
        batch > 1 and batch_stride != height * width * stride
    ):
        return None
    return stride


def forward(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Forward pass without autograd (CPU tensors). Shapes as in the reference."""
    library = _load()
    if library is None or frame.dtype not in _FUNCTIONS or frame.device.type != "cpu":
        return reference.forward(frame, vertical, horizontal)
    name = _FUNCTIONS[frame.dtype]
    # Kernels straight from a channels_last network are read as they are (no transposing
    # copies of 4 x K channels); everything else is made contiguous.
    stride = _pixel_stride(vertical, horizontal) if vertical.shape[-1] >= _BLOCK else None
    if stride is None:
        vertical, horizontal = vertical.contiguous(), horizontal.contiguous()
        return _launch(name, frame.contiguous(), vertical, horizontal)
    return _launch(_nhwc(name), frame.contiguous(), vertical, horizontal, stride)


def forward_bfloat16_kernels(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor | None:
    """float32 frame, bfloat16 kernels -> float32 output, as if the kernels were cast first.

    The kernels of a bfloat16 network, read as they are (each tap is widened in the kernel's
    cache-resident buffer): the result equals ``forward(frame, vertical.float(),
    horizontal.float())`` exactly, without the 4 full-size float32 copies. Inference only (no
    autograd). Returns None where this path does not apply (no kernel library, other dtypes
    or layouts, width below 16): then cast and use :func:`forward`.
    """
    if (
        _load() is None
        or frame.dtype != torch.float32
        or vertical.dtype != torch.bfloat16
        or horizontal.dtype != torch.bfloat16
        or frame.device.type != "cpu"
        or vertical.shape[-1] < _BLOCK
        or _pixel_stride(vertical, horizontal) is None
    ):
        return None
    batch, kernel_size, height, width = vertical.shape
    expected = (batch, frame.shape[1], height + kernel_size - 1, width + kernel_size - 1)
    if frame.dim() != 4 or tuple(frame.shape) != expected or vertical.shape != horizontal.shape:
        raise ValueError(
            f"frame {tuple(frame.shape)} and kernels {tuple(vertical.shape)}, "
            f"{tuple(horizontal.shape)} do not fit (see sepconv.ops.separable_local_conv)"
        )
    stride = _pixel_stride(vertical, horizontal)
    return _launch(_BF16_KERNELS, frame.contiguous(), vertical, horizontal, stride)


def backward(
    grad_out: Tensor,
    frame: Tensor,
    vertical: Tensor,
    horizontal: Tensor,
    needs: tuple[bool, bool, bool] = (True, True, True),
) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients for (frame, vertical, horizontal) as :func:`sepconv.ops.reference.backward`:
    the kernel gradients compiled, the frame gradient (rarely needed: frames are inputs) the
    reference's; all of it the reference's where the compiled kernel does not apply."""
    need_frame, need_vertical, need_horizontal = needs
    compiled = None
    if need_vertical or need_horizontal:
        compiled = backward_kernels(grad_out, frame, vertical, horizontal)
    if compiled is None:
        return reference.backward(grad_out, frame, vertical, horizontal, needs)
    grad_frame = None
    if need_frame:
        grad_frame, _, _ = reference.backward(
            grad_out, frame, vertical, horizontal, (True, False, False)
        )
    grad_vertical, grad_horizontal = compiled
    return (
        grad_frame,
        grad_vertical if need_vertical else None,
        grad_horizontal if need_horizontal else None,
    )


_SeparableLocalConvCPU = reference.autograd_function("SeparableLocalConvCPU", forward, backward)


def separable_local_conv_cpu(frame: Tensor, vertical: Tensor, horizontal: Tensor) -> Tensor:
    """Differentiable separable local convolution with the compiled CPU forward.

    Same contract and summation order as :func:`sepconv.ops.reference.separable_local_conv`;
    results agree to float rounding (the compiler may fuse multiply-adds).
    """
    return _SeparableLocalConvCPU.apply(frame, vertical, horizontal)
