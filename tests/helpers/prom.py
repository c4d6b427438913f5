"""Run a real Prometheus (Debian package) for a test: generated config, temp data dir, free port."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .net import free_port, wait_http


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise RuntimeError("prometheus not installed: run scripts/setup (apt package 'prometheus')")
    return path


class Prometheus:
    def __init__(self, workdir: Path, config: dict[str, Any], extra_args: list[str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.config = config
        self.extra_args = extra_args or []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Prometheus":
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(self.config))
        self.log = open(self.workdir / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [prometheus_binary(), f"--config.file={cfg}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_http(self.url + "/-/ready", timeout=30)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self) -> "Prometheus":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            data = json.load(r)
        assert data["status"] == "success", data
        return data["data"]["result"]

    def wait_for(self, expr: str, timeout: float = 60.0, predicate=lambda r: bool(r)) -> list[dict[str, Any]]:
        """Poll `expr` until `predicate(result)` holds; returns the result."""
        deadline = time.time() + timeout
        result: list[dict[str, Any]] = []
        while time.time() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.5)
        raise TimeoutError(f"{expr!r} did not satisfy the condition within {timeout}s; last: {result}; "
                           f"log tail: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")

    def targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v1/targets", timeout=10) as r:
            return json.load(r)["data"]["activeTargets"]


def scrape_config(job: str, target_hostport: str, interval: str = "1s", path: str = "/metrics") -> dict[str, Any]:
    return {"job_name": job, "scrape_interval": interval, "scrape_timeout": interval,
            "metrics_path": path, "static_configs": [{"targets": [target_hostport]}]}
