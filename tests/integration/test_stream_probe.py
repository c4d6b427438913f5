"""ProbeSource / measure_stream against small real HTTP servers on loopback: formats, failure
reasons, redirects, the timeout budget, and secrets staying out of logs, targets and metrics."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import zlib

import pytest
from aiohttp import web

from ai_signals_exporter.config import Config, Probe
from ai_signals_exporter.expo.families import render
from ai_signals_exporter.signals import selfmon as selfmon_signals
from ai_signals_exporter.signals.streaming import derive
from ai_signals_exporter.sources.probes import ProbeSource, redact_url
from ai_signals_exporter.state import AppState
from tests.helpers.net import free_port
from tests.helpers.probe_clock import arrival, record_route_starts
from tests.helpers.tolerance import margin

pytestmark = pytest.mark.timing

# Loopback, same process; margins stretch with TEST_TIMEOUT_SCALE up to half the delay they
# must still resolve (tests/helpers/tolerance.py).
TOL = 0.1


class Server:
    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[web.Request] = []
        self.headers_seen: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    def route(self, path):
        def deco(fn):
            async def wrapped(request):
                self.headers_seen.append(dict(request.headers))
                await request.read()
                return await fn(request)

            self.app.router.add_route("*", path, wrapped)
            return fn

        return deco

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def server():
    s = Server()
    yield s
    if s.runner:
        await s.runner.cleanup()


async def _stream(request, ctype, pieces, delay=0.0, headers=None, hang=False, sends=None):
    resp = web.StreamResponse(headers={"Content-Type": ctype, **(headers or {})})
    await resp.prepare(request)
    for p in pieces:
        if delay:
            await asyncio.sleep(delay)
        if sends is not None:
            sends.append(time.monotonic())
        await resp.write(p)
    if hang:
        await asyncio.sleep(30)
    await resp.write_eof()
    return resp


async def run_one(url, **kw):
    probe = Probe(name=kw.pop("name", "p"), url=url, interval="10s", timeout=kw.pop("timeout", "3s"), **kw)
    config = Config(probes=[probe])
    state = AppState()
    source = ProbeSource(config, state)
    try:
        obs = await source.run_probe(probe)
    finally:
        await source.close()
    return obs, state, config, source


async def test_ndjson_and_chunked_formats_by_content_type(server):
    sends: list[float] = []
    @server.route("/nd")
    async def nd(request):
        return await _stream(request, "application/x-ndjson", [b'{"a":1}\n{"a"', b':2}\n', b'{"done":true}'], 0.05)

    @server.route("/plain")
    async def plain(request):
        sends.clear()
        return await _stream(request, "text/plain", [b"one ", b"two ", b"three"], 0.05, sends=sends)

    await server.start()
    obs, *_ = await run_one(server.url + "/nd")
    assert obs.ingress.ok and obs.ingress.format == "ndjson" and obs.ingress.chunks == 3
    obs, *_ = await run_one(server.url + "/plain")
    assert obs.ingress.ok and obs.ingress.format == "chunked" and obs.ingress.chunks == 3
    sent_gap = max(b - a for a, b in zip(sends, sends[1:]))  # 0.05 s, or more on a loaded machine
    assert obs.ingress.max_gap == pytest.approx(sent_gap, abs=margin(TOL / 2, sent_gap / 2))
    # format forced: the text/plain body read as NDJSON is one line without newline
    obs, *_ = await run_one(server.url + "/plain", format="ndjson")
    assert obs.ingress.format == "ndjson" and obs.ingress.chunks == 1


async def test_done_ends_the_stream_even_if_the_server_keeps_it_open(server):
    @server.route("/sse")
    async def sse(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n", b"data: [DONE]\n\n"], hang=True)

    await server.start()
    t = time.monotonic()
    obs, *_ = await run_one(server.url + "/sse")
    assert obs.ingress.ok and obs.ingress.chunks == 1
    assert time.monotonic() - t < margin(1.0, 15)  # the server would hold it 30 s


async def test_gzip_sse_is_timed_per_decoded_event(server, monkeypatch):
    """A server that gzips the stream and flushes each event: every event is counted when it can
    be decoded, the gaps between them survive compression."""
    sends: list[float] = []

    @server.route("/gz")
    async def gz(request):
        c = zlib.compressobj(wbits=31)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"})
        await resp.prepare(request)
        await resp.write(c.compress(b""))  # gzip header only, at once
        for i in range(4):
            await asyncio.sleep(0.1)
            sends.append(time.monotonic())
            await resp.write(c.compress(b"data: %d\n\n" % i) + c.flush(zlib.Z_SYNC_FLUSH))
        await resp.write(c.flush())
        await resp.write_eof()
        return resp

    await server.start()
    starts = record_route_starts(monkeypatch)
    obs, *_ = await run_one(server.url + "/gz")
    m = obs.ingress
    assert m.ok and m.encoding == "gzip" and m.chunks == 4
    # Each event counted as it was sent (compared with the server's own send times, which a
    # loaded machine may make late), not with the gzip header that came at once.
    assert 0 <= arrival(starts, m) - sends[0] < margin(TOL / 2, 0.05)
    assert m.last_chunk - m.first_chunk == pytest.approx(sends[-1] - sends[0], abs=margin(TOL / 2, 0.05))
    assert "gzip" in server.headers_seen[0]["Accept-Encoding"]


@pytest.mark.parametrize(
    "status,reason", [(500, "http_status"), (404, "http_status"), (302, "redirect"), (307, "redirect")]
)
async def test_status_failures(server, status, reason):
    other = Server()

    @other.route("/x")
    async def elsewhere(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n"])

    await other.start()

    @server.route("/s")
    async def s(request):
        return web.Response(status=status, headers={"Location": other.url + "/x"})

    await server.start()
    try:
        obs, state, *_ = await run_one(server.url + "/s")
    finally:
        await other.runner.cleanup()
    assert not obs.ingress.ok and obs.ingress.reason == reason and obs.ingress.status == status
    assert other.headers_seen == []  # the redirect was not followed
    assert state.selfmon.errors == {("probes", reason): 1}


async def test_empty_stream_is_no_chunks_and_bad_encoding_is_decode(server):
    @server.route("/empty")
    async def empty(request):
        return await _stream(request, "text/event-stream", [b": keepalive\n\n", b"data: [DONE]\n\n"])

    @server.route("/br")
    async def br(request):
        return await _stream(request, "text/event-stream", [b"\x00\x01"], headers={"Content-Encoding": "br"})

    await server.start()
    obs, *_ = await run_one(server.url + "/empty")
    assert (obs.ingress.ok, obs.ingress.reason) == (False, "no_chunks")
    obs, *_ = await run_one(server.url + "/br")
    assert (obs.ingress.ok, obs.ingress.reason) == (False, "decode")


async def test_one_timeout_budget_covers_all_phases(server, monkeypatch):
    """No single read waits longer than 0.2 s, yet the 0.5 s budget for the whole request cuts
    the 1 s stream: one timeout over all phases, not one per read."""
    sends: list[float] = []

    @server.route("/slow")
    async def slow(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n"] * 5, delay=0.2, sends=sends)

    await server.start()
    starts = record_route_starts(monkeypatch)
    obs, state, config, _ = await run_one(server.url + "/slow", timeout="500ms")
    m = obs.ingress
    assert not m.ok and m.reason == "timeout"
    assert 0.5 <= m.duration < 0.5 + margin(TOL, 0.25)
    # Headers at once, the first event as the server sent it, and every event sent before the
    # cut counted (the last one may still have been on its way).
    assert arrival(starts, m, "ttfb") < sends[0]
    assert 0 <= arrival(starts, m) - sends[0] < margin(TOL, 0.1)
    sent_before_cut = sum(t < arrival(starts, m, "duration") for t in sends)
    assert 1 <= sent_before_cut < 5
    assert sent_before_cut - 1 <= m.chunks <= sent_before_cut
    text = render(derive(state, config, time.time())).decode()
    assert 'ai_stream_probe_success{probe="p",route="ingress"} 0' in text
    assert 'ai_stream_time_to_first_chunk_seconds{probe="p",route="ingress"}' in text


async def test_connect_refused():
    obs, state, *_ = await run_one(f"http://127.0.0.1:{free_port()}/v1")
    assert obs.ingress.reason == "connect" and obs.ingress.ttfb is None


async def test_secrets_stay_out_of_logs_targets_and_metrics(server, tmp_path, monkeypatch, caplog):
    @server.route("/sse")
    async def sse(request):
        return web.Response(status=401)

    await server.start()
    secret_file = tmp_path / "key"
    secret_file.write_text("sk-from-file\n")
    monkeypatch.setenv("PROBE_TOKEN", "sk-from-env")
    caplog.set_level(logging.DEBUG)
    obs, state, config, source = await run_one(
        server.url.replace("http://", "http://bob:pw-in-url@") + "/sse?api_key=sk-in-query",
        name="p",
        headers={"Authorization2": {"file": str(secret_file)}, "X-Token": {"env": "PROBE_TOKEN"}},
    )
    assert server.headers_seen[0]["Authorization2"] == "sk-from-file"  # resolved and sent...
    assert server.headers_seen[0]["X-Token"] == "sk-from-env"
    assert obs.ingress.reason == "http_status"
    # ...but nowhere else, not even after a failure
    secret_file.unlink()
    obs2, state2, *_ = await run_one(server.url + "/sse", headers={"Authorization": {"file": str(secret_file)}})
    assert obs2.ingress.reason == "header" and state2.selfmon.errors == {("probes", "header"): 1}
    # The exporter's own log records (the test server's access log is not ours).
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ai_signals_exporter"))
    shown = repr(source.targets()) + ours
    shown += render(derive(state, config, time.time()) + selfmon_signals.derive(state, config, time.time())).decode()
    for secret in ("sk-from-file", "sk-from-env", "pw-in-url", "sk-in-query", str(secret_file)):
        assert secret not in shown
    assert redact_url("https://u:p@h:8443/v1/x?k=v#f") == "https://h:8443/v1/x"


async def test_rendered_families_pass_promtool(server):
    @server.route("/sse")
    async def sse(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n"] * 3, delay=0.02)

    await server.start()
    obs, state, config, _ = await run_one(server.url + "/sse", direct_url=server.url + "/sse")
    body = render(derive(state, config, time.time()))
    assert b"ai_stream_buffered" in body
    out = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr


async def test_source_last_success_follows_any_route_not_all(server):
    """One dead route (a direct pod IP gone after a redeploy) is AiSignalsTargetDown's and
    StreamProbeFailing's to report; the probe source itself still delivers fresh signals, so its
    last-success time moves on (else AiSignalsSourceStale fired too, and only when no other
    probe happened to be configured).  With every route down the source is blind: no success."""

    @server.route("/sse")
    async def sse(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n"] * 3)

    await server.start()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    before = time.time()
    obs, state, *_ = await run_one(server.url + "/sse", direct_url=dead)
    assert obs.ingress.ok and obs.direct.reason == "connect"
    assert state.selfmon.targets == {("probes", "p/ingress"): True, ("probes", "p/direct"): False}
    assert state.selfmon.sources["probes"].last_success >= before
    obs, state, *_ = await run_one(dead, direct_url=dead)
    assert state.selfmon.sources["probes"].last_success == 0


async def test_landing_page_last_success_survives_a_reload(server):
    """A reload builds a new ProbeSource over the same state: a route that just succeeded must
    not show "never" on the landing page until its next run."""

    @server.route("/sse")
    async def sse(request):
        return await _stream(request, "text/event-stream", [b"data: 1\n\n"] * 3)

    await server.start()
    obs, state, config, _ = await run_one(server.url + "/sse")
    reloaded = ProbeSource(config, state)
    [row] = reloaded.targets()
    assert row.up is True and row.last_success == obs.at
