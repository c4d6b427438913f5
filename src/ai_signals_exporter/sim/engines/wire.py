"""Wire formatting shared by the simulated engines' renderers: number formats of each client
library, label sets, histogram lines, prometheus_client's `_created` and process series."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from prometheus_client.utils import floatToGoString as _go  # vLLM/SGLang print floats so

if TYPE_CHECKING:
    from .model import SimEngine, _Hist




def _plain(v: float) -> str:
    """Rust and prometheus-cpp style (TGI, Triton): integers without a decimal point."""
    if v == math.inf:
        return "+Inf"
    f = float(v)
    return str(int(f)) if f.is_integer() and abs(f) < 1e17 else repr(f)


def _cpp(v: float) -> str:
    """C++ ostream defaults (llama.cpp): 6 significant digits, so large counters step."""
    return f"{float(v):g}"


def _split(total: int, n: int) -> list[int]:
    """Split an integer count over n ranks: sums to `total`, every part monotone in `total`."""
    q, r = divmod(int(total), n)
    return [q + (1 if i < r else 0) for i in range(n)]




class _Out:
    __slots__ = ("parts", "fmt")

    def __init__(self, fmt: Callable[[float], str]) -> None:
        self.parts: list[str] = []
        self.fmt = fmt

    def head(self, name: str, typ: str, help: str | None) -> None:
        if help is not None:
            self.parts.append(f"# HELP {name} {help}\n")
        self.parts.append(f"# TYPE {name} {typ}\n")

    def line(self, name: str, labels: str, value: float) -> None:
        if labels:
            self.parts.append(f"{name}{{{labels}}} {self.fmt(value)}\n")
        else:
            self.parts.append(f"{name} {self.fmt(value)}\n")

    def text(self) -> str:
        return "".join(self.parts)


Pairs = tuple[tuple[str, str], ...]


def _labels(pairs: Pairs) -> str:
    return ",".join(f'{k}="{v}"' for k, v in pairs)


def _hist_lines(
    out: _Out, name: str, label_sets: list[Pairs], h: _Hist, *, sort: bool, le_fmt=_go,
    copies: bool = False,
) -> None:
    """Bucket/count/sum lines for one histogram, split over `label_sets` (one per rank).
    prometheus_client sorts label names (so `le` lands among them) and writes `_count` before
    `_sum`; the Rust and C++ clients append `le` and write `_sum` first."""
    n = len(label_sets)
    counts = h.counts()
    # `copies`: every label set publishes the whole histogram (replicated scheduler state).
    split = n > 1 and not copies
    per_rank = [list(x) for x in zip(*(_split(c, n) for c in counts))] if split else [counts] * n
    les = [le_fmt(b) for b in h.bounds] + ["+Inf"]
    totals = _split(int(h.total), n) if split else [int(h.total)] * n
    part_sum = h.sum / n if split else h.sum
    parts = out.parts
    fmt = out.fmt
    for i, pairs in enumerate(label_sets):
        # One template per label set: a NUL character marks where the `le` value goes.
        with_le = pairs + (("le", "\0"),)
        if sort:
            with_le = tuple(sorted(with_le))
        before, _, after = _labels(with_le).partition("\0")
        head = f"{name}_bucket{{{before}"
        tail = after + "} "
        for le, c in zip(les, per_rank[i]):
            parts.append(f"{head}{le}{tail}{fmt(c)}\n")
        lab = _labels(pairs)
        if sort:
            out.line(f"{name}_count", lab, totals[i])
            out.line(f"{name}_sum", lab, part_sum)
        else:
            out.line(f"{name}_sum", lab, part_sum)
            out.line(f"{name}_count", lab, totals[i])


def _created(out: _Out, name: str, help: str, labels: list[str], ts: float) -> None:
    out.head(f"{name}_created", "gauge", help)
    for lab in labels:
        out.line(f"{name}_created", lab, ts)


def _python_process(out: _Out, e: SimEngine, now: float) -> None:
    elapsed = max(0.0, now - e._created)
    out.head("python_gc_objects_collected_total", "counter", "Objects collected during gc")
    for g, v in (("0", 7431 + elapsed * 3), ("1", 4936 + elapsed), ("2", 1661 + elapsed / 10)):
        out.line("python_gc_objects_collected_total", f'generation="{g}"', float(int(v)))
    out.head("python_gc_objects_uncollectable_total", "counter", "Uncollectable objects found during GC")
    for g in "012":
        out.line("python_gc_objects_uncollectable_total", f'generation="{g}"', 0.0)
    out.head("python_gc_collections_total", "counter", "Number of times this generation was collected")
    for g, v in (("0", 1151 + elapsed), ("1", 104 + elapsed / 10), ("2", 6 + elapsed / 100)):
        out.line("python_gc_collections_total", f'generation="{g}"', float(int(v)))
    out.head("python_info", "gauge", "Python platform information")
    out.line(
        "python_info",
        'implementation="CPython",major="3",minor="12",patchlevel="11",version="3.12.11"',
        1.0,
    )
    out.head("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")
    out.line("process_virtual_memory_bytes", "", 6.634254336e09)
    out.head("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
    out.line("process_resident_memory_bytes", "", 5.106151424e09)
    out.head("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.")
    out.line("process_start_time_seconds", "", round(e._created, 2))
    out.head("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
    out.line("process_cpu_seconds_total", "", round(elapsed * 0.9, 2))
    out.head("process_open_fds", "gauge", "Number of open file descriptors.")
    out.line("process_open_fds", "", 49.0)
    out.head("process_max_fds", "gauge", "Maximum number of open file descriptors.")
    out.line("process_max_fds", "", 1048576.0)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
