"""nnfast.reference: the native nnfast API written in plain NumPy.

This package is the readable oracle: every compiled kernel and fast path in
``nnfast`` is tested against it, and every benchmark reports its ratio to it.
It imports nothing compiled (only NumPy, the standard library and the
pure-Python ``nnfast._checks``), so it works even when the C extension cannot
be loaded.

Modules: ``functions`` (activations, losses, derivatives), ``gradient``
(numerical gradients), ``util`` (im2col/col2im and helpers), ``layers``
(Relu, Sigmoid, Affine, SoftmaxWithLoss, Dropout, BatchNormalization,
Convolution, Pooling, AvgPooling) and ``optimizer`` (SGD, Momentum, Nesterov,
AdaGrad, RMSprop, Adam).

It reproduces the numbers of the original toolkit, not its accidents: float32
stays float32, bad input raises a clear error, nothing writes into its inputs,
and ``Pooling`` works with ``pad > 0``.
"""
from . import functions, gradient, layers, nets, optimizer, trainer, util

__all__ = ["functions", "gradient", "util", "layers", "optimizer", "nets", "trainer"]
