"""A simulated cluster: a Kubernetes test API server plus HTTP endpoints on 127.0.0.1.

Each simulated area (serving, GPUs, training, streaming) has an ``attach(cluster, **opts)``
coroutine that starts its servers, adds its pods and nodes to ``cluster.kube`` and extends
``cluster.config`` (the exporter config, as a dict).  Used by ``demo``, the e2e tests and the
benchmarks, so all three run the same code.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from ..config import Config
from .kubeapi import FakeKubeAPI


class SimCluster:
    def __init__(self, tmpdir: str | Path | None = None, *, kubernetes: bool = True) -> None:
        self._tmp = None
        if tmpdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ai-signals-sim-")
            tmpdir = self._tmp.name
        self.tmpdir = Path(tmpdir)
        self.kube = FakeKubeAPI(bookmark_interval=5.0)
        self.kubernetes = kubernetes
        self.config: dict[str, Any] = {
            "global": {"refresh_interval": "1s"},
            "serving": {"interval": "2s", "window": "20s", "targets": []},
            "gpu": {"interval": "2s", "idle_after": "30s", "dcgm_targets": []},
            "checkpoints": {"interval": "5s", "stores": []},
            "probes": [],
        }
        self._runners: list[web.AppRunner] = []
        self._closers: list[Any] = []

    async def start(self) -> "SimCluster":
        if self.kubernetes:
            await self.kube.start()
            kubeconfig = self.kube.write_kubeconfig(self.tmpdir / "kubeconfig")
            self.config["kubernetes"] = {"enabled": True, "kubeconfig": str(kubeconfig)}
        return self

    async def serve(self, app: web.Application) -> str:
        """Serve `app` on a free loopback port; returns its base URL."""
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def on_stop(self, closer: Any) -> None:
        """Register an async callable to run at stop (background tasks of a sim area)."""
        self._closers.append(closer)

    def exporter_config(self) -> Config:
        return Config.model_validate(self.config)

    async def stop(self) -> None:
        for closer in reversed(self._closers):
            await closer()
        for runner in self._runners:
            await runner.cleanup()
        if self.kubernetes:
            await self.kube.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def __aenter__(self) -> "SimCluster":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
