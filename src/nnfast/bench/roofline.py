"""Roofline of one training step (SimpleConvNet or DeepConvNet): per layer pass, FLOPs, bytes,
time, and the roofs.

``nnfast bench --roofline [--net simpleconv|deepconv]`` runs it (docs/roofline.md explains the
model and records a run).

Each forward and backward pass of each layer (and the Adam update) is timed in isolation on the
state of one real step, batch 100 (all passes interleaved round by round), with the network's
fused passes as it runs them. For each pass: FLOPs (2 per multiply-add of the GEMMs; 1 per
element for element-wise work), bytes (every array the pass must read or write, each counted
once: its compulsory traffic; for a convolution the method its plan runs, ``conv_plan``: the
direct kernels build no columns, im2col + GEMM also writes the column matrix and reads it back
once) and the roofline bound ``max(FLOPs / GEMM peak, bytes / bandwidth)``. The roofs are
measured in the same run: numpy.matmul's best rate on a large GEMM of the same dtype (the peak
a GEMM-shaped pass can reach here) and the best rate of a streaming copy split over the same
number of threads, on arrays as large as the step's largest activations and larger.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, cast

import numpy as np
import numpy.typing as npt

from nnfast.optimizer import Adam

from . import timing
from .workloads import DType, make_net

#: A pass's model (``{"flops", "bytes"}``, and ``"method"``, ``"direct"`` for a
#: convolution); a pass (``{"pass", "fn", "flops", "bytes", "method"}``); a row.
Model = Dict[str, Any]

_MASK_BYTES = 1      # Relu keeps a bool mask
_ARGMAX_BYTES = 4    # max pooling keeps int32 window offsets
_DRAW_BYTES = 8      # Dropout compares NumPy's float64 uniform draws


def _conv_model(layer: Any, x: npt.NDArray[Any], dout: npt.NDArray[Any],
                s: int) -> Tuple[Model, Model]:
    """Compulsory traffic of the method the layer runs (``_dispatch.conv_plan``): the direct
    kernels ("channels", "planes") build no columns, and their input gradient is a second
    direct convolution (stride 1, pad below the filter size); im2col + GEMM ("columns")
    writes the column matrix and reads it back, and its input gradient writes the column
    gradient and reads it back (col2im). Returns (forward, backward) dicts."""
    from nnfast import _dispatch

    # not annotated in nnfast._dispatch (another module's): their signatures, typed here
    conv_plan = cast(Callable[[int, int, int, int, int, int], str], _dispatch.conv_plan)
    direct_runs = cast(Callable[[int, int, int, int, int, int, int], bool], _dispatch._direct)

    fn, c, fh, fw = layer.W.shape
    n, _, oh, ow = dout.shape
    h, w = x.shape[2:]
    rows, k = n * oh * ow, c * fh * fw
    product = 2 * rows * k * fn
    col = rows * k * s
    weights = (layer.W.size + layer.b.size) * s
    plan = conv_plan(c, fn, fh, fw, layer.stride, oh * ow)
    direct = direct_runs(n, c, fn, layer.stride, oh * ow, fh, fw)
    one_by_one = fh == fw == 1 and layer.stride == 1 and layer.pad == 0  # a GEMM, no im2col
    cols = 0 if direct or one_by_one else 2 * col
    dx = not layer.skip_dx
    fwd = {"flops": product, "bytes": x.nbytes + weights + dout.nbytes + cols,
           "method": plan, "direct": direct}
    # dW and db from x (direct) or the columns, and dout
    bwd_bytes = dout.nbytes + weights + (x.nbytes if direct else cols // 2)
    method = plan
    if dx:
        dx_direct = direct and layer.stride == 1 and layer.pad <= min(fh, fw) - 1
        # reads W, writes dx; through columns also the column gradient, written and read
        bwd_bytes += weights + x.nbytes + (0 if dx_direct or one_by_one else 2 * col)
        dx_plan = conv_plan(fn, c, fh, fw, 1, h * w)
        method += " + dx " + (("channels" if dx_plan == "channels" else "planes")
                              if dx_direct else plan if one_by_one else "columns")
    bwd = {"flops": product * (2 if dx else 1), "bytes": bwd_bytes, "method": method}
    return fwd, bwd


def _affine_model(layer: Any, x: npt.NDArray[Any], dout: npt.NDArray[Any],
                  s: int) -> Tuple[Model, Model]:
    d, m = layer.W.shape
    n = dout.shape[0]
    weights = (layer.W.size + layer.b.size) * s
    dx = not layer.skip_dx
    fwd = {"flops": 2 * n * d * m, "bytes": x.nbytes + weights + dout.nbytes}
    bwd = {"flops": 2 * n * d * m * (2 if dx else 1),
           "bytes": dout.nbytes + x.nbytes + weights + (weights + x.nbytes if dx else 0)}
    return fwd, bwd


def _layer_model(name: str, layer: Any, x: npt.NDArray[Any], out: npt.NDArray[Any],
                 s: int) -> Tuple[Model, Model]:
    kind = type(layer).__name__
    if kind == "Convolution":
        return _conv_model(layer, x, out, s)
    if kind == "Affine":
        return _affine_model(layer, x.reshape(x.shape[0], -1), out, s)
    if kind == "Relu":
        traffic = x.nbytes + out.nbytes + x.size * _MASK_BYTES
        return {"flops": x.size, "bytes": traffic}, {"flops": x.size, "bytes": traffic}
    if kind == "Dropout":
        # forward: x, out, the mask, and NumPy's float64 uniform draws (written, then read
        # by the comparison); backward: dout, the mask, dx
        fwd = {"flops": x.size,
               "bytes": x.nbytes + out.nbytes + x.size * (_MASK_BYTES + 2 * _DRAW_BYTES)}
        bwd = {"flops": x.size, "bytes": x.nbytes + out.nbytes + x.size * _MASK_BYTES}
        return fwd, bwd
    if kind == "Pooling":
        window = layer.pool_h * layer.pool_w
        fwd = {"flops": out.size * (window - 1),
               "bytes": x.nbytes + out.nbytes + out.size * _ARGMAX_BYTES}
        bwd = {"flops": out.size, "bytes": out.nbytes + out.size * _ARGMAX_BYTES + x.nbytes}
        return fwd, bwd
    raise ValueError(f"roofline: no model for layer {name} ({kind})")


_SHORT_NAMES = {"Convolution": "Conv", "Pooling": "Pool"}


def _named_layers(net: Any) -> List[Tuple[str, Any]]:
    """[(name, layer)] in order: the keys of an OrderedDict of layers (SimpleConvNet), or
    for a list (DeepConvNet) names numbered per kind as SimpleConvNet's: Conv1, Relu1, ..."""
    if isinstance(net.layers, dict):
        return list(net.layers.items())
    counts: Dict[str, int] = {}
    named: List[Tuple[str, Any]] = []
    for layer in net.layers:
        kind = type(layer).__name__
        counts[kind] = counts.get(kind, 0) + 1
        named.append((f"{_SHORT_NAMES.get(kind, kind)}{counts[kind]}", layer))
    return named


