"""NumPy stand-ins for the compiled kernels the layers, optimizers and ``nnfast.ops`` call.

Each function has the signature of the ``_kernels`` function of the same name (flat or
2-D arrays in, results written into the caller's buffers, a thread count that is
ignored) and performs the reference's operations in the reference's order
(``nnfast.reference``), so a native layer running on these gives the reference's numbers
bit for bit. ``_dispatch.kernel(name)`` binds, per op, the compiled kernel when the
extension is loaded and has it, else the function here: the fallback is per op, and the
layer classes are the same objects whatever runs underneath.
"""
import numpy as np

from .reference.functions import CE_EPS
from .reference.functions import sigmoid as _ref_sigmoid
from .reference.functions import softmax as _ref_softmax
from .reference.layers import BN_EPS
from .reference.optimizer import OPT_EPS

OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM = range(6)


def have_openmp():
    return False


def max_threads():
    return 1


def relu_forward(x, out, mask, n_threads=1):
    """mask = x <= 0; out = 0 where mask else x."""
    m = mask.view(np.bool_)
    np.less_equal(x, 0, out=m)
    out[...] = x
    out[m] = 0


def relu_backward(dout, mask, dx, n_threads=1):
    dx[...] = dout
    dx[mask.view(np.bool_)] = 0


def sigmoid(x, out, derivative=False, n_threads=1):
    s = _ref_sigmoid(x)
    out[...] = (1.0 - s) * s if derivative else s


def sigmoid_backward(dout, y, dx, n_threads=1):
    dx[...] = dout * (1.0 - y) * y


def mul_mask(a, mask, out, n_threads=1):
    np.multiply(a, mask.view(np.bool_), out=out)


def scale(a, s, out, n_threads=1):
    np.multiply(a, a.dtype.type(s), out=out)


def bias_add(out, b, n_threads=1):
    out += b


def softmax(x, y, n_threads=1):
    y[...] = _ref_softmax(x)


def _check_labels(labels, cols, where):
    if labels.size and (labels.min() < 0 or labels.max() >= cols):
        bad = labels[(labels < 0) | (labels >= cols)][0]
        raise ValueError(f"{where}: labels must be in [0, {cols}), got {bad}")


def softmax_xent(x, labels, t, y, dx, row_loss, n_threads=1):
    """y = softmax(x); the mean cross-entropy loss (returned); dx (if not None) the gradient."""
    rows, cols = x.shape
    if cols < 1 or rows < 1:
        raise ValueError(f"softmax_xent: x must have at least one row and one column, "
                         f"got ({rows}, {cols})")
    labels = np.asarray(labels)
    _check_labels(labels, cols, "softmax_xent")
    y[...] = _ref_softmax(x)
    picked = np.log(y[np.arange(rows), labels] + CE_EPS)
    row_loss[...] = picked  # (as the kernel: each row's log(y[label] + 1e-7))
    loss = -np.sum(picked) / rows
    if dx is not None:
        softmax_xent_backward(y, labels, t, dx)
    return float(loss)


def first_overlap(outs, ins):
    """(i, j): the first output outs[i] that may overlap (outs + ins)[j], j > i, or None."""
    arrays = tuple(outs) + tuple(ins)
    for i in range(len(outs)):
        if arrays[i] is None:
            continue
        for j in range(i + 1, len(arrays)):
            if arrays[j] is not None and np.may_share_memory(arrays[i], arrays[j]):
                return i, j
    return None


def softmax_xent_labels(x, labels, dx, n_threads=1):
    """softmax_xent with int64 labels, the softmax kept to itself: the loss; dx written."""
    y = np.empty(x.shape, dtype=x.dtype)
    return softmax_xent(x, labels, None, y, dx, np.empty(x.shape[0]), n_threads)


def softmax_xent_backward(y, labels, t, dx, n_threads=1):
    """dx = (y - t)/N with a dense teacher t, else y minus 1 at each label, /N."""
    rows, cols = y.shape
    if t is not None:
        dx[...] = (y - t) / rows
        return
    _check_labels(np.asarray(labels), cols, "softmax_xent_backward")
    d = y.copy()
    d[np.arange(rows), labels] -= 1
    dx[...] = d / rows


def cross_entropy(y, labels):
    rows, cols = y.shape
    _check_labels(np.asarray(labels), cols, "cross_entropy")
    return float(-np.sum(np.log(y[np.arange(rows), labels] + CE_EPS)) / rows)


