"""The buffers and plans the layers hand to nnfast.ops (issue 16: layers -> ops -> kernels)
and the gradient views of the allreduce buffer (issue 17): every ``*_out``/``mask``/
``workspace``/``plan`` argument gives the bits of the call without it, writes the buffer
passed in, and a wrong buffer is refused before anything is written."""
import numpy as np
import pytest

from nnfast import layers as L
from nnfast import nets, ops
from nnfast.distributed import GradientBuffer

DTYPES = [np.float32, np.float64]


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_mask_out_and_backward_from_the_mask(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7)).astype(dtype)
    x[0, 0] = 0.0
    mask = np.empty(x.shape, dtype=bool)
    out = np.empty_like(x)
    assert ops.relu(x, out=out, mask=mask) is out
    same(out, ops.relu(x))
    same(mask, x <= 0)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = np.empty_like(dout)
    assert ops.relu_backward(dout, mask=mask, out=dx) is dx
    same(dx, ops.relu_backward(dout, x))
    with pytest.raises(TypeError, match="relu_backward: give x or mask"):
        ops.relu_backward(dout)
    with pytest.raises(TypeError, match="relu_backward: give x or mask"):
        ops.relu_backward(dout, x, mask=mask)
    with pytest.raises(ValueError, match=r"relu: mask must be a writeable C-contiguous bool"):
        ops.relu(x, mask=np.empty(x.shape, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"relu: mask must be"):
        ops.relu(x, mask=np.empty((7, 3), dtype=bool).T)  # not C-contiguous
    with pytest.raises(ValueError, match=r"relu_backward: mask must be a bool array of shape"):
        ops.relu_backward(dout, mask=mask[:2])


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_backward_writes_the_buffers_given(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 3)).astype(dtype)
    w = rng.standard_normal((6, 4)).astype(dtype)
    dout = rng.standard_normal((5, 4)).astype(dtype)
    want = ops.affine_backward(dout, x, w)
    bufs = np.empty(x.shape, dtype), np.empty(w.shape, dtype), np.empty(4, dtype)
    got = ops.affine_backward(dout, x, w, dx_out=bufs[0], dw_out=bufs[1], db_out=bufs[2])
    for g, b, wnt in zip(got, bufs, want):
        assert g is b
        same(g, wnt)
    spoiled = np.full(w.shape, 7, dtype)
    with pytest.raises(ValueError, match=r"affine_backward: db_out must be a writeable"):
        ops.affine_backward(dout, x, w, dw_out=spoiled, db_out=np.empty(5, dtype))
    assert (spoiled == 7).all()  # refused before anything was written
    with pytest.raises(TypeError, match=r"affine_backward: dw_out must be a float"):
        ops.affine_backward(dout, x, w, dw_out=np.empty(w.shape, np.float16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_y_out(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5)).astype(dtype)
    t = np.array([0, 4, 2, 2])
    y = np.empty_like(x)
    loss, dx = ops.softmax_cross_entropy(x, t, y_out=y)
    same(y, ops.softmax(x))
    loss2, dx2 = ops.softmax_cross_entropy(x, t)
    same(loss, loss2)
    same(dx, dx2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["feature", "spatial"])
def test_batch_norm_xc_out_gradient_outs_and_normalized(mode, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 2, 2)).astype(dtype)
    c = 3 if mode == "spatial" else 12
    gamma, beta = rng.random(c).astype(dtype) + 0.5, rng.random(c).astype(dtype)
    res = ops.batch_norm(x, gamma, beta, mode=mode)
    assert res.cache.xn is None
    xc = np.empty(res.cache.xc.shape, dtype)
    res2 = ops.batch_norm(x, gamma, beta, mode=mode, xc_out=xc)
    assert res2.cache.xc is xc
    same(res2.out, res.out)
    same(xc, res.cache.xc)
    std = res.cache.std.reshape(-1, 1, 1) if mode == "spatial" else res.cache.std
    same(res.cache.normalized(), res.cache.xc / std)
    dout = rng.standard_normal(x.shape).astype(dtype)
    want = ops.batch_norm_backward(dout, res.cache, gamma)
    outs = np.empty_like(dout), np.empty(c, dtype), np.empty(c, dtype)
    got = ops.batch_norm_backward(dout, res.cache, gamma, out=outs[0], dgamma_out=outs[1],
                                  dbeta_out=outs[2])
    for g, o, wnt in zip(got, outs, want):
        assert g is o
        same(g, wnt)
    # a cache holding xn (built by hand) gives the same gradients
    cache = ops.BatchNormCache(res.cache.xc, res.cache.normalized(), res.cache.std, mode)
    for g, wnt in zip(ops.batch_norm_backward(dout, cache, gamma), want):
        same(g, wnt)
    with pytest.raises(ValueError, match="xc_out must be a writeable"):
        ops.batch_norm(x, gamma, beta, mode=mode, xc_out=np.empty((1,), dtype))


