"""SIGTERM while every kind of source is mid-flight: the real process exits 0 within the grace
period, having logged the shutdown and no traceback."""

from __future__ import annotations

import pytest

import asyncio
import signal
import sys
import time
from pathlib import Path

import aiohttp

from ai_signals_exporter.server import SHUTDOWN_GRACE_SECONDS
from ai_signals_exporter.sim.objects import make_node

from ..helpers.kube import running_kube_api
from ..helpers.net import free_port
from ..helpers.faultserver import FaultServer, byte_by_byte, hang, VLLM_PAYLOAD

# Timing-sensitive: also run under a CPU hog by scripts/test (-m timing).
pytestmark = pytest.mark.timing


async def _wait_http(url: str, timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return await r.read()
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} not answering within {timeout}s")
            await asyncio.sleep(0.1)


async def _run_and_terminate(tmp_path: Path, config: str, busy: callable) -> tuple[int, float, str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai_signals_exporter.cli", f"--config.file={cfg}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=debug",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await _wait_http(f"http://127.0.0.1:{port}/-/healthy")
        await asyncio.wait_for(busy(), timeout=20)  # every source is in the middle of its I/O
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), timeout=SHUTDOWN_GRACE_SECONDS + 5)
        elapsed = time.monotonic() - t0
        print(f"SIGTERM to exit: {elapsed:.2f} s, exit code {rc}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out = (await proc.stdout.read()).decode()
    return rc, elapsed, out


async def test_sigterm_with_scrapes_probe_and_watch_in_flight(tmp_path: Path) -> None:
    hang_srv, dribble_srv, probe_srv = (
        FaultServer(hang()), FaultServer(byte_by_byte(VLLM_PAYLOAD, 0.05)), FaultServer(hang()))
    async with (
        running_kube_api() as api,
        hang_srv as hanging,
        dribble_srv as dribbling,
        probe_srv as probe_target,
    ):
        api.add(make_node("gpu-1"))
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        config = f"""
global: {{refresh_interval: 100ms}}
kubernetes: {{enabled: true, kubeconfig: {kubeconfig}, watch_timeout: 5m}}
serving:
  interval: 30s
  window: 60s
  timeout: 25s
  targets: [{{url: "{hanging}/metrics"}}, {{url: "{dribbling}/metrics"}}]
gpu: {{interval: 30s, timeout: 25s, dcgm_targets: [{{url: "{hanging}/dcgm"}}]}}
probes: [{{name: chat, url: "{probe_target}/v1/completions", interval: 30s, timeout: 25s}}]
"""

        async def busy() -> None:
            # Both watches open, serving + dcgm hanging, one dribbling, the probe waiting.
            while not (api.watch_count() >= 2 and len(hang_srv._tasks) >= 2
                       and dribble_srv._tasks and probe_srv._tasks):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # a few refreshes while everything hangs

        rc, elapsed, out = await _run_and_terminate(tmp_path, config, busy)
    assert rc == 0, out[-3000:]
    assert elapsed < SHUTDOWN_GRACE_SECONDS, (elapsed, out[-3000:])
    assert "shutting down" in out
    assert "Traceback" not in out, out[-3000:]


async def test_sigterm_while_the_api_server_is_down_at_start(tmp_path: Path) -> None:
    """Start-up retries (kube list backoff) do not delay a clean exit."""
    async with running_kube_api() as api:
        api.set_down(True)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        config = (f"global: {{refresh_interval: 100ms}}\n"
                  f"kubernetes: {{enabled: true, kubeconfig: {kubeconfig}, backoff_max: 30s}}\n")

        async def busy() -> None:
            while not any(v == "unavailable" for v, _, _ in api.requests):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)

        rc, elapsed, out = await _run_and_terminate(tmp_path, config, busy)
    assert rc == 0, out[-3000:]
    assert elapsed < 3, elapsed
    assert "Traceback" not in out, out[-3000:]
