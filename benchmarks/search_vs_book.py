"""The book's hyper-parameter search (ch06/hyperparameter_optimization.py) against
`nnfast search`, side by side, on the same trials and epochs.

    python benchmarks/search_vs_book.py --book PATH/TO/BOOK/CHECKOUT --trials 20 --rounds 2

``--book`` is a checkout of the book's repository (its ``ch06/``, ``common/`` and
``dataset/``). Unless ``--keep-pkl``, its ``dataset/mnist.pkl`` is written first from
nnfast's offline digits (``load_mnist_5k(seed=0)``, in the book's pickle format: uint8
images), so the book's script takes the same first 500 training images as ``nnfast search``
(its shuffle and its trials' values are its own, unseeded). The book's script runs
unmodified but for its number of trials (and epochs, with ``--epochs``), copied next to it,
with ``MPLBACKEND=Agg`` (its ``plt.show()`` returns at once). Each round runs every
command once, in turn; the table gives each command's wall and CPU (user + system) time per
round and the load average before it, and the ratio of the book's median wall time to each
command's. ``nnfast search`` runs in a fresh output folder each time (a new SQLite study),
with ``--quiet --no-plot``; the float32 rows call ``nnfast.search.search`` with
``SearchConfig(dtype='float32')`` (the CLI has no ``--dtype``).
"""
import argparse
import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time


def write_book_pkl(book):
    """The book's ``dataset/mnist.pkl`` from the offline digits (uint8, as the book's)."""
    import numpy as np

    from nnfast.datasets import load_mnist_5k

    (xt, tt), (xs, ts) = load_mnist_5k(normalize=False, flatten=True, seed=0)
    data = {"train_img": np.asarray(xt, dtype=np.uint8), "train_label": np.asarray(tt, np.uint8),
            "test_img": np.asarray(xs, dtype=np.uint8), "test_label": np.asarray(ts, np.uint8)}
    with open(os.path.join(book, "dataset", "mnist.pkl"), "wb") as f:
        pickle.dump(data, f, -1)


def book_script(book, trials, epochs):
    src = open(os.path.join(book, "ch06", "hyperparameter_optimization.py"),
               encoding="utf-8").read()
    text, n = re.subn(r"optimization_trial = \d+", f"optimization_trial = {trials}", src)
    text, m = re.subn(r"epocs=50\)", f"epocs={epochs})", text)
    if n != 1 or m != 1:
        raise SystemExit("search_vs_book: this is not the book's hyperparameter_optimization.py")
    path = os.path.join(book, "ch06", f"_nnfast_bench_hpo_{trials}_{epochs}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


API = ("import sys; from nnfast import search as S; "
       "S.search('sqlite:///' + sys.argv[1] + '/search.db', 'bench', "
       "S.SearchConfig(trials=int(sys.argv[2]), epochs=int(sys.argv[3]), dtype=sys.argv[4]), "
       "jobs=int(sys.argv[5]), quiet=True)")


def run(cmd, cwd=None, env=None):
    """(wall s, CPU s of the children) of one command; its output is discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"search_vs_book: {cmd} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--book", required=True, help="a checkout of the book's repository")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", default="book,j1,j2,j1-f32,j2-f32",
                    help="which commands (default book,j1,j2,j1-f32,j2-f32)")
    ap.add_argument("--keep-pkl", action="store_true",
                    help="use the book checkout's dataset/mnist.pkl as it is")
    args = ap.parse_args(argv)
    if not args.keep_pkl:
        write_book_pkl(args.book)
    script = book_script(args.book, args.trials, args.epochs)
    env = dict(os.environ, MPLBACKEND="Agg")
    scratch = tempfile.mkdtemp(prefix="nnfast-search-bench-")
    runs = args.runs.split(",")
    results = {name: [] for name in runs}
    try:
        for r in range(args.rounds):
            for name in runs:
                load = os.getloadavg()[0]
                out = os.path.join(scratch, f"{name}-{r}")
                os.makedirs(out)
                jobs = "2" if name.startswith("j2") else "1"
                if name == "book":
                    cmd = [sys.executable, os.path.basename(script)]
                    wall, cpu = run(cmd, cwd=os.path.dirname(script), env=env)
                elif name.endswith("-f32"):
                    wall, cpu = run([sys.executable, "-c", API, out, str(args.trials),
                                     str(args.epochs), "float32", jobs])
                else:
                    wall, cpu = run([sys.executable, "-m", "nnfast", "search", "--trials",
                                     str(args.trials), "--epochs", str(args.epochs), "--jobs",
                                     jobs, "--out", out, "--quiet", "--no-plot"])
                results[name].append((wall, cpu, load))
                print(f"round {r + 1} {name:>7}: wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
                      f"(load before {load:.2f})", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        os.remove(script)

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2

    book = median([w for w, _, _ in results["book"]]) if "book" in results else None
    print(f"\n{args.trials} trials x {args.epochs} epochs, {args.rounds} round(s)")
    print("| run | wall (s) per round | CPU (s) per round | load before | vs the book |")
    print("|---|---|---|---|---:|")
    labels = {"book": "the book's script (float64, NumPy)",
              "j1": "`nnfast search --jobs 1` (float64)",
              "j2": "`nnfast search --jobs 2` (float64)",
              "j1-f32": "`search(..., jobs=1)`, float32",
              "j2-f32": "`search(..., jobs=2)`, float32"}
    for name in runs:
        rows = results[name]
        walls = ", ".join(f"{w:.2f}" for w, _, _ in rows)
        cpus = ", ".join(f"{c:.2f}" for _, c, _ in rows)
        loads = ", ".join(f"{x:.2f}" for _, _, x in rows)
        ratio = "" if book is None else f"{book / median([w for w, _, _ in rows]):.2f}x"
        print(f"| {labels.get(name, name)} | {walls} | {cpus} | {loads} | {ratio} |")


if __name__ == "__main__":
    main()
