"""Issue 13: a newly discovered target is scraped at once, then every interval at a stable
per-target offset (as Prometheus spreads its scrape loops), not a whole interval later."""

from __future__ import annotations

import pytest

import asyncio
import contextlib

from ai_signals_exporter.config import Config
from ai_signals_exporter.sim.engines import SimEngine, constant, make_app
from ai_signals_exporter.sources.base import TargetSchedule, target_offset
from ai_signals_exporter.sources.serving import ServingSource
from ai_signals_exporter.state import AppState, PodInfo

from ..helpers.net import run_app
from ..helpers.wait import wait_for

# Timing-sensitive: also run under a CPU hog by scripts/test (-m timing).
pytestmark = pytest.mark.timing

INTERVAL = 30.0


def test_new_targets_are_due_at_once_then_at_their_offset() -> None:
    s = TargetSchedule(INTERVAL)
    assert s.due(["a", "b"], 1000.0) == ["a", "b"]  # never scraped: due now
    for k in ("a", "b"):
        s.scraped(k, 1000.0)
    assert s.due(["a", "b"], 1000.5) == []
    nxt = s.next_due()
    assert nxt is not None and 1000.0 < nxt <= 1000.0 + INTERVAL
    # Each key's next scrape lands on its own phase of the interval, and keeps it.
    for k in ("a", "b"):
        due_at = s._next[k]
        assert (due_at - target_offset(k, INTERVAL)) % INTERVAL == 0
        assert s.due(["a", "b"], due_at) and k in s.due(["a", "b"], due_at)
        s.scraped(k, due_at)
        assert s._next[k] == due_at + INTERVAL
    # A target that comes back later is new again; one that went away is forgotten.
    assert s.due(["a"], 1001.0) == [] and s.forgot
    assert s.due(["a", "b"], 1001.0) == ["b"]


def test_offsets_are_stable_and_spread() -> None:
    keys = [f"http://10.0.0.{i}:8000/metrics" for i in range(200)]
    offsets = [target_offset(k, INTERVAL) for k in keys]
    assert offsets == [target_offset(k, INTERVAL) for k in keys]  # stable
    assert all(0 <= o < INTERVAL for o in offsets)
    # Spread over the interval: every tenth of it holds some targets.
    assert {int(o // (INTERVAL / 10)) for o in offsets} == set(range(10))


async def test_discovered_pod_is_scraped_at_once_not_a_whole_interval_later() -> None:
    engine = SimEngine("vllm", "m", constant(2.0), seed=5)
    async with run_app(make_app({"/metrics": engine})) as base:
        port = int(base.rsplit(":", 1)[1])
        config = Config.model_validate({
            "kubernetes": {"enabled": True},
            "serving": {"interval": f"{INTERVAL:g}s", "window": "60s"},
        })
        state = AppState()
        source = ServingSource(config, state)
        task = asyncio.create_task(source.run())
        try:
            # The source is running and has looked for targets once (none yet).
            await wait_for(lambda: source._discovered_gen == state.kube.generation, timeout=5)
            state.kube.pods["uid-1"] = PodInfo(
                uid="uid-1", namespace="llm", name="llama-0", node="n1", phase="Running", ip="127.0.0.1",
                labels={}, annotations={"ai-signals.io/scrape": "true", "ai-signals.io/port": str(port)},
                workload_kind="Deployment", workload="llama", requests={},
            )
            state.kube.touch()
            # Found at the next discovery poll (1 s), far before the 30 s interval.
            history = await wait_for(lambda: state.serving.get(f"http://127.0.0.1:{port}/metrics"), timeout=5)
            assert history.identity.pod == "llama-0" and len(history.samples) == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await source.close()
