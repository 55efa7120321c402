"""Activation and loss functions (native API; teacher first: ``f(d, y)``).

Served by ``nnfast.reference.functions`` until the fused compiled kernels
land (softmax + cross-entropy, element-wise activations); the names and
semantics here are the contract and will not change when they do.
"""
from .reference.functions import (
    cross_entropy_error,
    d_identity_function,
    d_mean_squared_error,
    d_relu,
    d_sigmoid,
    d_sigmoid_with_loss,
    d_softmax_with_loss,
    d_step_function,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_with_loss,
    step_function,
)

__all__ = [
    "identity_function", "step_function", "sigmoid", "relu", "softmax",
    "mean_squared_error", "cross_entropy_error", "softmax_with_loss",
    "d_identity_function", "d_step_function", "d_sigmoid", "d_relu",
    "d_mean_squared_error", "d_softmax_with_loss", "d_sigmoid_with_loss",
    "sigmoid_grad", "relu_grad",
]
