"""Benchmark workloads: the one place that says what is timed, for `nnfast bench` and benchmarks/.

A :class:`Workload` is a name, an op kind, a shape, and ``build(impl, dtype)``, which does all
the setup (arrays, layers, networks, optimizer state) and returns the zero-argument callable that
is timed: one forward + backward of a layer (or its forward alone), one optimizer update, or one
training step (gradient + Adam update). ``impl`` is ``"nnfast"`` (the native API),
``"reference"`` (``nnfast.reference``, plain NumPy) or ``"torch"`` (the same computation in
PyTorch CPU, only when ``import torch`` works: torch is never a dependency and is imported on
first use).

``flops`` counts the multiply-adds of the GEMM-shaped work only (2 per multiply-add: forward
product, weight gradient and input gradient, or the product alone for a forward-only workload;
not the input gradient a network's first layer never computes); element-wise work is left out,
so GFLOP/s is only reported for GEMM-bound workloads. ``traffic(itemsize)`` gives the bytes of
a memory-bound workload (pooling, softmax + cross-entropy, batch norm, ReLU, Sigmoid, dropout,
the optimizers): its compulsory traffic, every array the timed call takes in read once and
every array it gives back written once (forward + backward together: x, out, dout, dx and the
small parameter vectors). What a backward reads back from its forward (a mask, the argmax,
batch norm's centred x) is left out: those are choices of an implementation, and the count is
the floor any implementation must move, so GB/s against the copy roof is comparable across
nnfast, the reference and torch. ``suite`` marks the fixed suite of `nnfast bench`; ``long``
the workloads only the long pytest-benchmark grids (``--long``) run; ``dtypes`` the dtypes a
workload is meaningful in (the others are skipped, and the run says so).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import types
from importlib import import_module
from typing import (Any, Callable, Dict, List, Literal, Mapping, Optional, Sequence, Tuple,
                    Type, Union, cast)

import numpy as np
import numpy.typing as npt

IMPLS = ("nnfast", "reference", "torch")
DTYPES = (np.float32, np.float64)
BATCH = 100
LABEL_BYTES = 8  # the labels t are int64

_torch: Union[types.ModuleType, Literal[False], None] = None  # the torch module once
# imported; False when it cannot be

#: A shape; the dtype of a workload's arrays (float32 or float64, as NumPy's scalar type).
Shape = Tuple[int, ...]
DType = Type[np.floating[Any]]
#: The timed zero-argument callable; ``make(impl, dtype)``, which sets one up;
#: ``traffic(itemsize)``, the compulsory bytes of one call.
Step = Callable[[], Any]
Make = Callable[[str, DType], Step]
Traffic = Callable[[int], int]


def torch_or_none() -> Optional[types.ModuleType]:
    """The ``torch`` module, or None when it is not installed (the import is tried once)."""
    global _torch
    if _torch is None:
        try:
            import torch
        except Exception:  # noqa: BLE001 - an optional peer: any failure means "not available"
            _torch = False
        else:
            _torch = torch
    return _torch or None


def available_impls() -> Tuple[str, ...]:
    """The implementations this machine can run, nnfast first."""
    return tuple(i for i in IMPLS if i != "torch" or torch_or_none() is not None)


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    kind: str
    shape: str
    make: Make  # make(impl, dtype) -> zero-arg callable
    flops: Optional[int] = None
    suite: bool = True
    long: bool = False
    impls: Tuple[str, ...] = IMPLS
    traffic: Optional[Traffic] = None  # traffic(itemsize) -> compulsory bytes of one call
    dtypes: Tuple[DType, ...] = DTYPES

    @property
    def gemm_bound(self) -> bool:
        return self.flops is not None

    @property
    def memory_bound(self) -> bool:
        return self.traffic is not None and self.flops is None

    def bytes(self, dtype: npt.DTypeLike) -> Optional[int]:
        """Compulsory bytes of one timed call in ``dtype`` (None: not memory-bound)."""
        return None if self.traffic is None else int(self.traffic(np.dtype(dtype).itemsize))

    def runs_in(self, dtype: npt.DTypeLike) -> bool:
        return np.dtype(dtype) in tuple(np.dtype(d) for d in self.dtypes)

    def build(self, impl: str, dtype: npt.DTypeLike) -> Step:
        """Set up and return the timed zero-argument callable for ``impl`` in ``dtype``."""
        if impl not in self.impls:
            raise ValueError(f"{self.name}: impl must be one of {self.impls}, got {impl!r}")
        if impl == "torch" and torch_or_none() is None:
            raise RuntimeError(f"{self.name}: torch is not installed")
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"{self.name}: dtype must be float32 or float64, got {dt}")
        if not self.runs_in(dt):
            raise ValueError(f"{self.name}: only meaningful in "
                             f"{', '.join(np.dtype(d).name for d in self.dtypes)}, got {dt}")
        return self.make(impl, cast(DType, dt.type))  # float32 or float64: checked above


# --------------------------------------------------------------------------- helpers

def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _api(impl: str, module: str) -> types.ModuleType:
    """``nnfast.<module>`` for impl "nnfast", else ``nnfast.reference.<module>``."""
    return import_module(f"nnfast.{module}" if impl == "nnfast" else f"nnfast.reference.{module}")


def _layers(impl: str) -> types.ModuleType:
    return _api(impl, "layers")


def _torch_module() -> types.ModuleType:
    """The torch module, for the torch implementations (``Workload.build`` checked it is
    installed)."""
    torch = torch_or_none()
    if torch is None:
        raise RuntimeError("torch is not installed")
    return torch


def _torch_dtype(dtype: DType) -> Any:
    torch = _torch_module()
    return torch.float32 if dtype == np.float32 else torch.float64


def _torch_backward(fn: Callable[..., Any], inputs: Sequence[Any], dout: Any) -> Step:
    """Step: clear the grads of ``inputs``, then ``fn(*inputs).backward(dout)`` (autograd);
    returns the first input's gradient."""
    def step() -> Any:
        for t in inputs:
            t.grad = None
        fn(*inputs).backward(dout)
        return inputs[0].grad
    return step


