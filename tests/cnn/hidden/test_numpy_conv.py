"""Hidden tests of the numpy convolution exercises: other shapes, strides and dtypes than the public
tests, checked against torch or numpy computed here; each test calls only the exercise it is marked with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from course_lib.cnn import numpy_conv as nc


def _torch_conv(A_prev, W, b, stride, pad):
    """The reference convolution, NHWC in and out."""
    return F.conv2d(torch.from_numpy(A_prev).permute(0, 3, 1, 2), torch.from_numpy(W).permute(3, 2, 0, 1),
                    torch.from_numpy(b.ravel()), stride=stride, padding=pad).permute(0, 2, 3, 1).numpy()


def _torch_pool(A_prev, f, stride, mode):
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    return pool(torch.from_numpy(A_prev).permute(0, 3, 1, 2), f, stride).permute(0, 2, 3, 1).numpy()


@pytest.mark.exercise("conv_param_count")
def test_conv_param_count_other_layers():
    for c_in, c_out, k, bias in [(3, 7, 4, False), (16, 1, 3, True), (5, 9, 1, True)]:
        layer = torch.nn.Conv2d(c_in, c_out, k, bias=bias)
        assert nc.conv_param_count(c_in, c_out, k, bias) == sum(p.numel() for p in layer.parameters())


@pytest.mark.exercise("zero_pad")
def test_zero_pad_non_square_and_integers():
    x = np.arange(2 * 3 * 5 * 4).reshape(2, 3, 5, 4) + 1
    x_pad = nc.zero_pad(x, 3)
    assert x_pad.shape == (2, 9, 11, 4) and x_pad.dtype == x.dtype
    assert_allclose(x_pad[:, 3:-3, 3:-3], x)
    border = np.ones(x_pad.shape, dtype=bool)
    border[:, 3:-3, 3:-3] = False
    assert not x_pad[border].any()


@pytest.mark.exercise("zero_pad")
def test_zero_pad_by_nothing_is_the_input():
    x = np.random.default_rng(5).standard_normal((1, 4, 2, 3))
    assert_allclose(nc.zero_pad(x, 0), x)


@pytest.mark.exercise("conv_single_step")
def test_conv_single_step_other_window():
    rng = np.random.default_rng(11)
    a, W, b = rng.standard_normal((3, 3, 5)), rng.standard_normal((3, 3, 5)), rng.standard_normal((1, 1, 1))
    value = nc.conv_single_step(a, W, b)
    assert np.ndim(value) == 0
    assert_allclose(value, np.sum(a * W) + b.item(), rtol=1e-12)


@pytest.mark.exercise("conv_forward")
@pytest.mark.parametrize("shape, f, c, pad, stride", [((2, 6, 5, 2), 3, 3, 0, 1), ((1, 7, 9, 3), 2, 4, 2, 3)])
def test_conv_forward_other_shapes(shape, f, c, pad, stride):
    rng = np.random.default_rng(sum(shape) + f)
    A_prev = rng.standard_normal(shape)
    W, b = rng.standard_normal((f, f, shape[3], c)), rng.standard_normal((1, 1, 1, c))
    Z, cache = nc.conv_forward(A_prev, W, b, {"pad": pad, "stride": stride})
    assert_allclose(Z, _torch_conv(A_prev, W, b, stride, pad), atol=1e-10)
    assert cache[0] is A_prev and cache[1] is W


@pytest.mark.exercise("pool_forward")
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_forward_stride_unlike_window(mode):
    A_prev = np.random.default_rng(21).standard_normal((2, 7, 6, 3))
    A, _ = nc.pool_forward(A_prev, {"f": 3, "stride": 2}, mode)
    assert_allclose(A, _torch_pool(A_prev, 3, 2, mode), atol=1e-12)


@pytest.mark.exercise("conv_forward_fast")
@pytest.mark.parametrize("shape, f, c, pad, stride", [((3, 9, 7, 4), 3, 5, 1, 2), ((2, 5, 5, 1), 5, 2, 0, 1)])
def test_conv_forward_fast_other_shapes(shape, f, c, pad, stride):
    rng = np.random.default_rng(sum(shape) * f)
    A_prev = rng.standard_normal(shape)
    W, b = rng.standard_normal((f, f, shape[3], c)), rng.standard_normal((1, 1, 1, c))
    Z, _ = nc.conv_forward_fast(A_prev, W, b, {"pad": pad, "stride": stride})
    assert_allclose(Z, _torch_conv(A_prev, W, b, stride, pad), atol=1e-10)


@pytest.mark.exercise("conv_forward_fast")
def test_conv_forward_fast_keeps_float32():
    rng = np.random.default_rng(3)
    A_prev = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal((1, 1, 1, 2)).astype(np.float32)
    Z, _ = nc.conv_forward_fast(A_prev, W, b, {"pad": 1, "stride": 1})
    assert Z.dtype == np.float32
    assert_allclose(Z, _torch_conv(A_prev, W, b, 1, 1), atol=1e-4)


@pytest.mark.exercise("pool_forward_fast")
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_forward_fast_other_shapes(mode):
    A_prev = np.random.default_rng(31).standard_normal((3, 10, 7, 2))
    A, _ = nc.pool_forward_fast(A_prev, {"f": 2, "stride": 3}, mode)
    assert_allclose(A, _torch_pool(A_prev, 2, 3, mode), atol=1e-12)


@pytest.mark.exercise("conv_backward")
@pytest.mark.parametrize("pad, stride", [(1, 1), (2, 3)])
def test_conv_backward_against_autograd(pad, stride):
    rng = np.random.default_rng(pad + 10 * stride)
    A_prev, W = rng.standard_normal((2, 6, 5, 3)), rng.standard_normal((3, 3, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    hp = {"pad": pad, "stride": stride}
    a = torch.from_numpy(A_prev).permute(0, 3, 1, 2).requires_grad_()
    w = torch.from_numpy(W).permute(3, 2, 0, 1).detach().requires_grad_()
    bias = torch.from_numpy(b.ravel()).requires_grad_()
    Z = F.conv2d(a, w, bias, stride=stride, padding=pad)
    dZ = rng.standard_normal(Z.shape)
    (Z * torch.from_numpy(dZ)).sum().backward()
    dA, dW, db = nc.conv_backward(dZ.transpose(0, 2, 3, 1), (A_prev, W, b, hp))
    assert_allclose(dA, a.grad.permute(0, 2, 3, 1).numpy(), atol=1e-10)
    assert_allclose(dW, w.grad.permute(2, 3, 1, 0).numpy(), atol=1e-10)
    assert_allclose(db.ravel(), bias.grad.numpy(), atol=1e-10)
    assert db.shape == (1, 1, 1, 4)


@pytest.mark.exercise("create_mask_from_window")
def test_create_mask_from_window_negative_values():
    x = np.array([[-3.0, -1.0, -2.0], [-5.0, -4.0, -1.5], [-9.0, -2.5, -7.0]])
    expected = np.zeros((3, 3), dtype=bool)
    expected[0, 1] = True
    assert np.array_equal(nc.create_mask_from_window(x), expected)


@pytest.mark.exercise("distribute_value")
def test_distribute_value_uneven_window():
    out = nc.distribute_value(-6.0, (3, 4))
    assert out.shape == (3, 4)
    assert_allclose(out, np.full((3, 4), -0.5))


@pytest.mark.exercise("pool_backward")
@pytest.mark.parametrize("mode", ["max", "average"])
def test_pool_backward_overlapping_windows_against_autograd(mode):
    rng = np.random.default_rng(41)
    A_prev = rng.standard_normal((2, 5, 6, 2))
    hp = {"f": 3, "stride": 1}
    x = torch.from_numpy(A_prev).permute(0, 3, 1, 2).requires_grad_()
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    out = pool(x, 3, 1)
    G = rng.standard_normal(out.shape)
    (out * torch.from_numpy(G)).sum().backward()
    dA_prev = nc.pool_backward(G.transpose(0, 2, 3, 1), (A_prev, hp), mode)
    assert_allclose(dA_prev, x.grad.permute(0, 2, 3, 1).numpy(), atol=1e-12)
