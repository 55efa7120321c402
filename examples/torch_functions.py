"""nnfast.ops as the kernels of PyTorch autograd functions (CPU tensors).

``Conv2d.apply(x, w, b, stride, pad)`` and ``MaxPool2d.apply(x, size, stride, pad)``
behave as ``torch.nn.functional.conv2d`` / ``max_pool2d``: the forward runs nnfast's
kernels on the tensors' NumPy views, the backward nnfast's backward kernels; torch's
autograd composes them with everything else.

    import torch, torch_functions as nf
    x = torch.randn(8, 3, 32, 32, requires_grad=True)
    w = torch.randn(16, 3, 3, 3, requires_grad=True)
    y = nf.MaxPool2d.apply(torch.relu(nf.Conv2d.apply(x, w, None, 1, 1)), 2)
    y.sum().backward()
"""
from typing import Any, Optional, Tuple

import numpy as np
import torch

from nnfast import ops


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class Conv2d(torch.autograd.Function):
    """Cross-correlation of x (N, C, H, W) by w (FN, C, FH, FW), bias b (FN,) or None."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor],
                stride: int = 1, pad: int = 0) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.geometry = (stride, pad, b is not None)
        out = ops.conv2d(_np(x), _np(w), None if b is None else _np(b), stride, pad)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[Any, ...]:
        x, w = ctx.saved_tensors
        stride, pad, has_bias = ctx.geometry
        dx, dw, db = ops.conv2d_backward(_np(grad), _np(x), _np(w), stride, pad,
                                         need_dx=ctx.needs_input_grad[0])
        return (None if dx is None else torch.from_numpy(dx), torch.from_numpy(dw),
                torch.from_numpy(db) if has_bias else None, None, None)


class MaxPool2d(torch.autograd.Function):
    """Max pooling over size x size windows (padding -inf); the gradient goes to the
    first maximum of each window, as torch's."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: int, stride: Optional[int] = None,
                pad: int = 0) -> torch.Tensor:
        stride = size if stride is None else stride
        out, argmax = ops.max_pool2d(_np(x), size, size, stride, pad)
        ctx.save_for_backward(torch.from_numpy(argmax))
        ctx.geometry = (tuple(x.shape), size, stride, pad)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[Any, ...]:
        (argmax,) = ctx.saved_tensors
        shape, size, stride, pad = ctx.geometry
        dx = ops.max_pool2d_backward(_np(grad), argmax.numpy(), shape, size, size, stride, pad)
        return torch.from_numpy(dx), None, None, None