def _conv_out(size: int, f: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - f) // stride + 1


def conv_product_flops(x_shape: Shape, w_shape: Shape, stride: int = 1, pad: int = 0) -> int:
    """GEMM FLOPs of one convolution product (the forward): 2 * N*OH*OW * C*FH*FW * FN."""
    n, c, h, w = x_shape
    fn, _, fh, fw = w_shape
    return 2 * n * _conv_out(h, fh, stride, pad) * _conv_out(w, fw, stride, pad) \
        * c * fh * fw * fn


def conv_flops(x_shape: Shape, w_shape: Shape, stride: int = 1, pad: int = 0,
               dx: bool = True) -> int:
    """GEMM FLOPs of one convolution forward + backward (weights, and input when ``dx``)."""
    return conv_product_flops(x_shape, w_shape, stride, pad) * (3 if dx else 2)


def affine_flops(n: int, d: int, m: int, dx: bool = True) -> int:
    """GEMM FLOPs of one Affine forward + backward: x @ W, x.T @ dout (and dout @ W.T)."""
    return 2 * n * d * m * (3 if dx else 2)


# --------------------------------------------------------------------------- layers

def _conv(xs: Shape, ws: Shape, stride: int, pad: int, backward: bool = True) -> Make:
    """One forward + backward of a Convolution (``backward=False``: one forward; torch then
    runs under ``torch.no_grad()``)."""
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal(xs).astype(dtype)
        W = (0.1 * rng.standard_normal(ws)).astype(dtype)
        b = np.zeros(ws[0], dtype=dtype)
        oh, ow = _conv_out(xs[2], ws[2], stride, pad), _conv_out(xs[3], ws[3], stride, pad)
        dout = rng.standard_normal((xs[0], ws[0], oh, ow)).astype(dtype)
        if impl == "torch":
            torch = _torch_module()
            F = torch.nn.functional
            if not backward:
                tx, tW, tb = (torch.from_numpy(a) for a in (x, W, b))

                def forward() -> Any:
                    with torch.no_grad():
                        return F.conv2d(tx, tW, tb, stride=stride, padding=pad)
                return forward
            tx, tW, tb = (torch.from_numpy(a).requires_grad_() for a in (x, W, b))
            return _torch_backward(lambda x_, w_, b_: F.conv2d(x_, w_, b_, stride=stride,
                                                                padding=pad),
                                   (tx, tW, tb), torch.from_numpy(dout))
        layer = _layers(impl).Convolution(W, b, stride, pad)
        if not backward:
            return lambda: layer.forward(x)

        def step() -> Any:
            layer.forward(x)
            layer.backward(dout)
        return step
    return make


