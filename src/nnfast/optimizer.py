"""Optimizers (native API): in-place ``update(params, grads)``.

Served by ``nnfast.reference.optimizer`` until the fused C update kernels
land; the update forms (and so float64 results, bit for bit) are the contract.
"""
from .reference.optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

__all__ = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
