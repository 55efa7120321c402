"""Per-call overhead of nnfast.ops on tiny inputs, against the layer call, the raw compiled
kernel and torch.nn.functional (when torch is installed), in one run.

Reproduce (quiet machine, 1 thread):
    python benchmarks/ops_overhead.py               # table in microseconds per call
    python benchmarks/ops_overhead.py --json o.json  # also the numbers as JSON

Each row times one call on a tiny input (the work itself is a few nanoseconds, so the time
is the call's overhead): best of 7 repeats of N calls. "layer" is the native layer doing
the same work (forward, or forward + backward where the op returns both); "kernel" the
bare ``nnfast._kernels`` call with preallocated buffers (the floor under any Python API);
"torch" the closest torch.nn.functional call on CPU tensors (no autograd unless noted).
"""
import argparse
import json
import timeit

import nnfast  # noqa: F401  (first: the OpenMP/OpenBLAS settings before NumPy loads)
import numpy as np

from nnfast import _dispatch, layers, ops


def best(fn, number, repeat=7):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def cases():
    """(name, {impl: zero-argument callable})."""
    rng = np.random.default_rng(0)
    x10 = rng.standard_normal(10)
    s = rng.standard_normal((1, 10))
    t = np.array([3])
    img = rng.standard_normal((1, 1, 4, 4))
    w = rng.standard_normal((2, 1, 3, 3))
    b = np.zeros(2)
    xa = rng.standard_normal((1, 10))
    wa = rng.standard_normal((10, 10))
    ba = np.zeros(10)
    p, g, m, v = (rng.standard_normal(10) for _ in range(4))
    K = _dispatch._kernels

    relu_l = layers.Relu()
    sxe_l = layers.SoftmaxWithLoss()
    conv_l = layers.Convolution(w, b)
    pool_l = layers.Pooling(2, 2, 2)
    aff_l = layers.Affine(wa, ba)
    adam_o = nnfast.optimizer.Adam()
    adam_params = {"p": p.copy()}
    step = [0]

    def adam_op():
        step[0] += 1
        ops.adam_(p, g, m, v, step[0])

    rows = [
        ("relu (10,)", {"ops": lambda: ops.relu(x10), "layer": lambda: relu_l.forward(x10)}),
        ("softmax_cross_entropy (1, 10)",
         {"ops": lambda: ops.softmax_cross_entropy(s, t),
          "layer": lambda: (sxe_l.forward(s, t), sxe_l.backward())}),
        ("conv2d (1,1,4,4)*(2,1,3,3)", {"ops": lambda: ops.conv2d(img, w, b),
                                        "layer": lambda: conv_l.forward(img)}),
        ("max_pool2d (1,1,4,4) 2x2", {"ops": lambda: ops.max_pool2d(img, 2),
                                      "layer": lambda: pool_l.forward(img)}),
        ("affine (1,10)x(10,10)", {"ops": lambda: ops.affine(xa, wa, ba),
                                   "layer": lambda: aff_l.forward(xa)}),
        ("adam_ (10,)", {"ops": adam_op,
                         "layer": lambda: adam_o.update(adam_params, {"p": g})}),
    ]
    if K is not None:
        out, mask = np.empty(10), np.empty(10, np.uint8)
        y, dx, rl = np.empty((1, 10)), np.empty((1, 10)), np.empty(1)
        t64 = t.astype(np.int64)
        rows[0][1]["kernel"] = lambda: K.relu_forward(x10, out, mask, 1)
        if hasattr(K, "softmax_xent_labels"):  # the entry point the op calls
            rows[1][1]["kernel"] = lambda: K.softmax_xent_labels(s, t64, dx, 1)
        else:
            rows[1][1]["kernel"] = lambda: K.softmax_xent(s, t64, None, y, dx, rl, 1)
        s1, s2 = m.copy(), v.copy()
        rows[5][1]["kernel"] = lambda: K.optim_update(K.OPT_ADAM, p, g, s1, s2, 1e-3, 0.9,
                                                      0.999, 1)
    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(1)
    F = torch.nn.functional
    tx10, ts, tt = torch.from_numpy(x10), torch.from_numpy(s), torch.from_numpy(t)
    timg, tw, tb = torch.from_numpy(img), torch.from_numpy(w), torch.from_numpy(b)
    txa, twa, tba = torch.from_numpy(xa), torch.from_numpy(wa.T.copy()), torch.from_numpy(ba)
    tsg = ts.clone().requires_grad_(True)

    def torch_xent_grad():
        loss = F.cross_entropy(tsg, tt)
        loss.backward()
        tsg.grad = None

    tp = torch.from_numpy(p.copy()).requires_grad_(True)
    topt = torch.optim.Adam([tp])
    tp.grad = torch.from_numpy(g.copy())
    rows[0][1]["torch"] = lambda: F.relu(tx10)
    rows[1][1]["torch"] = lambda: F.cross_entropy(ts, tt)
    rows[1][1]["torch (+backward)"] = torch_xent_grad
    rows[2][1]["torch"] = lambda: F.conv2d(timg, tw, tb)
    rows[3][1]["torch"] = lambda: F.max_pool2d(timg, 2)
    rows[4][1]["torch"] = lambda: F.linear(txa, twa, tba)
    rows[5][1]["torch"] = topt.step
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    nnfast.set_num_threads(1)
    results = {}
    impls = ["ops", "layer", "kernel", "torch", "torch (+backward)"]
    print(f"{'op (input)':32s}" + "".join(f"{i:>18s}" for i in impls) + "   [us per call]")
    for name, fns in cases():
        row = {impl: best(fn, args.number) for impl, fn in fns.items()}
        results[name] = row
        print(f"{name:32s}" + "".join(f"{row[i]:18.2f}" if i in row else f"{'-':>18s}"
                                      for i in impls))
    info = nnfast.build_info()
    print(f"(nnfast {nnfast.__version__}, compiled={info['compiled']}, 1 thread; best of 7 "
          f"x {args.number} calls)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "number": args.number}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