def _pool(kind: str, xs: Shape, pool: int, stride: int) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal(xs).astype(dtype)
        oh, ow = _conv_out(xs[2], pool, stride, 0), _conv_out(xs[3], pool, stride, 0)
        dout = rng.standard_normal((xs[0], xs[1], oh, ow)).astype(dtype)
        if impl == "torch":
            torch = _torch_module()
            F = torch.nn.functional
            op = F.max_pool2d if kind == "max" else F.avg_pool2d
            tx = torch.from_numpy(x).requires_grad_()
            return _torch_backward(lambda x_: op(x_, pool, stride), (tx,),
                                   torch.from_numpy(dout))
        L = _layers(impl)
        layer = (L.Pooling if kind == "max" else L.AvgPooling)(pool, pool, stride)

        def step() -> Any:
            layer.forward(x)
            layer.backward(dout)
        return step
    return make


def _affine(n: int, d: int, m: int) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal((n, d)).astype(dtype)
        W = (rng.standard_normal((d, m)) * 0.01).astype(dtype)
        b = np.zeros(m, dtype=dtype)
        dout = rng.standard_normal((n, m)).astype(dtype)
        if impl == "torch":
            torch = _torch_module()
            tx, tW, tb, td = (torch.from_numpy(a) for a in (x, W, b, dout))

            # the same three GEMMs and bias sum, without autograd's bookkeeping
            def torch_step() -> Any:
                return tx @ tW + tb, td @ tW.T, tx.T @ td, td.sum(0)
            return torch_step
        layer = _layers(impl).Affine(W, b)

        def step() -> Any:
            layer.forward(x)
            return layer.backward(dout)
        return step
    return make


def _softmax_xent(n: int, c: int) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal((n, c)).astype(dtype)
        t = rng.integers(0, c, n)
        if impl == "torch":
            torch = _torch_module()
            tt = torch.from_numpy(t)

            def torch_step() -> Any:
                tx = torch.from_numpy(x).requires_grad_()
                torch.nn.functional.cross_entropy(tx, tt).backward()
                return tx.grad
            return torch_step
        layer = _layers(impl).SoftmaxWithLoss()

        def step() -> Any:
            layer.forward(x, t)
            return layer.backward()
        return step
    return make


def _batchnorm(xshape: Shape, mode: str = "feature") -> Make:
    """One training forward + backward of BatchNormalization; ``mode='feature'`` (the
    reference's default) normalises each of the C*H*W features over the batch, ``'spatial'``
    each channel over (N, H, W)."""
    def make(impl: str, dtype: DType) -> Step:
        spatial = mode == "spatial"
        d = xshape[1] if spatial else int(np.prod(xshape[1:]))
        rng = _rng()
        x = rng.standard_normal(xshape).astype(dtype)
        dout = rng.standard_normal(xshape).astype(dtype)
        gamma, beta = np.ones(d, dtype=dtype), np.zeros(d, dtype=dtype)
        if impl == "torch":
            torch = _torch_module()
            tg, tb = (torch.from_numpy(a).requires_grad_() for a in (gamma, beta))
            rm, rv = torch.zeros(d, dtype=tg.dtype), torch.ones(d, dtype=tg.dtype)
            # per feature as the reference: (N, C*H*W); spatial: (N, C, H, W), per channel
            shape = xshape if spatial else (xshape[0], d)
            td = torch.from_numpy(dout.reshape(shape))

            def torch_step() -> Any:
                tx = torch.from_numpy(x.reshape(shape)).requires_grad_()
                out = torch.nn.functional.batch_norm(tx, rm, rv, tg, tb, training=True,
                                                     momentum=0.1, eps=1e-6)
                out.backward(td)
                return tx.grad
            return torch_step
        layer = _layers(impl).BatchNormalization(gamma, beta, mode=mode)

        def step() -> Any:
            layer.forward(x, train_flg=True)
            return layer.backward(dout)
        return step
    return make


