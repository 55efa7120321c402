"""From samples to numbers: medians, ratios, GFLOP/s and GB/s, the table, the JSON and the chart.

Ratios are speed-ups of nnfast, from medians measured in the same run:
``vs_reference = median(reference) / median(nnfast)`` and ``vs_torch = median(torch) /
median(nnfast)``; above 1 nnfast is faster. For GEMM-bound rows GFLOP/s is ``flops /
median(nnfast)``, and ``fraction_of_gemm_peak`` divides it by the best rate numpy.matmul
reached on a large GEMM of the same dtype at the same thread count in the same run (measured
before and after the workloads). For memory-bound rows ``gbps`` is ``bytes / median(nnfast)``
(GB/s, 1e9 bytes; ``bytes`` the workload's compulsory traffic) and
``fraction_of_copy_roof`` divides it by the copy roof of the same dtype and thread count
(nnfast's own element-wise pass over 64 MiB, best sample, before and after the workloads).
The table shows either pair in its two metric columns, "rate" and "of roof".
"""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import (TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Type, TypeVar, Union)

if TYPE_CHECKING:
    from .workloads import Workload

SCHEMA = "nnfast-bench/1"

#: One result record (``summarize``), a measured roof, the whole report: JSON objects.
Record = Dict[str, Any]
_P = TypeVar("_P", bound=Union[str, "os.PathLike[str]"])
_M = TypeVar("_M", bound=Mapping[str, Any])


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("median: no samples")
    return float(statistics.median(samples))


def summarize(workload: Workload, dtype: object, threads: int,
              timings: Mapping[str, Mapping[str, Any]], peak_gflops: Optional[float] = None,
              copy_gbps: Optional[float] = None) -> Record:
    """One result record from ``timings`` ({impl: {"samples_s": [...], "number": n}}).

    ``workload`` needs ``name, kind, shape, flops`` (and ``bytes(dtype)`` for a memory-bound
    one); ``peak_gflops`` and ``copy_gbps`` are the GEMM rate and the copy roof of the same
    dtype and thread count (None: no fraction). Ratios are None when a side is missing.
    """
    impls = {impl: {**t, "median_s": median(t["samples_s"])} for impl, t in timings.items()}
    mine: Optional[float] = impls.get("nnfast", {}).get("median_s")

    def ratio(other: str) -> Optional[float]:
        if mine is None or other not in impls:
            return None
        theirs: float = impls[other]["median_s"]
        return theirs / mine

    gflops = workload.flops / mine / 1e9 if workload.flops and mine else None
    nbytes = None if workload.flops else _bytes(workload, dtype)
    gbps = nbytes / mine / 1e9 if nbytes and mine else None
    return with_roofs({"workload": workload.name, "kind": workload.kind,
                       "shape": workload.shape, "dtype": str(dtype), "threads": int(threads),
                       "flops": workload.flops, "bytes": nbytes, "impls": impls,
                       "ratio_vs_reference": ratio("reference"),
                       "ratio_vs_torch": ratio("torch"), "gflops": gflops, "gbps": gbps},
                      peak_gflops, copy_gbps)


def _bytes(workload: Workload, dtype: Any) -> Optional[int]:
    count = getattr(workload, "bytes", None)
    return count(dtype) if callable(count) else None


def with_roofs(result: Mapping[str, Any], peak_gflops: Optional[float] = None,
               copy_gbps: Optional[float] = None) -> Record:
    """``result`` with ``fraction_of_gemm_peak`` and ``fraction_of_copy_roof`` set from the
    GEMM peak (GFLOP/s) and the copy roof (GB/s) of its dtype and threads (None: unknown)."""
    def fraction(rate: Optional[float], roof: Optional[float]) -> Optional[float]:
        return rate / roof if rate is not None and roof else None
    return {**result, "fraction_of_gemm_peak": fraction(result["gflops"], peak_gflops),
            "fraction_of_copy_roof": fraction(result.get("gbps"), copy_gbps)}


# --------------------------------------------------------------------------- table

COLUMNS = ("workload", "dtype", "thr", "nnfast ms", "reference ms", "torch ms", "vs ref",
           "vs torch", "rate", "of roof")


def _ms(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _ratio(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def table_rows(results: Iterable[Mapping[str, Any]]) -> List[List[str]]:
    """The table's cells (strings), one list per result."""
    rows: List[List[str]] = []
    for r in results:
        med = {impl: t["median_s"] for impl, t in r["impls"].items()}
        rows.append([
            r["workload"], r["dtype"], str(r["threads"]),
            _ms(med.get("nnfast")), _ms(med.get("reference")), _ms(med.get("torch")),
            _ratio(r["ratio_vs_reference"]), _ratio(r["ratio_vs_torch"]),
            *_metric_cells(r),
        ])
    return rows


def _metric_cells(r: Mapping[str, Any]) -> Tuple[str, str]:
    """The "rate" and "of roof" cells: GFLOP/s of the GEMM peak for GEMM-bound rows, GB/s of
    the copy roof for memory-bound ones, "-" otherwise."""
    def percent(fraction: Optional[float], roof: str) -> str:
        return "-" if fraction is None else f"{100 * fraction:.0f}% {roof}"
    if r["gflops"] is not None:
        return f"{r['gflops']:.1f} GFLOP/s", percent(r["fraction_of_gemm_peak"], "peak")
    if r.get("gbps") is not None:
        return f"{r['gbps']:.1f} GB/s", percent(r.get("fraction_of_copy_roof"), "copy")
    return "-", "-"


def format_table(results: Iterable[Mapping[str, Any]], markdown: bool = False) -> str:
    """The results as an aligned text table (or a Markdown table)."""
    rows = table_rows(results)
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |",
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c)
              for i, c in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths])]
                     + [line(row) for row in rows])


