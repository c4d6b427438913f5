"""Label injection through the real paths: pod names, workload names, annotations and node names
from the Kubernetes test API server, model names and DCGM labels from scraped payloads (where
non-UTF-8 bytes can arrive).  The exposition must stay valid (`promtool check metrics`), every
label value bounded, and no hostile value may forge a line or a series."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from aiohttp import web

from ai_signals_exporter.expo.families import MAX_LABEL_VALUE_LEN
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.sim.objects import make_node, make_pod

from ..helpers.kube import running_kube_api
from ..helpers.net import run_app
from .common import RUNNING, eventually, running_exporter

HOSTILE = [
    'quote"d',
    "back\\slash\\",
    "new\nline",
    '"} 1\nai_forged_metric{x="y"} 666\n# ',
    "tab\tcr\r",
    "ünï€😀",
    "<script>alert(1)</script>",
    "x" * 10_000,
    # Long names that differ only past the label length bound must stay distinct series.
    "statefulset-" + "a" * 200 + "-0",
    "statefulset-" + "a" * 200 + "-1",
]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _payload(model: bytes) -> bytes:
    return (b"# TYPE vllm:num_requests_running gauge\n"
            b'vllm:num_requests_running{model_name="' + model + b'"} 1\n'
            b'vllm:generation_tokens_total{model_name="' + model + b'"} 5\n')


def _dcgm_payload() -> bytes:
    lines = [b"# TYPE DCGM_FI_DEV_GPU_UTIL gauge"]
    for i, h in enumerate(HOSTILE[:6]):
        v = _escape(h).encode()
        lines.append(b'DCGM_FI_DEV_GPU_UTIL{gpu="%d",UUID="GPU-%d",Hostname="%s",modelName="%s",'
                     b'namespace="%s",pod="%s"} 10' % (i, i, v, v, v, v))
    lines.append(b'DCGM_FI_DEV_GPU_UTIL{gpu="9",UUID="GPU-\xff\xfe",Hostname="h\xc3",pod="p\xff"} 10')
    return b"\n".join(lines) + b"\n"


async def test_hostile_cluster_values_render_valid_bounded_exposition(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is a test dependency (Debian package 'prometheus')"
    app = web.Application()
    for i, h in enumerate(HOSTILE):
        # The scraped payload carries the hostile value too, plus raw invalid UTF-8.
        body = _payload(_escape(h).encode() + b"\xff\xfe\xc3")

        async def handler(_: web.Request, body: bytes = body) -> web.Response:
            return web.Response(body=body, content_type="text/plain")

        app.router.add_get(f"/p{i}", handler)

    async def dcgm(_: web.Request) -> web.Response:
        return web.Response(body=_dcgm_payload(), content_type="text/plain")

    app.router.add_get("/dcgm", dcgm)
    (tmp_path / "ckpt").mkdir()
    async with running_kube_api() as api, run_app(app) as base:
        port = base.rsplit(":", 1)[1]
        api.add(make_node(HOSTILE[3], gpus=8, labels={"nvidia.com/gpu.product": HOSTILE[0]}))
        for i, h in enumerate(HOSTILE):
            # The two long StatefulSet pods share namespace and workload: only their names differ.
            long_pair = h.startswith("statefulset-")
            api.add(make_pod("ml" if long_pair else HOSTILE[(i + 1) % len(HOSTILE)], h, node=HOSTILE[3],
                             owner=("StatefulSet", "big") if long_pair else ("Deployment", h),
                             ip="127.0.0.1", gpu=1,
                             annotations={"ai-signals.io/scrape": "true", "ai-signals.io/port": port,
                                          "ai-signals.io/path": f"/p{i}", "ai-signals.io/model": h,
                                          "ai-signals.io/checkpoint-uri": (tmp_path / "ckpt").as_uri()}))
        # A store with nothing recognisable emits no checkpoint series: give it one DCP save.
        (tmp_path / "ckpt" / "step_1").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ckpt" / "step_1" / ".metadata").write_bytes(b"m")
        cfg = {"global": {"refresh_interval": "200ms"},
               "kubernetes": {"enabled": True, "kubeconfig": str(api.write_kubeconfig(tmp_path / "kc"))},
               "serving": {"interval": "500ms", "window": "5s"},
               "gpu": {"interval": "500ms", "dcgm_targets": [{"url": base + "/dcgm"}],
                       "discovery": {"enabled": False}},
               "checkpoints": {"interval": "500ms"}}
        async with running_exporter(cfg) as ex:
            def all_in() -> bool:
                got = ex.families({RUNNING, "ai_gpu_utilization_ratio", "ai_checkpoint_in_progress"})
                return (len(got.get(RUNNING, [])) >= len(HOSTILE)
                        and got.get("ai_gpu_utilization_ratio") and got.get("ai_checkpoint_in_progress"))

            await eventually(all_in, timeout=20)
            ex.exporter.refresh()
            body = ex.exporter.exposition.body
            # Workload names reach the landing page as checkpoint store names: HTML-escaped.
            async with ex.http.get(ex.base + "/") as r:
                page = await r.text()
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page

    res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
    assert res.returncode == 0, (res.stdout + res.stderr).decode()[-3000:]
    body.decode("utf-8")  # valid UTF-8 throughout
    assert b"ai_forged_metric" not in body.replace(b'\\"} 1\\nai_forged_metric', b"")
    for line in body.split(b"\n"):
        assert not line.startswith(b"ai_forged_metric")
    parsed = parse_families(body, {RUNNING})
    pods = [labels["pod"] for labels, _ in parsed[RUNNING]]
    assert len(pods) == len(set(pods)) == len(HOSTILE), "every pod its own series"
    for labels, _ in parsed[RUNNING]:
        assert all(len(v) <= MAX_LABEL_VALUE_LEN for v in labels.values()), labels
    # Short values survive exactly (escaped on the wire, unescaped by a parser).
    assert {'quote"d', "back\\slash\\", "new\nline", "ünï€😀"} <= set(pods)