def _activation(kind: str, shape: Shape) -> Make:
    """One forward + backward of the element-wise layer ``kind`` ("Relu" or "Sigmoid")."""
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal(shape).astype(dtype)
        dout = rng.standard_normal(shape).astype(dtype)
        if impl == "torch":
            torch = _torch_module()
            op = torch.relu if kind == "Relu" else torch.sigmoid
            tx = torch.from_numpy(x).requires_grad_()
            return _torch_backward(op, (tx,), torch.from_numpy(dout))
        layer = getattr(_layers(impl), kind)()

        def step() -> Any:
            layer.forward(x)
            return layer.backward(dout)
        return step
    return make


def _dropout(shape: Shape) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        x = rng.standard_normal(shape).astype(dtype)
        dout = rng.standard_normal(shape).astype(dtype)
        if impl == "torch":
            torch = _torch_module()
            td = torch.from_numpy(dout)

            def torch_step() -> Any:
                tx = torch.from_numpy(x).requires_grad_()
                torch.nn.functional.dropout(tx, 0.5, training=True).backward(td)
                return tx.grad
            return torch_step
        layer = _layers(impl).Dropout(0.5)

        def step() -> Any:
            layer.forward(x, train_flg=True)
            return layer.backward(dout)
        return step
    return make


def _im2col(op: str, xs: Shape, f: int, stride: int, pad: int) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        util = _api(impl, "util")
        x = _rng().standard_normal(xs).astype(dtype)
        if op == "im2col":
            return lambda: util.im2col(x, f, f, stride, pad)
        from nnfast.reference import util as ref_util
        col = ref_util.im2col(x, f, f, stride, pad).astype(dtype, copy=False)
        return lambda: util.col2im(col, xs, f, f, stride, pad)
    return make


# --------------------------------------------------------------------------- optimizers

# SimpleConvNet's parameter set (batch-independent).
SIMPLECONV_PARAMS = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                     "W3": (100, 10), "b3": (10,)}
OPTIMIZERS = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam")


def _torch_optimizer(name: str, params: List[Any]) -> Any:
    optim = _torch_module().optim
    if name == "SGD":
        return optim.SGD(params, lr=0.01)
    if name in ("Momentum", "Nesterov"):
        return optim.SGD(params, lr=0.01, momentum=0.9, nesterov=name == "Nesterov")
    if name == "AdaGrad":
        return optim.Adagrad(params, lr=0.01)
    if name == "RMSprop":
        return optim.RMSprop(params, lr=0.01, alpha=0.99, eps=1e-7)
    return optim.Adam(params, lr=0.001, eps=1e-7)


def _optimizer(name: str) -> Make:
    def make(impl: str, dtype: DType) -> Step:
        rng = _rng()
        params = {k: rng.standard_normal(s).astype(dtype) for k, s in SIMPLECONV_PARAMS.items()}
        grads = {k: (rng.standard_normal(s) * 1e-3).astype(dtype)
                 for k, s in SIMPLECONV_PARAMS.items()}
        if impl == "torch":
            torch = _torch_module()
            tparams = [torch.from_numpy(p).requires_grad_() for p in params.values()]
            for tp, g in zip(tparams, grads.values()):
                tp.grad = torch.from_numpy(g)
            torch_step: Step = _torch_optimizer(name, tparams).step
            return torch_step
        optimizer = _api(impl, "optimizer")
        opt = getattr(optimizer, name)()
        return lambda: opt.update(params, grads)
    return make


# --------------------------------------------------------------------------- training steps

# The networks' layer sizes (input 1x28x28 or 784, 10 classes, the reference's defaults).
DEEPCONV_CONVS = ((1, 16, 1), (16, 16, 1), (16, 32, 1), (32, 32, 2), (32, 64, 1), (64, 64, 1))


