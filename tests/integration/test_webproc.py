"""The web process (webproc.py): /metrics, /-/ready, /-/reload and the landing page served by a
child that never parses or derives, fed by the main process over a socketpair.  Real child
processes, real HTTP, TLS and basic auth; the main process is either an Exporter in this test's
event loop (to reach its state) or `python -m ai_signals_exporter.cli` (signals, SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import bcrypt
import pytest

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import load_config
from ai_signals_exporter.webproc import WebProcess

from ..helpers.net import free_port
from ..helpers.wait import SCALE, wait_for
from ..reliability.test_auth import pki  # noqa: F401  (fixture)

RESTARTS = b"ai_signals_exporter_web_restarts_total"
CONFIG = "global: {{refresh_interval: 100ms}}\nserving:\n  targets: [{{url: 'http://127.0.0.1:{port}/metrics'}}]\n"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=free_port()))
    return path


@contextlib.asynccontextmanager
async def web_process(config: Path, web_config: Path | None = None) -> AsyncIterator[tuple[Exporter, WebProcess, str]]:
    exporter = Exporter(load_config(str(config)), str(config))
    await exporter.start()
    port = free_port()
    web = WebProcess(exporter, ("127.0.0.1", port), "/metrics", str(web_config) if web_config else None)
    try:
        await web.start()
        yield exporter, web, f"127.0.0.1:{port}"
    finally:
        await web.stop()
        await exporter.stop()


async def _get(s: aiohttp.ClientSession, url: str, **kw) -> tuple[int, bytes]:
    async with s.get(url, **kw) as r:
        return r.status, await r.read()


async def test_routes_answer_from_the_child_and_reload_is_forwarded(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with web_process(config) as (exporter, web, addr), aiohttp.ClientSession() as s:
        assert web.pid and web.pid != os.getpid()
        base = f"http://{addr}"

        async def served_latest() -> bool:
            status, body = await _get(s, base + "/metrics", headers={"Accept-Encoding": "identity"})
            return status == 200 and body == exporter.exposition.body

        # The child serves exactly the bytes the main process rendered (a new refresh every 100 ms).
        await wait_for_async(served_latest)
        async with s.get(base + "/metrics") as r:  # aiohttp asks for gzip and inflates it
            assert r.headers["Content-Encoding"] == "gzip"
            assert RESTARTS + b" 0" in await r.read()
        await wait_for_async(lambda: _status_is(s, base + "/-/ready", 200))
        status, landing = await _get(s, base + "/")
        assert status == 200 and b"serving" in landing and config.read_text().split("'")[1].encode() in landing

        # POST /-/reload is answered by the main process's reload.
        async with s.post(base + "/-/reload") as r:
            assert (r.status, await r.text()) == (200, "config unchanged\n")
        config.write_text("global: {refresh_interval: 100ms}\n")
        async with s.post(base + "/-/reload") as r:
            assert (r.status, await r.text()) == (200, "config reloaded\n")
        assert exporter.config.serving.targets == []
        config.write_text("global: {refresh_interval: 100ms, bogus: 1}\n")
        async with s.post(base + "/-/reload") as r:
            text = await r.text()
            assert r.status == 500 and "bogus" in text, text

        async def reload_failed_shows() -> bool:
            _, body = await _get(s, base + "/metrics")
            return b"ai_signals_exporter_config_last_reload_successful 0" in body

        await wait_for_async(reload_failed_shows)


async def test_a_killed_web_process_is_restarted_and_counted(tmp_path: Path) -> None:
    async with web_process(_config(tmp_path)) as (exporter, web, addr), aiohttp.ClientSession() as s:
        first = web.pid
        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: web.pid != first and web.proc.returncode is None, timeout=15)

        async def restart_counted() -> bytes | None:
            with contextlib.suppress(aiohttp.ClientError):
                status, body = await _get(s, f"http://{addr}/metrics")
                # RSS is sampled every second or so: the first body after the restart may still
                # carry the sample taken while the web process was dead.
                if status == 200 and RESTARTS + b" 1" in body and b'{process="web"}' in body:
                    return body
            return None

        body = await wait_for_async(restart_counted)
        for process in (b"main", b"web"):
            assert b'ai_signals_exporter_process_resident_memory_bytes{process="%s"}' % process in body
        assert exporter.state.selfmon.web_restarts == 1


async def test_a_blocked_main_process_does_not_delay_a_scrape(tmp_path: Path) -> None:
    """The main event loop is held (as a long derive would hold it) until a scrape completes:
    with /metrics served in-process this would deadlock; from the web process it completes."""
    async with web_process(_config(tmp_path)) as (exporter, web, addr):
        await wait_for(lambda: exporter.ready, timeout=10)
        done = threading.Event()
        got: list[bytes] = []

        def scrape() -> None:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
                got.append(r.read())
            done.set()

        threading.Thread(target=scrape, daemon=True).start()
        assert done.wait(timeout=10), "the scrape waited for the main process's event loop"
        assert b"ai_signals_exporter_build_info" in got[0]


async def test_tls_and_basic_auth_through_the_web_process(tmp_path: Path, pki: Path) -> None:  # noqa: F811
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=10)).decode()
    (pki / "web.yaml").write_text(
        f"tls_server_config: {{cert_file: server.crt, key_file: server.key}}\n"
        f"basic_auth_users: {{prom: '{hashed}'}}\n")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    async with web_process(_config(tmp_path), pki / "web.yaml") as (_, _, addr), aiohttp.ClientSession() as s:
        https = f"https://{addr}/metrics"
        assert (await _get(s, https, ssl=ctx))[0] == 401
        assert (await _get(s, https, ssl=ctx, auth=aiohttp.BasicAuth("prom", "guess")))[0] == 401
        status, body = await _get(s, https, ssl=ctx, auth=aiohttp.BasicAuth("prom", "secret"))
        assert status == 200 and b"ai_signals_exporter_build_info" in body
        with pytest.raises(aiohttp.ClientError):
            await _get(s, f"http://{addr}/metrics")


def test_the_web_process_does_not_load_sources_signals_or_config_models(tmp_path: Path) -> None:
    # pydantic + the config models are ~12 MB of a process that only serves bytes (issue 12).
    code = ("import sys, ai_signals_exporter.webproc, ai_signals_exporter.webconfig as w; "
            "w.load_web_config(sys.argv[1]); print(sorted(sys.modules))")
    web_yaml = tmp_path / "web.yaml"
    web_yaml.write_text("basic_auth_users: {prom: '$2b$10$" + "a" * 53 + "'}\n")
    out = subprocess.run([sys.executable, "-c", code, str(web_yaml)], capture_output=True, text=True,
                         check=True).stdout
    for heavy in ("ai_signals_exporter.app", "ai_signals_exporter.areas", "ai_signals_exporter.signals",
                  "ai_signals_exporter.sources", "ai_signals_exporter.expo", "ai_signals_exporter.config",
                  "pydantic", "pydantic_core"):
        assert f"'{heavy}" not in out, out
    assert "'ai_signals_exporter.webconfig'" in out and "'ai_signals_exporter.errors'" in out


# -- the command line: signals to the main process, and its death ------------------------------


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@contextlib.asynccontextmanager
async def cli(config: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, str]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai_signals_exporter.cli", f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as s:
            await wait_for_async(lambda: _status_is(s, base + "/-/healthy", 200), timeout=20)
        (child,) = _children(proc.pid)
        yield proc, child, base
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_sighup_reloads_and_sigterm_stops_both_processes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    async with cli(config) as (proc, child, base), aiohttp.ClientSession() as s:
        config.write_text("global: {refresh_interval: 100ms, bogus: 1}\n")
        proc.send_signal(signal.SIGHUP)

        async def rejected() -> bool:
            _, body = await _get(s, base + "/metrics")
            return b"ai_signals_exporter_config_last_reload_successful 0" in body

        await wait_for_async(rejected)
        os.kill(child, signal.SIGHUP)  # sent to the web process: forwarded, same answer
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), timeout=12)
        out = (await proc.stdout.read()).decode()
        assert rc == 0, out[-3000:]
        assert "Traceback" not in out, out[-3000:]
        await wait_for(lambda: not _alive(child), timeout=5)


async def test_the_web_process_exits_when_the_main_process_is_killed(tmp_path: Path) -> None:
    async with cli(_config(tmp_path)) as (proc, child, base):
        proc.kill()
        await proc.wait()
        await wait_for(lambda: not _alive(child), timeout=15, what="web process gone after its parent")


# -- helpers -----------------------------------------------------------------------------------


async def _status_is(s: aiohttp.ClientSession, url: str, status: int) -> bool:
    try:
        return (await _get(s, url))[0] == status
    except aiohttp.ClientError:
        return False


async def wait_for_async(check, timeout: float = 10.0):
    """wait_for with an async condition."""
    result: list = []

    async def poll() -> None:
        while not (value := await check()):
            await asyncio.sleep(0.05)
        result.append(value)

    try:
        await asyncio.wait_for(poll(), timeout * SCALE)
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout}s: {check}") from None
    return result[0]
