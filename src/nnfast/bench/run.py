"""`nnfast bench`: the fixed suite, interleaved, printed as a table (and JSON / PNG on request)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import numpy as np
import numpy.typing as npt

from . import report, roofline, timing
from .workloads import WORKLOADS, DType, Workload, available_impls, select, torch_or_none


def run_suite(workloads: Sequence[Workload], dtypes: Sequence[npt.DTypeLike],
              threads_list: Sequence[int], impls: Sequence[str],
              budget: timing.Budget = timing.DEFAULT,
              log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Time ``workloads`` for each thread count and dtype, between two measurements of the
    roofs (the GEMM peak and the copy roof of that dtype and thread count: the best of both
    is kept). Returns ``{"gemm_peak": [...], "copy_roof": [...], "results": [...],
    "skipped": [...], "blas_controlled": bool}``; ``log(text)`` receives one progress line
    per measurement. A workload not meaningful in a dtype (``Workload.dtypes``) is skipped
    there and listed in ``skipped``."""
    log = log or (lambda text: None)
    if "torch" in impls:
        torch_or_none()  # import before the thread limits, so they reach torch too
    peaks: List[Dict[str, Any]] = []
    roofs: List[Dict[str, Any]] = []
    results: List[Dict[str, Any]] = []
    skipped: List[Dict[str, Any]] = []
    controlled = True
    for threads in threads_list:
        with timing.limit_threads(threads) as blas_ok:
            controlled = controlled and blas_ok
            for dtype in dtypes:
                name = np.dtype(dtype).name
                where = {"dtype": name, "threads": threads}
                block = [w for w in workloads if w.runs_in(dtype)]
                for w in workloads:
                    if not w.runs_in(dtype):
                        only = ", ".join(np.dtype(d).name for d in w.dtypes)
                        skipped.append({"workload": w.name, **where,
                                        "reason": f"only meaningful in {only}"})
                        log(f"{w.name:20s} {name} t{threads}: skipped ({only} only)")
                if not block:
                    continue
                peak = timing.gemm_rate(dtype, budget)
                log(f"{'gemm peak':20s} {name} t{threads}: {peak['gflops']:.1f} GFLOP/s")
                roof = timing.copy_roof(dtype, threads, budget)
                log(f"{'copy roof':20s} {name} t{threads}: {roof['gbps']:.1f} GB/s")
                measured: List[Dict[str, Any]] = []
                for w in block:
                    start = time.perf_counter()
                    fns = {impl: w.build(impl, dtype) for impl in impls if impl in w.impls}
                    timings = timing.measure(fns, budget)
                    del fns  # free this workload's arrays before the next one is set up
                    measured.append(report.summarize(w, name, threads, timings))
                    med = ", ".join(f"{impl} {t['median_s'] * 1e3:.3g} ms"
                                    for impl, t in measured[-1]["impls"].items())
                    log(f"{w.name:20s} {name} t{threads}: {med} "
                        f"({time.perf_counter() - start:.1f} s)")
                # the roofs again after the block: each is the best of both measurements
                peak = {**where, **timing.gemm_rate(dtype, budget, earlier=peak)}
                roof = {**where, **timing.copy_roof(dtype, threads, budget, earlier=roof)}
                log(f"{'gemm peak':20s} {name} t{threads}: {peak['gflops']:.1f} GFLOP/s, "
                    f"copy roof {roof['gbps']:.1f} GB/s (best of before and after)")
                peaks.append(peak)
                roofs.append(roof)
                results += [report.with_roofs(r, peak["gflops"], roof["gbps"])
                            for r in measured]
    return {"gemm_peak": peaks, "copy_roof": roofs, "results": results, "skipped": skipped,
            "blas_controlled": controlled}


def _dtypes(text: str) -> Tuple[DType, ...]:
    return (np.float32, np.float64) if text == "both" else (np.dtype(text).type,)


def list_workloads(out: Optional[TextIO] = None) -> None:
    out = out or sys.stdout  # looked up per call (pytest's capture replaces it)
    for w in WORKLOADS.values():
        where = "suite" if w.suite else ("--all, long grid" if w.long else "--all")
        if len(w.dtypes) == 1:
            where += f", {np.dtype(w.dtypes[0]).name} only"
        if w.flops:
            count = f"{w.flops / 1e6:.1f} MFLOP"
        elif (nbytes := w.bytes(np.float32)) is not None:  # memory-bound: w.traffic is set
            count = f"{nbytes / 1e6:.2f} MB f32"
        else:
            count = "-"
        print(f"{w.name:26s} {w.kind:16s} {w.shape:48s} {count:>14s}  {where}", file=out)


