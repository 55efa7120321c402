"""Convolution and pooling layers, forward + backward: nnfast vs reference (vs PyTorch CPU), one run.

Reproduce:  pytest benchmarks/bench_conv_pool.py --benchmark-only --benchmark-json=conv.json
            python benchmarks/ratios.py conv.json
(``--long`` adds every DeepConvNet layer shape.) Batch 100, as in training.
The timed body is one forward and one backward of a layer built in setup;
torch runs the same op through autograd (``torch.set_num_threads`` follows the
``threads`` fixture) and is skipped when not installed.
"""
import numpy as np
import pytest

from nnfast import layers as native_layers
from nnfast.reference import layers as ref_layers

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is an optional benchmark peer, never a dependency
    torch = None

# name -> (x shape, W shape, stride, pad); SimpleConvNet's conv and DeepConvNet's.
CONV_SHAPES = {
    "simple_conv1_1x28x28_30f5": ((100, 1, 28, 28), (30, 1, 5, 5), 1, 0),
    "deep_conv2_16x28x28_16f3p1": ((100, 16, 28, 28), (16, 16, 3, 3), 1, 1),
    "deep_conv4_32x14x14_32f3p2": ((100, 32, 14, 14), (32, 32, 3, 3), 1, 2),
}
CONV_LONG = {
    "deep_conv1_1x28x28_16f3p1": ((100, 1, 28, 28), (16, 1, 3, 3), 1, 1),
    "deep_conv3_16x14x14_32f3p1": ((100, 16, 14, 14), (32, 16, 3, 3), 1, 1),
    "deep_conv5_32x8x8_64f3p1": ((100, 32, 8, 8), (64, 32, 3, 3), 1, 1),
    "deep_conv6_64x8x8_64f3p1": ((100, 64, 8, 8), (64, 64, 3, 3), 1, 1),
}
# name -> (x shape, pool, stride); 2x2 max pooling after SimpleConvNet's and DeepConvNet's convs.
POOL_SHAPES = {
    "simple_pool_30x24x24": ((100, 30, 24, 24), 2, 2),
    "deep_pool1_16x28x28": ((100, 16, 28, 28), 2, 2),
}
POOL_LONG = {
    "deep_pool2_32x16x16": ((100, 32, 16, 16), 2, 2),
    "deep_pool3_64x8x8": ((100, 64, 8, 8), 2, 2),
}
IMPLS = ["reference", "nnfast"] + (["torch"] if torch is not None else [])


def pytest_generate_tests(metafunc):
    if "conv_shape" in metafunc.fixturenames:
        names = list({**CONV_SHAPES, **CONV_LONG}
                     if metafunc.config.getoption("--long") else CONV_SHAPES)
        metafunc.parametrize("conv_shape", names)
    if "pool_shape" in metafunc.fixturenames:
        names = list({**POOL_SHAPES, **POOL_LONG}
                     if metafunc.config.getoption("--long") else POOL_SHAPES)
        metafunc.parametrize("pool_shape", names)


def _torch_step(fn, x, params, dout, threads):
    torch.set_num_threads(threads)

    def step():
        for t in (x, *params):
            t.grad = None
        fn(x, *params).backward(dout)
    return step


@pytest.mark.parametrize("impl", IMPLS)
def test_conv_forward_backward(benchmark, impl, conv_shape, dtype, threads):
    xs, ws, stride, pad = {**CONV_SHAPES, **CONV_LONG}[conv_shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    W = (0.1 * rng.standard_normal(ws)).astype(dtype)
    b = np.zeros(ws[0], dtype=dtype)
    benchmark.group = f"conv fwd+bwd {conv_shape} {np.dtype(dtype).name} t{threads}"
    if impl == "torch":
        tx, tW, tb = (torch.from_numpy(a).requires_grad_() for a in (x, W, b))
        out = F.conv2d(tx, tW, tb, stride=stride, padding=pad)
        dout = torch.from_numpy(rng.standard_normal(tuple(out.shape)).astype(dtype))
        conv = lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=stride, padding=pad)  # noqa: E731
        benchmark(_torch_step(conv, tx, (tW, tb), dout, threads))
        return
    layer = (native_layers if impl == "nnfast" else ref_layers).Convolution(W, b, stride, pad)
    dout = rng.standard_normal(layer.forward(x).shape).astype(dtype)

    def step():
        layer.forward(x)
        layer.backward(dout)
    benchmark(step)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_forward_backward(benchmark, impl, kind, pool_shape, dtype, threads):
    xs, pool, stride = {**POOL_SHAPES, **POOL_LONG}[pool_shape]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    benchmark.group = f"{kind}pool fwd+bwd {pool_shape} {np.dtype(dtype).name} t{threads}"
    if impl == "torch":
        tx = torch.from_numpy(x).requires_grad_()
        op = F.max_pool2d if kind == "max" else F.avg_pool2d
        out = op(tx, pool, stride)
        dout = torch.from_numpy(rng.standard_normal(tuple(out.shape)).astype(dtype))
        benchmark(_torch_step(lambda x_: op(x_, pool, stride), tx, (), dout, threads))
        return
    mod = native_layers if impl == "nnfast" else ref_layers
    layer = (mod.Pooling if kind == "max" else mod.AvgPooling)(pool, pool, stride)
    dout = rng.standard_normal(layer.forward(x).shape).astype(dtype)

    def step():
        layer.forward(x)
        layer.backward(dout)
    benchmark(step)
