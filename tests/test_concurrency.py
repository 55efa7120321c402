"""Python threads and kernel threads.

The kernels release the GIL, so several Python threads can run them at once. Layers,
networks and optimizers used concurrently (each thread with its own objects, inputs
shared read-only) must give exactly the serial results; and every result must be
bit-identical at 1 and 2 kernel threads: no reduction in nnfast depends on the thread
count (conv db sums per-image partials in a fixed order, batch norm gives each channel
to one thread, softmax and cross-entropy reduce per row and then serially). Sizes here
are above the kernels' parallel thresholds, so the OpenMP paths really run.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nnfast
from nnfast import functions as F
from nnfast import nets, optimizer, util

CONV = {"filter_num": 8, "filter_size": 3, "pad": 1, "stride": 1}


def make_net(kind, dtype, seed):
    np.random.seed(seed)
    if kind == "conv":
        return nets.SimpleConvNet((3, 16, 16), CONV, 40, 10, dtype=dtype)
    return nets.MultiLayerNetExtend(48, [300, 300], 10, use_batchnorm=True, dtype=dtype)


def batch(kind, dtype, seed, n=128):
    rng = np.random.default_rng(seed)
    shape = (n, 3, 16, 16) if kind == "conv" else (n, 48)
    return rng.standard_normal(shape).astype(dtype), rng.integers(0, 10, n)


def train(kind, dtype, seed, steps=2, opt="Adam", net=None):
    """A few training steps; returns (losses, params)."""
    net = make_net(kind, dtype, seed) if net is None else net
    upd = getattr(optimizer, opt)(lr=0.01)
    losses = []
    for step in range(steps):
        x, t = batch(kind, dtype, seed * 100 + step)
        grads = net.gradient(x, t)
        upd.update(net.params, grads)
        losses.append(net.loss(x, t, train_flg=True))
    return losses, {k: v.copy() for k, v in net.params.items()}


def assert_identical(a, b):
    losses_a, params_a = a
    losses_b, params_b = b
    assert losses_a == losses_b
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k], err_msg=k)


@pytest.mark.parametrize("kind", ["conv", "mlp"])
def test_results_do_not_depend_on_the_thread_count(kind, dtype):
    with nnfast.num_threads(1):
        one = train(kind, dtype, seed=3)
    with nnfast.num_threads(2):
        two = train(kind, dtype, seed=3)
        again = train(kind, dtype, seed=3)
    assert_identical(one, two)
    assert_identical(two, again)


def test_networks_trained_in_concurrent_threads_match_serial_training(dtype):
    jobs = [("conv", 1, "Adam"), ("mlp", 2, "Momentum"), ("conv", 3, "RMSprop"),
            ("mlp", 4, "AdaGrad")]
    serial = [train(kind, dtype, seed, opt=opt) for kind, seed, opt in jobs]
    # built here: weight init draws from NumPy's global generator, shared by all threads
    built = [make_net(kind, dtype, seed) for kind, seed, _ in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(train, kind, dtype, seed, 2, opt, net)
                   for (kind, seed, opt), net in zip(jobs, built)]
        concurrent = [f.result() for f in futures]
    for s, c in zip(serial, concurrent):
        assert_identical(s, c)


def test_shared_read_only_inputs_in_concurrent_calls(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 20, 20)).astype(dtype)
    x.setflags(write=False)
    scores = rng.standard_normal((512, 100)).astype(dtype)
    scores.setflags(write=False)
    labels = rng.integers(0, 100, 512)

    def work(_):
        col = util.im2col(x, 3, 3, 1, 1)
        return (col, util.col2im(col, x.shape, 3, 3, 1, 1), F.softmax(scores),
                F.sigmoid(scores), F.softmax_with_loss(labels, scores))

    serial = work(None)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(12)))
    for res in results:
        for got, want in zip(res, serial):
            np.testing.assert_array_equal(got, want)