def _rows(a, n, c, i):
    """a (flat, laid out (N, C, I)) as the reference's (rows, features) matrix (a view if
    I == 1, else the (N*I, C) transposition)."""
    a3 = a.reshape(n, c, i)
    return a3[:, :, 0] if i == 1 else a3.transpose(0, 2, 1).reshape(n * i, c)


def _store(dst, a2, n, c, i):
    """Write the (rows, features) matrix a2 into dst (flat, laid out (N, C, I))."""
    dst.reshape(n, c, i)[...] = a2[:, :, None] if i == 1 else \
        a2.reshape(n, i, c).transpose(0, 2, 1)


def bn_forward_train(x, N, C, I, gamma, beta, rm_in, rv_in, momentum, out, xc, xn, std,
                     rm_out, rv_out, n_threads=1):
    x2 = _rows(x, N, C, I)
    mu = x2.mean(axis=0)
    xc2 = x2 - mu
    var = np.mean(xc2 ** 2, axis=0)
    std[...] = np.sqrt(var + BN_EPS)
    xn2 = xc2 / std
    _store(xc, xc2, N, C, I)
    if xn is not None:  # None: not stored (bn_backward forms xc/std again), as the kernel
        _store(xn, xn2, N, C, I)
    _store(out, gamma * xn2 + beta, N, C, I)
    rm_out[...] = momentum * rm_in + (1 - momentum) * mu
    rv_out[...] = momentum * rv_in + (1 - momentum) * var


def bn_forward_test(x, N, C, I, gamma, beta, rm, rv, out, n_threads=1):
    xc2 = _rows(x, N, C, I) - rm
    xn2 = xc2 / np.sqrt(rv + BN_EPS)
    _store(out, gamma * xn2 + beta, N, C, I)


def bn_backward(dout, xc, xn, std, gamma, N, C, I, dx, dgamma, dbeta, n_threads=1):
    dout2, xc2 = _rows(dout, N, C, I), _rows(xc, N, C, I)
    xn2 = xc2 / std if xn is None else _rows(xn, N, C, I)
    n = N * I
    dbeta[...] = dout2.sum(axis=0)
    dgamma[...] = np.sum(xn2 * dout2, axis=0)
    dxn = gamma * dout2
    dxc = dxn / std
    dstd = -np.sum((dxn * xc2) / (std * std), axis=0)
    dvar = 0.5 * dstd / std
    dxc += (2.0 / n) * xc2 * dvar
    dmu = np.sum(dxc, axis=0)
    _store(dx, dxc - dmu / n, N, C, I)


def optim_update(op, p, g, s1, s2, a, b, c, n_threads=1):
    """One in-place update of p from g, in the reference's forms (see nnfast.optimizer).
    Overlapping arrays are refused, as the kernel refuses them."""
    arrays = [a_ for a_ in (p, g, s1, s2) if a_ is not None]
    for i, x in enumerate(arrays):
        for y in arrays[i + 1:]:
            if np.may_share_memory(x, y):
                raise ValueError("optim_update: param, grad and the state arrays must not "
                                 "overlap")
    if op == OPT_SGD:
        p -= a * g
    elif op == OPT_MOMENTUM:
        s1[...] = b * s1 - a * g
        p += s1
    elif op == OPT_NESTEROV:
        p += b * b * s1
        p -= (1 + b) * a * g
        s1 *= b
        s1 -= a * g
    elif op == OPT_ADAGRAD:
        s1 += g * g
        p -= a * g / (np.sqrt(s1) + OPT_EPS)
    elif op == OPT_RMSPROP:
        s1 *= b
        s1 += (1 - b) * g * g
        p -= a * g / (np.sqrt(s1) + OPT_EPS)
    elif op == OPT_ADAM:
        s1 += (1 - b) * (g - s1)
        s2 += (1 - c) * (g ** 2 - s2)
        p -= a * s1 / (np.sqrt(s2) + OPT_EPS)
    else:
        raise ValueError(f"optim_update: unknown op {op}")


# ---- convolution and pooling: the _dispatch entry points' signatures ------------------
# (x, W, b ... as the layers hand them to ``_dispatch.conv2d_forward`` etc.; ``work`` and
# ``plan`` are accepted and unused.) The reference layers' im2col arithmetic.

def _into(out, result):
    if out is None:
        return result
    out[...] = result
    return out


