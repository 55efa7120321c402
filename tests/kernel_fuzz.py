"""Random calls into ``nnfast._kernels`` with consistent and corrupted arguments.

Run as a script (``python tests/kernel_fuzz.py [iterations] [seed]``), never imported
by pytest itself: a kernel that reads or writes out of bounds may kill the process, so
``test_crash_isolation.py`` runs this in a subprocess and reports a signal as a failure.
Each call is first built consistent (every buffer sized for its geometry), then, with
probability 3/4, one argument is corrupted: an array gets another shape, ndim, dtype,
layout (non-contiguous, read-only) or becomes None; a size gets an extreme value
(0, negative, int64 limits, products that wrap around). The only acceptable outcomes
are a normal return or ValueError/TypeError/OverflowError/BufferError.

Before each call the script prints its number and description (flushed), so the last
line of the output names the call that crashed; rerun with the same seed to reproduce.
"""
import sys

import numpy as np

from nnfast import _kernels as K

ACCEPTED = (ValueError, TypeError, OverflowError, BufferError)

# Sizes that break naive int64 arithmetic: limits, powers of two, and values whose
# products with small numbers wrap around to small numbers modulo 2**64.
EXTREME_INTS = [0, -1, -2, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, -2**63,
                pow(3, -1, 2**64) * 4 % 2**64 // 2, 0x3333333333333334, 0x5555555555555556]


def geometry(rng):
    """A valid (N, C, H, W, FH, FW, stride, pad) with the window inside the padded input."""
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    pad = int(rng.integers(0, 3))
    fh, fw = int(rng.integers(1, h + 2 * pad + 1)), int(rng.integers(1, w + 2 * pad + 1))
    stride = int(rng.integers(1, 4))
    return n, c, h, w, fh, fw, stride, pad


def out_size(size, f, stride, pad):
    return (size + 2 * pad - f) // stride + 1


def _kernels_scratch(*args):
    from nnfast import _kernels
    return _kernels.dconv_scratch_size(*args)


def build(rng, name, dt):
    """A consistent argument list for kernel ``name`` in dtype ``dt``."""
    def arr(*shape):
        return rng.standard_normal(shape).astype(dt)

    n, c, h, w, fh, fw, s, p = geometry(rng)
    oh, ow = out_size(h, fh, s, p), out_size(w, fw, s, p)
    flat = int(rng.integers(0, 40))
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    nt = int(rng.integers(1, 3))
    if name == "im2col":
        return [arr(n, c, h, w), fh, fw, s, p, arr(n * oh * ow, c * fh * fw), nt]
    if name == "col2im":
        return [arr(n * oh * ow, c * fh * fw), arr(n, c, h, w), fh, fw, s, p, nt]
    if name == "im2col_planar":
        return [arr(n, c, h, w), fh, fw, s, p, arr(n, c * fh * fw, oh * ow), nt]
    if name == "col2im_planar":
        return [arr(n, c * fh * fw, oh * ow), arr(n, c, h, w), fh, fw, s, p, nt]
    if name in ("dconv_forward", "dconv_dw"):
        ph, pw = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        kh, kw = int(rng.integers(1, h + 2 * ph + 1)), int(rng.integers(1, w + 2 * pw + 1))
        f = int(rng.integers(1, 8))
        oh, ow = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        scratch = arr(_kernels_scratch(c, h, w, f, kh, kw, ph, pw, nt))
        if name == "dconv_forward":
            bias = arr(f) if rng.integers(2) else None
            return [arr(n, c, h, w), arr(f, c, kh, kw), bias, ph, pw, arr(n, f, oh, ow), scratch, nt]
        args = [arr(n, c, h, w), arr(n, f, oh, ow), ph, pw, arr(f, c, kh, kw), scratch, nt]
        return args + [None, arr(f)] if rng.integers(2) else args  # with db
    if name in ("bconv_forward", "bconv_dw"):
        from nnfast import _kernels
        f = int(rng.integers(1, 20))
        item = np.dtype(dt).itemsize
        if name == "bconv_forward":
            scratch = arr(_kernels.bconv_fwd_scratch_size(c, h, w, f, fh, fw, s, s, p, p, nt, item))
            bias = arr(f) if rng.integers(2) else None
            return [arr(n, c, h, w), arr(f, c, fh, fw), bias, s, s, p, p, arr(n, f, oh, ow),
                    scratch, nt]
        scratch = arr(_kernels.bconv_dw_scratch_size(n, c, h, w, f, fh, fw, s, s, p, p, nt, item))
        args = [arr(n, c, h, w), arr(n, f, oh, ow), s, s, p, p, arr(f, c, fh, fw), scratch, nt]
        return args + [None, arr(f)] if rng.integers(2) else args  # with db
    if name == "conv_bias_planar":
        return [arr(n, c, oh * ow), arr(c), nt]
    if name in ("maxpool_forward", "avgpool_forward", "maxpool_backward", "avgpool_backward"):
        fh, fw = min(fh, h + p), min(fw, w + p)  # pooling: any window that fits
        oh, ow = out_size(h, fh, s, p), out_size(w, fw, s, p)
        am = rng.integers(-2, fh * fw + 2, (n, c, oh, ow)).astype(np.int32)
        if name == "maxpool_forward":
            return [arr(n, c, h, w), fh, fw, s, p, arr(n, c, oh, ow), am, nt]
        if name == "avgpool_forward":
            return [arr(n, c, h, w), fh, fw, s, p, arr(n, c, oh, ow), nt]
        if name == "maxpool_backward":
            return [arr(n, c, oh, ow), am, arr(n, c, h, w), fh, fw, s, p, nt]
        return [arr(n, c, oh, ow), arr(n, c, h, w), fh, fw, s, p, nt]
    if name == "conv_bias_nchw":
        return [arr(n * oh * ow, c), arr(c), arr(n, c, oh * ow), nt]
    if name == "conv_bwd_rows_db":
        return [arr(n, c, oh * ow), arr(n * oh * ow, c), arr(c), np.empty((n, c)), nt]
    if name == "conv_db":
        return [arr(n, c, oh * ow), arr(c), np.empty((n, c)), nt]
    if name == "relu":
        return [arr(flat), arr(flat), nt]
    if name == "relu_forward":
        return [arr(flat), arr(flat), np.zeros(flat, np.uint8), nt]
    if name == "relu_backward":
        return [arr(flat), np.zeros(flat, np.uint8), arr(flat), nt]
    if name == "positive":
        return [arr(flat), bool(rng.integers(2)), arr(flat), nt]
    if name == "step":
        return [arr(flat), np.zeros(flat, np.int64), nt]
    if name == "sigmoid":
        return [arr(flat), arr(flat), bool(rng.integers(2)), nt]
    if name == "sigmoid_backward":
        return [arr(flat), arr(flat), arr(flat), nt]
    if name == "mul_mask":
        return [arr(flat), np.ones(flat, np.uint8), arr(flat), nt]
    if name == "scale":
        return [arr(flat), 0.5, arr(flat), nt]
    if name == "bias_add":
        return [arr(rows, cols), arr(cols), nt]
    if name == "softmax":
        return [arr(rows, cols), arr(rows, cols), nt]
    if name == "softmax_xent":
        labels = rng.integers(0, cols, rows).astype(np.int64)
        t = arr(rows, cols) if rng.integers(2) else None
        dx = arr(rows, cols) if rng.integers(2) else None
        return [arr(rows, cols), labels, t, arr(rows, cols), dx, np.empty(rows), nt]
    if name == "first_overlap":
        base = arr(flat + 4)
        return [(base[:flat], arr(flat), None), (base[2:], arr(rows, cols)[:, ::-1])]
    if name == "softmax_xent_labels":
        labels = rng.integers(0, cols, rows).astype(np.int64)
        return [arr(rows, cols), labels, arr(rows, cols), nt]
    if name == "softmax_xent_backward":
        labels = rng.integers(0, cols, rows).astype(np.int64)
        t = arr(rows, cols) if rng.integers(2) else None
        return [arr(rows, cols), labels, t, arr(rows, cols), nt]
    if name == "cross_entropy":
        return [np.abs(arr(rows, cols)), rng.integers(0, cols, rows).astype(np.int64)]
    if name in ("bn_forward_train", "bn_forward_test", "bn_backward"):
        ch, inner = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        total = n * ch * inner
        if name == "bn_forward_train":
            return [arr(total), n, ch, inner, arr(ch), arr(ch), arr(ch), np.abs(arr(ch)), 0.9,
                    arr(total), arr(total), arr(total), arr(ch), arr(ch), arr(ch), nt]
        if name == "bn_forward_test":
            return [arr(total), n, ch, inner, arr(ch), arr(ch), arr(ch), np.abs(arr(ch)),
                    arr(total), nt]
        return [arr(total), arr(total), arr(total), np.abs(arr(ch)) + 1, arr(ch), n, ch, inner,
                arr(total), arr(ch), arr(ch), nt]
    if name == "optim_update":
        op = int(rng.integers(0, 6))
        return [op, arr(flat), arr(flat), arr(flat), np.abs(arr(flat)), 0.01, 0.9, 0.999, nt]
    raise KeyError(name)


KERNELS = ["im2col", "col2im", "im2col_planar", "col2im_planar", "conv_bias_planar",
           "dconv_forward", "dconv_dw", "bconv_forward", "bconv_dw", "maxpool_forward", "maxpool_backward", "avgpool_forward",
           "avgpool_backward", "conv_bias_nchw", "conv_bwd_rows_db", "conv_db", "relu",
           "relu_forward", "relu_backward", "positive", "step", "sigmoid", "sigmoid_backward",
           "mul_mask", "scale", "bias_add", "softmax", "softmax_xent", "softmax_xent_labels", "first_overlap",
           "softmax_xent_backward", "cross_entropy", "bn_forward_train", "bn_forward_test", "bn_backward",
           "optim_update"]


def corrupt_array(rng, a):
    """Another shape/ndim/dtype/layout for array ``a`` (or None), with a description."""
    kind = int(rng.integers(0, 9))
    if kind == 0:
        return None, "None"
    if kind == 1 and a.ndim:  # one axis one longer or shorter
        ax = int(rng.integers(a.ndim))
        shape = list(a.shape)
        shape[ax] = max(0, shape[ax] + int(rng.choice([-1, 1, 3])))
        return np.zeros(shape, a.dtype), f"shape {tuple(shape)}"
    if kind == 2:  # an extra or a missing axis
        b = a[..., None] if rng.integers(2) or a.ndim < 2 else a.reshape(a.shape[:-2] + (-1,))
        return np.ascontiguousarray(b), f"ndim {b.ndim}"
    if kind == 3:
        dt = rng.choice([d for d in ("float32", "float64", "int32", "int64", "uint8", "bool",
                                     "complex128", "float16") if np.dtype(d) != a.dtype])
        return a.astype(dt), f"dtype {dt}"
    if kind == 4 and a.ndim:  # non-contiguous view
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2], "non-contiguous"
    if kind == 5:
        b = a.copy()
        b.setflags(write=False)
        return b, "read-only"
    if kind == 6:
        return np.zeros((0,) * max(a.ndim, 1), a.dtype), "empty"
    if kind == 7:
        return a.tolist(), "list"
    return a.astype(a.dtype.newbyteorder(">")), "big-endian"