def main(args: argparse.Namespace) -> int:
    """Run `nnfast bench` with parsed ``args``; returns the exit status."""
    import nnfast

    if args.list:
        list_workloads()
        return 0
    budget = timing.QUICK if args.quick else timing.DEFAULT
    if args.repeat is not None:
        budget = timing.Budget(**{**budget.__dict__, "rounds": args.repeat})
    threads_list = args.threads or [nnfast.get_num_threads()]
    if args.roofline:
        return _roofline(args, budget, threads_list[0])
    if args.net is not None:
        print("nnfast bench: --net chooses the network of --roofline; add --roofline",
              file=sys.stderr)
        return 2

    only = [p.strip() for text in args.only for p in text.split(",") if p.strip()]
    workloads = select(only=only or None, suite=None if args.all else True)
    if not workloads:
        print(f"nnfast bench: --only {','.join(only)} matches no workload "
              f"(nnfast bench --list shows them)", file=sys.stderr)
        return 2
    impls = [i for i in available_impls() if not (i == "torch" and args.no_torch)]
    machine = timing.machine_info()
    print(f"nnfast bench: {len(workloads)} workload(s) x {args.dtype} x threads "
          f"{','.join(map(str, threads_list))}; {', '.join(impls)}"
          f"{'' if 'torch' in impls else ' (torch not installed)' if not args.no_torch else ''}")
    print(f"machine: {timing.describe(machine)}", flush=True)
    log = None if args.no_progress else (lambda text: print("  " + text, file=sys.stderr,
                                                            flush=True))
    start = time.perf_counter()
    measured = run_suite(workloads, _dtypes(args.dtype), threads_list, impls, budget, log)
    peaks, results = measured["gemm_peak"], measured["results"]
    controlled = measured["blas_controlled"]
    wall = time.perf_counter() - start
    print()
    print(report.format_table(results, markdown=args.markdown))
    if measured["skipped"]:
        print()  # a line right under a Markdown table would read as one of its rows
    for skip in measured["skipped"]:
        print(f"skipped: {skip['workload']} in {skip['dtype']} at {skip['threads']} thread(s) "
              f"({skip['reason']})")
    print()
    print(report.format_peaks(peaks))
    print(report.format_copy_roofs(measured["copy_roof"]))
    print("vs ref / vs torch: speed-up of nnfast (the other's median / nnfast's), same run; "
          "rate, of roof: GEMM-bound rows nnfast's GEMM FLOPs per second, of numpy.matmul's "
          "best rate above (peak); memory-bound rows nnfast's compulsory bytes per second, of "
          "the copy roof above (copy)")
    if not controlled:
        print("note: threadpoolctl is not installed, so NumPy's BLAS threads were not limited "
              "(set OPENBLAS_NUM_THREADS before the run, or pip install threadpoolctl)")
    print(f"total {wall:.0f} s")
    settings = {"dtypes": [np.dtype(d).name for d in _dtypes(args.dtype)],
                "threads": threads_list, "impls": impls, "only": only, "all": args.all,
                "budget": budget.__dict__, "blas_threads_controlled": controlled,
                "wall_s": wall}
    data = report.report(machine, settings, peaks, results, command=_command(args),
                         copy_roofs=measured["copy_roof"], skipped=measured["skipped"])
    return _write_outputs(args, data, results)


def _command(args: argparse.Namespace) -> str:
    return " ".join(["nnfast", *getattr(args, "argv", ["bench"])])


def _write_outputs(args: argparse.Namespace, data: Dict[str, Any],
                   results: List[Dict[str, Any]]) -> int:
    status = 0
    if args.json:
        report.write_json(data, args.json)
        print(f"saved {args.json}")
    if args.plot and results:
        try:
            report.save_chart(results, args.plot,
                              title="speed-up of nnfast over nnfast.reference and PyTorch CPU, "
                                    "batch 100, one run")
            print(f"saved {args.plot}")
        except ImportError as exc:
            print(f"nnfast bench: chart not saved: {exc}", file=sys.stderr)
            status = 1
    return status


def _roofline(args: argparse.Namespace, budget: timing.Budget, threads: int) -> int:
    dtype = np.float64 if args.dtype == "float64" else np.float32
    with timing.limit_threads(threads):
        data = roofline.run(dtype, budget, args.net or "simpleconv")
    data["threads"] = threads
    data["machine"] = timing.machine_info()
    print(f"machine: {timing.describe(data['machine'])}; {threads} thread(s)")
    print(roofline.format_roofline(data))
    if args.json:
        report.write_json({"schema": "nnfast-roofline/1", "command": _command(args), **data},
                          args.json)
        print(f"saved {args.json}")
    return 0
