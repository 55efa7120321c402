"""im2col / col2im: compiled kernel vs the NumPy reference, in one run.

Reproduce:  pytest benchmarks/bench_im2col.py --benchmark-only --benchmark-group-by=param:shape,param:dtype,param:threads
Shapes: SimpleConvNet's first layer (batch 100, 1x28x28, 5x5 filter) and a
DeepConvNet middle layer (batch 100, 16x14x14, 3x3, pad 1).
"""
import numpy as np
import pytest

import nnfast
from nnfast.reference import util as ref_util

SHAPES = {
    "simpleconv_100x1x28x28_f5": ((100, 1, 28, 28), 5, 1, 0),
    "deepconv_100x16x14x14_f3p1": ((100, 16, 14, 14), 3, 1, 1),
}
IMPLS = {"reference": ref_util, "nnfast": nnfast.util}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_im2col(benchmark, impl, shape, dtype, threads):
    xshape, f, s, p = SHAPES[shape]
    x = np.random.default_rng(0).standard_normal(xshape).astype(dtype)
    fn = IMPLS[impl].im2col
    benchmark.group = f"im2col {shape} {np.dtype(dtype).name} t{threads}"
    benchmark(fn, x, f, f, s, p)


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_col2im(benchmark, impl, shape, dtype, threads):
    xshape, f, s, p = SHAPES[shape]
    x = np.random.default_rng(0).standard_normal(xshape).astype(dtype)
    col = ref_util.im2col(x, f, f, s, p)
    fn = IMPLS[impl].col2im
    benchmark.group = f"col2im {shape} {np.dtype(dtype).name} t{threads}"
    benchmark(fn, col, xshape, f, f, s, p)
