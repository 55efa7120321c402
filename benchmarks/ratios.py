"""Print speed-up ratios from one pytest-benchmark JSON run.

    pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
    python benchmarks/ratios.py bench.json

For every benchmark group (same op, shape, dtype, threads) it prints the
median time of each implementation and its speed-up over "reference"
(reference median / implementation median) — all from the same run — and,
in groups that also timed "torch", its speed-up over torch.
"""
import json
import sys
from collections import defaultdict


def ratios(data):
    groups = defaultdict(dict)
    for b in data["benchmarks"]:
        impl = b["params"].get("impl", b["name"])
        groups[b["group"]][impl] = b["stats"]["median"]
    rows = []
    for group in sorted(groups):
        times = groups[group]
        base = times.get("reference")
        peer = times.get("torch")
        for impl, t in sorted(times.items(), key=lambda kv: kv[0] != "reference"):
            speedup = f"{base / t:8.2f}x" if base else "       -"
            vs_torch = f" {peer / t:8.2f}x" if peer else ""
            rows.append(f"{group:60s} {impl:10s} {t * 1e3:10.3f} ms {speedup}{vs_torch}")
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        data = json.load(f)
    print(f"{'group':60s} {'impl':10s} {'median':>13s} {'vs ref':>9s} {'vs torch':>9s}")
    for row in ratios(data):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
