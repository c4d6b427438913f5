"""The streaming probe behind REAL nginx and haproxy, started by the tests.

Every case runs one probe run (ingress through the proxy, direct to the backend, concurrently) and
checks the exporter's verdict and buffering delay against ground truth: the backend's own send
times of the tokens of the ingress request versus the probe client's arrival times (plus how
much later the proxy delivered the request to the backend than the direct route did).  Both are this
process's `time.monotonic()`; the probe's phase times are offsets from its route's own start,
recorded exactly (tests/helpers/probe_clock.py).

Loaded machines (the suite runs again under a CPU hog): each phase is checked against the event
that causes it (a send of the backend, or another phase of the same response), not against an
absolute time since the run started, which also holds connect and request forwarding.  Where a
margin is needed it is TOL stretched by TEST_TIMEOUT_SCALE but capped at half the configured delay
that tells the cases apart (TTFT, the token interval, the kernel's cork limit, the threshold).
Streams last about 1.2 s (first token at 0.3 s, 10 tokens at 10/s) so the module stays fast; the
buffering threshold is 0.5 s accordingly.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from aiohttp import web

from ai_signals_exporter.config import Config, Probe
from ai_signals_exporter.signals.streaming import derive
from ai_signals_exporter.sim.streaming import StreamingBackend, StreamPlan
from ai_signals_exporter.sources.probes import ProbeSource
from ai_signals_exporter.state import AppState
from tests.helpers.probe_clock import arrival, record_route_starts
from tests.helpers.proxies import astart_haproxy, astart_nginx
from tests.helpers.tolerance import margin

pytestmark = pytest.mark.timing

TOL = 0.1  # loopback plus scheduling on an idle 2-core machine
TTFT, TOKENS, TPS = 0.3, 10, 10.0
GAP = 1 / TPS  # the backend's token interval
STREAM_SPAN = (TOKENS - 1) * GAP  # first to last token: 0.9 s
THRESHOLD = 0.5  # the probes' buffering_threshold
CORK = 0.2  # Linux holds MSG_MORE data at most this long
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


@pytest.fixture
def starts(monkeypatch):
    return record_route_starts(monkeypatch)


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
            buffering_threshold=f"{THRESHOLD * 1000:g}ms",
        )
        config = Config(probes=[probe])
        state = AppState()
        source = ProbeSource(config, state)
        try:
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
    return obs, verdict, state


def _true_delay(obs, backend, starts) -> float:
    """How long the proxy held the first token back: client arrival of the first event minus
    the backend's send of the first token, for the request that went through the proxy."""
    return arrival(starts, obs.ingress) - backend.last("ingress").first_send


def _forwarding(backend, starts) -> float:
    """How much later the ingress request reached the backend than the direct one, each from
    its own route's start: the proxy's part of the delay before the backend's first token (a
    descheduled proxy on a loaded machine adds it; the probe rightly counts it)."""
    return (backend.last("ingress").received - starts["ingress"]) - (
        backend.last("direct").received - starts["direct"]
    )


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
async def test_verdict_and_delay_match_ground_truth(case, backend, starts):
    kind, directives, query, expect_buffered, encoding, headers_at = CASES[case]
    obs, verdict, _ = await _probe_through(kind, directives, backend, query)
    m, direct = obs.ingress, obs.direct
    assert m.ok and direct.ok, (m.reason, direct.reason)
    assert m.encoding == encoding
    assert m.chunks == TOKENS and direct.chunks == TOKENS
    sent = backend.last("ingress")
    truth = _true_delay(obs, backend, starts)
    assert verdict["buffered"] == [1.0 if expect_buffered else 0.0]
    delay = truth + _forwarding(backend, starts)
    assert verdict["delay"][0] == pytest.approx(delay, abs=margin(TOL, THRESHOLD / 2))
    # When the response headers arrived: as the backend sent them, or only with the first token,
    # or only after the last one (each against what the backend actually did, which a loaded
    # machine can make late).
    headers = arrival(starts, m, "ttfb")
    if headers_at == "start":
        assert abs(headers - sent.headers_at) < margin(TOL, TTFT / 2)
        assert headers < sent.first_send
    else:
        assert headers >= (sent.first_send if headers_at == "first" else sent.sends[-1])
        assert m.first_chunk - m.ttfb < margin(TOL, TTFT / 2)  # with the first event
    if expect_buffered:
        # Held to the end: the first event arrives once the backend sent the last token, and
        # all events as one burst, against the backend's pace on the direct route.
        assert 0 <= arrival(starts, m) - sent.sends[-1] < margin(TOL, STREAM_SPAN / 2)
        assert m.max_gap < direct.max_gap / 2
    else:
        assert 0 <= truth < margin(TOL, CORK / 2)
        # Paced like the direct route: no gap larger than the backend's by a cork's worth.
        assert m.max_gap == pytest.approx(direct.max_gap, abs=margin(TOL, CORK / 2))
        assert m.max_gap >= GAP / 2


