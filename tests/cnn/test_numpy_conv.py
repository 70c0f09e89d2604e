"""course_lib.cnn.numpy_conv: the course's reference values, fast == loops == torch, numerical gradients."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose
from threadpoolctl import threadpool_info, threadpool_limits

from course_lib.cnn import numpy_conv as nc
from course_lib.core.exercise_marker import by_exercise


@pytest.mark.exercise("conv_single_step")
def test_conv_single_step_reference():
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    assert_allclose(nc.conv_single_step(a_slice_prev, W, b), -6.99908945068, rtol=1e-10)


@pytest.mark.exercise("zero_pad")
def test_zero_pad_reference():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = nc.zero_pad(x, 2)
    assert x_pad.shape == (4, 7, 7, 2)
    assert_allclose(x[1, 1], [[0.90085595, -0.68372786], [-0.12289023, -0.93576943],
                              [-0.26788808, 0.53035547]], rtol=1e-7)
    assert x_pad[1, 1].shape == (7, 2) and not x_pad[1, 1].any()
    assert_allclose(x_pad[:, 2:-2, 2:-2], x)


@pytest.mark.exercise("conv_forward")
def test_conv_forward_reference():
    np.random.seed(1)
    A_prev = np.random.randn(10, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache_conv = nc.conv_forward(A_prev, W, b, {"pad": 1, "stride": 2})
    assert Z.shape == (10, 3, 4, 8)
    assert_allclose(Z.mean(), 0.692360880758, rtol=1e-10)
    assert_allclose(Z[3, 2, 1], [-1.28912231, 2.27650251, 6.61941931, 0.95527176, 8.25132576, 2.31329639,
                                 13.00689405, 2.34576051], rtol=1e-7)
    assert_allclose(cache_conv[0][1][2][3], [-1.1191154, 1.9560789, -0.3264995, -1.34267579], rtol=1e-7)


@pytest.mark.parametrize("forward", by_exercise(nc.pool_forward, nc.pool_forward_fast))
def test_pool_forward_reference(forward):
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    hparameters = {"stride": 1, "f": 3}
    A, _ = forward(A_prev, hparameters, mode="max")
    assert A.shape == (2, 3, 3, 3)
    assert_allclose(A[0, 0, 0], [1.74481176, 0.90159072, 1.65980218], rtol=1e-7)
    assert_allclose(A[1, 2, 2], [1.62765075, 1.12141771, 0.79280687], rtol=1e-7)
    A, _ = forward(A_prev, hparameters, mode="average")
    assert_allclose(A[0, 0, 0], [-0.0301046719, -0.00324021315, -0.336298859], rtol=1e-7)
    assert_allclose(A[1, 2, 2], [0.150774518, 0.289111751, 0.00123238536], rtol=1e-7)


# (m, H, W, C_prev, C, f, pad, stride): square and non-square inputs, every stride/padding mix
CONV_CASES = [
    (2, 5, 7, 3, 4, 3, 1, 2), (1, 6, 6, 2, 3, 1, 0, 1), (3, 8, 5, 1, 2, 3, 2, 3),
    (2, 9, 4, 2, 5, 2, 0, 2), (1, 7, 10, 4, 2, 5, 2, 1), (2, 4, 4, 3, 1, 4, 3, 3),
]


def torch_conv(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hp: dict) -> np.ndarray:
    """``conv2d`` in the numpy layouts (NHWC input, (f, f, C_prev, C) weights): the reference the fast
    versions are checked against (not the student's loops, so a wrong loop costs only its own points)."""
    nchw = F.conv2d(torch.from_numpy(A_prev).permute(0, 3, 1, 2), torch.from_numpy(W).permute(3, 2, 0, 1),
                    torch.from_numpy(b.ravel()), stride=hp["stride"], padding=hp["pad"])
    return nchw.permute(0, 2, 3, 1).numpy()


def torch_pool(A_prev: np.ndarray, hp: dict, mode: str) -> np.ndarray:
    """``max_pool2d`` / ``avg_pool2d`` in the NHWC layout."""
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    nchw = pool(torch.from_numpy(A_prev).permute(0, 3, 1, 2), hp["f"], hp["stride"])
    return nchw.permute(0, 2, 3, 1).numpy()


@pytest.mark.exercise("conv_forward_fast")
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_fast_matches_torch(case):
    m, h, w, c_prev, c, f, pad, stride = case
    rng = np.random.default_rng(hash(case) % 2**32)
    A_prev = rng.standard_normal((m, h, w, c_prev))
    W = rng.standard_normal((f, f, c_prev, c))
    b = rng.standard_normal((1, 1, 1, c))
    hp = {"pad": pad, "stride": stride}
    Z_fast, cache = nc.conv_forward_fast(A_prev, W, b, hp)
    expected = torch_conv(A_prev, W, b, hp)
    assert Z_fast.shape == expected.shape, f"expected shape {expected.shape}, got {Z_fast.shape}"
    assert_allclose(Z_fast, expected, atol=1e-12)
    assert cache[0] is A_prev and cache[3] == hp


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.mark.parametrize("threads, n, parts", [(3, 7, 3), (3, 2, 2), (2, 1, 1), (1, 5, 1)])
def test_over_threads_splits_the_range_over_the_blas_threads(threads, n, parts):
    """Contiguous parts that cover range(n), one per BLAS thread (n at most), each on its own thread
    with a one-thread BLAS (a single part keeps the BLAS as it is); the BLAS's threads are back afterwards."""
    calls = []
    all_parts_started = threading.Barrier(parts, timeout=120)  # raises unless the parts run at once

    def record(first: int, stop: int) -> None:
        calls.append((first, stop, threading.get_ident(), _blas_threads()))
        all_parts_started.wait()

    with threadpool_limits(threads, user_api="blas"):
        nc.over_threads(record, n)
        assert _blas_threads() == {threads}
    calls.sort()
    assert [(first, stop) for first, stop, *_ in calls] == [(n * i // parts, n * (i + 1) // parts)
                                                           for i in range(parts)]
    assert len({ident for _, _, ident, _ in calls}) == parts
    assert all(blas == {1 if parts > 1 else threads} for *_, blas in calls)


def test_over_threads_raises_what_a_part_raised():
    def fail_on_the_last_part(first: int, stop: int) -> None:
        if stop == 4:
            raise ValueError(f"part {first}:{stop}")

    with threadpool_limits(2, user_api="blas"), pytest.raises(ValueError, match="part 2:4"):
        nc.over_threads(fail_on_the_last_part, 4)


@pytest.mark.exercise("conv_forward_fast")
@pytest.mark.parametrize("threads", [1, 3])
def test_conv_forward_fast_on_several_threads(monkeypatch, threads):
    """Images split over 3 threads (parts of 2, 2 and 3), each in blocks of one image: conv2d's result."""
    monkeypatch.setattr(nc, "IM2COL_BLOCK_BYTES", 1)
    rng = np.random.default_rng(8)
    A_prev, W = rng.standard_normal((7, 6, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    hp = {"pad": 1, "stride": 1}
    with threadpool_limits(threads, user_api="blas"):
        Z_fast = nc.conv_forward_fast(A_prev, W, b, hp)[0]
    assert_allclose(Z_fast, torch_conv(A_prev, W, b, hp), atol=1e-12)


# one image's windows take 8 * 5 * 27 * 8 bytes: blocks of one image each, or of 2, 2 and 1 images
@pytest.mark.exercise("conv_forward_fast")
@pytest.mark.parametrize("block_bytes", [1, 2 * 8 * 5 * 27 * 8])
def test_conv_forward_fast_in_blocks_of_images(monkeypatch, block_bytes):
    """Several blocks of images (the last one smaller), a non-contiguous input: conv2d's result."""
    monkeypatch.setattr(nc, "IM2COL_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(7)
    A_prev = rng.standard_normal((5, 3, 9, 16)).transpose(0, 3, 2, 1)  # (5, 16, 9, 3), not contiguous
    W = rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    hp = {"pad": 1, "stride": 2}
    Z_fast, cache = nc.conv_forward_fast(A_prev, W, b, hp)
    assert Z_fast.shape == (5, 8, 5, 4) and Z_fast.flags.c_contiguous
    assert_allclose(Z_fast, torch_conv(A_prev, W, b, hp), atol=1e-12)
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b


@pytest.mark.exercise("pool_forward_fast")
@pytest.mark.parametrize(("shape", "f", "stride"), [((2, 6, 9, 3), 2, 2), ((1, 7, 5, 2), 3, 2),
                                                      ((2, 8, 8, 1), 3, 1), ((1, 9, 6, 4), 2, 3)])
def test_pool_forward_fast_matches_torch(shape, f, stride):
    A_prev = np.random.default_rng(sum(shape) + f).standard_normal(shape)
    hp = {"f": f, "stride": stride}
    for mode in ("max", "average"):
        fast, _ = nc.pool_forward_fast(A_prev, hp, mode)
        assert_allclose(fast, torch_pool(A_prev, hp, mode), atol=1e-12, err_msg=f"mode {mode!r}")


@pytest.mark.exercise("pool_forward_fast")
@pytest.mark.parametrize(("f", "stride"), [(1, 1), (1, 2), (3, 3), (4, 1)])
def test_pool_forward_fast_owns_its_result(f, stride):
    """Windows of one pixel, non-overlapping windows with rows left over: a new array (no memory shared with
    the input), with conv2d's values."""
    A_prev = np.random.default_rng(f * 10 + stride).standard_normal((2, 8, 7, 3))
    hp = {"f": f, "stride": stride}
    for mode in ("max", "average"):
        fast, cache = nc.pool_forward_fast(A_prev, hp, mode)
        assert_allclose(fast, torch_pool(A_prev, hp, mode), atol=1e-12, err_msg=f"mode {mode!r}")
        assert not np.shares_memory(fast, A_prev) and cache[0] is A_prev and cache[1] == hp
    ints = np.arange(2 * 8 * 7 * 3).reshape(2, 8, 7, 3) % 5
    expected = torch_pool(ints.astype(float), hp, "average")
    assert_allclose(nc.pool_forward_fast(ints, hp, "average")[0], expected)


@pytest.mark.exercise("conv_backward")
@pytest.mark.parametrize(("pad", "stride"), [(0, 1), (1, 2), (2, 1)])
def test_conv_backward_matches_numerical_gradients(pad, stride):
    rng = np.random.default_rng(pad * 10 + stride)
    A_prev = rng.standard_normal((2, 5, 4, 3))
    W = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    hp = {"pad": pad, "stride": stride}
    Z, cache = nc.conv_forward_fast(A_prev, W, b, hp)
    G = rng.standard_normal(Z.shape)  # loss = sum(Z * G), so dL/dZ = G

    def loss(_):
        return float(np.sum(nc.conv_forward_fast(A_prev, W, b, hp)[0] * G))

    dA, dW, db = nc.conv_backward(G, cache)
    assert nc.relative_error(dA, nc.numerical_gradient(loss, A_prev)) < 1e-7
    assert nc.relative_error(dW, nc.numerical_gradient(loss, W)) < 1e-7
    assert nc.relative_error(db, nc.numerical_gradient(loss, b)) < 1e-7
    assert dA.shape == A_prev.shape and dW.shape == W.shape and db.shape == b.shape


@pytest.mark.exercise("pool_backward")
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_backward_matches_numerical_gradients_and_torch(mode):
    rng = np.random.default_rng(3)
    A_prev = rng.standard_normal((2, 6, 5, 3))
    hp = {"f": 2, "stride": 2}
    A, cache = nc.pool_forward(A_prev, hp, mode)
    G = rng.standard_normal(A.shape)
    dA_prev = nc.pool_backward(G, cache, mode)
    numeric = nc.numerical_gradient(lambda x: float(np.sum(nc.pool_forward_fast(x, hp, mode)[0] * G)), A_prev)
    assert nc.relative_error(dA_prev, numeric) < 1e-7
    x = torch.from_numpy(A_prev).permute(0, 3, 1, 2).requires_grad_()
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    (pool(x, 2, 2) * torch.from_numpy(G).permute(0, 3, 1, 2)).sum().backward()
    assert_allclose(dA_prev, x.grad.permute(0, 2, 3, 1).numpy(), atol=1e-12)


@pytest.mark.exercise("conv_backward")
def test_relative_error_detects_a_wrong_gradient():
    rng = np.random.default_rng(0)
    A_prev, W = rng.standard_normal((1, 4, 4, 2)), rng.standard_normal((3, 3, 2, 2))
    b = np.zeros((1, 1, 1, 2))
    Z, cache = nc.conv_forward(A_prev, W, b, {"pad": 1, "stride": 1})
    _, dW, _ = nc.conv_backward(np.ones_like(Z), cache)
    numeric = nc.numerical_gradient(lambda w: float(nc.conv_forward_fast(A_prev, w, b, cache[3])[0].sum()), W)
    assert nc.relative_error(dW, numeric) < 1e-7
    assert nc.relative_error(dW * 1.01, numeric) > 1e-3


@pytest.mark.exercise("create_mask_from_window")
def test_create_mask_from_window():
    x = np.array([[1.0, 3.0], [-1.0, 2.0]])
    assert nc.create_mask_from_window(x).tolist() == [[False, True], [False, False]]
    np.random.seed(1)
    x = np.random.randn(2, 3)  # the notebook's example
    assert nc.create_mask_from_window(x).tolist() == [[True, False, False], [False, False, False]]


@pytest.mark.exercise("distribute_value")
def test_distribute_value():
    assert_allclose(nc.distribute_value(2.0, (2, 2)), np.full((2, 2), 0.5))
    assert_allclose(nc.distribute_value(3.0, (2, 3)), np.full((2, 3), 0.5))


@pytest.mark.exercise("conv_param_count")
def test_conv_param_count_matches_nn_conv2d():
    assert nc.conv_param_count(1, 50, 5) == 1300  # 100x100 grey input, 50 filters of 5x5
    for c_in, c_out, k, bias in [(1, 50, 5, True), (3, 16, 3, False), (64, 128, 1, True)]:
        layer = torch.nn.Conv2d(c_in, c_out, k, bias=bias)
        assert nc.conv_param_count(c_in, c_out, k, bias) == sum(p.numel() for p in layer.parameters())
    assert nc.conv_output_size(100, 5, 0, 1) == 96 and nc.conv_output_size(32, 3, 1, 2) == 16


def test_bad_inputs_name_the_valid_choices():
    A = np.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError, match=r"mode='min'.*\['max', 'average'\]"):
        nc.pool_forward(A, {"f": 2, "stride": 2}, mode="min")
    with pytest.raises(KeyError, match="stride"):
        nc.conv_forward_fast(A, np.zeros((3, 3, 2, 1)), np.zeros((1, 1, 1, 1)), {"pad": 1})
    with pytest.raises(ValueError, match="input channels"):
        nc.conv_forward(A, np.zeros((3, 3, 3, 1)), np.zeros((1, 1, 1, 1)), {"pad": 1, "stride": 1})
    with pytest.raises(ValueError, match="does not fit"):
        nc.pool_forward_fast(A, {"f": 5, "stride": 1})
    with pytest.raises(ValueError, match="stride"):
        nc.conv_forward(A, np.zeros((3, 3, 2, 1)), np.zeros((1, 1, 1, 1)), {"pad": 1, "stride": 0})
