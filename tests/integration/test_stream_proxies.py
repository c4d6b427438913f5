"""The streaming probe behind REAL nginx and haproxy, started by the tests.

Every case runs one probe run (ingress through the proxy, direct to the backend, concurrently) and
checks the exporter's verdict and buffering delay against ground truth: the backend's own send
time of the first token of the ingress request versus the probe client's arrival time of the
first event.  Both clocks are this process's `time.monotonic()`.

Tolerance TOL = 0.1 s: everything is on loopback and the backend's time to first token is
deterministic, so the only error is event-loop and process scheduling on a loaded 2-core machine.
Streams last about 1.2 s (first token at 0.3 s, 10 tokens at 10/s) so the module stays fast; the
buffering threshold is 0.5 s accordingly.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp import web

from ai_signals_exporter.config import Probe
from ai_signals_exporter.signals.streaming import derive
from ai_signals_exporter.config import Config
from ai_signals_exporter.sim.streaming import StreamingBackend, StreamPlan
from ai_signals_exporter.sources.probes import ProbeSource
from ai_signals_exporter.state import AppState
from tests.helpers.proxies import astart_haproxy, astart_nginx

TOL = 0.1
TTFT, TOKENS, TPS = 0.3, 10, 10.0
STREAM_SPAN = (TOKENS - 1) / TPS  # first to last token: 0.9 s
GZIP_SSE = "gzip on; gzip_types text/event-stream; gzip_min_length 0;"
HAPROXY_GZIP = "compression algo gzip\n    compression type text/event-stream"


@pytest.fixture
async def backend():
    be = StreamingBackend(StreamPlan(ttft=TTFT, tokens=TOKENS, tokens_per_second=TPS))
    runner = web.AppRunner(be.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    be.port = site._server.sockets[0].getsockname()[1]
    yield be
    await runner.cleanup()


async def _probe_through(kind: str, directives: str, backend, query: str = "", timeout="5s"):
    start = astart_nginx if kind == "nginx" else astart_haproxy
    proxy = await start(backend.port, directives)
    try:
        probe = Probe(
            name="chat",
            url=f"{proxy.base_url}/v1/completions?key=ingress{query}",
            direct_url=f"http://127.0.0.1:{backend.port}/v1/completions?key=direct{query}",
            body='{"model":"sim","prompt":"hi","stream":true}',
            interval="10s",
            timeout=timeout,
            buffering_threshold="500ms",
        )
        config = Config(probes=[probe])
        state = AppState()
        source = ProbeSource(config, state)
        try:
            t_before = time.monotonic()
            obs = await source.run_probe(probe)
        finally:
            await source.close()
    finally:
        proxy.stop()
    fams = {f.name: f for f in derive(state, config, time.time())}
    verdict = {
        "buffered": [s[2] for s in fams["ai_stream_buffered"].samples],
        "delay": [s[2] for s in fams["ai_stream_buffering_delay_seconds"].samples],
    }
    return obs, verdict, state, t_before


def _true_delay(obs, backend, t_before) -> float:
    """Client arrival of the first event minus the backend's send of the first token, for the
    request that went through the proxy."""
    sent = backend.last("ingress")
    return (t_before + obs.ingress.first_chunk) - sent.first_send


CASES = {
    # id: (kind, directives, query, expect buffered, encoding, response headers arrive at
    #      "start" (at once), "first" (with the first event) or "end" (with the whole body))
    "nginx-buffering-on-http11": ("nginx", "proxy_buffering on;", "", False, "", "first"),
    "nginx-buffering-off": ("nginx", "proxy_buffering off;", "", False, "", "start"),
    "nginx-buffering-on-http10": (
        "nginx", "proxy_http_version 1.0; proxy_buffering on;", "", True, "", "end",
    ),
    "nginx-buffering-on-http10-x-accel-no": (
        "nginx", "proxy_http_version 1.0; proxy_buffering on;", "&xab=no", False, "", "start",
    ),
    "nginx-gzip-sse": ("nginx", "proxy_buffering on; " + GZIP_SSE, "", True, "gzip", "end"),
    "nginx-gzip-sse-x-accel-no": (
        "nginx", "proxy_buffering on; " + GZIP_SSE, "&xab=no", False, "gzip", "start",
    ),
    "nginx-gzip-sse-buffering-off": (
        "nginx", "proxy_buffering off; " + GZIP_SSE, "", False, "gzip", "start",
    ),
    "haproxy-no-delay": ("haproxy", "option http-no-delay", "", False, "", "start"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_verdict_and_delay_match_ground_truth(case, backend):
    kind, directives, query, expect_buffered, encoding, headers_at = CASES[case]
    obs, verdict, state, t_before = await _probe_through(kind, directives, backend, query)
    assert obs.ingress.ok and obs.direct.ok, (obs.ingress.reason, obs.direct.reason)
    assert obs.ingress.encoding == encoding
    assert obs.ingress.chunks == TOKENS and obs.direct.chunks == TOKENS
    truth = _true_delay(obs, backend, t_before)
    assert verdict["buffered"] == [1.0 if expect_buffered else 0.0]
    assert verdict["delay"][0] == pytest.approx(truth, abs=TOL)
    ttfb = obs.ingress.ttfb
    expected_ttfb = {"start": 0.0, "first": TTFT, "end": TTFT + STREAM_SPAN}[headers_at]
    assert ttfb == pytest.approx(expected_ttfb, abs=TOL)
    if expect_buffered:
        # Held to the end: the first event arrives when the backend sent the last token.
        assert truth == pytest.approx(STREAM_SPAN, abs=TOL)
        assert obs.ingress.max_gap < TOL
    else:
        assert abs(truth) < TOL
        assert obs.ingress.max_gap == pytest.approx(1 / TPS, abs=TOL)


async def test_gzip_header_bytes_come_before_any_event(backend):
    """With gzip and no buffering, nginx sends the 10-byte gzip header at once and each event
    compressed later: the first *body bytes* come ~TTFT before the first decodable event, which is
    why the probe times decoded events, not raw bytes."""
    obs, verdict, _, _ = await _probe_through("nginx", "proxy_buffering off; " + GZIP_SSE, backend)
    m = obs.ingress
    assert m.encoding == "gzip"
    assert m.first_body < 0.1
    assert m.first_chunk == pytest.approx(obs.direct.first_chunk, abs=TOL)
    assert m.first_chunk - m.first_body > TTFT - TOL


async def test_haproxy_gzip_holds_each_event_until_the_next(backend):
    """haproxy 2.6 compression with `option http-no-delay`: each compressed piece goes out at once,
    but without a deflate flush, so the tail of every event stays inside the compressor until the
    next event pushes it out.  The raw bytes arrive on time; the *decodable* first event one token
    interval later — what a browser sees, and what the probe reports (not buffered at 0.5 s)."""
    obs, verdict, _, t_before = await _probe_through(
        "haproxy", "option http-no-delay\n    " + HAPROXY_GZIP, backend
    )
    m = obs.ingress
    assert m.ok and m.encoding == "gzip" and m.chunks == TOKENS
    truth = _true_delay(obs, backend, t_before)
    assert truth == pytest.approx(1 / TPS, abs=TOL / 2)
    assert verdict["delay"][0] == pytest.approx(truth, abs=TOL)
    assert verdict["buffered"] == [0.0]
    assert m.first_body == pytest.approx(obs.direct.first_chunk, abs=TOL / 2)  # bytes on time


@pytest.mark.parametrize(
    "directives", ["", HAPROXY_GZIP], ids=["haproxy-default", "haproxy-gzip"]
)
async def test_haproxy_default_delays_by_coalescing(directives, backend):
    """haproxy 2.6 without `option http-no-delay` sends with MSG_MORE while the response is not
    finished, so the kernel holds small events up to its 200 ms cork limit: a measurable delay,
    below the 0.5 s threshold, not a buffered stream.  Same with compression."""
    obs, verdict, _, t_before = await _probe_through("haproxy", directives, backend)
    assert obs.ingress.ok and obs.direct.ok
    assert obs.ingress.encoding == ("gzip" if directives else "")
    truth = _true_delay(obs, backend, t_before)
    assert 0.1 < truth < 0.45
    assert verdict["delay"][0] == pytest.approx(truth, abs=TOL)
    assert verdict["buffered"] == [0.0]
    assert obs.ingress.max_gap > obs.direct.max_gap + 0.1  # events merged into bursts


@pytest.mark.parametrize(
    "kind,directives",
    [
        ("nginx", "proxy_buffering off; proxy_read_timeout 500ms;"),
        ("nginx", "proxy_buffering on; proxy_read_timeout 500ms;"),
        ("haproxy", "timeout server 500ms"),
    ],
    ids=["nginx-unbuffered", "nginx-buffered", "haproxy"],
)
async def test_short_read_timeout_cuts_slow_first_token(kind, directives, backend):
    """A first token slower than the proxy's read timeout: the proxy has already sent 200 and
    headers, then closes the connection mid-body.  The probe reports failure `reset` on the
    ingress route at the timeout, the direct route succeeds, and no buffering verdict is made."""
    obs, verdict, state, _ = await _probe_through(kind, directives, backend, "&ttft=1.2&tokens=3")
    m = obs.ingress
    assert not m.ok and m.reason == "reset" and m.status == 200
    assert m.first_chunk is None and m.chunks == 0
    assert m.duration == pytest.approx(0.5, abs=TOL)
    assert backend.last("ingress").sends == [] or backend.last("ingress").aborted
    assert obs.direct.ok and obs.direct.first_chunk == pytest.approx(1.2, abs=TOL)
    assert verdict == {"buffered": [], "delay": []}
    assert state.selfmon.errors[("probes", "reset")] == 1
    assert state.selfmon.targets[("probes", "chat/ingress")] is False
    assert state.selfmon.targets[("probes", "chat/direct")] is True


async def _slow_reader(port: int, path: str, pause: float) -> tuple[float, list[float]]:
    """A client with a 2 KiB receive buffer that reads 1 KiB then sleeps: the proxy's writes to
    it block.  Returns its start time and the arrival time of each event."""
    loop = asyncio.get_running_loop()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setblocking(False)
    t0 = time.monotonic()
    try:
        await loop.sock_connect(s, ("127.0.0.1", port))
        req = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        await loop.sock_sendall(s, req.encode())
        buf, arrivals = b"", []
        while True:
            data = await loop.sock_recv(s, 1024)
            if not data:
                break
            buf += data
            arrivals += [time.monotonic()] * (buf.count(b"data: {") - len(arrivals))
            await asyncio.sleep(pause)
    finally:
        s.close()
    return t0, arrivals


@pytest.mark.parametrize("buffering", ["on", "off"])
async def test_nginx_buffering_with_a_slow_client(buffering, backend):
    """Measured, not assumed: with HTTP/1.1 to the upstream, a slow client gets its first event on
    time whether proxy_buffering is on or off, and the backend is not held back either way
    (40 KB of events fit in the socket buffers); only the client's own reading spreads the rest."""
    proxy = await astart_nginx(backend.port, f"proxy_buffering {buffering};")
    try:
        path = "/v1/completions?key=slow&pad=2000&tokens=20&tps=40"
        t0, arrivals = await _slow_reader(proxy.port, path, 0.03)
    finally:
        proxy.stop()
    sent = backend.last("slow")
    assert len(arrivals) == 20
    assert arrivals[0] - sent.first_send == pytest.approx(0, abs=TOL)
    assert sent.finished - sent.first_send == pytest.approx(19 / 40, abs=TOL)  # on schedule
    assert arrivals[-1] - sent.sends[-1] > 0.2  # the reader, not the proxy, is the bottleneck
