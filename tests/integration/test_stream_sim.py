"""The probe against the simulator: a clean Python proxy path and a buffering one, end to end
through ProbeSource, signals and exposition, checked against the backend's own send times."""

from __future__ import annotations

import asyncio
import time

import pytest

from ai_signals_exporter.config import Config
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.signals.streaming import derive
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sim.streaming import StreamingBackend, StreamPlan, attach
from ai_signals_exporter.sources.probes import ProbeSource
from ai_signals_exporter.state import AppState

# Loopback, same process: the probe's arrival times and the backend's send times differ by the
# event loop's scheduling only; 0.1 s covers a loaded 2-core CI machine.
TOL = 0.1


@pytest.fixture
async def cluster():
    async with SimCluster(kubernetes=False) as c:
        yield c


async def test_attach_buffered_and_clean_paths(cluster):
    backend = await attach(cluster, ttft=0.2, tokens=8, tokens_per_second=8.0, buffering_threshold="500ms")
    config = cluster.exporter_config()
    state = AppState()
    source = ProbeSource(config, state)
    try:
        t0 = time.monotonic()
        await asyncio.gather(*(source.run_probe(p) for p in config.probes))
    finally:
        await source.close()
    families = {f.name: f for f in derive(state, config, time.time())}
    buffered = {s[1][0]: s[2] for s in families["ai_stream_buffered"].samples}
    delay = {s[1][0]: s[2] for s in families["ai_stream_buffering_delay_seconds"].samples}
    assert buffered == {"chat-buffered": 1.0, "chat-clean": 0.0}

    # Ground truth: the buffering path delivers the first token when the backend sent the last.
    sent = backend.last("chat-buffered-ingress")
    true_delay = sent.sends[-1] - sent.sends[0]  # ~7/8 s
    assert delay["chat-buffered"] == pytest.approx(true_delay, abs=2 * TOL)
    assert abs(delay["chat-clean"]) < TOL

    obs = state.probes["chat-clean"]
    sent = backend.last("chat-clean-ingress")
    assert obs.ingress.ok and obs.ingress.chunks == 8
    # The probe clock started before connecting; the backend's just after the request arrived.
    assert t0 <= sent.received
    assert obs.ingress.first_chunk == pytest.approx(sent.sends[0] - t0, abs=TOL)
    assert obs.ingress.max_gap == pytest.approx(1 / 8, abs=TOL)
    text = render(list(families.values())).decode()
    assert 'ai_stream_probe_success{probe="chat-buffered",route="ingress"} 1' in text
    assert 'ai_stream_chunks{probe="chat-buffered",route="direct"} 8' in text


async def test_source_run_loop_probes_on_interval_and_secret_stays_hidden(cluster, monkeypatch):
    backend = StreamingBackend(StreamPlan(ttft=0.0, tokens=3, tokens_per_second=100))
    base = await cluster.serve(backend.app())
    monkeypatch.setenv("SIM_PROBE_KEY", "sk-very-secret")
    config = Config.model_validate(
        {
            "probes": [
                {
                    "name": "p",
                    "url": f"{base}/v1/completions?api_key=qsecret&key=p",
                    "headers": {"Authorization": {"env": "SIM_PROBE_KEY"}},
                    "body": "{}",
                    "interval": "100ms",
                    "timeout": "100ms",
                },
                {
                    "name": "q",
                    "url": f"http://user:pw@{base[7:]}/stream?key=q",
                    "interval": "100ms",
                    "timeout": "100ms",
                },
            ]
        }
    )
    state = AppState()
    source = ProbeSource(config, state)
    task = asyncio.create_task(source.run())
    try:
        await asyncio.sleep(0.35)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await source.close()
    # Each probe on its own 100 ms schedule, the first run at once: 4 runs in 0.35 s, give or take.
    for key in ("p", "q"):
        assert 3 <= sum(s.key == key for s in backend.streams) <= 5
    assert state.selfmon.targets[("probes", "p/ingress")] is True
    assert state.selfmon.targets[("probes", "q/ingress")] is True
    shown = repr(source.targets())
    assert "p/ingress" in shown and "/v1/completions" in shown
    for secret in ("sk-very-secret", "qsecret", "pw"):
        assert secret not in shown


async def test_exporter_wires_the_probe_source_into_metrics_and_landing_targets(cluster):
    """The real Exporter with the simulator's probes: the source starts from config, and the
    rendered /metrics body carries the verdicts (what `demo` shows)."""
    from ai_signals_exporter.app import Exporter
    from ai_signals_exporter.expo.parse import parse_families

    await attach(cluster, ttft=0.1, tokens=5, tokens_per_second=10.0, interval="5s", timeout="3s",
                 buffering_threshold="200ms")
    cluster.config["global"] = {"refresh_interval": "100ms"}
    exporter = Exporter(cluster.exporter_config())
    await exporter.start()
    try:
        wanted = {"ai_stream_buffered", "ai_stream_probe_success"}
        for _ in range(50):
            await asyncio.sleep(0.1)
            got = parse_families(exporter.exposition.body, wanted)
            if len(got.get("ai_stream_buffered", [])) == 2:
                break
        verdicts = {labels["probe"]: v for labels, v in got["ai_stream_buffered"]}
        assert verdicts == {"chat-buffered": 1.0, "chat-clean": 0.0}
        assert [v for _, v in got["ai_stream_probe_success"]] == [1.0] * 4
        targets = {t.target.split()[0]: t.up for t in exporter.target_statuses() if t.source == "probes"}
        assert targets == {f"chat-{p}/{r}": True for p in ("buffered", "clean") for r in ("ingress", "direct")}
    finally:
        await exporter.stop()
