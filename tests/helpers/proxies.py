"""Start real nginx and haproxy in front of a backend, as the current user, for tests.

Each proxy gets a temp dir holding its generated config, pid file, logs and temp paths, listens
on a free loopback port, runs in the foreground (`daemon off` / `-db`) as a child process, and is
killed by its own pid on stop.  Picking a free port and then binding it is racy when other
test runs share the machine, so start() retries with a new port when the proxy fails to bind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _wait_listening(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


@dataclass
class Proxy:
    kind: str
    port: int
    workdir: Path
    proc: subprocess.Popen
    config: str
    log_files: list[Path] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_files if p.exists())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def nginx_config(port: int, upstream_port: int, workdir: Path, location: str) -> str:
    """A minimal nginx.conf proxying / to the upstream.  `location` holds the directives under
    test (proxy_buffering, gzip, proxy_read_timeout, ...)."""
    w = workdir
    # HTTP/1.1 to the upstream as ingress-nginx does (plain nginx defaults to 1.0), unless the
    # case under test says otherwise.
    if "proxy_http_version" not in location:
        location = "proxy_http_version 1.1;\n            " + location
    return f"""
worker_processes 1;
daemon off;
master_process off;
pid {w}/nginx.pid;
error_log {w}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {w}/client_body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_set_header Connection "";
            {location}
        }}
    }}
}}
"""


def haproxy_config(port: int, upstream_port: int, workdir: Path, backend: str) -> str:
    """A minimal haproxy.cfg; `backend` holds the directives under test (compression ...)."""
    return f"""
global
    pidfile {workdir}/haproxy.pid
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    {backend}
    server s1 127.0.0.1:{upstream_port}
"""


def _start(kind: str, upstream_port: int, directives: str, attempts: int = 5) -> Proxy:
    last = ""
    for _ in range(attempts):
        workdir = Path(tempfile.mkdtemp(prefix=f"ase-{kind}-"))
        port = free_port()
        if kind == "nginx":
            conf = nginx_config(port, upstream_port, workdir, directives)
            path = workdir / "nginx.conf"
            path.write_text(conf)
            # -e: the compiled-in error log under /var/log is not writable for us.
            cmd = [NGINX, "-p", str(workdir), "-c", str(path), "-e", str(workdir / "error.log")]
            logs = [workdir / "error.log", workdir / "stderr.log"]
        else:
            conf = haproxy_config(port, upstream_port, workdir, directives)
            path = workdir / "haproxy.cfg"
            path.write_text(conf)
            cmd = [HAPROXY, "-db", "-f", str(path)]
            logs = [workdir / "stderr.log"]
        stderr = open(workdir / "stderr.log", "wb")
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=stderr, cwd=workdir, start_new_session=True
        )
        stderr.close()
        proxy = Proxy(kind, port, workdir, proc, conf, logs)
        if _wait_listening(port, proc, time.monotonic() + 10):
            return proxy
        last = proxy.logs()
        proxy.stop()
    raise RuntimeError(f"{kind} did not start:\n{last}")


def start_nginx(upstream_port: int, location: str = "") -> Proxy:
    return _start("nginx", upstream_port, location)


def start_haproxy(upstream_port: int, backend: str = "") -> Proxy:
    return _start("haproxy", upstream_port, backend)


async def astart_nginx(upstream_port: int, location: str = "") -> Proxy:
    return await asyncio.to_thread(start_nginx, upstream_port, location)


async def astart_haproxy(upstream_port: int, backend: str = "") -> Proxy:
    return await asyncio.to_thread(start_haproxy, upstream_port, backend)


def available() -> dict[str, bool]:
    return {"nginx": os.path.exists(NGINX), "haproxy": os.path.exists(HAPROXY)}
