"""Where the time of `nnfast search` goes: start-up, one trial by kind of work, the
storage's cost per trial.

    python benchmarks/search_profile.py [--dtype float64|float32] [--repeats 3]

One process, one kernel thread (as each `nnfast search` worker). Printed:

- start-up: importing Optuna (and SQLAlchemy, for SQLite/PostgreSQL storage), creating a
  new SQLite study, loading the data (the offline digits' book split);
- one trial of the book's search (trial index 9, 50 epochs: 200 SGD steps of batch 100 and
  50 evaluations of the 400 training and 100 validation images), best of ``--repeats``,
  split by timing every call of the ``nnfast.ops`` functions the trial makes and every GEMM
  inside them (``nnfast._dispatch.matmul``); what is left is the trial's own Python (batch
  draws, the loop, weight decay terms, argmax); the evaluations' share is timed apart
  (the same forwards, alone);
- the storage's cost per trial: a 20-trial search whose trial does no training (a stand-in
  ``run_trial``), so what it measures is claiming an index, Optuna's trial bookkeeping and
  the SQLite commits.
"""
import argparse
import functools
import os
import tempfile
import time

import nnfast  # noqa: F401  (first, as the CLI)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    pc = time.perf_counter

    t = pc()
    import optuna
    import optuna.storages._rdb.models  # noqa: F401  (SQLAlchemy: what an RDB storage loads)
    print(f"start-up: import optuna + its SQLAlchemy models {pc() - t:6.3f} s")
    from nnfast import _dispatch, ops
    from nnfast import search as S

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="nnfast-search-profile-")
    config = S.SearchConfig(dtype=args.dtype)
    t = pc()
    S.open_study(f"sqlite:///{tmp}/p.db", "p", config)
    print(f"start-up: create a SQLite study               {pc() - t:6.3f} s")
    t = pc()
    data = S.load_data(config)
    print(f"start-up: load the data (book split)          {pc() - t:6.3f} s")

    lr, wd, seed = S.trial_values(0, 9)
    totals = {}
    inside = []  # non-empty while an ops.affine call runs

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            start = pc()
            if name == "affine":
                inside.append(1)
            try:
                return fn(*a, **k)
            finally:
                key = "GEMM forward" if name == "GEMM" and inside else name
                if name == "affine":
                    inside.pop()
                totals[key] = totals.get(key, 0.0) + pc() - start
        return wrapper

    names = ("affine", "relu", "relu_backward", "softmax_cross_entropy", "sgd_")
    saved = {n: getattr(ops, n) for n in names}
    saved_mm = _dispatch.matmul
    best = None
    with nnfast.num_threads(1):
        S.run_trial(config, data, lr, wd, seed)  # warm-up
        for _ in range(args.repeats):
            totals.clear()
            for n in names:
                setattr(ops, n, timed(n, saved[n]))
            _dispatch.matmul = timed("GEMM", saved_mm)
            try:
                start = pc()
                S.run_trial(config, data, lr, wd, seed)
                wall = pc() - start
            finally:
                for n in names:
                    setattr(ops, n, saved[n])
                _dispatch.matmul = saved_mm
            if best is None or wall < best[0]:
                best = (wall, dict(totals))
        # the evaluations alone: the same forwards (one per set, per epoch)
        (x_train, _), (x_val, _) = data
        x_train = x_train.astype(args.dtype)
        x_val = x_val.astype(args.dtype)
        from nnfast.nets import MultiLayerNet

        net = MultiLayerNet(784, config.hidden, 10, dtype=args.dtype)
        Ws = [net.params[f"W{i}"] for i in range(1, 8)]
        bs = [net.params[f"b{i}"] for i in range(1, 8)]
        evals = []
        for _ in range(args.repeats):
            start = pc()
            for _ in range(config.epochs):
                for x in (x_train, x_val):
                    h = x
                    for i in range(6):
                        h = ops.relu(ops.affine(h, Ws[i], bs[i]))
                    ops.affine(h, Ws[6], bs[6]).argmax(axis=1)
            evals.append(pc() - start)
    wall, tot = best
    fwd_gemm, bwd_gemm = tot.get("GEMM forward", 0.0), tot.get("GEMM", 0.0)

    def row(label, seconds):
        print(f"  {label:<52} {seconds:6.3f} s  {seconds / wall:6.1%}")

    print(f"\none trial ({args.dtype}, 1 thread, best of {args.repeats}): {wall:.3f} s")
    row("GEMMs, forward (training and evaluation)", fwd_gemm)
    row("GEMMs, backward (dW and dx)", bwd_gemm)
    row("ops.affine outside its GEMM (bias add, checks)", tot["affine"] - fwd_gemm)
    for n in ("relu", "relu_backward", "softmax_cross_entropy", "sgd_"):
        row(f"ops.{n}", tot[n])
    rest = wall - bwd_gemm - sum(tot[n] for n in names)
    row("the rest: batch draw and gather, db sums, decay, argmax, loop", rest)
    print(f"  (the 50 evaluations alone, same forwards: {min(evals):.3f} s, "
          f"{min(evals) / wall:.1%} of the trial)")

    # the storage's cost per trial: a search whose trials do not train
    real = S.run_trial
    S.run_trial = lambda c, d, lr, wd, seed, on_epoch=None: ([0.5] * c.epochs,
                                                             [0.5] * c.epochs)
    try:
        n = 20
        start = pc()
        S.search(f"sqlite:///{tmp}/o.db", "o", S.SearchConfig(trials=n), quiet=True)
        per = (pc() - start) / n
    finally:
        S.run_trial = real
    print(f"\nstorage (SQLite) per trial, no training: {per * 1e3:.1f} ms "
          f"(includes the study's creation and the data load, once, over {n} trials)")
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