def _deepconv_shapes(n: int = BATCH) -> List[Tuple[Shape, Shape, int]]:
    """[(x shape, W shape, pad)] of DeepConvNet's six convolutions (stride 1, 3x3)."""
    shapes: List[Tuple[Shape, Shape, int]] = []
    size = 28
    for i, (c_in, c, pad) in enumerate(DEEPCONV_CONVS):
        shapes.append(((n, c_in, size, size), (c, c_in, 3, 3), pad))
        size = _conv_out(size, 3, 1, pad)
        if i % 2 == 1:
            size //= 2
    return shapes


def _pool_workload(name: str, kind: str, xs: Shape, suite: bool = True,
                   long: bool = False) -> Workload:
    c, h, w = xs[1:]
    return Workload(name, f"{kind}pool", f"{c}x{h}x{w}, 2x2 stride 2", _pool(kind, xs, 2, 2),
                    suite=suite, long=long, traffic=_pool_traffic(xs, 2, 2))


def make_net(impl: str, name: str,
             dtype: DType) -> Tuple[Any, Tuple[npt.NDArray[Any], npt.NDArray[np.int64]]]:
    """The nnfast or reference network ``name`` (seeded) and its training batch."""
    nets = _api(impl, "nets")
    np.random.seed(0)
    if name == "MultiLayerNetExtend":
        net = nets.MultiLayerNetExtend(784, [100] * 5, 10, use_batchnorm=True, dtype=dtype)
    else:
        net = getattr(nets, name)(dtype=dtype)
    return net, train_batch(name, dtype)


def train_batch(name: str, dtype: DType,
                batch: int = BATCH) -> Tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    rng = _rng()
    shape = (batch, 784) if name == "MultiLayerNetExtend" else (batch, 1, 28, 28)
    return rng.random(shape).astype(dtype), rng.integers(0, 10, size=batch)


def torch_model(name: str) -> Any:
    """A PyTorch model with the same layers and sizes as the network ``name``."""
    nn = _torch_module().nn
    if name == "SimpleConvNet":
        return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                             nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "DeepConvNet":
        layers: List[Any] = []
        for i, (c_in, c, pad) in enumerate(DEEPCONV_CONVS):
            layers += [nn.Conv2d(c_in, c, 3, padding=pad), nn.ReLU()]
            if i % 2 == 1:
                layers.append(nn.MaxPool2d(2, 2))
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(),
                             nn.Dropout(0.5), nn.Linear(50, 10), nn.Dropout(0.5))
    layers, n_in = [], 784
    for _ in range(5):
        layers += [nn.Linear(n_in, 100), nn.BatchNorm1d(100, eps=1e-6), nn.ReLU()]
        n_in = 100
    return nn.Sequential(*layers, nn.Linear(100, 10))


def _train_step(name: str, images: Optional[DType] = None) -> Make:
    """One training step at batch 100: gradient + Adam(lr 0.001) update; for torch
    ``zero_grad, forward, loss, backward, step`` of the equivalent model.

    ``images``: the dtype of the input batch when it differs from the parameters' (``dtype``
    of ``make``): the toolkit's load_mnist gives float32 images to float64 networks. torch
    cannot mix them in one layer, so its step converts the batch first (``x.to(dtype)``,
    timed: one conversion, as nnfast's first layer does)."""
    def make(impl: str, dtype: DType) -> Step:
        x_dtype = dtype if images is None else images
        if impl == "torch":
            torch = _torch_module()
            torch.manual_seed(0)
            model = torch_model(name).to(_torch_dtype(dtype)).train()
            opt = torch.optim.Adam(model.parameters(), lr=0.001)
            x, t = (torch.from_numpy(a) for a in train_batch(name, x_dtype))
            loss_fn = torch.nn.CrossEntropyLoss()
            target = _torch_dtype(dtype)
            convert = x.dtype != target

            def step() -> Any:
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x.to(target) if convert else x), t).backward()
                opt.step()
            return step
        optimizer = _api(impl, "optimizer")
        net, (x, t) = make_net(impl, name, dtype)
        x = x.astype(x_dtype, copy=False)  # the same values as the all-`dtype` row, rounded
        opt = optimizer.Adam(lr=0.001)
        return lambda: opt.update(net.params, net.gradient(x, t))
    return make