CONV = [((2, 1, 12, 12), (5, 3, 3), 1, 1),   # planes (one channel)
        ((2, 8, 8, 8), (16, 3, 3), 1, 1),    # channels
        ((3, 3, 7, 9), (4, 3, 2), 2, 1)]     # columns (strided)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV)
def test_conv2d_relu_mask_plan_workspace_and_gradient_outs(case, dtype):
    (n, c, h, w), (fn, fh, fw), stride, pad = case
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((fn, c, fh, fw)).astype(dtype)
    b = rng.standard_normal(fn).astype(dtype)
    plain = ops.conv2d(x, W, b, stride, pad)
    plan = ops.conv_plan(x.shape, W.shape, stride, pad)
    assert isinstance(plan, ops.ConvPlan) and plan.method in ("channels", "planes", "columns")
    mask = np.empty(plain.shape, dtype=bool)
    fused = ops.conv2d(x, W, b, stride, pad, relu_mask=mask, plan=plan)
    same(fused, ops.relu(plain))
    same(mask, plain <= 0)
    ws = ops.ConvWorkspace()
    same(ops.conv2d(x, W, b, stride, pad, plan=plan, workspace=ws), plain)
    dout = rng.standard_normal(plain.shape).astype(dtype)
    want = ops.conv2d_backward(dout, x, W, stride, pad)
    dw, db = np.empty(W.shape, dtype), np.empty(fn, dtype)
    got = ops.conv2d_backward(dout, x, W, stride, pad, plan=plan, workspace=ws, dw_out=dw,
                              db_out=db)
    assert got[1] is dw and got[2] is db
    for g, wnt in zip(got, want):
        same(g, wnt)
    # the workspace's columns belong to x: another x of the same shape gets its own
    x2 = rng.standard_normal(x.shape).astype(dtype)
    for g, wnt in zip(ops.conv2d_backward(dout, x2, W, stride, pad, workspace=ws),
                      ops.conv2d_backward(dout, x2, W, stride, pad)):
        same(g, wnt)
    with pytest.raises(TypeError, match="conv2d: plan must be a ConvPlan"):
        ops.conv2d(x, W, b, stride, pad, plan=("columns", "columns"))
    with pytest.raises(TypeError, match="conv2d_backward: workspace must be"):
        ops.conv2d_backward(dout, x, W, stride, pad, workspace={})
    with pytest.raises(ValueError, match="conv2d: relu_mask must be"):
        ops.conv2d(x, W, b, stride, pad, relu_mask=np.empty(3, dtype=bool))
    with pytest.raises(ValueError, match="conv2d_backward: dw_out must be"):
        ops.conv2d_backward(dout, x, W, stride, pad, dw_out=np.empty(3, dtype))


