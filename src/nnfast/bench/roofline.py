"""Roofline of one SimpleConvNet training step: per layer pass, FLOPs, bytes, time, and the roofs.

``nnfast bench --roofline`` runs it (docs/roofline.md explains the model and records a run).

Each forward and backward pass of each layer (and the Adam update) is timed in isolation on the
state of one real step, batch 100 (all passes interleaved round by round). For each pass:
FLOPs (2 per multiply-add of the GEMMs; 1 per element for element-wise work), bytes (every
array the pass must read or write, each counted once: its compulsory traffic; for a
convolution run as im2col + GEMM also the column matrix, written and read back once, which
that design adds) and the roofline bound ``max(FLOPs / GEMM peak, bytes / bandwidth)``. The roofs
are measured in the same run: numpy.matmul's best rate on a large GEMM of the same dtype (the
peak a GEMM-shaped pass can reach here) and the best rate of a streaming copy split over the
same number of threads, on arrays as large as the step's largest activations and larger.
"""
import numpy as np

from nnfast.optimizer import Adam

from . import timing
from .workloads import make_net

_MASK_BYTES = 1      # Relu keeps a bool mask
_ARGMAX_BYTES = 4    # max pooling keeps int32 window offsets


def _conv_model(layer, x, dout, s):
    """Compulsory traffic of the method the layer runs: the direct kernels build no columns;
    im2col + GEMM writes the column matrix and reads it back."""
    from nnfast import _dispatch

    fn, c, fh, fw = layer.W.shape
    n, _, oh, ow = dout.shape
    rows, k = n * oh * ow, c * fh * fw
    product = 2 * rows * k * fn
    col = rows * k * s
    weights = (layer.W.size + layer.b.size) * s
    direct = _dispatch._direct(n, c, fn, layer.stride, oh * ow)
    dx = not layer.skip_dx
    fwd = {"flops": product,
           "bytes": x.nbytes + weights + dout.nbytes + (0 if direct else 2 * col)}
    if direct:
        bwd_bytes = x.nbytes + dout.nbytes + weights + (weights + x.nbytes if dx else 0)
    else:
        # dW and db from dout and the columns; with dx also the column gradient (written and
        # read back by col2im) and dx itself.
        bwd_bytes = dout.nbytes + col + weights + (weights + 2 * col + x.nbytes if dx else 0)
    bwd = {"flops": product * (2 if dx else 1), "bytes": bwd_bytes}
    return fwd, bwd


def _affine_model(layer, x, dout, s):
    d, m = layer.W.shape
    n = dout.shape[0]
    weights = (layer.W.size + layer.b.size) * s
    dx = not layer.skip_dx
    fwd = {"flops": 2 * n * d * m, "bytes": x.nbytes + weights + dout.nbytes}
    bwd = {"flops": 2 * n * d * m * (2 if dx else 1),
           "bytes": dout.nbytes + x.nbytes + weights + (weights + x.nbytes if dx else 0)}
    return fwd, bwd


def _layer_model(name, layer, x, out, s):
    kind = type(layer).__name__
    if kind == "Convolution":
        return _conv_model(layer, x, out, s)
    if kind == "Affine":
        return _affine_model(layer, x.reshape(x.shape[0], -1), out, s)
    if kind == "Relu":
        traffic = x.nbytes + out.nbytes + x.size * _MASK_BYTES
        return {"flops": x.size, "bytes": traffic}, {"flops": x.size, "bytes": traffic}
    if kind == "Pooling":
        window = layer.pool_h * layer.pool_w
        fwd = {"flops": out.size * (window - 1),
               "bytes": x.nbytes + out.nbytes + out.size * _ARGMAX_BYTES}
        bwd = {"flops": out.size, "bytes": out.nbytes + out.size * _ARGMAX_BYTES + x.nbytes}
        return fwd, bwd
    raise ValueError(f"roofline: no model for layer {name} ({kind})")


def simpleconv_passes(dtype=np.float32):
    """[(pass name, zero-arg callable, flops, bytes)] for one SimpleConvNet step, batch 100."""
    net, (x, t) = make_net("nnfast", "SimpleConvNet", dtype)
    s = np.dtype(dtype).itemsize
    layers = list(net.layers.items())
    inputs, outputs, h = [], [], x
    for _, layer in layers:
        inputs.append(h)
        h = layer.forward(h)
        outputs.append(h)
    last = net.last_layer
    last.forward(h, t)
    douts = [None] * len(layers)
    d = last.backward(1)
    for i in range(len(layers) - 1, -1, -1):
        douts[i] = d
        d = layers[i][1].backward(d)
    grads = {name: getattr(net.layers[key], "d" + attr)
             for name, (key, attr) in net._slots.items()}

    from nnfast import nets as native_nets
    from nnfast import layers as native_layers

    # The passes as the network runs them: a Convolution + Relu forward and a Pooling +
    # Relu backward are one pass each (nnfast.nets), the 1-byte mask their only extra array.
    models = [_layer_model(name, layer, inputs[i], outputs[i], s)
              for i, (name, layer) in enumerate(layers)]
    forward, backward = [], []
    i = 0
    while i < len(layers):
        name, layer = layers[i]
        fwd = models[i][0]
        if i + 1 < len(layers) and native_nets._fusable(layer, layers[i + 1][1]):
            relu_name, relu = layers[i + 1]
            forward.append((f"{name} + {relu_name} forward",
                            (lambda l=layer, r=relu, a=inputs[i]: l._forward_relu(a, r)),
                            fwd["flops"] + models[i + 1][0]["flops"],
                            fwd["bytes"] + outputs[i].size * _MASK_BYTES))
            i += 2
            continue
        forward.append((f"{name} forward", (lambda l=layer, a=inputs[i]: l.forward(a)),
                        fwd["flops"], fwd["bytes"]))
        i += 1
    i = len(layers) - 1
    while i >= 0:
        name, layer = layers[i]
        bwd = models[i][1]
        if i >= 1 and native_nets._native(layer, native_layers.Pooling, "backward") and \
                native_nets._native(layers[i - 1][1], native_layers.Relu, "backward"):
            relu_name, relu = layers[i - 1]
            backward.append((f"{name} + {relu_name} backward",
                             (lambda l=layer, r=relu, g=douts[i]: l._backward_relu(g, r)),
                             bwd["flops"] + models[i - 1][1]["flops"],
                             bwd["bytes"] + inputs[i].size * _MASK_BYTES))
            i -= 2
            continue
        backward.append((f"{name} backward", (lambda l=layer, g=douts[i]: l.backward(g)),
                         bwd["flops"], bwd["bytes"]))
        i -= 1
    softmax_bytes = 2 * h.nbytes + t.nbytes
    passes = forward + [
        ("SoftmaxWithLoss forward", lambda: last.forward(h, t), 4 * h.size, softmax_bytes),
        ("SoftmaxWithLoss backward", lambda: last.backward(1), h.size, 2 * h.nbytes),
    ] + backward
    params = {k: v.copy() for k, v in net.params.items()}
    adam = Adam(lr=0.001)
    n_params = sum(p.size for p in params.values())
    passes.append(("Adam update", lambda: adam.update(params, grads), 12 * n_params,
                   7 * n_params * s))  # reads p, g, m, v; writes p, m, v
    step_opt = Adam(lr=0.001)
    step = (lambda: step_opt.update(net.params, net.gradient(x, t)))
    return passes, step


