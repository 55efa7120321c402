"""One full training step (gradient + Adam update) at batch 100: nnfast vs the NumPy reference
vs an equivalent PyTorch CPU model (when torch is importable), in one run.

Reproduce:
    pytest benchmarks/bench_train_step.py --benchmark-only --benchmark-json=step.json
    python benchmarks/ratios.py step.json

Networks (input 1x28x28, 10 classes, the reference's default configurations):
  SimpleConvNet        conv(30, 5x5) - relu - pool 2x2 - affine(100) - relu - affine(10)
  DeepConvNet          3 x [conv 3x3 - relu - conv 3x3 - relu - pool] (16,16,32,32(pad 2),64,64)
                       - affine(50) - relu - dropout - affine(10) - dropout
  MultiLayerNetExtend  784 - 5 x [affine(100) - batchnorm - relu] - affine(10)
The torch models have the same layers and sizes, trained with autograd + torch.optim.Adam
(lr 0.001) on the same batch; `zero_grad, forward, loss, backward, step` is one step.
nnfast's step is `grads = net.gradient(x, t); Adam.update(net.params, grads)`.
"""
import numpy as np
import pytest

import nnfast.nets
import nnfast.optimizer
from nnfast.reference import nets as ref_nets
from nnfast.reference import optimizer as ref_optimizer

try:
    import torch
except ImportError:  # torch is an optional peer, never a dependency
    torch = None

BATCH = 100
NETS = ("SimpleConvNet", "DeepConvNet", "MultiLayerNetExtend")
IMPLS = ["reference", "nnfast"] + (["torch"] if torch is not None else [])
# Rounds per timing: the reference DeepConvNet step takes over a second in float64.
ROUNDS = {"SimpleConvNet": 10, "DeepConvNet": 5, "MultiLayerNetExtend": 20}


def _make_net(module, name, dtype):
    if name == "MultiLayerNetExtend":
        return module.MultiLayerNetExtend(784, [100] * 5, 10, use_batchnorm=True, dtype=dtype)
    return getattr(module, name)(dtype=dtype)


def _data(name, dtype):
    rng = np.random.default_rng(0)
    shape = (BATCH, 784) if name == "MultiLayerNetExtend" else (BATCH, 1, 28, 28)
    return rng.random(shape).astype(dtype), rng.integers(0, 10, size=BATCH)


def _torch_model(name):
    nn = torch.nn
    if name == "SimpleConvNet":
        return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                             nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "DeepConvNet":
        layers, c_in = [], 1
        for i, (c, pad) in enumerate([(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]):
            layers += [nn.Conv2d(c_in, c, 3, padding=pad), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2, 2))
            c_in = c
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(),
                             nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5))
    layers, n_in = [], 784
    for _ in range(5):
        layers += [nn.Linear(n_in, 100), nn.BatchNorm1d(100, eps=1e-6), nn.ReLU()]
        n_in = 100
    return nn.Sequential(*layers, nn.Linear(100, 10))


def _torch_step(name, dtype, threads):
    torch.manual_seed(0)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    model = _torch_model(name).to(tdtype).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    x, t = _data(name, dtype)
    x, t = torch.from_numpy(x), torch.from_numpy(t)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()

    return step


def _numpy_step(nets, optimizer, name, dtype):
    np.random.seed(0)
    net = _make_net(nets, name, dtype)
    opt = optimizer.Adam(lr=0.001)
    x, t = _data(name, dtype)

    def step():
        opt.update(net.params, net.gradient(x, t))

    return step


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", NETS)
def test_train_step(benchmark, impl, name, dtype, threads):
    if impl == "torch":
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        step = _torch_step(name, dtype, threads)
    elif impl == "nnfast":
        step = _numpy_step(nnfast.nets, nnfast.optimizer, name, dtype)
    else:
        step = _numpy_step(ref_nets, ref_optimizer, name, dtype)
    benchmark.group = f"train_step {name} b{BATCH} {np.dtype(dtype).name} t{threads}"
    try:
        benchmark.pedantic(step, rounds=ROUNDS[name], warmup_rounds=1)
    finally:
        if impl == "torch":
            torch.set_num_threads(previous)
