"""im2col / col2im (compiled when available) and small helpers.

``im2col(x, filter_h, filter_w, stride=1, pad=0, out=None)`` and
``col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0, out=None)``
keep the input dtype (float32 stays float32; the original toolkit upcast to
float64) and accept an ``out`` buffer to reuse. See ``nnfast._dispatch``.
"""
from ._dispatch import col2im, im2col
from .reference.util import conv_output_size, shuffle_dataset, smooth_curve

__all__ = ["im2col", "col2im", "conv_output_size", "smooth_curve", "shuffle_dataset"]