def format_peaks(peaks: Iterable[Mapping[str, Any]]) -> str:
    """One line per measured GEMM rate."""
    return "\n".join(f"numpy.matmul {p['dtype']} {'x'.join(map(str, p['shape'][:2]))} @ "
                     f"{p['shape'][2]}, {p['threads']} thread(s): {p['gflops']:.1f} GFLOP/s "
                     f"(best sample; median {p['flops'] / p['median_s'] / 1e9:.1f})"
                     for p in peaks)


def format_copy_roofs(roofs: Iterable[Mapping[str, Any]]) -> str:
    """One line per measured copy roof."""
    return "\n".join(f"copy {r['kernel']} {r['dtype']} {r['mib']} MiB -> {r['mib']} MiB, "
                     f"{r['threads']} thread(s): {r['gbps']:.1f} GB/s (best sample; median "
                     f"{r['bytes'] / r['median_s'] / 1e9:.1f})" for r in roofs)


# --------------------------------------------------------------------------- JSON

def report(machine: Mapping[str, Any], settings: Mapping[str, Any], peaks: List[Record],
           results: List[Record], command: Optional[str] = None,
           copy_roofs: Iterable[Record] = (), skipped: Iterable[Record] = ()) -> Record:
    """The whole run as one JSON-serialisable dict (schema ``nnfast-bench/1``; ``copy_roof``
    and ``skipped`` were added to it, readers of older files find them missing)."""
    return {"schema": SCHEMA, "command": command, "machine": machine, "settings": settings,
            "gemm_peak": peaks, "copy_roof": list(copy_roofs), "results": results,
            "skipped": list(skipped)}


def write_json(data: Mapping[str, Any], path: Union[str, "os.PathLike[str]"]) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=1, allow_nan=False)


def check_report(data: _M) -> _M:
    """Raise ValueError when ``data`` does not follow schema ``nnfast-bench/1``."""
    def need(obj: Mapping[str, Any], key: str, kind: Union[Type[Any], Tuple[Type[Any], ...]],
             where: str) -> Any:
        if key not in obj or not isinstance(obj[key], kind):
            raise ValueError(f"{where}: {key!r} missing or not {kind}")
        return obj[key]

    if data.get("schema") != SCHEMA:
        raise ValueError(f"schema must be {SCHEMA!r}, got {data.get('schema')!r}")
    for key in ("machine", "settings"):
        need(data, key, dict, "report")
    for p in need(data, "gemm_peak", list, "report"):
        for key in ("dtype", "threads", "gflops", "median_s", "samples_s"):
            if key not in p:
                raise ValueError(f"gemm_peak entry: {key!r} missing")
    for r in need(data, "results", list, "report"):
        where = f"result {r.get('workload')!r}"
        for key in ("workload", "kind", "dtype"):
            need(r, key, str, where)
        need(r, "threads", int, where)
        impls = need(r, "impls", dict, where)
        if "nnfast" not in impls:
            raise ValueError(f"{where}: no nnfast timing")
        for impl, t in impls.items():
            samples = need(t, "samples_s", list, f"{where} {impl}")
            if not samples or min(samples) <= 0:
                raise ValueError(f"{where} {impl}: samples must be positive seconds")
            if not math.isclose(t["median_s"], median(samples)):
                raise ValueError(f"{where} {impl}: median_s is not the samples' median")
        if r.get("bytes") is not None and not math.isclose(
                r["gbps"], r["bytes"] / impls["nnfast"]["median_s"] / 1e9):
            raise ValueError(f"{where}: gbps is not bytes / nnfast's median")
    for c in data.get("copy_roof", []):
        for key in ("dtype", "threads", "bytes", "gbps", "median_s", "samples_s"):
            if key not in c:
                raise ValueError(f"copy_roof entry: {key!r} missing")
        if not math.isclose(c["gbps"], c["bytes"] / min(c["samples_s"]) / 1e9):
            raise ValueError("copy_roof entry: gbps is not bytes / the best sample")
    return data


# --------------------------------------------------------------------------- chart

def save_chart(results: Iterable[Mapping[str, Any]], path: _P,
               title: Optional[str] = None) -> _P:
    """Bar chart PNG of the ratios (see nnfast.plotting.save_ratio_chart)."""
    from nnfast.plotting import save_ratio_chart

    labels: List[str] = []
    series: Dict[str, List[Optional[float]]] = {"vs reference": [], "vs torch": []}
    for r in results:
        labels.append(f"{r['workload']} {r['dtype'].replace('float', 'f')} t{r['threads']}")
        series["vs reference"].append(r["ratio_vs_reference"])
        series["vs torch"].append(r["ratio_vs_torch"])
    if all(v is None for v in series["vs torch"]):
        del series["vs torch"]
    return save_ratio_chart(labels, series, path, title=title)
