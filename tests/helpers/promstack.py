"""Real Prometheus and Alertmanager processes for tests, on loopback with free ports."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import yaml

from .net import free_port
from .wait import wait_until


def need(binary: str) -> str:
    path = shutil.which(binary)
    assert path, f"{binary} is not installed (scripts/test installs it from Debian packages)"
    return path


def http_json(url: str, data: bytes | None = None, timeout: float = 5.0):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else None


@contextlib.contextmanager
def process(args: list[str], workdir: Path, name: str) -> Iterator[subprocess.Popen]:
    log = open(workdir / f"{name}.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def log_tail(workdir: Path, name: str, n: int = 3000) -> str:
    p = workdir / f"{name}.log"
    return p.read_text(errors="replace")[-n:] if p.exists() else ""


@contextlib.contextmanager
def prometheus(workdir: Path, config: dict, extra_args: tuple[str, ...] = ()) -> Iterator[str]:
    """Run Prometheus with `config` (and `extra_args` flags); yields its base URL once it is ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [need("prometheus"), f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle", "--log.level=warn", *extra_args]
    with process(args, workdir, "prometheus") as proc:
        wait_until(lambda: proc.poll() is None and urllib.request.urlopen(url + "/-/ready", timeout=1).status == 200,
                   30, "prometheus ready: " + log_tail(workdir, "prometheus"))
        yield url


def alertmanager_binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("alertmanager is not installed (Debian package prometheus-alertmanager)")


@contextlib.contextmanager
def alertmanager(workdir: Path, config_text: str) -> Iterator[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(config_text)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [alertmanager_binary(), f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=", "--log.level=warn"]
    with process(args, workdir, "alertmanager") as proc:
        wait_until(lambda: proc.poll() is None and urllib.request.urlopen(url + "/-/ready", timeout=1).status == 200,
                   30, "alertmanager ready: " + log_tail(workdir, "alertmanager"))
        yield url


def query(url: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr}
    if at is not None:
        params["time"] = str(at)
    data = http_json(f"{url}/api/v1/query?" + urllib.parse.urlencode(params))
    assert data["status"] == "success", data
    return data["data"]["result"]


def series(url: str, match: str) -> list[dict]:
    data = http_json(f"{url}/api/v1/series?" + urllib.parse.urlencode({"match[]": match}))
    assert data["status"] == "success", data
    return data["data"]


@contextlib.contextmanager
def text_server(pages: Callable[[str], str | None]) -> Iterator[str]:
    """A tiny HTTP server on loopback answering GET path -> text (404 when None)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            body = pages(self.path)
            if body is None:
                self.send_error(404)
                return
            raw = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
