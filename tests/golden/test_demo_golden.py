"""Golden /metrics of the demo cluster at a fixed clock: refactors must render byte-identical output.

The demo's simulated cluster (sim/: Kubernetes API, vLLM/TGI pods, dcgm-exporter nodes, two
training jobs, two streaming probes) is scraped by the real sources, each `run_once` at a fixed
fake clock, then one refresh renders the page.  Engine payloads are seeded and driven by the fake
clock, checkpoint files are backdated from it, so the output is reproducible except for what is
measured in real time or depends on the machine: listen ports, the temporary directory, and the
values of the families in VOLATILE (durations measured with a real monotonic clock).  Those are
normalised; sample lines are sorted inside each family (target order follows random ports).

A change that alters the output ON PURPOSE (an engine mapping, a new DCGM field) regenerates the
golden file with one command, and the diff goes into the same commit:

    UPDATE_GOLDEN=1 PYTHONPATH=$PWD/src .venv/bin/python -m pytest -p no:cacheprovider tests/golden -q
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from pathlib import Path

import pytest

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.areas import kube_watches
from ai_signals_exporter.scheduling.area import SchedulingSource
from ai_signals_exporter.sim import coldstart, gpu, scheduling, serving, streaming, training
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sources.checkpoints import CheckpointSource
from ai_signals_exporter.sources.gpu import DcgmSource
from ai_signals_exporter.sources.kube import KubeSource
from ai_signals_exporter.sources.probes import ProbeSource
from ai_signals_exporter.sources.serving import ServingSource

from ..helpers.clock import FakeClock
from ..helpers.wait import wait_for

GOLDEN = Path(__file__).with_name("demo_metrics.prom")
T0 = 1_800_000_000.0  # the fixed clock (2027-01-15)
SCRAPES = 11  # serving/gpu scrapes, 2 s apart: the 20 s rate window is covered
STEP = 2.0
# Measured in real time (monotonic): their values are replaced by VOLATILE_VALUE.
VOLATILE = (
    "ai_signals_exporter_source_duration_seconds",
    "ai_stream_time_to_first_byte_seconds",
    "ai_stream_time_to_first_chunk_seconds",
    "ai_stream_duration_seconds",
    "ai_stream_max_chunk_gap_seconds",
    "ai_stream_buffering_delay_seconds",
)
VOLATILE_VALUE = "<measured>"


def normalise(body: str, tmpdir: str) -> str:
    body = body.replace(tmpdir, "<tmp>")
    body = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", body)
    out: list[str] = []
    samples: list[str] = []

    def flush() -> None:
        out.extend(sorted(samples))
        samples.clear()

    for line in body.splitlines():
        if line.startswith("#"):
            flush()
            out.append(line)
            continue
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        if name in VOLATILE:
            line = line.rsplit(" ", 1)[0] + " " + VOLATILE_VALUE
        samples.append(line)
    flush()
    return "\n".join(out) + "\n"


async def render_demo_at_fixed_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    clock = FakeClock(T0)
    monkeypatch.setattr(time, "time", clock)
    async with SimCluster(tmp_path) as cluster:
        await serving.attach(cluster, pods=serving.default_pods(clock=clock))
        await coldstart.attach(cluster, clock=clock)  # T0 starts a demo cycle: 1 ready replica
        await gpu.attach(cluster)
        await training.attach(cluster, start=False)
        await streaming.attach(cluster)
        await scheduling.attach(cluster, start=False, clock=clock)
        exporter = Exporter(cluster.exporter_config())
        config, state = exporter.config, exporter.state
        kube = KubeSource(config, state, resources=kube_watches(config))
        sched = SchedulingSource(config, state, clock)
        kube_task = asyncio.create_task(kube.run())
        sources = [ServingSource(config, state, clock), DcgmSource(config, state, clock),
                   CheckpointSource(config, state, clock)]
        probes = ProbeSource(config, state, clock)
        try:
            await wait_for(lambda: {w.resource for w in kube.watches} <= state.kube.synced, timeout=20)
            sched.attach()  # what was listed is the scheduling area's baseline
            # The simulated objects do not change: stop watching, so no watch event or
            # re-list lands at a clock that depends on scheduling.
            kube_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kube_task
            for i in range(SCRAPES):
                clock.t = T0 + i * STEP
                for src in sources:
                    await src.run_once()
            for probe in config.probes:
                await probes.run_probe(probe)
            body = exporter.refresh(now=clock.t).body.decode()
        finally:
            kube_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await kube_task
            for src in (kube, sched, probes, *sources):
                await src.close()
    return normalise(body, str(tmp_path))


async def test_demo_metrics_match_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = await render_demo_at_fixed_clock(tmp_path, monkeypatch)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(body)
    assert GOLDEN.exists(), f"{GOLDEN} missing: run with UPDATE_GOLDEN=1 to create it"
    expected = GOLDEN.read_text()
    assert body == expected, "demo /metrics changed; if on purpose, regenerate with UPDATE_GOLDEN=1 (see module doc)"
