"""Probe request headers and the failure-reason mapping (pure parts of sources/probes.py)."""

from __future__ import annotations

import aiohttp
import pytest

from ai_signals_exporter.config import Probe
from ai_signals_exporter.selfmon import REASONS
from ai_signals_exporter.sources.probes import _failure_reason, build_headers, redact_url
from ai_signals_exporter.streaming import DecodeError, ParseError


def test_probe_headers_override_defaults_case_insensitively(tmp_path):
    key = tmp_path / "k"
    key.write_text("sk-1\n")
    probe = Probe(
        name="p", url="http://x/v1", body="{}",
        headers={"accept-encoding": "identity", "Authorization": {"file": str(key)}},
    )
    h = build_headers(probe)
    assert h["Authorization"] == "sk-1"  # resolved, stripped
    assert h["accept-encoding"] == "identity" and "Accept-Encoding" not in h
    assert h["Content-Type"] == "application/json"  # a body without a declared type
    assert "text/event-stream" in h["Accept"]
    no_body = build_headers(Probe(name="p", url="http://x/v1", method="GET"))
    assert "Content-Type" not in no_body and no_body["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    "exc,reason",
    [
        (TimeoutError(), "timeout"),
        (DecodeError("x"), "decode"),
        (ParseError("too_large"), "too_large"),
        (aiohttp.ClientPayloadError("cut"), "reset"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (ConnectionResetError(), "reset"),
        (OSError("boom"), "connect"),
        (ValueError("bad url"), "config"),
        (RuntimeError("bug"), "exception"),
    ],
)
def test_every_failure_maps_into_the_closed_reason_set(exc, reason):
    assert _failure_reason(exc) == reason
    assert reason in REASONS


@pytest.mark.parametrize(
    "url,shown",
    [
        ("http://user:pass@h/p?api_key=s", "http://h/p"),
        ("https://[::1]:8443/v1#frag", "https://[::1]:8443/v1"),
        ("http://h:99999/x", "<invalid url>"),
    ],
)
def test_landing_page_url_loses_credentials_and_query(url, shown):
    assert redact_url(url) == shown