def _train_flops(name: str, n: int = BATCH) -> int:
    """GEMM FLOPs of one training step (the first layer computes no input gradient)."""
    if name == "SimpleConvNet":
        return (conv_flops((n, 1, 28, 28), (30, 1, 5, 5), dx=False)
                + affine_flops(n, 30 * 12 * 12, 100) + affine_flops(n, 100, 10))
    if name == "DeepConvNet":
        total = sum(conv_flops(xs, ws, 1, pad, dx=i > 0)
                    for i, (xs, ws, pad) in enumerate(_deepconv_shapes(n)))
        return total + affine_flops(n, 64 * 4 * 4, 50) + affine_flops(n, 50, 10)
    return affine_flops(n, 784, 100, dx=False) + 4 * affine_flops(n, 100, 100) \
        + affine_flops(n, 100, 10)


# --------------------------------------------------------------------------- bytes

# Compulsory traffic of one timed call, as ``traffic(itemsize) -> bytes`` (the module
# docstring says what is counted): the arrays the call takes in, read once, and the arrays it
# gives back, written once; caches between forward and backward are not counted.

def _elementwise_traffic(shape: Shape) -> Traffic:
    """ReLU, Sigmoid, dropout forward + backward: x read, out written, dout read, dx written
    (not ReLU's or dropout's mask, nor Sigmoid's out read back)."""
    size = int(np.prod(shape))
    return lambda s: 4 * size * s


def _pool_traffic(xs: Shape, pool: int, stride: int) -> Traffic:
    """Pooling forward + backward: x read, out written, dout read, dx written (not the
    argmax max pooling keeps)."""
    n, c, h, w = xs
    x, out = n * c * h * w, n * c * _conv_out(h, pool, stride, 0) * _conv_out(w, pool, stride, 0)
    return lambda s: 2 * (x + out) * s


def _softmax_xent_traffic(n: int, c: int) -> Traffic:
    """SoftmaxWithLoss forward + backward: x read, the int64 labels read, the loss written,
    dx written (dout is the scalar 1; the probabilities it keeps are not counted)."""
    return lambda s: (2 * n * c + 1) * s + n * LABEL_BYTES


def _batchnorm_traffic(xshape: Shape, mode: str = "feature") -> Traffic:
    """BatchNormalization training forward + backward: x read, out written, dout read, dx
    written, and the per-feature (per-channel in 'spatial' mode) vectors: gamma, beta and the
    running mean and variance read, the new running mean and variance, dgamma and dbeta
    written (not the centred x or the std kept for backward)."""
    size = int(np.prod(xshape))
    d = xshape[1] if mode == "spatial" else size // xshape[0]
    return lambda s: (4 * size + 8 * d) * s


# Arrays an update reads and writes per parameter element: every one reads p and g and its
# state (v, h or m and v) and writes p and its state; Adam: p, g, m, v read + p, m, v written.
OPTIMIZER_ARRAYS = {"SGD": 3, "Momentum": 5, "Nesterov": 5, "AdaGrad": 5, "RMSprop": 5,
                    "Adam": 7}


def _optimizer_traffic(name: str, shapes: Optional[Mapping[str, Shape]] = None) -> Traffic:
    size = sum(int(np.prod(shape)) for shape in (shapes or SIMPLECONV_PARAMS).values())
    return lambda s: OPTIMIZER_ARRAYS[name] * size * s


# --------------------------------------------------------------------------- the registry

def _conv_workload(name: str, xs: Shape, ws: Shape, stride: int, pad: int, suite: bool = True,
                   long: bool = False) -> Workload:
    c, h, w = xs[1:]
    pad_text = f" pad {pad}" if pad else ""
    return Workload(name, "conv", f"{c}x{h}x{w} -> {ws[0]}x{ws[2]}x{ws[3]}{pad_text}",
                    _conv(xs, ws, stride, pad), conv_flops(xs, ws, stride, pad),
                    suite=suite, long=long)


