"""Filtered parser vs prometheus_client's text parser, on the same bytes.

    python bench/parse_bench.py [--repeats N]

For each real payload in ../shared/real-payloads (when present) and for simulated payloads,
prints: size, our parse time (wanted names of the detected engine, or the DCGM readings for
dcgm-exporter payloads), prometheus_client's `text_string_to_metric_families` time (fully
consumed, as any caller must), and the ratio; best of N repeats, same run.  "cold" clears the
parser's label-body cache before every repeat (first scrape of a target); "warm" is the steady
state of a scraper that sees the same series every interval.  The last column is the full
`engines.extract` (validation + parse + fold into ModelSnapshots), and "x extract" its ratio to
prometheus_client: the cost of the exposition check (sampled lines, issue 13) is inside it;
"check" is that check alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ai_signals_exporter import engines
from ai_signals_exporter.expo import parse
from ai_signals_exporter.sim.engines import SimEngine

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real-payloads"


def best(fn, repeats: int, before=None) -> float:
    out = float("inf")
    for _ in range(repeats):
        if before:
            before()
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def dcgm_wanted() -> frozenset[str]:
    try:
        from ai_signals_exporter.gpu.readings import WANTED
    except ImportError:  # GPU area not present in this checkout
        WANTED = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_FB_USED"}
    return frozenset(WANTED)


def payloads() -> list[tuple[str, bytes]]:
    out = []
    if REAL.is_dir():
        out += [(p.name, p.read_bytes()) for p in sorted(REAL.glob("*.prom"))]
    else:
        print(f"({REAL} not present: simulated payloads only)")
    t0 = 1_750_000_000.0
    for kind, ranks in (("vllm", 1), ("vllm", 2), ("tgi", 1), ("sglang", 2)):
        clock = [t0]
        e = SimEngine(kind, load=8.0, ranks=ranks, clock=lambda c=clock: c[0], seed=1)
        clock[0] += 600
        out.append((f"sim {kind}" + (f" x{ranks} ranks" if ranks > 1 else ""), e.render()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    n = args.repeats
    print(
        f"{'payload':44s} {'bytes':>7s} {'wanted':>6s} {'ours cold':>10s} {'ours warm':>10s}"
        f" {'prom_client':>11s} {'x cold':>7s} {'x warm':>7s} {'check':>8s} {'extract':>9s} {'x extract':>9s}"
    )
    ratios = []
    for name, data in payloads():
        engine = engines.detect(data)
        wanted = engines.wanted_names(engine) if engine else dcgm_wanted()
        text_fn = lambda: [f for f in text_string_to_metric_families(data.decode())]  # noqa: E731
        ours_fn = lambda: parse.parse_families(data, wanted)  # noqa: E731
        reference = best(text_fn, max(5, n // 5))
        cold = best(ours_fn, n, before=parse._LABEL_CACHE.clear)
        warm = best(ours_fn, n)
        ext = best(lambda: engines.extract(data, engine), n) if engine else float("nan")
        text = data.decode("utf-8", "replace")
        check = best(lambda: parse.check_exposition(text), n)
        ratios.append((name, reference / cold, reference / warm, reference / (cold + check), reference / ext))
        print(
            f"{name:44s} {len(data):7d} {len(wanted):6d} {cold * 1e6:8.1f}us {warm * 1e6:8.1f}us"
            f" {reference * 1e3:9.2f}ms {reference / cold:6.0f}x {reference / warm:6.0f}x"
            f" {check * 1e6:6.1f}us {ext * 1e6:7.1f}us {reference / ext:8.0f}x"
        )
    vllm = [r for r in ratios if "vllm" in r[0]]
    if vllm:
        print(
            "\nvLLM payloads: min ratio cold {:.0f}x, warm {:.0f}x, cold parse + exposition check {:.0f}x"
            " (DESIGN budget: >= 30x); full extract (check + parse + fold into snapshots) {:.0f}x".format(
                min(r[1] for r in vllm), min(r[2] for r in vllm), min(r[3] for r in vllm),
                min(r[4] for r in vllm),
            )
        )


if __name__ == "__main__":
    main()
