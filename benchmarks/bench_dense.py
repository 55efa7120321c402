"""Dense ops: compiled nnfast vs the NumPy reference (and PyTorch CPU when installed), one run.

Reproduce:
    pytest benchmarks/bench_dense.py --benchmark-only --benchmark-max-time=0.5 \
        --benchmark-json=dense.json && python benchmarks/ratios.py dense.json
Each timed body is one training step of the op: forward (train mode) + backward.
Shapes: Affine as in SimpleConvNet (100x4320 -> 100) and TwoLayerNet (100x784 -> 50);
SoftmaxWithLoss on (100, 10) and (256, 1000); BatchNormalization on (100, 100) and
(100, 16, 28, 28) (per feature); Dropout on (100, 100); every optimizer over
SimpleConvNet's parameter set. PyTorch runs the same step with autograd / torch.optim.
"""
import numpy as np
import pytest

from nnfast import layers as nl
from nnfast import optimizer as nopt
from nnfast.reference import layers as rl
from nnfast.reference import optimizer as ropt

try:
    import torch
except ImportError:  # optional peer, never a dependency
    torch = None

IMPLS = ["reference", "nnfast"] + (["torch"] if torch is not None else [])


@pytest.fixture
def impl_threads(threads):
    if torch is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        yield threads
        torch.set_num_threads(previous)
    else:
        yield threads


def _rng():
    return np.random.default_rng(0)


def _group(benchmark, op, shape, dtype, threads):
    benchmark.group = f"{op} {shape} {np.dtype(dtype).name} t{threads}"


# -- Affine ------------------------------------------------------------------------

AFFINE = {"100x4320_to_100": (100, 4320, 100), "100x784_to_50": (100, 784, 50)}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", list(AFFINE))
def test_affine(benchmark, impl, shape, dtype, impl_threads):
    n, d, m = AFFINE[shape]
    rng = _rng()
    x = rng.standard_normal((n, d)).astype(dtype)
    W = (rng.standard_normal((d, m)) * 0.01).astype(dtype)
    b = np.zeros(m, dtype=dtype)
    dout = rng.standard_normal((n, m)).astype(dtype)
    _group(benchmark, "affine", shape, dtype, impl_threads)
    if impl == "torch":
        tx, tW, tb, td = (torch.from_numpy(a) for a in (x, W, b, dout))

        def step():
            out = tx @ tW + tb
            return out, td @ tW.T, tx.T @ td, td.sum(0)
    else:
        layer = (nl if impl == "nnfast" else rl).Affine(W, b)

        def step():
            layer.forward(x)
            return layer.backward(dout)
    benchmark(step)


# -- SoftmaxWithLoss -----------------------------------------------------------------

SOFTMAX = {"100x10": (100, 10), "256x1000": (256, 1000)}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", list(SOFTMAX))
def test_softmax_with_loss(benchmark, impl, shape, dtype, impl_threads):
    n, c = SOFTMAX[shape]
    rng = _rng()
    x = rng.standard_normal((n, c)).astype(dtype)
    t = rng.integers(0, c, n)
    _group(benchmark, "softmax_xent", shape, dtype, impl_threads)
    if impl == "torch":
        tt = torch.from_numpy(t)

        def step():
            tx = torch.from_numpy(x).requires_grad_()
            torch.nn.functional.cross_entropy(tx, tt).backward()
            return tx.grad
    else:
        layer = (nl if impl == "nnfast" else rl).SoftmaxWithLoss()

        def step():
            layer.forward(x, t)
            return layer.backward()
    benchmark(step)


# -- BatchNormalization --------------------------------------------------------------

BN = {"100x100": (100, 100), "100x16x28x28": (100, 16, 28, 28)}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", list(BN))
def test_batchnorm(benchmark, impl, shape, dtype, impl_threads):
    xshape = BN[shape]
    d = int(np.prod(xshape[1:]))
    rng = _rng()
    x = rng.standard_normal(xshape).astype(dtype)
    dout = rng.standard_normal(xshape).astype(dtype)
    gamma, beta = np.ones(d, dtype=dtype), np.zeros(d, dtype=dtype)
    _group(benchmark, "batchnorm", shape, dtype, impl_threads)
    if impl == "torch":
        tg, tb = (torch.from_numpy(a).requires_grad_() for a in (gamma, beta))
        rm, rv = torch.zeros(d, dtype=tg.dtype), torch.ones(d, dtype=tg.dtype)
        td = torch.from_numpy(dout.reshape(xshape[0], d))

        def step():  # per feature, as the reference: (N, C*H*W)
            tx = torch.from_numpy(x.reshape(xshape[0], d)).requires_grad_()
            out = torch.nn.functional.batch_norm(tx, rm, rv, tg, tb, training=True,
                                                 momentum=0.1, eps=1e-6)
            out.backward(td)
            return tx.grad
    else:
        layer = (nl if impl == "nnfast" else rl).BatchNormalization(gamma, beta)

        def step():
            layer.forward(x, train_flg=True)
            return layer.backward(dout)
    benchmark(step)


# -- Dropout ---------------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
def test_dropout(benchmark, impl, dtype, impl_threads):
    rng = _rng()
    x = rng.standard_normal((100, 100)).astype(dtype)
    dout = rng.standard_normal((100, 100)).astype(dtype)
    _group(benchmark, "dropout", "100x100", dtype, impl_threads)
    if impl == "torch":
        td = torch.from_numpy(dout)

        def step():
            tx = torch.from_numpy(x).requires_grad_()
            torch.nn.functional.dropout(tx, 0.5, training=True).backward(td)
            return tx.grad
    else:
        layer = (nl if impl == "nnfast" else rl).Dropout(0.5)

        def step():
            layer.forward(x, train_flg=True)
            return layer.backward(dout)
    benchmark(step)


# -- optimizers over SimpleConvNet's parameters -----------------------------------------

SIMPLECONV = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
              "W3": (100, 10), "b3": (10,)}
TORCH_OPT = {"SGD": lambda p: torch.optim.SGD(p, lr=0.01),
             "Momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
             "Nesterov": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
             "AdaGrad": lambda p: torch.optim.Adagrad(p, lr=0.01),
             "RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-7),
             "Adam": lambda p: torch.optim.Adam(p, lr=0.001, eps=1e-7)}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", list(TORCH_OPT))
def test_optimizer(benchmark, impl, name, dtype, impl_threads):
    rng = _rng()
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SIMPLECONV.items()}
    grads = {k: (rng.standard_normal(s) * 1e-3).astype(dtype) for k, s in SIMPLECONV.items()}
    _group(benchmark, f"optim {name}", "simpleconvnet", dtype, impl_threads)
    if impl == "torch":
        tparams = [torch.from_numpy(p).requires_grad_() for p in params.values()]
        for tp, g in zip(tparams, grads.values()):
            tp.grad = torch.from_numpy(g)
        opt = TORCH_OPT[name](tparams)
        benchmark(opt.step)
    else:
        opt = getattr(nopt if impl == "nnfast" else ropt, name)()
        benchmark(opt.update, params, grads)
