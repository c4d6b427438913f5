"""The HTTP surface over real sockets: cached /metrics with gzip, health, readiness, reload,
landing page, and the exporter-toolkit web config (basic auth, TLS)."""

from __future__ import annotations

import asyncio
import gzip
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import load_config_text
from ai_signals_exporter.server import make_app
from ai_signals_exporter.webconfig import load_web_config

from ..helpers.net import free_port, run_app, wait_http
from ..helpers.wait import wait_until


async def test_metrics_cached_gzip_health_ready(tmp_path: Path) -> None:
    exporter = Exporter(load_config_text("global: {refresh_interval: 100ms}"))
    await exporter.start()
    async with run_app(make_app(exporter)) as base, aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(base + "/metrics", headers={"Accept-Encoding": "identity"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            plain = await r.read()
        assert b'ai_signals_exporter_build_info{version="' in plain
        async with s.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await r.read()) == exporter.exposition.body
        # Scrapes serve the same bytes until the next refresh: no recomputation per scrape.
        before = exporter.refresh_count
        for _ in range(20):
            async with s.get(base + "/metrics") as r:
                await r.read()
        assert exporter.refresh_count - before <= 2
        async with s.get(base + "/-/healthy") as r:
            assert r.status == 200
        for _ in range(50):
            async with s.get(base + "/-/ready") as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.05)
        assert r.status == 200
        async with s.get(base + "/") as r:
            page = await r.text()
            assert "ai-signals-exporter" in page and 'href="/metrics"' in page
    await exporter.stop()


async def test_reload_bad_config_keeps_old_one(tmp_path: Path) -> None:
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text("serving: {interval: 5s, window: 30s}\n")
    exporter = Exporter(load_config_text(cfg_file.read_text()), str(cfg_file))
    await exporter.start()
    async with run_app(make_app(exporter)) as base, aiohttp.ClientSession() as s:
        cfg_file.write_text("serving: {interval: 5s, windw: 30s}\n")
        async with s.post(base + "/-/reload") as r:
            assert r.status == 500
            assert "serving.windw: unknown key" in await r.text()
        assert exporter.config.serving.window == 30
        exporter.refresh()
        assert b"ai_signals_exporter_config_last_reload_successful 0" in exporter.exposition.body
        cfg_file.write_text("serving: {interval: 5s, window: 60s}\n")
        async with s.post(base + "/-/reload") as r:
            assert r.status == 200
        assert exporter.config.serving.window == 60
        exporter.refresh()
        assert b"ai_signals_exporter_config_last_reload_successful 1" in exporter.exposition.body
    await exporter.stop()


def _make_cert(tmp_path: Path) -> tuple[Path, Path]:
    key, crt = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return crt, key