def _forward(layer: Any, x: npt.NDArray[Any]) -> Any:
    from nnfast import layers as native_layers

    if isinstance(layer, (native_layers.Dropout, native_layers.BatchNormalization)):
        return layer.forward(x, True)  # training mode, as in gradient()
    return layer.forward(x)


def _pass(name: str, fn: Callable[[], Any], model: Model, **extra: Any) -> Dict[str, Any]:
    return {"pass": name, "fn": fn, "flops": model["flops"], "bytes": model["bytes"],
            "method": model.get("method", ""), **extra}


def net_passes(name: str, dtype: DType = np.float32
               ) -> Tuple[List[Dict[str, Any]], Callable[[], Any]]:
    """The passes of one training step of the network ``name`` ("SimpleConvNet" or
    "DeepConvNet"), batch 100: ``([{"pass", "fn", "flops", "bytes", "method"}], step)``,
    ``fn`` and ``step`` zero-argument callables (one pass; the whole step)."""
    net, (x, t) = make_net("nnfast", name, dtype)
    s = np.dtype(dtype).itemsize
    layers = _named_layers(net)
    inputs: List[npt.NDArray[Any]] = []
    outputs: List[npt.NDArray[Any]] = []
    h = x
    for _, layer in layers:
        inputs.append(h)
        h = _forward(layer, h)
        outputs.append(h)
    last = net.last_layer
    last.forward(h, t)
    douts: List[Optional[npt.NDArray[Any]]] = [None] * len(layers)
    d = last.backward(1)
    for i in range(len(layers) - 1, -1, -1):
        douts[i] = d
        d = layers[i][1].backward(d)
    grads = {key: getattr(net.layers[index], "d" + attr)
             for key, (index, attr) in net._slots.items()}

    from nnfast import nets as native_nets

    # the pairs the network declared when it was built (nnfast.nets.declare_fusion)
    fused_fwd = native_nets._pairs(net, "conv+relu forward")
    fused_bwd = native_nets._pairs(net, "relu+pool backward")

    # The passes as the network runs them (nnfast.nets): a Convolution + Relu forward and a
    # Pooling + Relu backward are one pass each, the 1-byte mask their only extra array.
    # Where the convolution takes the columns, Convolution._forward_relu runs the two
    # layers one after the other: the ReLU's own traffic is counted then.
    models = [_layer_model(lname, layer, inputs[i], outputs[i], s)
              for i, (lname, layer) in enumerate(layers)]
    forward: List[Dict[str, Any]] = []
    backward: List[Dict[str, Any]] = []
    i = 0
    while i < len(layers):
        lname, layer = layers[i]
        fwd = models[i][0]
        if i + 1 < len(layers) and fused_fwd.get(id(layer)) is layers[i + 1][1]:
            relu_name, relu = layers[i + 1]
            relu_fwd = models[i + 1][0]
            extra = outputs[i].size * _MASK_BYTES if fwd["direct"] else relu_fwd["bytes"]

            def fused_forward(l: Any = layer, r: Any = relu,
                              a: npt.NDArray[Any] = inputs[i]) -> Any:
                return l._forward_relu(a, r)
            forward.append(_pass(
                f"{lname} + {relu_name} forward", fused_forward,
                {**fwd, "flops": fwd["flops"] + relu_fwd["flops"],
                 "bytes": fwd["bytes"] + extra}))
            i += 2
            continue

        def layer_forward(l: Any = layer, a: npt.NDArray[Any] = inputs[i]) -> Any:
            return _forward(l, a)
        forward.append(_pass(f"{lname} forward", layer_forward, fwd))
        i += 1
    i = len(layers) - 1
    while i >= 0:
        lname, layer = layers[i]
        bwd = models[i][1]
        if i >= 1 and fused_bwd.get(id(layers[i - 1][1])) is layer:
            relu_name, relu = layers[i - 1]

            def fused_backward(l: Any = layer, r: Any = relu,
                               g: Optional[npt.NDArray[Any]] = douts[i]) -> Any:
                return l._backward_relu(g, r)
            backward.append(_pass(
                f"{lname} + {relu_name} backward", fused_backward,
                {"flops": bwd["flops"] + models[i - 1][1]["flops"],
                 "bytes": bwd["bytes"] + inputs[i].size * _MASK_BYTES}))
            i -= 2
            continue

        def layer_backward(l: Any = layer, g: Optional[npt.NDArray[Any]] = douts[i]) -> Any:
            return l.backward(g)
        backward.append(_pass(f"{lname} backward", layer_backward, bwd))
        i -= 1
    softmax_bytes = 2 * h.nbytes + t.nbytes
    passes = forward + [
        _pass("SoftmaxWithLoss forward", lambda: last.forward(h, t),
              {"flops": 4 * h.size, "bytes": softmax_bytes}),
        _pass("SoftmaxWithLoss backward", lambda: last.backward(1),
              {"flops": h.size, "bytes": 2 * h.nbytes}),
    ] + backward
    params = {k: v.copy() for k, v in net.params.items()}
    adam = Adam(lr=0.001)
    n_params = sum(p.size for p in params.values())
    passes.append(_pass("Adam update", lambda: adam.update(params, grads),
                        {"flops": 12 * n_params,
                         "bytes": 7 * n_params * s}))  # reads p, g, m, v; writes p, m, v
    step_opt = Adam(lr=0.001)
    step = (lambda: step_opt.update(net.params, net.gradient(x, t)))
    return passes, step