def conv2d_forward(x, W, b, stride, pad, work=None, plan=None, out=None):
    """(out (N, FN, OH, OW), col (N*OH*OW, C*FH*FW))."""
    from .reference import util

    n = x.shape[0]
    fn, _, fh, fw = W.shape
    oh = (x.shape[2] + 2 * pad - fh) // stride + 1
    ow = (x.shape[3] + 2 * pad - fw) // stride + 1
    col = util.im2col(x, fh, fw, stride, pad)
    res = col @ W.reshape(fn, -1).T + b
    return _into(out, np.ascontiguousarray(res.reshape(n, oh, ow, fn).transpose(0, 3, 1, 2))), col


def conv2d_forward_relu(x, W, b, stride, pad, mask, plan=None):
    return None  # no fused pass here: the layers run one after the other


def conv2d_backward(dout, x, col, W, stride, pad, need_dx=True, work=None, plan=None,
                    dw_out=None, db_out=None):
    """(dx or None, dW, db) from the forward's col; dW and db written into dw_out/db_out
    (of their dtype) when given, and those returned."""
    from .reference import util

    fn, c, fh, fw = W.shape
    if col is None or col.ndim != 2:
        col = util.im2col(x, fh, fw, stride, pad)
    dout2 = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
    db = np.sum(dout2, axis=0)
    dW = (col.T @ dout2).T.reshape(fn, c, fh, fw)
    dx = None
    if need_dx:
        dcol = dout2 @ W.reshape(fn, -1)
        dx = util.col2im(dcol, x.shape, fh, fw, stride, pad)
    if dw_out is not None and dw_out.dtype == dW.dtype:
        np.copyto(dw_out, dW)
        dW = dw_out
    if db_out is not None and db_out.dtype == db.dtype:
        np.copyto(db_out, db)
        db = db_out
    return dx, dW, db


def _pool_windows(x, pool_h, pool_w, stride, pad, fill):
    """(N*OH*OW*C, pool_h*pool_w) windows, rows (n, oh, ow, c), as the reference pools."""
    from .reference import util

    if pad:
        x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="constant",
                   constant_values=fill)
    return util.im2col(x, pool_h, pool_w, stride, 0).reshape(-1, pool_h * pool_w)


def _to_nchw(flat, n, c, oh, ow):
    return np.ascontiguousarray(flat.reshape(n, oh, ow, c).transpose(0, 3, 1, 2))


def maxpool_forward(x, pool_h, pool_w, stride, pad, out=None):
    """(out (N, C, OH, OW), argmax (N, C, OH, OW) int32 window offsets)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - pool_h) // stride + 1, (w + 2 * pad - pool_w) // stride + 1
    col = _pool_windows(x, pool_h, pool_w, stride, pad, -np.inf)
    arg = np.argmax(col, axis=1)
    res = np.max(col, axis=1)
    return _into(out, _to_nchw(res, n, c, oh, ow)), _to_nchw(arg.astype(np.int32), n, c, oh, ow)


def maxpool_backward(dout, argmax, x_shape, pool_h, pool_w, stride, pad, relu_mask=None):
    from .reference import util

    n, c, oh, ow = dout.shape
    size = pool_h * pool_w
    arg = argmax.transpose(0, 2, 3, 1).reshape(-1)
    dout_flat = dout.transpose(0, 2, 3, 1).reshape(-1)
    dmax = np.zeros((dout_flat.size, size), dtype=dout.dtype)
    dmax[np.arange(arg.size), arg] = dout_flat
    dx = util.col2im(dmax.reshape(n * oh * ow, c * size), x_shape, pool_h, pool_w, stride, pad)
    if relu_mask is not None:
        dx[np.asarray(relu_mask, dtype=np.bool_)] = 0
    return dx


def avgpool_forward(x, pool_h, pool_w, stride, pad, out=None):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * pad - pool_h) // stride + 1, (w + 2 * pad - pool_w) // stride + 1
    return _into(out, _to_nchw(np.mean(_pool_windows(x, pool_h, pool_w, stride, pad, 0), axis=1),
                    n, c, oh, ow))


def avgpool_backward(dout, x_shape, pool_h, pool_w, stride, pad):
    from .reference import util

    n, c, oh, ow = dout.shape
    size = pool_h * pool_w
    share = dout.transpose(0, 2, 3, 1).reshape(-1, 1) / size
    dcol = np.repeat(share, size, axis=1).reshape(n * oh * ow, c * size)
    return util.col2im(dcol, x_shape, pool_h, pool_w, stride, pad)