async def test_web_config_tls_and_basic_auth(tmp_path: Path) -> None:
    crt, key = _make_cert(tmp_path)
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web_cfg_file = tmp_path / "web.yaml"
    web_cfg_file.write_text(
        f"tls_server_config: {{cert_file: server.crt, key_file: server.key}}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    web_cfg = load_web_config(str(web_cfg_file))
    exporter = Exporter(load_config_text(""))
    exporter.refresh()
    client_ctx = ssl.create_default_context(cafile=str(crt))
    async with run_app(make_app(exporter, web_config=web_cfg), ssl_context=web_cfg.ssl_context()) as base:
        https = base.replace("http://", "https://")
        async with aiohttp.ClientSession() as s:
            async with s.get(https + "/metrics", ssl=client_ctx,
                             auth=aiohttp.BasicAuth("prometheus", "s3cret")) as r:
                assert r.status == 200
                assert b"ai_signals_exporter_build_info" in await r.read()
            async with s.get(https + "/metrics", ssl=client_ctx,
                             auth=aiohttp.BasicAuth("prometheus", "wrong")) as r:
                assert r.status == 401
            async with s.get(https + "/metrics", ssl=client_ctx) as r:
                assert r.status == 401
                assert "Basic" in r.headers["WWW-Authenticate"]
            # Plain HTTP to a TLS port is rejected, never served.
            with pytest.raises(aiohttp.ClientError):
                async with s.get(base + "/metrics", auth=aiohttp.BasicAuth("prometheus", "s3cret")) as r:
                    assert r.status != 200


def test_web_config_rejects_plaintext_password(tmp_path: Path) -> None:
    from ai_signals_exporter.config import ConfigError

    f = tmp_path / "web.yaml"
    f.write_text("basic_auth_users: {prometheus: hunter2}\n")
    with pytest.raises(ConfigError, match="basic_auth_users.prometheus: not a bcrypt hash"):
        load_web_config(str(f))


def test_process_sighup_reload_and_sigterm(tmp_path: Path) -> None:
    """The real process: SIGHUP reloads (a bad file keeps the old config), SIGTERM exits cleanly."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("global: {refresh_interval: 200ms}\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ai_signals_exporter.cli", f"--config.file={cfg}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.format=json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/-/healthy", timeout=20)
        cfg.write_text("global: {refresh_intervl: 200ms}\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b"ai_signals_exporter_config_last_reload_successful 0" in wait_http(base + "/metrics", timeout=5),
                   10, "the rejected reload to show in /metrics")
        assert proc.poll() is None  # a bad reload never kills the process
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
    assert '"level": "error"' in out and "global.refresh_intervl: unknown key" in out


async def test_reload_that_disables_a_source_drops_its_self_metrics(tmp_path: Path) -> None:
    """A source removed by a reload must not leave target_up 0 / a frozen last-success behind:
    AiSignalsTargetDown and AiSignalsSourceStale would page forever on a source that is gone."""
    dead = f"http://127.0.0.1:{free_port()}/v1/completions"  # nothing listens: connect fails
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(
        f"probes: [{{name: chat, url: '{dead}', interval: 100ms, timeout: 100ms}}]\n"
    )
    exporter = Exporter(load_config_text(cfg_file.read_text()), str(cfg_file))
    await exporter.start()
    try:
        for _ in range(100):
            if ("probes", "chat/ingress") in exporter.state.selfmon.targets:
                break
            await asyncio.sleep(0.02)
        body = exporter.refresh().body
        assert b'ai_signals_exporter_target_up{source="probes",target="chat/ingress"} 0' in body
        assert b'ai_signals_exporter_source_last_success_timestamp_seconds{source="probes"}' in body
        cfg_file.write_text("probes: []\n")
        ok, _ = await exporter.reload()
        assert ok
        body = exporter.refresh().body
        stale = [line for line in body.splitlines()
                 if b'source="probes"' in line and not line.startswith(b"ai_signals_exporter_errors_total")]
        assert stale == []
    finally:
        await exporter.stop()


async def test_shutdown_during_a_reload_leaves_no_source_running(tmp_path: Path) -> None:
    """SIGTERM while a SIGHUP reload is stopping the old sources: the reload must not start new
    sources after shutdown has stopped everything (orphaned tasks, unclosed sessions)."""
    dead = f"http://127.0.0.1:{free_port()}/v1/completions"
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(f"probes: [{{name: a, url: '{dead}', interval: 100ms, timeout: 100ms}}]\n")
    exporter = Exporter(load_config_text(cfg_file.read_text()), str(cfg_file))
    await exporter.start()
    cfg_file.write_text(f"probes: [{{name: b, url: '{dead}', interval: 100ms, timeout: 100ms}}]\n")
    reload = asyncio.create_task(exporter.reload())
    await asyncio.sleep(0)  # the reload is now waiting for the old sources to stop
    await exporter.stop()
    await reload
    running = [t for t in asyncio.all_tasks() if t.get_name().startswith("source:") and not t.done()]
    assert running == [] and exporter._tasks == []


async def test_reload_that_disables_an_area_drops_its_last_observations(tmp_path: Path) -> None:
    """Removing the last checkpoint store disables the checkpoint source; its last observation
    must go with it, or ai_checkpoint_age_seconds of a store nobody watches any more keeps
    growing and the stale-checkpoint alerts page forever."""
    from ..helpers.checkpoint_trees import CASES, build

    root = tmp_path / "run"
    build(next(c for c in CASES if c.id == "deepspeed-complete"), root, time.time() - 600)
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(f"checkpoints: {{interval: 100ms, timeout: 100ms, stores: [{{name: run, uri: 'file://{root}'}}]}}\n")
    exporter = Exporter(load_config_text(cfg_file.read_text()), str(cfg_file))
    await exporter.start()
    try:
        for _ in range(100):
            if "ai_checkpoint_age_seconds{" in exporter.refresh().body.decode():
                break
            await asyncio.sleep(0.02)
        assert b'ai_checkpoint_age_seconds{store="run"' in exporter.exposition.body
        cfg_file.write_text("checkpoints: {stores: []}\n")
        ok, _ = await exporter.reload()
        assert ok
        assert b"ai_checkpoint_" not in exporter.refresh().body
    finally:
        await exporter.stop()


async def test_default_listen_address_serves_ipv4_and_ipv6(tmp_path: Path) -> None:
    """`:9842` (and `0.0.0.0:9842`) means every interface, as for Go exporters, whose wildcard
    listener is dual-stack: in an IPv6-only cluster (EKS IPv6 mode) Prometheus scrapes the pod's
    IPv6 address, and an IPv4-only listener would make the exporter look down."""
    from ai_signals_exporter.cli import parse_listen_address
    from ai_signals_exporter.server import serve

    exporter = Exporter(load_config_text(""))
    exporter.refresh()
    port = free_port()
    runner = await serve(exporter, parse_listen_address(f":{port}"), "/metrics", None, asyncio.Event())
    try:
        async with aiohttp.ClientSession() as s:
            for host in ("127.0.0.1", "[::1]"):
                async with s.get(f"http://{host}:{port}/metrics") as r:
                    assert r.status == 200 and b"ai_signals_exporter_build_info" in await r.read()
    finally:
        await runner.cleanup()
