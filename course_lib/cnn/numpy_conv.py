"""Convolution and pooling from scratch in numpy, arrays NHWC as in the course.

The loop versions (:func:`conv_forward`, :func:`pool_forward`, :func:`conv_backward`,
:func:`pool_backward`) read like the lecture; :func:`conv_forward_fast` (im2col: the windows as the
rows of a matrix, one matrix product per block of images, the images split over the BLAS threads) and
:func:`pool_forward_fast` (one strided view per window offset) compute the same without Python loops
over pixels. Shapes:
``A_prev`` (m, n_H_prev, n_W_prev, n_C_prev), ``W`` (f, f, n_C_prev, n_C), ``b`` (1, 1, 1, n_C),
``hparameters`` ``{"stride": s, "pad": p}`` for convolutions and ``{"stride": s, "f": f}`` for pooling.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController

from course_lib.core.settings import check_choice

POOL_MODES = ("max", "average")
ConvCache = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]
PoolCache = tuple[np.ndarray, dict[str, int]]
# conv_forward_fast's window matrix per block of images, on each thread: it stays in cache
IM2COL_BLOCK_BYTES = 8 * 2**20


def _hparam(hparameters: dict[str, Any], key: str, needed: tuple[str, ...]) -> int:
    if key not in hparameters:
        raise KeyError(f"hparameters lacks {key!r}; it needs the keys {list(needed)}, got {hparameters}")
    value = hparameters[key]
    minimum = 0 if key == "pad" else 1
    if int(value) != value or value < minimum:
        raise ValueError(f"hparameters[{key!r}]={value!r} must be an integer >= {minimum}")
    return int(value)


def _check_conv(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict) -> tuple[int, int]:
    """Validate shapes; return (stride, pad)."""
    if A_prev.ndim != 4 or W.ndim != 4:
        raise ValueError(f"A_prev must be (m, H, W, C) and W (f, f, C_prev, C); got {A_prev.shape}, "
                         f"{W.shape}")
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"filters must be square (f, f, C_prev, C); got W.shape={W.shape}")
    if W.shape[2] != A_prev.shape[3]:
        raise ValueError(f"W has {W.shape[2]} input channels but A_prev has {A_prev.shape[3]}")
    if b.shape != (1, 1, 1, W.shape[3]):
        raise ValueError(f"b must have shape (1, 1, 1, {W.shape[3]}); got {b.shape}")
    needed = ("stride", "pad")
    stride, pad = (_hparam(hparameters, k, needed) for k in needed)
    if A_prev.shape[1] + 2 * pad < W.shape[0] or A_prev.shape[2] + 2 * pad < W.shape[0]:
        f = W.shape[0]
        raise ValueError(f"a {f}x{f} filter does not fit a padded {A_prev.shape[1:3]} input (pad={pad})")
    return stride, pad


def _check_pool(A_prev: np.ndarray, hparameters: dict, mode: str) -> tuple[int, int]:
    """Validate input and mode; return (stride, f)."""
    check_choice("mode", mode, POOL_MODES)
    if A_prev.ndim != 4:
        raise ValueError(f"A_prev must be (m, H, W, C); got shape {A_prev.shape}")
    needed = ("stride", "f")
    stride, f = (_hparam(hparameters, k, needed) for k in needed)
    if f > A_prev.shape[1] or f > A_prev.shape[2]:
        raise ValueError(f"a {f}x{f} pooling window does not fit a {A_prev.shape[1:3]} input")
    return stride, f


def conv_output_size(n: int, f: int, pad: int, stride: int) -> int:
    """Output length of a convolution along one axis: floor((n + 2 pad - f) / stride) + 1."""
    return (n + 2 * pad - f) // stride + 1


def conv_param_count(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Trainable parameters of a conv layer: (f * f * C_in + bias) * C_out, independent of image size."""
    ### BEGIN SOLUTION
    return (kernel_size * kernel_size * in_channels + int(bias)) * out_channels
    ### END SOLUTION


def zero_pad(X: np.ndarray, pad: int) -> np.ndarray:
    """Pad the height and width of ``X`` (m, H, W, C) with ``pad`` zeros: (m, H + 2 pad, W + 2 pad, C)."""
    ### BEGIN SOLUTION
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant", constant_values=0)
    ### END SOLUTION


def conv_single_step(a_slice_prev: np.ndarray, W: np.ndarray, b: np.ndarray) -> float:
    """One filter on one window: sum(a_slice_prev * W) + b; ``a_slice_prev`` and ``W`` are (f, f, C)."""
    ### BEGIN SOLUTION
    return float(np.sum(a_slice_prev * W) + np.asarray(b).item())
    ### END SOLUTION


def conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, int]
) -> tuple[np.ndarray, ConvCache]:
    """Convolution as the course's loops: Z (m, n_H, n_W, n_C) and cache (A_prev, W, b, hparameters)."""
    _check_conv(A_prev, W, b, hparameters)
    ### BEGIN SOLUTION
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = conv_output_size(n_H_prev, f, pad, stride)
    n_W = conv_output_size(n_W_prev, f, pad, stride)
    Z = np.zeros((m, n_H, n_W, n_C))
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice_prev = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b[:, :, :, c])
    return Z, (A_prev, W, b, hparameters)
    ### END SOLUTION