def simpleconv_passes(dtype: DType = np.float32
                      ) -> Tuple[List[Dict[str, Any]], Callable[[], Any]]:
    """The passes of one SimpleConvNet step (``net_passes("SimpleConvNet", dtype)``)."""
    return net_passes("SimpleConvNet", dtype)


def deepconv_passes(dtype: DType = np.float32
                    ) -> Tuple[List[Dict[str, Any]], Callable[[], Any]]:
    """The passes of one DeepConvNet step (``net_passes("DeepConvNet", dtype)``)."""
    return net_passes("DeepConvNet", dtype)


NETS = {"simpleconv": "SimpleConvNet", "deepconv": "DeepConvNet"}


def bound_row(name: str, flops: float, nbytes: float, samples_s: Sequence[float],
              peak_flops: float, bandwidth: float, method: str = "") -> Dict[str, Any]:
    """One pass's row: its rates and its roofline bound ``max(flops / peak, bytes / bw)``
    (``peak_flops`` in FLOP/s, ``bandwidth`` in B/s)."""
    t = float(np.median(samples_s))
    compute_s, memory_s = flops / peak_flops, nbytes / bandwidth
    bound = max(compute_s, memory_s)
    return {"pass": name, "method": method, "flops": int(flops), "bytes": int(nbytes),
            "intensity": flops / nbytes, "median_s": t, "gflops": flops / t / 1e9,
            "gbs": nbytes / t / 1e9, "bound": "compute" if compute_s >= memory_s else "memory",
            "bound_s": bound, "of_roofline": bound / t, "samples_s": list(samples_s)}


