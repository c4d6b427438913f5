"""The same fixture trees in a real S3 API (moto in server mode), listed through obstore."""

from __future__ import annotations

import os
import time
import boto3
import pytest
from aiohttp import web
from moto.server import ThreadedMotoServer

from ai_signals_exporter.checkpoints import detect
from ai_signals_exporter.checkpoints.stores import ObjectTree, ScanError, scan
from ai_signals_exporter.config import load_config_text
from ai_signals_exporter.signals.checkpoints import derive
from ai_signals_exporter.sources.checkpoints import CheckpointSource
from ai_signals_exporter.state import AppState
from tests.helpers import checkpoint_trees as trees
from tests.helpers.checkpoint_trees import CASES, Case, Tree
from tests.helpers.net import run_app

BUCKET = "checkpoints"
S3_CASES = [c for c in CASES if c.s3]
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    built = {c.id: Tree(root=None, base=time.time() - 3600) for c in S3_CASES}  # type: ignore[arg-type]
    for c in S3_CASES:
        c.build(built[c.id])
    trees.upload(built, client, BUCKET)
    old = {k: os.environ.get(k) for k in (*CREDS, "AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP")}
    os.environ.update(CREDS, AWS_ENDPOINT_URL=endpoint, AWS_ALLOW_HTTP="true")
    try:
        yield endpoint, built
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


async def _verdict(case: Case, endpoint: str, options: dict[str, str] | None = None):
    tree = ObjectTree(f"s3://{BUCKET}/{case.id}", options or {}, timeout=10.0)
    listing = await scan(tree, max_objects=10_000, page_size=50)
    now = time.time()
    first = detect(listing, now, None, case.layout, scheme="s3")
    return listing, detect(listing, now + 1, first, case.layout, scheme="s3")


@pytest.mark.parametrize("case", S3_CASES, ids=[c.id for c in S3_CASES])
async def test_layout_case_on_s3(case: Case, s3):
    endpoint, built = s3
    listing, v = await _verdict(case, endpoint)
    assert v.layout == case.layout
    assert v.last_step == case.step
    if case.marker_ts is not None:
        assert v.last_complete_ts == pytest.approx(case.marker_ts(built[case.id]), abs=1e-3)
    else:
        # The commit marker's LastModified, whole seconds as S3 reports them.
        assert v.last_complete_ts == listing.entries[case.marker].mtime
    assert v.in_progress is case.in_progress
    assert v.pointer_dangling is case.dangling


async def test_options_override_environment(s3, monkeypatch):
    endpoint, _ = s3
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ALLOW_HTTP")
    case = next(c for c in S3_CASES if c.id == "dcp-complete")
    _, v = await _verdict(case, endpoint, {"endpoint": endpoint, "allow_http": "true"})
    assert v.last_step == 200


async def test_s3_listing_is_bounded(s3):
    tree = ObjectTree(f"s3://{BUCKET}/hf_trainer-complete", {}, timeout=10.0)
    with pytest.raises(ScanError) as exc:
        await scan(tree, max_objects=3, page_size=2)
    assert exc.value.reason == "too_large"


async def test_source_end_to_end_on_s3_and_failures(s3, unused_tcp_port):
    endpoint, _ = s3

    async def slow_down(request: web.Request) -> web.Response:
        body = "<?xml version='1.0'?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
        return web.Response(status=503, text=body, content_type="application/xml")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", slow_down)
    async with run_app(app) as throttling:
        cfg = load_config_text(f"""
checkpoints:
  interval: 5s
  timeout: 10s
  stores:
    - name: pretrain
      uri: s3://{BUCKET}/deepspeed-interrupted-shards
      labels: {{namespace: ml, job: pretrain}}
    - name: throttled
      uri: s3://{BUCKET}/x
      options: {{endpoint: "{throttling}"}}
    - name: unreachable
      uri: s3://{BUCKET}/x
      options: {{endpoint: "http://127.0.0.1:{unused_tcp_port}"}}
""")
        state = AppState()
        src = CheckpointSource(cfg, state)
        assert src.enabled()
        await src.run_once()
    sm = state.selfmon
    assert sm.targets[("checkpoints", "pretrain")] is True
    assert sm.targets[("checkpoints", "throttled")] is False
    assert sm.targets[("checkpoints", "unreachable")] is False
    assert sm.errors[("checkpoints", "throttled")] == 1
    assert sm.errors[("checkpoints", "connect")] == 1  # refused: the cause, not just "storage"
    fams = {f.name: f for f in derive(state, cfg, time.time())}
    (labels, _, in_prog) = [(s[1], s[0], s[2]) for s in fams["ai_checkpoint_in_progress"].samples][0]
    assert labels == ("pretrain", "ml", "pretrain", "deepspeed") and in_prog == 1
    step = fams["ai_checkpoint_last_step"].samples
    assert [(s[1][0], s[2]) for s in step] == [("pretrain", 200)]