def pool_forward(
    A_prev: np.ndarray, hparameters: dict[str, int], mode: str = "max"
) -> tuple[np.ndarray, PoolCache]:
    """Max or average pooling as loops: A (m, n_H, n_W, C) and cache (A_prev, hparameters).

    ``mode`` is ``"max"`` or ``"average"``; windows are ``f`` x ``f`` with step ``stride``, no padding.
    """
    _check_pool(A_prev, hparameters, mode)
    ### BEGIN SOLUTION
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = conv_output_size(n_H_prev, f, 0, stride)
    n_W = conv_output_size(n_W_prev, f, 0, stride)
    A = np.zeros((m, n_H, n_W, n_C))
    reduce = np.max if mode == "max" else np.mean
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            for w in range(n_W):
                horiz_start = w * stride
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_start + f, horiz_start:horiz_start + f, c]
                    A[i, h, w, c] = reduce(a_prev_slice)
    return A, (A_prev, hparameters)
    ### END SOLUTION


@functools.cache
def _blas() -> ThreadpoolController:
    """threadpoolctl's handle on the loaded BLAS libraries (finding them takes milliseconds: once)."""
    return ThreadpoolController().select(user_api="blas")


@functools.cache
def _thread_pool(workers: int, pid: int) -> ThreadPoolExecutor:
    """Reused worker threads; keyed by process too, since a forked child has none of its parent's."""
    return ThreadPoolExecutor(workers, thread_name_prefix="numpy-conv")


def over_threads(fn: Callable[[int, int], None], n: int) -> None:
    """Call ``fn(first, stop)`` on contiguous parts of ``range(n)`` at once, one part per BLAS thread.

    While the parts run, the BLAS is limited to one thread per call: numpy's copies and its BLAS
    products release the GIL, so the parts share the cores as the BLAS threads would have. With one
    BLAS thread (or a BLAS threadpoolctl cannot see) ``fn(0, n)`` runs alone on the calling thread.
    """
    threads = max((lib.num_threads for lib in _blas().lib_controllers), default=1)
    parts = max(1, min(threads, n))
    if parts == 1:
        fn(0, n)
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    with _blas().limit(limits=1):
        pool = _thread_pool(parts - 1, os.getpid())
        futures = [pool.submit(fn, first, stop) for first, stop in zip(bounds[1:-1], bounds[2:], strict=True)]
        fn(bounds[0], bounds[1])  # the calling thread takes the first part
        for future in futures:
            future.result()