def _conv_forward_workload(name: str, xs: Shape, ws: Shape, stride: int, pad: int) -> Workload:
    """The forward alone (kind "conv_fwd", `--all` only): FLOPs of the one product."""
    c, h, w = xs[1:]
    pad_text = f" pad {pad}" if pad else ""
    return Workload(name, "conv_fwd", f"{c}x{h}x{w} -> {ws[0]}x{ws[2]}x{ws[3]}{pad_text}",
                    _conv(xs, ws, stride, pad, backward=False),
                    conv_product_flops(xs, ws, stride, pad), suite=False)


def _build_registry() -> Dict[str, Workload]:
    b = BATCH
    w = [
        # Convolution forward + backward (input gradient included), batch 100.
        _conv_workload("conv_simple", (b, 1, 28, 28), (30, 1, 5, 5), 1, 0),
        _conv_workload("conv_deep2", (b, 16, 28, 28), (16, 16, 3, 3), 1, 1),
        _conv_workload("conv_deep4", (b, 32, 14, 14), (32, 32, 3, 3), 1, 2),
        _conv_workload("conv_deep1", (b, 1, 28, 28), (16, 1, 3, 3), 1, 1, False, True),
        _conv_workload("conv_deep3", (b, 16, 14, 14), (32, 16, 3, 3), 1, 1, False, True),
        _conv_workload("conv_deep5", (b, 32, 8, 8), (64, 32, 3, 3), 1, 1, False, True),
        _conv_workload("conv_deep6", (b, 64, 8, 8), (64, 64, 3, 3), 1, 1, False, True),
        # The same six layers, forward alone (torch under no_grad).
        *(_conv_forward_workload(f"conv_deep{i}_fwd", xs, ws, 1, pad)
          for i, (xs, ws, pad) in enumerate(_deepconv_shapes(b), start=1)),
        # 2x2 pooling after SimpleConvNet's and DeepConvNet's convolutions.
        _pool_workload("maxpool_simple", "max", (b, 30, 24, 24)),
        _pool_workload("maxpool_deep1", "max", (b, 16, 28, 28), suite=False),
        _pool_workload("maxpool_deep2", "max", (b, 32, 16, 16), suite=False, long=True),
        _pool_workload("maxpool_deep3", "max", (b, 64, 8, 8), suite=False, long=True),
        _pool_workload("avgpool_simple", "avg", (b, 30, 24, 24), suite=False),
        _pool_workload("avgpool_deep1", "avg", (b, 16, 28, 28), suite=False),
        _pool_workload("avgpool_deep2", "avg", (b, 32, 16, 16), suite=False, long=True),
        _pool_workload("avgpool_deep3", "avg", (b, 64, 8, 8), suite=False, long=True),
        # Affine as in SimpleConvNet (4320 -> 100) and TwoLayerNet (784 -> 50).
        Workload("affine_simple", "affine", "100x4320 -> 100", _affine(b, 4320, 100),
                 affine_flops(b, 4320, 100)),
        Workload("affine_twolayer", "affine", "100x784 -> 50", _affine(b, 784, 50),
                 affine_flops(b, 784, 50), suite=False),
        Workload("softmax_xent_10", "softmax_xent", "100x10", _softmax_xent(b, 10),
                 traffic=_softmax_xent_traffic(b, 10)),
        Workload("softmax_xent_1000", "softmax_xent", "256x1000", _softmax_xent(256, 1000),
                 traffic=_softmax_xent_traffic(256, 1000)),
        Workload("softmax_xent_1000x10", "softmax_xent", "1000x10", _softmax_xent(1000, 10),
                 suite=False, traffic=_softmax_xent_traffic(1000, 10)),
        Workload("batchnorm_100", "batchnorm", "100x100", _batchnorm((b, 100)), suite=False,
                 traffic=_batchnorm_traffic((b, 100))),
        Workload("batchnorm_16x28x28", "batchnorm", "100x16x28x28 per feature",
                 _batchnorm((b, 16, 28, 28)), traffic=_batchnorm_traffic((b, 16, 28, 28))),
        Workload("batchnorm_spatial_16x28x28", "batchnorm", "100x16x28x28 per channel",
                 _batchnorm((b, 16, 28, 28), "spatial"), suite=False,
                 traffic=_batchnorm_traffic((b, 16, 28, 28), "spatial")),
        Workload("relu_16x28x28", "relu", "100x16x28x28", _activation("Relu", (b, 16, 28, 28)),
                 suite=False, traffic=_elementwise_traffic((b, 16, 28, 28))),
        Workload("sigmoid_16x28x28", "sigmoid", "100x16x28x28",
                 _activation("Sigmoid", (b, 16, 28, 28)), suite=False,
                 traffic=_elementwise_traffic((b, 16, 28, 28))),
        Workload("dropout_100", "dropout", "100x100", _dropout((b, 100)), suite=False,
                 traffic=_elementwise_traffic((b, 100))),
        Workload("dropout_16x28x28", "dropout", "100x16x28x28, ratio 0.5",
                 _dropout((b, 16, 28, 28)), suite=False,
                 traffic=_elementwise_traffic((b, 16, 28, 28))),
        *(Workload(f"optim_{name.lower()}", "optimizer", "SimpleConvNet params",
                   _optimizer(name), suite=name == "Adam", traffic=_optimizer_traffic(name))
          for name in OPTIMIZERS),
        Workload("train_simpleconv", "train_step", "SimpleConvNet b100 + Adam",
                 _train_step("SimpleConvNet"), _train_flops("SimpleConvNet")),
        # The toolkit's default configuration: float64 parameters fed float32 images (its
        # load_mnist's dtype); float64 only (skipped, and said so, in a float32 run).
        Workload("train_simpleconv_mixed", "train_step_mixed",
                 "SimpleConvNet f64 params, f32 images b100 + Adam",
                 _train_step("SimpleConvNet", images=np.float32), _train_flops("SimpleConvNet"),
                 suite=False, dtypes=(np.float64,)),
        Workload("train_deepconv", "train_step", "DeepConvNet b100 + Adam",
                 _train_step("DeepConvNet"), _train_flops("DeepConvNet")),
        Workload("train_mlp_bn", "train_step", "MultiLayerNetExtend 784-5x100-10 BN b100 + Adam",
                 _train_step("MultiLayerNetExtend"), _train_flops("MultiLayerNetExtend")),
    ]
    for op in ("im2col", "col2im"):
        w += [Workload(f"{op}_simple", op, "100x1x28x28, 5x5",
                       _im2col(op, (b, 1, 28, 28), 5, 1, 0), suite=False,
                       impls=("nnfast", "reference")),
              Workload(f"{op}_deep3", op, "100x16x14x14, 3x3 pad 1",
                       _im2col(op, (b, 16, 14, 14), 3, 1, 1), suite=False,
                       impls=("nnfast", "reference"))]
    return {wl.name: wl for wl in w}


WORKLOADS = _build_registry()


def select(only: Optional[Sequence[str]] = None,
           kind: Union[str, Sequence[str], None] = None, suite: Optional[bool] = None,
           long: bool = True) -> List[Workload]:
    """Workloads in registry order, filtered.

    ``only``: names or glob patterns (a workload's exact name selects that workload only;
    another pattern without ``*?[`` matches as a substring);
    ``kind``: one kind or a tuple of kinds; ``suite``: True for `nnfast bench`'s suite;
    ``long=False`` leaves out the long-grid workloads.
    """
    kinds = (kind,) if isinstance(kind, str) else kind
    chosen: List[Workload] = []
    for w in WORKLOADS.values():
        if kinds is not None and w.kind not in kinds:
            continue
        if suite is not None and w.suite != suite:
            continue
        if not long and w.long:
            continue
        if only and not any(_matches(w.name, pattern) for pattern in only):
            continue
        chosen.append(w)
    return chosen


def _matches(name: str, pattern: str) -> bool:
    if pattern in WORKLOADS:
        return name == pattern
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name
