"""The probe against the simulator: a clean Python proxy path and a buffering one, end to end
through ProbeSource, signals and exposition, checked against the backend's own send times.

Loaded machines: phases are compared with the backend sends that cause them (the probe's route
starts recorded exactly, tests/helpers/probe_clock.py), margins are TOL stretched by
TEST_TIMEOUT_SCALE and capped at half the scenario's own delays, and nothing sleeps to let time
pass: the run loop's schedule is read from the backend's request times once enough runs came.
"""

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
from tests.helpers.probe_clock import arrival, record_route_starts
from tests.helpers.tolerance import margin
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timing

# Loopback, same process: the probe's arrival times and the backend's send times differ by the
# event loop's scheduling only.
TOL = 0.1


@pytest.fixture
async def cluster():
    async with SimCluster(kubernetes=False) as c:
        yield c


async def test_attach_buffered_and_clean_paths(cluster, monkeypatch):
    ttft, tokens, tps, threshold = 0.2, 8, 8.0, 0.5
    backend = await attach(cluster, ttft=ttft, tokens=tokens, tokens_per_second=tps,
                           buffering_threshold=f"{threshold * 1000:g}ms")
    starts = record_route_starts(monkeypatch)
    config = cluster.exporter_config()
    state = AppState()
    source = ProbeSource(config, state)
    try:
        await asyncio.gather(*(source.run_probe(p) for p in config.probes))
    finally:
        await source.close()
    families = {f.name: f for f in derive(state, config, time.time())}
    buffered = {s[1][0]: s[2] for s in families["ai_stream_buffered"].samples}
    delay = {s[1][0]: s[2] for s in families["ai_stream_buffering_delay_seconds"].samples}
    assert buffered == {"chat-buffered": 1.0, "chat-clean": 0.0}

    # Ground truth: the buffering path delivers the first token once the backend sent the last.
    urls = {p.name: p.url for p in config.probes}
    obs = state.probes["chat-buffered"]
    sent = backend.last("chat-buffered-ingress")
    first = arrival(starts, obs.ingress, key=urls["chat-buffered"])
    assert first >= sent.sends[-1]
    true_delay = first - sent.sends[0]  # ~7/8 s
    span = (tokens - 1) / tps
    assert delay["chat-buffered"] == pytest.approx(true_delay, abs=margin(2 * TOL, span / 2))
    assert abs(delay["chat-clean"]) < margin(TOL, min(ttft, threshold) / 2)

    obs = state.probes["chat-clean"]
    sent = backend.last("chat-clean-ingress")
    assert obs.ingress.ok and obs.ingress.chunks == tokens
    # The probe clock started before connecting; the backend's just after the request arrived.
    assert starts[urls["chat-clean"]] <= sent.received
    first = arrival(starts, obs.ingress, key=urls["chat-clean"])
    assert 0 <= first - sent.sends[0] < margin(TOL, ttft / 2)
    assert obs.ingress.max_gap == pytest.approx(obs.direct.max_gap, abs=margin(TOL, 1 / tps))
    assert obs.ingress.max_gap >= 1 / tps / 2
    text = render(list(families.values())).decode()
    assert 'ai_stream_probe_success{probe="chat-buffered",route="ingress"} 1' in text
    assert f'ai_stream_chunks{{probe="chat-buffered",route="direct"}} {tokens}' in text


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
                    "interval": "300ms",
                    "timeout": "300ms",
                },
                {
                    "name": "q",
                    "url": f"http://user:pw@{base[7:]}/stream?key=q",
                    "interval": "300ms",
                    "timeout": "300ms",
                },
            ]
        }
    )
    state = AppState()
    source = ProbeSource(config, state)
    interval, runs = 0.3, 4

    def requests(key: str) -> list[float]:
        return [s.received for s in backend.streams if s.key == key]

    started = time.monotonic()
    task = asyncio.create_task(source.run())
    try:
        await wait_for(lambda: all(len(requests(k)) >= runs for k in ("p", "q")), timeout=5,
                       what=f"{runs} runs of each probe")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await source.close()
    # Each probe on its own 300 ms schedule from the source's start, the first run at once: the
    # k-th run never before k intervals (no hot loop, no double start), nor a whole interval
    # late (on a loaded machine a slow run may delay the next, the schedule stays).
    for key in ("p", "q"):
        times = requests(key)
        for k, t in enumerate(times[:runs]):
            assert k * interval <= t - started < (k + 0.9) * interval
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

    # A buffered stream's delay (its token span, 0.8 s) four times the threshold's distance
    # from a clean stream's (0): the verdicts cannot swap under scheduling noise.
    await attach(cluster, ttft=0.1, tokens=5, tokens_per_second=5.0, interval="5s", timeout="3s",
                 buffering_threshold="400ms")
    cluster.config["global"] = {"refresh_interval": "100ms"}
    exporter = Exporter(cluster.exporter_config())
    await exporter.start()
    try:
        wanted = {"ai_stream_buffered", "ai_stream_probe_success"}

        def verdicts_in():
            got = parse_families(exporter.exposition.body, wanted)
            return got if len(got.get("ai_stream_buffered", [])) == 2 else None

        got = await wait_for(verdicts_in, timeout=5, what="both probes' verdicts in /metrics")
        verdicts = {labels["probe"]: v for labels, v in got["ai_stream_buffered"]}
        assert verdicts == {"chat-buffered": 1.0, "chat-clean": 0.0}
        assert [v for _, v in got["ai_stream_probe_success"]] == [1.0] * 4
        targets = {t.target.split()[0]: t.up for t in exporter.target_statuses() if t.source == "probes"}
        assert targets == {f"chat-{p}/{r}": True for p in ("buffered", "clean") for r in ("ingress", "direct")}
    finally:
        await exporter.stop()