def conv_forward_fast(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: dict[str, int]
) -> tuple[np.ndarray, ConvCache]:
    """:func:`conv_forward` vectorised (im2col): every window laid out as one row, times the filters.

    The windows of a block of images are copied into a contiguous (images * n_H * n_W, f * f * n_C_prev)
    matrix and multiplied by ``W`` reshaped to (f * f * n_C_prev, n_C) in one BLAS product. Blocks are
    whole images, as few as keep each matrix within :data:`IM2COL_BLOCK_BYTES` (one image at least), so
    it stays in cache; no Python loop over pixels. :func:`over_threads` runs the images in as many parts
    as the BLAS has threads, each part on its own thread with a single-threaded BLAS: the copies are
    then parallel too, not only the products. Returns Z (m, n_H, n_W, n_C) and the cache
    (A_prev, W, b, hparameters) of :func:`conv_backward`.
    """
    _check_conv(A_prev, W, b, hparameters)
    ### BEGIN SOLUTION
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = conv_output_size(n_H_prev, f, pad, stride)
    n_W = conv_output_size(n_W_prev, f, pad, stride)
    dtype = np.result_type(A_prev, W)
    window = f * f * n_C_prev  # one window, (dh, dw, c) in the order of W.reshape
    W_mat = W.reshape(window, n_C).astype(dtype, copy=False)
    Z = np.empty((m, n_H, n_W, n_C), dtype)
    image_bytes = n_H * n_W * window * dtype.itemsize

    def convolve(first: int, stop: int) -> None:
        """Z[first:stop], in blocks of images as equal as possible."""
        n_blocks = max(1, -(-(stop - first) * image_bytes // IM2COL_BLOCK_BYTES))  # ceil
        block = max(1, -(-(stop - first) // n_blocks))
        # padding and window buffers reused by every block; the border of A_pad stays zero
        A_pad = np.zeros((block, n_H_prev + 2 * pad, n_W_prev + 2 * pad, n_C_prev), dtype)
        cols = np.empty((block, n_H, n_W, f, f * n_C_prev), dtype)
        s_m, s_h, s_w, s_c = A_pad.strides
        for start in range(first, stop, block):
            k = min(block, stop - start)
            A_pad[:k, pad:pad + n_H_prev, pad:pad + n_W_prev] = A_prev[start:start + k]
            # cols[i, h, w, dh, dw * n_C_prev + c] = A_pad[i, h * stride + dh, w * stride + dw, c]:
            # A_pad is contiguous, so one window row (dw, c) is a single run of f * n_C_prev numbers
            cols[:k] = as_strided(A_pad, (k, n_H, n_W, f, f * n_C_prev),
                                  (s_m, stride * s_h, stride * s_w, s_h, s_c), writeable=False)
            Z_block = Z[start:start + k].reshape(k * n_H * n_W, n_C)
            np.matmul(cols[:k].reshape(k * n_H * n_W, window), W_mat, out=Z_block)
            Z_block += b.reshape(n_C)

    over_threads(convolve, m)
    return Z, (A_prev, W, b, hparameters)
    ### END SOLUTION


def pool_forward_fast(
    A_prev: np.ndarray, hparameters: dict[str, int], mode: str = "max"
) -> tuple[np.ndarray, PoolCache]:
    """:func:`pool_forward` vectorised: A (m, n_H, n_W, C) and the cache (A_prev, hparameters).

    Window offset (dh, dw) of every output (h, w) is input (h * stride + dh, w * stride + dw): one strided
    view of ``A_prev`` (m, n_H, n_W, C) per offset, no copies, combined (maximum, or sum for
    ``"average"``) into the result, one pass per offset.
    """
    _check_pool(A_prev, hparameters, mode)
    ### BEGIN SOLUTION
    f, stride = hparameters["f"], hparameters["stride"]
    n_H = conv_output_size(A_prev.shape[1], f, 0, stride)
    n_W = conv_output_size(A_prev.shape[2], f, 0, stride)
    views = [A_prev[:, dh:dh + stride * (n_H - 1) + 1:stride, dw:dw + stride * (n_W - 1) + 1:stride]
             for dh in range(f) for dw in range(f)]
    combine = np.maximum if mode == "max" else np.add
    dtype = A_prev.dtype if mode == "max" else np.result_type(A_prev, 1.0)
    A = combine(views[0], views[1], dtype=dtype) if f > 1 else views[0].astype(dtype)  # a new array
    for view in views[2:]:
        combine(A, view, out=A)
    if mode == "average":
        A *= 1 / (f * f)  # a product is cheaper than a division
    return A, (A_prev, hparameters)
    ### END SOLUTION


def conv_backward(dZ: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a convolution as loops, from dZ (m, n_H, n_W, C) and the forward cache.

    Returns dA_prev (m, H, W, C_prev), dW (f, f, C_prev, C) and db (1, 1, 1, C).
    """
    A_prev, W, b, hparameters = cache
    ### BEGIN SOLUTION
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    _, n_H, n_W, _ = dZ.shape
    dW = np.zeros_like(W, dtype=float)
    db = np.zeros_like(b, dtype=float)
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros_like(A_prev_pad, dtype=float)
    for i in range(m):
        a_prev_pad = A_prev_pad[i]
        da_prev_pad = dA_prev_pad[i]
        for h in range(n_H):
            vert_start = h * stride
            vert_end = vert_start + f
            for w in range(n_W):
                horiz_start = w * stride
                horiz_end = horiz_start + f
                a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :]
                for c in range(n_C):
                    da_prev_pad[vert_start:vert_end, horiz_start:horiz_end] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db
    ### END SOLUTION


def create_mask_from_window(x: np.ndarray) -> np.ndarray:
    """Boolean mask (f, f) that is True where ``x`` (f, f) holds its maximum."""
    ### BEGIN SOLUTION
    return x == np.max(x)
    ### END SOLUTION


def distribute_value(dz: float, shape: tuple[int, int]) -> np.ndarray:
    """Spread the gradient ``dz`` evenly over a window of ``shape`` (n_H, n_W)."""
    ### BEGIN SOLUTION
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W))
    ### END SOLUTION


def pool_backward(dA: np.ndarray, cache: PoolCache, mode: str = "max") -> np.ndarray:
    """Gradient of pooling as loops: dA (m, n_H, n_W, C) -> dA_prev (m, H, W, C)."""
    A_prev, hparameters = cache
    _check_pool(A_prev, hparameters, mode)
    ### BEGIN SOLUTION
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros_like(A_prev, dtype=float)
    for i in range(m):
        for h in range(n_H):
            vert_start = h * stride
            for w in range(n_W):
                horiz_start = w * stride
                for c in range(n_C):
                    window = (i, slice(vert_start, vert_start + f), slice(horiz_start, horiz_start + f), c)
                    if mode == "max":
                        mask = create_mask_from_window(A_prev[window])
                        dA_prev[window] += mask * dA[i, h, w, c]
                    else:
                        dA_prev[window] += distribute_value(dA[i, h, w, c], (f, f))
    return dA_prev
    ### END SOLUTION


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar function ``f`` at ``x`` (any shape; ``x`` is restored)."""
    grad = np.zeros_like(x, dtype=float)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = f(x)
        x[idx] = old - eps
        minus = f(x)
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max(|a| + |b|): ~1e-9 or less when an analytic gradient matches a numerical one."""
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a) + np.abs(b))), 1e-12))