def run(dtype=np.float32, budget=timing.DEFAULT):
    """Measure the roofs and every pass; returns a JSON-serialisable dict."""
    peak = timing.gemm_rate(dtype, budget)
    bandwidth = timing.memory_bandwidth(budget)
    passes, step = simpleconv_passes(dtype)
    fns = {name: fn for name, fn, _, _ in passes}
    fns["whole step"] = step
    measured = timing.measure(fns, budget)
    peak = timing.gemm_rate(dtype, budget, earlier=peak)  # the best of before and after
    peak_flops, bw = peak["gflops"] * 1e9, bandwidth["gbs"] * 1e9
    rows = []
    for name, _, flops, nbytes in passes:
        t = float(np.median(measured[name]["samples_s"]))
        bound = max(flops / peak_flops, nbytes / bw)
        rows.append({"pass": name, "flops": int(flops), "bytes": int(nbytes),
                     "intensity": flops / nbytes, "median_s": t,
                     "gflops": flops / t / 1e9, "gbs": nbytes / t / 1e9,
                     "bound": "compute" if flops / peak_flops >= nbytes / bw else "memory",
                     "bound_s": bound, "of_roofline": bound / t,
                     "samples_s": measured[name]["samples_s"]})
    step_s = float(np.median(measured["whole step"]["samples_s"]))
    return {"dtype": np.dtype(dtype).name, "batch": 100, "gemm_peak": peak,
            "bandwidth": bandwidth, "passes": rows, "sum_of_passes_s": sum(
                r["median_s"] for r in rows), "step_s": step_s,
            "step_samples_s": measured["whole step"]["samples_s"],
            "step_bound_s": sum(r["bound_s"] for r in rows)}


def format_roofline(data):
    peak, bw = data["gemm_peak"], data["bandwidth"]
    head = (f"SimpleConvNet training step, batch {data['batch']}, {data['dtype']}: roofs "
            f"{peak['gflops']:.1f} GFLOP/s (numpy.matmul {peak['shape'][0]}^3), "
            f"{bw['gbs']:.1f} GB/s (copy, {bw['threads']} thread(s): "
            + ", ".join(f"{k} arrays {v:.1f}" for k, v in bw["sizes"].items()) + ")")
    cols = ("pass", "MFLOP", "MB", "FLOP/B", "ms", "GFLOP/s", "GB/s", "bound", "roof ms",
            "of roof")
    rows = [[r["pass"], f"{r['flops'] / 1e6:.2f}", f"{r['bytes'] / 1e6:.2f}",
             f"{r['intensity']:.1f}", f"{r['median_s'] * 1e3:.3f}", f"{r['gflops']:.1f}",
             f"{r['gbs']:.1f}", r["bound"], f"{r['bound_s'] * 1e3:.3f}",
             f"{100 * r['of_roofline']:.0f}%"] for r in data["passes"]]
    rows.append(["sum of passes", f"{sum(r['flops'] for r in data['passes']) / 1e6:.2f}",
                 f"{sum(r['bytes'] for r in data['passes']) / 1e6:.2f}", "",
                 f"{data['sum_of_passes_s'] * 1e3:.3f}", "", "", "",
                 f"{data['step_bound_s'] * 1e3:.3f}",
                 f"{100 * data['step_bound_s'] / data['sum_of_passes_s']:.0f}%"])
    rows.append(["whole step (measured)", "", "", "", f"{data['step_s'] * 1e3:.3f}", "", "",
                 "", f"{data['step_bound_s'] * 1e3:.3f}",
                 f"{100 * data['step_bound_s'] / data['step_s']:.0f}%"])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    fmt = ("| " + " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
           + " |")
    lines = [head, "", fmt.format(*cols),
             "|" + "|".join(("-" * (w + 1) + ("-" if i == 0 else ":")) for i, w in
                            enumerate(widths)) + "|"]
    return "\n".join(lines + [fmt.format(*r) for r in rows])