def corrupt(rng, args):
    """Corrupt one argument of ``args`` in place; return a description."""
    i = int(rng.integers(len(args)))
    a = args[i]
    if isinstance(a, np.ndarray):
        args[i], what = corrupt_array(rng, a)
    elif isinstance(a, tuple):  # a tuple of arrays: one corrupted, or the tuple replaced
        if a and rng.integers(2):
            k = int(rng.integers(len(a)))
            item = a[k] if isinstance(a[k], np.ndarray) else np.zeros(3)
            bad, what = corrupt_array(rng, item)
            args[i] = a[:k] + (bad,) + a[k + 1:]
            what = f"item {k} -> {what}"
        else:
            args[i] = [None, [1, 2], (1.5,) * 17, "x"][int(rng.integers(4))]
            what = repr(args[i])[:20]
    elif isinstance(a, (bool, float)) or a is None:
        args[i] = rng.choice([None, "x", 1e308, -1.0])
        what = repr(args[i])
    else:  # an int: a size, stride, pad, op code or thread count
        args[i] = int(rng.choice(EXTREME_INTS)) if rng.integers(4) else int(a) * 2**32 + 1
        what = str(args[i])
    return f"arg {i} -> {what}"


def main(iterations=2000, seed=0):
    rng = np.random.default_rng(seed)
    outcomes = {"ok": 0, "refused": 0}
    for it in range(iterations):
        name = KERNELS[int(rng.integers(len(KERNELS)))]
        dt = np.float32 if rng.integers(2) else np.float64
        args = build(rng, name, dt)
        what = "valid"
        if rng.integers(4):
            what = corrupt(rng, args)
        print(f"{it} {name} {np.dtype(dt).name} {what}", flush=True)
        try:
            getattr(K, name)(*args)
        except ACCEPTED:
            outcomes["refused"] += 1
        else:
            outcomes["ok"] += 1
    print(f"done {iterations} calls: {outcomes['ok']} returned, {outcomes['refused']} refused",
          flush=True)


if __name__ == "__main__":
    main(*(int(v) for v in sys.argv[1:3]))