def test_conv_plan_validates_its_shapes():
    with pytest.raises(ValueError, match=r"conv_plan: x_shape must be a shape \(N, C, H, W\)"):
        ops.conv_plan((1, 28, 28), (30, 1, 5, 5))
    with pytest.raises(TypeError, match=r"conv_plan: w_shape must be a shape \(FN, C, FH, FW\)"):
        ops.conv_plan((1, 1, 28, 28), None)
    with pytest.raises(ValueError, match="conv_plan: x has 1 channels"):
        ops.conv_plan((1, 1, 28, 28), (30, 3, 5, 5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_backward_with_the_relu_mask_is_both_backwards(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    relu_mask = x <= 0
    p, argmax = ops.max_pool2d(ops.relu(x), 2)
    dout = rng.standard_normal(p.shape).astype(dtype)
    want = ops.relu_backward(ops.max_pool2d_backward(dout, argmax, x.shape, 2), x)
    same(ops.max_pool2d_backward(dout, argmax, x.shape, 2, relu_mask=relu_mask), want)
    with pytest.raises(ValueError, match="max_pool2d_backward: relu_mask must be a bool"):
        ops.max_pool2d_backward(dout, argmax, x.shape, 2, relu_mask=relu_mask[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_col2im_match_the_util_functions(dtype):
    from nnfast import util
    x = np.random.default_rng(6).standard_normal((2, 3, 5, 5)).astype(dtype)
    col = ops.im2col(x, 3, 3, 1, 1)
    same(col, util.im2col(x, 3, 3, 1, 1))
    buf = np.empty_like(col)
    assert ops.im2col(x, 3, 3, 1, 1, out=buf) is buf
    same(buf, col)
    img = ops.col2im(col, x.shape, 3, 3, 1, 1)
    same(img, util.col2im(col, x.shape, 3, 3, 1, 1))
    out = np.empty_like(img)
    assert ops.col2im(col, x.shape, 3, 3, 1, 1, out=out) is out
    same(out, img)


# ---- layers writing into given gradient buffers (grad_out) ------------------------------

def _grads_with_and_without_buffers(make, x, attrs):
    free, bound = make(), make()
    bufs = {p: np.empty(np.shape(getattr(bound, p)), dtype=x.dtype) for p in attrs}
    bound.grad_out = dict(bufs)
    for layer in (free, bound):
        out = layer.forward(x)
        layer.backward(np.ones_like(out) * 0.5)
    return free, bound, bufs


@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_write_gradients_into_grad_out(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 2, 6, 6)).astype(dtype)
    W, b = rng.standard_normal((3, 2, 3, 3)).astype(dtype), rng.standard_normal(3).astype(dtype)
    free, bound, bufs = _grads_with_and_without_buffers(
        lambda: L.Convolution(W.copy(), b.copy(), 1, 1), x, ("W", "b"))
    assert bound.dW is bufs["W"] and bound.db is bufs["b"]
    same(bound.dW, free.dW)
    same(bound.db, free.db)
    Wa, ba = rng.standard_normal((72, 5)).astype(dtype), rng.standard_normal(5).astype(dtype)
    free, bound, bufs = _grads_with_and_without_buffers(
        lambda: L.Affine(Wa.copy(), ba.copy()), x, ("W", "b"))
    assert bound.dW is bufs["W"] and bound.db is bufs["b"]
    same(bound.dW, free.dW)
    same(bound.db, free.db)
    g, bt = rng.random(72).astype(dtype) + 0.5, rng.random(72).astype(dtype)
    free, bound, bufs = _grads_with_and_without_buffers(
        lambda: L.BatchNormalization(g.copy(), bt.copy()), x, ("gamma", "beta"))
    assert bound.dgamma is bufs["gamma"] and bound.dbeta is bufs["beta"]
    same(bound.dgamma, free.dgamma)
    same(bound.dbeta, free.dbeta)


def test_a_wrong_grad_out_is_refused_and_changes_nothing():
    rng = np.random.default_rng(8)
    layer = L.Affine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    layer.forward(rng.standard_normal((2, 4)))
    layer.backward(np.ones((2, 3)))
    dW = layer.dW.copy()
    layer.grad_out = {"W": np.empty((3, 4))}
    with pytest.raises(ValueError, match=r"Affine.backward: grad_out\['W'\] must be a writeable "
                                         r"C-contiguous array of shape \(4, 3\)"):
        layer.backward(np.full((2, 3), 2.0))
    same(layer.dW, dW)


def test_a_grad_out_of_another_dtype_is_not_used():
    # a backward promoted by mixed dtypes (float64 images into a float32 network, whose
    # bound buffer is float32): the gradient comes in a new array, as without grad_out
    rng = np.random.default_rng(12)
    W, b = rng.standard_normal((3, 2, 3, 3)).astype(np.float32), np.zeros(3, np.float32)
    layer = L.Convolution(W, b, 1, 1)
    buf = np.full(W.shape, 7, np.float32)
    layer.grad_out = {"W": buf}
    out = layer.forward(rng.standard_normal((2, 2, 5, 5)))
    layer.backward(np.ones_like(out))
    assert layer.dW.dtype == np.float64 and layer.dW is not buf and (buf == 7).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers_must_not_overlap_the_inputs(dtype):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((5, 4)).astype(dtype)
    w = rng.standard_normal((4, 4)).astype(dtype)
    dout = rng.standard_normal((5, 4)).astype(dtype)
    with pytest.raises(ValueError, match="affine_backward: dx_out must not overlap x"):
        ops.affine_backward(dout, x, w, dx_out=x)
    with pytest.raises(ValueError, match="affine_backward: dw_out must not overlap w"):
        ops.affine_backward(dout, x, w, dw_out=w)
    buf = np.empty((5, 4), dtype)
    with pytest.raises(ValueError, match="softmax_cross_entropy: out must not overlap y_out"):
        ops.softmax_cross_entropy(x, np.arange(5) % 4, out=buf, y_out=buf)
    g, b = np.ones(4, dtype), np.zeros(4, dtype)
    with pytest.raises(ValueError, match="batch_norm: out must not overlap x"):
        ops.batch_norm(x, g, b, out=x)
    res = ops.batch_norm(x, g, b)
    with pytest.raises(ValueError, match="batch_norm_backward: out must not overlap dout"):
        ops.batch_norm_backward(dout, res.cache, g, out=dout)


def test_wide_argmax_offsets_are_checked_before_their_conversion():
    x = np.random.default_rng(14).standard_normal((1, 1, 4, 4))
    p, argmax = ops.max_pool2d(x, 2)
    wide = argmax.astype(np.int64)
    wide[0, 0, 0, 0] = 2**32  # int32 would wrap it to 0, inside the window
    with pytest.raises(ValueError, match=r"argmax offsets must be in \[0, 4\)"):
        ops.max_pool2d_backward(np.ones(p.shape), wide, x.shape, 2)


def test_byte_swapped_inputs_give_native_results():
    rng = np.random.default_rng(15)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    xs, ws = x.astype(">f8"), w.astype(">f8")
    out = ops.affine(xs, ws)
    assert out.dtype.isnative
    same(out, ops.affine(x, w))
    dx, dw, db = ops.affine_backward(np.ones((3, 2)).astype(">f8"), xs, ws,
                                     dw_out=np.empty((4, 2)))
    assert dx.dtype.isnative and dw.dtype.isnative and db.dtype.isnative


@pytest.mark.parametrize("dtype", DTYPES)
def test_bound_gradient_buffer_gives_the_packed_bits(dtype):
    np.random.seed(0)
    net = nets.SimpleConvNet(hidden_size=7, dtype=dtype)
    x = np.random.rand(3, 1, 28, 28).astype(dtype)
    t = np.array([1, 2, 3])
    plain = GradientBuffer(net.params)
    want = {k: v.copy() for k, v in plain.pack(net.gradient(x, t), 0.375).items()}
    buf = GradientBuffer(net.params)
    assert sorted(buf.bind(net)) == sorted(net.params)
    grads = net.gradient(x, t)
    assert all(grads[k] is buf.views[k] for k in grads)  # written in place, no copy
    views = buf.pack(grads, 0.375)
    for k in want:
        same(views[k], want[k])


def test_weight_decay_gradients_are_copied_and_the_bound_ones_scaled():
    np.random.seed(1)
    net = nets.MultiLayerNet(6, [5, 4], 3, weight_decay_lambda=0.1)
    x, t = np.random.rand(4, 6), np.array([0, 1, 2, 0])
    want = {k: v.copy() for k, v in GradientBuffer(net.params).pack(
        net.gradient(x, t), 0.5).items()}
    buf = GradientBuffer(net.params)
    buf.bind(net)
    grads = net.gradient(x, t)
    assert grads["b1"] is buf.views["b1"] and grads["W1"] is not buf.views["W1"]
    views = buf.pack(grads, 0.5)
    for k in want:
        same(views[k], want[k])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 10), (3, 2), (64, 20), (300, 10)])
def test_softmax_cross_entropy_fast_path_gives_the_general_paths_bits(shape, dtype):
    # int64 labels and nothing else: one C call with its own scratch (stack or heap);
    # y_out, int32 labels or a strided x take the general path
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    loss, dx = ops.softmax_cross_entropy(x, t)
    for variant in (dict(y_out=np.empty(shape, dtype)), dict(out=np.empty(shape, dtype))):
        l2, d2 = ops.softmax_cross_entropy(x, t, **variant)
        same(l2, loss)
        same(d2, dx)
    l3, d3 = ops.softmax_cross_entropy(x, t.astype(np.int32))
    same(l3, loss)
    same(d3, dx)
    wide = np.repeat(x, 2, axis=1)[:, ::2]
    l4, d4 = ops.softmax_cross_entropy(wide, t)
    same(l4, loss)
    same(d4, dx)
    bad = t.copy()
    bad[-1] = shape[1]
    with pytest.raises(ValueError, match=rf"softmax_cross_entropy: labels in t must be in "
                                         rf"\[0, {shape[1]}\), got {shape[1]}"):
        ops.softmax_cross_entropy(x, bad)


@pytest.mark.parametrize("window", [(2, 2, 0), (3, 2, 1)])  # the 2x2 path, the general one
@pytest.mark.parametrize("bad", [-1, 9])
def test_max_pool_backward_refuses_offsets_outside_the_window(window, bad):
    size, stride, pad = window
    x = np.random.default_rng(10).standard_normal((2, 2, 6, 6))
    p, argmax = ops.max_pool2d(x, size, stride=stride, pad=pad)
    argmax = argmax.copy()
    argmax[1, 1, -1, -1] = bad
    with pytest.raises(ValueError, match=rf"max_pool2d_backward: argmax offsets must be in "
                                         rf"\[0, {size * size}\)"):
        ops.max_pool2d_backward(np.ones(p.shape), argmax, x.shape, size, stride=stride,
                                pad=pad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_steps_with_overlapping_arrays(dtype):
    # the fast path hands the arrays straight to the kernel, which refuses overlaps before
    # writing; the checked path then names the arrays (or copies a grad aliasing param)
    rng = np.random.default_rng(11)
    p = rng.standard_normal(12).astype(dtype)
    want = p - dtype(0.1) * p
    ops.sgd_(p, p, 0.1)  # grad is param: read before written
    same(p, want)
    buf = rng.standard_normal(24).astype(dtype)
    before = buf.copy()
    with pytest.raises(ValueError, match="momentum_: param and velocity must not share memory"):
        ops.momentum_(buf[:12], np.ones(12, dtype), buf[6:18])
    same(buf, before)
    from nnfast import _kernels
    if _kernels is not None:
        with pytest.raises(ValueError, match="must not overlap"):
            _kernels.optim_update(_kernels.OPT_MOMENTUM, buf[:12], np.ones(12, dtype),
                                  buf[6:18], None, 0.1, 0.9, 0.0, 1)
        same(buf, before)


def test_first_overlap_follows_strides_as_numpy_does():
    from nnfast import _dispatch
    first_overlap = _dispatch.kernel("first_overlap")
    base = np.arange(20.0)
    cases = [((base[:10],), (base[10:],)), ((base[:11],), (base[10:],)),
             ((base[::-1][:5],), (base[:5],)), ((base[::-1][:5],), (base[15:],)),
             ((base.reshape(4, 5)[:, 1],), (base.reshape(4, 5)[:, 2],)),
             ((base[:0], base[:3]), (base[3:6],)), ((base[:3], None, base[2:4]), ())]
    for outs, ins in cases:
        arrays = outs + ins
        want = next(((i, j) for i in range(len(outs)) if arrays[i] is not None
                     for j in range(i + 1, len(arrays)) if arrays[j] is not None
                     and np.may_share_memory(arrays[i], arrays[j])), None)
        assert first_overlap(outs, ins) == want, (outs, ins)