def run(dtype: DType = np.float32, budget: timing.Budget = timing.DEFAULT,
        net: str = "simpleconv") -> Dict[str, Any]:
    """Measure the roofs and every pass of one training step of ``net`` (a key of
    :data:`NETS`); returns a JSON-serialisable dict."""
    if net not in NETS:
        raise ValueError(f"roofline: net must be one of {', '.join(NETS)}, got {net!r}")
    peak = timing.gemm_rate(dtype, budget)
    bandwidth = timing.memory_bandwidth(budget)
    passes, step = net_passes(NETS[net], dtype)
    fns = {p["pass"]: p["fn"] for p in passes}
    fns["whole step"] = step
    measured = timing.measure(fns, budget)
    peak = timing.gemm_rate(dtype, budget, earlier=peak)  # the best of before and after
    peak_flops, bw = peak["gflops"] * 1e9, bandwidth["gbs"] * 1e9
    rows = [bound_row(p["pass"], p["flops"], p["bytes"], measured[p["pass"]]["samples_s"],
                      peak_flops, bw, p["method"]) for p in passes]
    step_s = float(np.median(measured["whole step"]["samples_s"]))
    sum_s = sum(r["median_s"] for r in rows)
    return {"net": NETS[net], "dtype": np.dtype(dtype).name, "batch": 100,
            "gemm_peak": peak, "bandwidth": bandwidth, "passes": rows,
            "sum_of_passes_s": sum_s, "step_s": step_s,
            "step_samples_s": measured["whole step"]["samples_s"],
            "step_bound_s": sum(r["bound_s"] for r in rows),
            "step_minus_passes_s": step_s - sum_s}


def format_roofline(data: Dict[str, Any]) -> str:
    peak, bw = data["gemm_peak"], data["bandwidth"]
    head = (f"{data.get('net', 'SimpleConvNet')} training step, batch {data['batch']}, "
            f"{data['dtype']}: roofs "
            f"{peak['gflops']:.1f} GFLOP/s (numpy.matmul {peak['shape'][0]}^3), "
            f"{bw['gbs']:.1f} GB/s (copy, {bw['threads']} thread(s): "
            + ", ".join(f"{k} arrays {v:.1f}" for k, v in bw["sizes"].items()) + ")")
    cols = ("pass", "method", "MFLOP", "MB", "FLOP/B", "ms", "GFLOP/s", "GB/s", "bound",
            "roof ms", "of roof")
    rows = [[r["pass"], r.get("method") or "-", f"{r['flops'] / 1e6:.2f}",
             f"{r['bytes'] / 1e6:.2f}", f"{r['intensity']:.1f}", f"{r['median_s'] * 1e3:.3f}",
             f"{r['gflops']:.1f}", f"{r['gbs']:.1f}", r["bound"], f"{r['bound_s'] * 1e3:.3f}",
             f"{100 * r['of_roofline']:.0f}%"] for r in data["passes"]]
    rows.append(["sum of passes", "", f"{sum(r['flops'] for r in data['passes']) / 1e6:.2f}",
                 f"{sum(r['bytes'] for r in data['passes']) / 1e6:.2f}", "",
                 f"{data['sum_of_passes_s'] * 1e3:.3f}", "", "", "",
                 f"{data['step_bound_s'] * 1e3:.3f}",
                 f"{100 * data['step_bound_s'] / data['sum_of_passes_s']:.0f}%"])
    rows.append(["whole step (measured)", "", "", "", "", f"{data['step_s'] * 1e3:.3f}", "",
                 "", "", f"{data['step_bound_s'] * 1e3:.3f}",
                 f"{100 * data['step_bound_s'] / data['step_s']:.0f}%"])
    rows.append(["step - sum of passes", "", "", "", "",
                 f"{(data['step_s'] - data['sum_of_passes_s']) * 1e3:+.3f}", "", "", "", "",
                 ""])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    left = 2  # pass and method read left-aligned, the numbers right-aligned
    fmt = ("| " + " | ".join(f"{{:{'<' if i < left else '>'}{w}}}"
                             for i, w in enumerate(widths)) + " |")
    lines = [head, "", fmt.format(*cols),
             "|" + "|".join(("-" * (w + 1) + ("-" if i < left else ":")) for i, w in
                            enumerate(widths)) + "|"]
    return "\n".join(lines + [fmt.format(*r) for r in rows])
