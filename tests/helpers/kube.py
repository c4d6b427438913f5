"""Test helpers for anything that needs a Kubernetes API: the fake API server, a config pointing
at it, a running KubeSource and bounded polling.

    async with running_kube_api() as api:
        api.add(make_node("gpu-1"))
        config = kube_config(api, tmp_path, node_scope="gpu-1")
        state = AppState()
        async with running_kube_source(config, state):
            await wait_for(lambda: state.kube.nodes_synced)
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable

from .wait import wait_for  # noqa: F401  (re-exported: the one polling helper)
from ai_signals_exporter.config import Config
from ai_signals_exporter.sim.kubeapi import FakeKubeAPI
from ai_signals_exporter.sources.kube import KubeSource
from ai_signals_exporter.sources.kube_stores import Watch
from ai_signals_exporter.state import AppState


@contextlib.asynccontextmanager
async def running_kube_api(**kwargs: Any) -> AsyncIterator[FakeKubeAPI]:
    """A started FakeKubeAPI on 127.0.0.1 (random port); stopped on exit.  Short bookmark
    interval by default so tests see bookmarks quickly."""
    kwargs.setdefault("bookmark_interval", 0.2)
    api = FakeKubeAPI(**kwargs)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def kube_config(
    api: FakeKubeAPI, directory: str | Path | None = None, extra: dict[str, Any] | None = None,
    **kubernetes: Any,
) -> Config:
    """A Config with kubernetes enabled, reading a kubeconfig written for `api` into `directory`.

    Short watch timeout and backoff by default so reconnect paths run in well under a second;
    keyword arguments override keys of the `kubernetes` section, `extra` adds other sections.
    """
    if directory is None:
        directory = tempfile.mkdtemp(prefix="kube-test-")
    path = api.write_kubeconfig(Path(directory) / "kubeconfig")
    section: dict[str, Any] = {
        "enabled": True,
        "kubeconfig": str(path),
        "watch_timeout": "5s",
        "request_timeout": "2s",
        "backoff_max": "500ms",
    }
    section.update(kubernetes)
    data: dict[str, Any] = dict(extra or {})
    data["kubernetes"] = section
    return Config.model_validate(data)


@contextlib.asynccontextmanager
async def running_kube_source(
    config: Config, state: AppState | None = None, resources: Iterable[str | Watch] | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[KubeSource]:
    """A KubeSource (default resources: pods and nodes) running in a background task; cancelled
    and closed on exit."""
    source = KubeSource(config, state if state is not None else AppState(), resources=resources, clock=clock)
    task = asyncio.create_task(source.run(), name="kube-source-test")
    try:
        yield source
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await source.close()