async def test_gzip_header_bytes_come_before_any_event(backend, starts):
    """With gzip and no buffering, nginx sends the 10-byte gzip header at once and each event
    compressed later: the first *body bytes* come ~TTFT before the first decodable event, which is
    why the probe times decoded events, not raw bytes."""
    obs, verdict, _ = await _probe_through("nginx", "proxy_buffering off; " + GZIP_SSE, backend)
    m = obs.ingress
    sent = backend.last("ingress")
    assert m.encoding == "gzip"
    # Body bytes with the headers, before the backend sent any token...
    assert abs(arrival(starts, m, "first_body") - sent.headers_at) < margin(TOL, TTFT / 2)
    assert arrival(starts, m, "first_body") < sent.first_send
    # ...the first decodable event only with the first token, as on the direct route.
    assert 0 <= arrival(starts, m) - sent.first_send < margin(TOL, TTFT / 2)
    direct = backend.last("direct")
    assert 0 <= arrival(starts, obs.direct) - direct.first_send < margin(TOL, TTFT / 2)


async def test_haproxy_gzip_holds_each_event_until_the_next(backend, starts):
    """haproxy 2.6 compression with `option http-no-delay`: each compressed piece goes out at once,
    but without a deflate flush, so the tail of every event stays inside the compressor until the
    next event pushes it out.  The raw bytes arrive on time; the *decodable* first event one token
    interval later — what a browser sees, and what the probe reports (not buffered at 0.5 s)."""
    obs, verdict, _ = await _probe_through(
        "haproxy", "option http-no-delay\n    " + HAPROXY_GZIP, backend
    )
    m = obs.ingress
    assert m.ok and m.encoding == "gzip" and m.chunks == TOKENS
    sent = backend.last("ingress")
    # Raw bytes between the first and the second token's send (on time); the first event
    # decodable only once the second token was sent, and before the third.
    assert sent.sends[0] <= arrival(starts, m, "first_body") < sent.sends[1]
    assert sent.sends[1] <= arrival(starts, m) < sent.sends[2]
    truth = _true_delay(obs, backend, starts)
    delay = truth + _forwarding(backend, starts)
    assert verdict["delay"][0] == pytest.approx(delay, abs=margin(TOL, THRESHOLD / 2))
    assert verdict["buffered"] == [0.0]


@pytest.mark.parametrize(
    "directives", ["", HAPROXY_GZIP], ids=["haproxy-default", "haproxy-gzip"]
)
async def test_haproxy_default_delays_by_coalescing(directives, backend, starts):
    """haproxy 2.6 without `option http-no-delay` sends with MSG_MORE while the response is not
    finished, so the kernel holds small events up to its 200 ms cork limit: a measurable delay,
    below the 0.5 s threshold, not a buffered stream.  Same with compression."""
    obs, verdict, _ = await _probe_through("haproxy", directives, backend)
    assert obs.ingress.ok and obs.direct.ok
    assert obs.ingress.encoding == ("gzip" if directives else "")
    truth = _true_delay(obs, backend, starts)
    assert CORK / 2 < truth < CORK + margin(TOL, (THRESHOLD - CORK) / 2)
    delay = truth + _forwarding(backend, starts)
    assert verdict["delay"][0] == pytest.approx(delay, abs=margin(TOL, THRESHOLD / 2))
    assert verdict["buffered"] == [0.0]
    assert obs.ingress.max_gap > obs.direct.max_gap + GAP / 2  # events merged into bursts


@pytest.mark.parametrize(
    "kind,directives",
    [
        ("nginx", "proxy_buffering off; proxy_read_timeout 500ms;"),
        ("nginx", "proxy_buffering on; proxy_read_timeout 500ms;"),
        ("haproxy", "timeout server 500ms"),
    ],
    ids=["nginx-unbuffered", "nginx-buffered", "haproxy"],
)
async def test_short_read_timeout_cuts_slow_first_token(kind, directives, backend, starts):
    """A first token slower than the proxy's read timeout: the proxy has already sent 200 and
    headers, then closes the connection mid-body.  The probe reports failure `reset` on the
    ingress route at the timeout, the direct route succeeds, and no buffering verdict is made."""
    read_timeout, ttft = 0.5, 1.2
    obs, verdict, state = await _probe_through(kind, directives, backend, f"&ttft={ttft}&tokens=3")
    m = obs.ingress
    assert not m.ok and m.reason == "reset" and m.status == 200
    assert m.first_chunk is None and m.chunks == 0
    # Cut the read timeout after the proxy sent the request on (when the backend received it):
    # not before, and nearer to it than to the first token (the proxy's timer runs in another
    # process, which a loaded machine schedules late).
    cut = arrival(starts, m, "duration") - backend.last("ingress").received
    assert read_timeout - TOL / 2 < cut < (read_timeout + ttft) / 2
    assert backend.last("ingress").sends == [] or backend.last("ingress").aborted
    direct = backend.last("direct")
    assert obs.direct.ok and obs.direct.first_chunk >= ttft
    assert 0 <= arrival(starts, obs.direct) - direct.first_send < margin(TOL, ttft / 2)
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
    span = 19 / 40  # the backend's schedule, first to last of 20 events at 40/s
    assert len(arrivals) == 20
    assert 0 <= arrivals[0] - sent.first_send < margin(TOL, span / 2)  # the first event on time
    assert sent.finished - sent.first_send == pytest.approx(span, abs=margin(TOL, span / 2))
    assert arrivals[-1] - sent.sends[-1] > 0.2  # the reader, not the proxy, is the bottleneck
