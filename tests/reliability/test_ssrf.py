"""No SSRF, no leaked secrets.

- Scrape targets come only from config or from discovered pods' own IPs in allowed namespaces;
  annotations choose a port and a path on that IP, never another host.
- Redirects are never followed, by any HTTP client of the exporter (serving, dcgm, probes): a
  real redirecting server points at a decoy that counts every request it gets.
- Secrets (URL user-info, basic-auth passwords, object-store keys) never reach the logs, the
  landing page or /metrics.  Probe header secrets from files and env:
  tests/integration/test_stream_probe.py::test_secrets_stay_out_of_logs_targets_and_metrics.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import bcrypt
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import Config
from ai_signals_exporter.server import make_app
from ai_signals_exporter.sim.engines import SimEngine, constant
from ai_signals_exporter.sim.objects import make_node, make_pod
from ai_signals_exporter.sources.kube_objects import pod_from_json
from ai_signals_exporter.sources.serving import target_for_pod
from ai_signals_exporter.webconfig import WebConfig

from ..helpers.kube import running_kube_api
from ..helpers.net import run_app
from .common import eventually, running_exporter


class Recorder:
    """An aiohttp app that answers everything with a small vLLM page and records what it got."""

    def __init__(self, status: int = 200, location: str | None = None) -> None:
        self.requests: list[tuple[str, str]] = []
        self.authorized = 0  # requests that carried credentials
        self.status, self.location = status, location
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.host, request.path_qs))
        self.authorized += "Authorization" in request.headers
        if self.location:
            raise web.HTTPFound(self.location)
        engine = SimEngine("vllm", "m", constant(1.0))
        return web.Response(status=self.status, body=engine.render(), content_type="text/plain")


async def test_redirects_are_never_followed() -> None:
    decoy = Recorder()
    async with run_app(decoy.app) as decoy_url:
        redirector = Recorder(location=decoy_url + "/metrics")
        async with run_app(redirector.app) as redir_url:
            cfg = {"global": {"refresh_interval": "200ms"},
                   "serving": {"interval": "500ms", "window": "5s", "targets": [{"url": redir_url + "/serving"}]},
                   "gpu": {"interval": "500ms", "dcgm_targets": [{"url": redir_url + "/dcgm"}]},
                   "probes": [{"name": "p", "url": redir_url + "/probe", "interval": "500ms",
                               "timeout": "500ms"}]}
            async with running_exporter(cfg) as ex:
                await eventually(lambda: ex.errors("probes").get("redirect") and ex.ups("serving")
                                 and ex.ups("gpu"), timeout=10)
                await eventually(lambda: len(redirector.requests) >= 6, timeout=10)
                assert set(ex.ups("serving").values()) == {0} and set(ex.ups("gpu").values()) == {0}
                assert ex.errors("serving").get("http_status") and ex.errors("gpu").get("http_status")
    assert decoy.requests == [], "a redirect was followed"


async def test_discovery_scrapes_only_pod_ips_in_allowed_namespaces(tmp_path: Path) -> None:
    """Hostile annotations try to move the scrape to another host (127.0.0.2, the decoy); a pod in
    a namespace outside discovery.namespaces points at the decoy with its own IP."""
    pod_server, decoy = Recorder(), Recorder()
    async with run_app(pod_server.app) as pod_url, running_kube_api() as api:
        pod_port = URL(pod_url).port
        decoy_runner = web.AppRunner(decoy.app, access_log=None)
        await decoy_runner.setup()
        site = web.TCPSite(decoy_runner, "127.0.0.2", 0)
        await site.start()
        decoy_port = decoy_runner.addresses[0][1]
        try:
            hostile = {
                "path-userinfo": {"ai-signals.io/path": f"/@127.0.0.2:{decoy_port}/metrics"},
                "path-authority": {"ai-signals.io/path": f"//127.0.0.2:{decoy_port}/metrics"},
                "path-backslash": {"ai-signals.io/path": f"\\\\127.0.0.2:{decoy_port}/metrics"},
                "path-crlf": {"ai-signals.io/path": f"/m\r\nHost: 127.0.0.2:{decoy_port}\r\n"},
                # An unusable port falls back to discovery.default_port, on the pod's IP.
                "port-userinfo": {"ai-signals.io/port": f"{decoy_port}@127.0.0.2", "ai-signals.io/path": "/a"},
                "port-host": {"ai-signals.io/port": f"127.0.0.2:{decoy_port}", "ai-signals.io/path": "/b"},
            }
            api.add(make_node("n1", gpus=0))
            for name, ann in hostile.items():
                ann = {"ai-signals.io/scrape": "true", "ai-signals.io/port": str(pod_port), **ann}
                api.add(make_pod("llm", name, node="n1", ip="127.0.0.1", annotations=ann))
            api.add(make_pod("other", "outsider", node="n1", ip="127.0.0.2",
                             annotations={"ai-signals.io/scrape": "true", "ai-signals.io/port": str(decoy_port)}))
            cfg = {"global": {"refresh_interval": "200ms"},
                   "kubernetes": {"enabled": True, "kubeconfig": str(api.write_kubeconfig(tmp_path / "kc"))},
                   "serving": {"interval": "500ms", "window": "5s", "timeout": "1s",
                               "discovery": {"namespaces": ["llm"], "default_port": pod_port}},
                   "gpu": {"discovery": {"enabled": False}}, "checkpoints": {"discovery": {"enabled": False}}}
            async with running_exporter(cfg) as ex:
                await eventually(lambda: len(ex.ups("serving")) == len(hostile), timeout=15)
                await eventually(lambda: len(pod_server.requests) >= 2 * len(hostile), timeout=15)
                assert all(URL(t).host == "127.0.0.1" for t in ex.ups("serving"))
        finally:
            await decoy_runner.cleanup()
    assert decoy.requests == []
    assert {h for h, _ in pod_server.requests} == {f"127.0.0.1:{pod_port}"}


@settings(max_examples=300, deadline=None)
@given(path=st.text(max_size=60), port=st.text(max_size=12),
       ip=st.sampled_from(["10.1.2.3", "fd00::5", "127.0.0.1"]))
def test_annotations_never_change_the_scrape_host(path: str, port: str, ip: str) -> None:
    pod = pod_from_json(make_pod("ns", "p", node="n", ip=ip, annotations={
        "ai-signals.io/scrape": "true", "ai-signals.io/path": path, "ai-signals.io/port": port}))
    assert pod is not None
    target = target_for_pod(pod, 8000, "/metrics")
    assert target is not None
    url = URL(target.url)  # what aiohttp connects to
    assert url.host == ip and url.scheme == "http" and url.user is None


async def test_secrets_stay_out_of_logs_landing_page_and_metrics(tmp_path: Path, caplog) -> None:
    url_password, s3_secret, auth_password = "hunter2-url", "S3CRET-KEY-xyz", "basic-auth-pw"
    denied = Recorder(status=403)
    caplog.set_level(logging.DEBUG)
    async with run_app(denied.app) as base:
        host = base.removeprefix("http://")
        cfg = Config.model_validate({
            "global": {"refresh_interval": "200ms"},
            "serving": {"interval": "500ms", "window": "5s",
                        "targets": [{"url": f"http://scraper:{url_password}@{host}/metrics"}]},
            "gpu": {"interval": "500ms", "dcgm_targets": [{"url": f"http://dcgm:{url_password}@{host}/dcgm"}]},
            "checkpoints": {"interval": "1s", "timeout": "2s", "stores": [{
                "name": "s3", "uri": "s3://bucket/run",
                "options": {"endpoint": base, "access_key_id": "AKIDEXAMPLE",
                            "secret_access_key": s3_secret, "region": "us-east-1", "allow_http": "true"}}]},
        })
        hashed = bcrypt.hashpw(auth_password.encode(), bcrypt.gensalt(rounds=4)).decode()
        web_cfg = WebConfig(basic_auth_users={"prom": hashed})
        exporter = Exporter(cfg)
        await exporter.start()
        try:
            async with run_app(make_app(exporter, web_config=web_cfg)) as ex_url:
                import aiohttp

                async with aiohttp.ClientSession() as http:
                    await eventually(lambda: len(exporter.state.selfmon.targets) == 3
                                     and ("checkpoints", "storage") in exporter.state.selfmon.errors,
                                     timeout=15)
                    exporter.refresh()
                    good = aiohttp.BasicAuth("prom", auth_password)
                    async with http.get(ex_url + "/", auth=good) as r:
                        page = await r.text()
                    async with http.get(ex_url + "/metrics", auth=good) as r:
                        metrics = await r.text()
                    async with http.get(ex_url + "/metrics", auth=aiohttp.BasicAuth("prom", auth_password + "x")) as r:
                        assert r.status == 401
                    raw = "Basic " + base64.b64encode(b"nobody:" + auth_password.encode()).decode()
                    async with http.get(ex_url + "/metrics", headers={"Authorization": raw}) as r:
                        assert r.status == 401
        finally:
            await exporter.stop()
    # The credentials were really sent where they belong (so they were in memory to leak).
    assert denied.authorized >= 2
    assert "http://127.0.0.1" in page, page
    assert "source=\"serving\",target=\"http://127.0.0.1" in metrics, metrics
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in (url_password, s3_secret, auth_password):
        assert secret not in page, secret
        assert secret not in metrics, secret
        assert secret not in logs, secret
    assert 'source="serving"' in metrics and 'source="gpu"' in metrics


async def test_checkpoint_discovery_is_limited_to_allowed_uri_prefixes(tmp_path: Path) -> None:
    """A pod annotation may point the exporter at any store it can reach with its own credentials
    (or a path in its own container); `checkpoints.discovery.uri_prefixes` fences that in."""
    allowed, secret = tmp_path / "ckpt" / "team-a", tmp_path / "exporter-private"
    allowed.mkdir(parents=True)
    secret.mkdir()
    async with running_kube_api() as api:
        api.add(make_node("n1", gpus=0))
        api.add(make_pod("ml", "train-0", node="n1", owner=("Job", "good"),
                         annotations={"ai-signals.io/checkpoint-uri": allowed.as_uri()}))
        api.add(make_pod("ml", "snoop-0", node="n1", owner=("Job", "snoop"),
                         annotations={"ai-signals.io/checkpoint-uri": secret.as_uri()}))
        for i, climb in enumerate(["/../../exporter-private", "/%2E%2E/%2e%2e/exporter-private"]):
            api.add(make_pod("ml", f"climb-{i}", node="n1", owner=("Job", f"climb{i}"),
                             annotations={"ai-signals.io/checkpoint-uri": allowed.as_uri() + climb}))
        cfg = {"global": {"refresh_interval": "200ms"},
               "kubernetes": {"enabled": True, "kubeconfig": str(api.write_kubeconfig(tmp_path / "kc"))},
               "serving": {"discovery": {"enabled": False}}, "gpu": {"discovery": {"enabled": False}},
               "checkpoints": {"interval": "500ms",
                               "discovery": {"uri_prefixes": [(tmp_path / "ckpt").as_uri() + "/"]}}}
        async with running_exporter(cfg) as ex:
            await eventually(lambda: ex.ups("checkpoints") == {"ml/good": 1}, timeout=15)
            await eventually(lambda: ex.errors("checkpoints").get("config"), timeout=5)
            assert set(ex.exporter.state.checkpoints) == {"ml/good"}
