#!/usr/bin/env python
"""Call every compiled entry point many times on small shapes; memory must stay flat.

    python scripts/leakcheck.py [calls per entry point, default 100000] [name filter]

For each entry point of ``nnfast._kernels`` (valid calls, and refused calls: leaks
like to hide on error paths) and for each native layer/optimizer round trip, the
script runs a warm-up, then ``calls`` calls, and reports the growth of Python-tracked
memory (tracemalloc: every NumPy array buffer is tracked) and of the process's resident
set size. A leak of one small array per call shows up as >= ``calls`` * 100 bytes.
Exit status 1 if any entry point grew by more than the tolerance
(``max(64 KiB, 0.5 bytes per call)`` traced; RSS is reported, judged at 8 MiB).
tests/test_leaks.py runs the same table with few calls.
"""
import gc
import sys
import time
import tracemalloc

import numpy as np

import nnfast
from nnfast import _kernels as K
from nnfast import layers as L
from nnfast import optimizer as O


def _rss():
    """Current resident set size in bytes (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return 0


def _refused(fn, *args):
    def call():
        try:
            fn(*args)
        except (ValueError, TypeError):
            return
        raise AssertionError(f"{fn.__name__} accepted bad arguments")
    return call


def entry_points():
    """name -> zero-argument callable (arrays allocated once, here)."""
    rng = np.random.default_rng(0)
    f64 = lambda *s: rng.standard_normal(s)  # noqa: E731
    x4, col = f64(2, 3, 6, 6), f64(2 * 4 * 4, 3 * 9)
    img = np.empty((2, 3, 6, 6))
    pooled, argmax = np.empty((2, 3, 3, 3)), np.zeros((2, 3, 3, 3), np.int32)
    rows, b, out3, db, part = f64(2 * 9, 4), f64(4), np.empty((2, 4, 9)), np.empty(4), \
        np.empty((2, 4))
    v, o, mask = f64(50), np.empty(50), np.zeros(50, np.uint8)
    steps = np.empty(50, np.int64)
    s2, y2 = f64(8, 10), np.empty((8, 10))
    labels, loss_rows = rng.integers(0, 10, 8).astype(np.int64), np.empty(8)
    t2 = np.eye(10)[labels]
    big2, big_labels = f64(64, 20), rng.integers(0, 20, 64).astype(np.int64)  # > 4 KiB scratch
    bn = [f64(4 * 5 * 3)] + [np.abs(f64(5)) + 1 for _ in range(4)]
    bnout = [np.empty(60) for _ in range(3)] + [np.empty(5) for _ in range(3)]
    p, g, st1, st2 = f64(50), f64(50), np.zeros(50), np.zeros(50)
    x32 = x4.astype(np.float32)
    col32 = np.empty((2 * 4 * 4, 3 * 9), np.float32)
    colp = f64(2, 3 * 9, 4 * 4)
    w4, dout4 = f64(4, 3, 3, 3), np.empty((2, 4, 6, 6))
    dsc = np.empty(K.dconv_scratch_size(3, 6, 6, 4, 3, 3, 1, 1, 2))
    bsc = np.empty(K.bconv_fwd_scratch_size(3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 2, 8))
    bdsc = np.empty(K.bconv_dw_scratch_size(2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 2, 8))
    rmask, img_mask = np.zeros((2, 4, 6, 6), np.uint8), np.ones((2, 3, 6, 6), np.uint8)

    calls = {
        "im2col": lambda: K.im2col(x4, 3, 3, 1, 0, col, 1),
        "im2col f32 2 threads": lambda: K.im2col(x32, 3, 3, 1, 0, col32, 2),
        "col2im": lambda: K.col2im(col, img, 3, 3, 1, 0, 1),
        "maxpool_forward": lambda: K.maxpool_forward(x4, 2, 2, 2, 0, pooled, argmax, 1),
        "maxpool_backward": lambda: K.maxpool_backward(pooled, argmax, img, 2, 2, 2, 0, 1),
        "avgpool_forward": lambda: K.avgpool_forward(x4, 2, 2, 2, 0, pooled, 1),
        "avgpool_backward": lambda: K.avgpool_backward(pooled, img, 2, 2, 2, 0, 1),
        "conv_bias_nchw": lambda: K.conv_bias_nchw(rows, b, out3, 1),
        "conv_bwd_rows_db": lambda: K.conv_bwd_rows_db(out3, rows, db, part, 1),
        "conv_db": lambda: K.conv_db(out3, db, part, 1),
        "im2col_planar": lambda: K.im2col_planar(x4, 3, 3, 1, 0, colp, 1),
        "col2im_planar": lambda: K.col2im_planar(colp, img, 3, 3, 1, 0, 1),
        "conv_bias_planar": lambda: K.conv_bias_planar(out3, b, 1),
        "dconv_forward": lambda: K.dconv_forward(x4, w4, b, 1, 1, dout4, dsc, 2),
        "dconv_forward + relu": lambda: K.dconv_forward(x4, w4, b, 1, 1, dout4, dsc, 2, None,
                                                        rmask),
        "dconv_dw": lambda: K.dconv_dw(x4, dout4, 1, 1, w4, dsc, 2),
        "dconv_dw + db": lambda: K.dconv_dw(x4, dout4, 1, 1, w4, dsc, 2, None, b),
        "bconv_forward + relu": lambda: K.bconv_forward(x4, w4, b, 1, 1, 1, 1, dout4, bsc, 2,
                                                        None, rmask),
        "bconv_dw + db": lambda: K.bconv_dw(x4, dout4, 1, 1, 1, 1, w4, bdsc, 2, None, b),
        "maxpool_backward + relu": lambda: K.maxpool_backward(pooled, argmax, img, 2, 2, 2, 0, 1,
                                                              img_mask),
        "relu": lambda: K.relu(v, o, 1),
        "relu_forward": lambda: K.relu_forward(v, o, mask, 1),
        "relu_backward": lambda: K.relu_backward(v, mask, o, 1),
        "positive": lambda: K.positive(v, True, o, 1),
        "step": lambda: K.step(v, steps, 1),
        "sigmoid": lambda: K.sigmoid(v, o, False, 1),
        "sigmoid_backward": lambda: K.sigmoid_backward(v, v, o, 1),
        "mul_mask": lambda: K.mul_mask(v, mask, o, 1),
        "scale": lambda: K.scale(v, 0.5, o, 1),
        "bias_add": lambda: K.bias_add(y2, s2[0], 1),
        "softmax": lambda: K.softmax(s2, y2, 1),
        "softmax_xent": lambda: K.softmax_xent(s2, labels, t2, y2, np.empty((8, 10)),
                                               loss_rows, 1),
        "first_overlap": lambda: K.first_overlap((y2, None, o), (s2, v, s2[::-1])),
        "softmax_xent_labels": lambda: K.softmax_xent_labels(s2, labels, np.empty((8, 10)), 1),
        "softmax_xent_labels (heap scratch)": lambda: K.softmax_xent_labels(
            big2, big_labels, np.empty(big2.shape), 1),
        "softmax_xent_backward": lambda: K.softmax_xent_backward(y2, labels, None,
                                                                 np.empty((8, 10)), 1),
        "cross_entropy": lambda: K.cross_entropy(np.abs(s2), labels),
        "bn_forward_train": lambda: K.bn_forward_train(bn[0], 4, 5, 3, *bn[1:], 0.9, *bnout, 1),
        "bn_forward_test": lambda: K.bn_forward_test(bn[0], 4, 5, 3, *bn[1:], bnout[0], 1),
        "bn_backward": lambda: K.bn_backward(bn[0], bnout[1], bnout[2], bn[4], bn[1], 4, 5, 3,
                                             bnout[0], bnout[4], bnout[5], 1),
    }
    for name in ("SGD", "MOMENTUM", "NESTEROV", "ADAGRAD", "RMSPROP", "ADAM"):
        op = getattr(K, f"OPT_{name}")
        calls[f"optim_update {name}"] = (
            lambda op=op: K.optim_update(op, p, g, st1, st2, 1e-9, 0.9, 0.999, 1))
    # error paths: refused after some buffers were acquired
    calls.update({
        "im2col (refused)": _refused(K.im2col, x4, 3, 3, 1, 0, np.empty((3, 3)), 1),
        "relu (refused)": _refused(K.relu, v, np.empty(49), 1),
        "softmax_xent (refused)": _refused(K.softmax_xent, s2, labels + 10, None, y2, None,
                                           loss_rows, 1),
        "first_overlap (refused)": _refused(K.first_overlap, (y2, [1, 2]), (s2,)),
        "softmax_xent_labels (refused)": _refused(K.softmax_xent_labels, s2, labels + 10,
                                                  np.empty((8, 10)), 1),
        "softmax_xent_labels (wrong dx)": _refused(K.softmax_xent_labels, s2, labels,
                                                   np.empty((8, 10), np.float32), 1),
        "bn_forward_train (refused)": _refused(K.bn_forward_train, bn[0], 4, 5, 4, *bn[1:],
                                               0.9, *bnout, 1),
        "relu (None)": _refused(K.relu, v, None, 1),
    })

    # public layers and optimizers: forward + backward / update (fresh outputs each call)
    xs = f64(4, 3, 6, 6)
    conv = L.Convolution(f64(4, 3, 3, 3), f64(4), 1, 1)
    pool, avg = L.Pooling(2, 2, 2, 0), L.AvgPooling(2, 2, 2, 0)
    aff, relu, sig = L.Affine(f64(36, 10), f64(10)), L.Relu(), L.Sigmoid()
    bnl = L.BatchNormalization(np.ones(36), np.zeros(36))
    drop, smx = L.Dropout(0.3), L.SoftmaxWithLoss()
    t4 = rng.integers(0, 10, 4)
    ones_pooled, ones_conv = np.ones((4, 4, 3, 3)), np.ones((4, 4, 6, 6))

    def layer_stack():
        h = conv.forward(xs)  # (4, 4, 6, 6)
        avg.forward(h)
        h = pool.forward(h)  # (4, 4, 3, 3)
        h = bnl.forward(h.reshape(4, 36), True)
        h = drop.forward(sig.forward(relu.forward(h)), True)
        smx.forward(aff.forward(h), t4)
        d = aff.backward(smx.backward(1))
        bnl.backward(relu.backward(sig.backward(drop.backward(d))))
        avg.backward(ones_pooled)
        pool.backward(ones_pooled)
        conv.backward(ones_conv)

    calls["layers forward+backward"] = layer_stack
    # a network step: the fused Convolution + Relu and Pooling + Relu passes, direct kernels
    np.random.seed(0)
    net = nnfast.nets.SimpleConvNet(dtype=np.float32)
    xnet = rng.random((2, 1, 28, 28)).astype(np.float32)
    calls["SimpleConvNet gradient (fused)"] = lambda: net.gradient(xnet, t4[:2])
    params = {"W": f64(20, 5), "b": f64(5)}
    grads = {"W": f64(20, 5), "b": f64(5)}
    for name in ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"):
        opt = getattr(O, name)(lr=1e-9)
        calls[f"{name}.update"] = lambda opt=opt: opt.update(params, grads)
    calls["functions"] = lambda: (nnfast.functions.softmax_with_loss(t4, s2[:4]),
                                  nnfast.functions.sigmoid(v), nnfast.util.im2col(x4, 3, 3))
    return calls


def measure(fn, calls, warmup=200):
    """(traced growth, RSS growth) in bytes over ``calls`` calls after a warm-up."""
    for _ in range(warmup):
        fn()
    gc.collect()
    traced0, rss0 = tracemalloc.get_traced_memory()[0], _rss()
    for _ in range(calls):
        fn()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - traced0, _rss() - rss0


def run(calls, pattern="", out=sys.stdout, limit=None, rss_limit=8 * 2**20):
    """Measure every entry point whose name contains ``pattern``; return the failures
    (name, traced growth, RSS growth) of those whose traced memory grew more than
    ``limit`` bytes or whose RSS grew more than ``rss_limit`` (None: RSS not judged -
    under AddressSanitizer freed memory sits in a quarantine and RSS grows anyway)."""
    tracemalloc.start()
    failures = []
    limit = max(64 * 1024, calls // 2) if limit is None else limit
    print(f"{'entry point':34s} {'calls':>8s} {'traced growth':>14s} {'RSS growth':>12s}  "
          f"{'s':>5s}", file=out)
    for name, fn in entry_points().items():
        if pattern not in name:
            continue
        start = time.perf_counter()
        traced, rss = measure(fn, calls)
        bad = traced > limit or (rss_limit is not None and rss > rss_limit)
        print(f"{name:34s} {calls:8d} {traced:12d} B {rss // 1024:9d} KiB  "
              f"{time.perf_counter() - start:5.1f}{'  LEAK?' if bad else ''}", file=out,
              flush=True)
        if bad:
            failures.append((name, traced, rss))
    tracemalloc.stop()
    return failures


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    failures = run(n, sys.argv[2] if len(sys.argv) > 2 else "")
    print("FAILED: " + ", ".join(f[0] for f in failures) if failures else "flat: no growth")
    sys.exit(1 if failures else 0)
