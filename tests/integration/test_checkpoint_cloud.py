"""The fixture checkpoint trees in Azure Blob (Azurite) and GCS (fake-gcs-server), listed through
obstore, with the store configured from `options:`, from the cloud's standard environment alone
(as a discovered store is), and with a wrong key."""

from __future__ import annotations

import logging
import time

import pytest

from ai_signals_exporter.checkpoints import detect
from ai_signals_exporter.checkpoints.stores import ObjectTree, scan
from ai_signals_exporter.config import load_config_text
from ai_signals_exporter.signals.checkpoints import derive
from ai_signals_exporter.sources.checkpoints import CheckpointSource
from ai_signals_exporter.state import AppState, PodInfo
from tests.helpers import checkpoint_trees as trees
from tests.helpers import emulators
from tests.helpers.checkpoint_trees import CASES, Case, Tree

CLOUD_CASES = [c for c in CASES if c.s3]
CONTAINER = "checkpoints"
# Every variable of the three clouds is removed first, so nothing from the machine leaks in.
CLOUD_ENV = ("AWS_", "AZURE_", "GOOGLE_", "AZURITE_")


class Cloud:
    def __init__(self, kind: str, emu, built: dict[str, Tree]) -> None:
        self.kind, self.emu, self.built = kind, emu, built
        self.scheme = "az" if kind == "azure" else "gs"

    def uri(self, prefix: str) -> str:
        return f"{self.scheme}://{CONTAINER}/{prefix}"


@pytest.fixture(scope="module", params=["azure", "gcs"])
def cloud(request):
    # (A test narrowed to one cloud with indirect parametrization shares that cloud's emulator.)
    with (emulators.azurite() if request.param == "azure" else emulators.fake_gcs()) as emu:
        if request.param == "azure":
            emu.create_container(CONTAINER)
            client = emu.uploader(CONTAINER)
        else:
            emu.create_bucket(CONTAINER)
            client = emu
        built = {c.id: Tree(root=None, base=time.time() - 3600) for c in CLOUD_CASES}  # type: ignore[arg-type]
        for c in CLOUD_CASES:
            c.build(built[c.id])
        trees.upload(built, client, CONTAINER)
        yield Cloud(request.param, emu, built)


@pytest.fixture
def clean_env():
    with emulators.environ({}, drop_prefixes=CLOUD_ENV):
        yield


def _yaml_map(opts: dict[str, object]) -> str:
    return "{" + ", ".join(f'{k}: "{v}"' if isinstance(v, str) else f"{k}: {str(v).lower()}"
                           for k, v in opts.items()) + "}"


def _values(state: AppState, cfg, now: float) -> dict[str, dict[tuple, float]]:
    return {f.name: {s[1]: s[2] for s in f.samples} for f in derive(state, cfg, now)}


@pytest.mark.parametrize("case", CLOUD_CASES, ids=[c.id for c in CLOUD_CASES])
async def test_layout_case_from_options(case: Case, cloud: Cloud, clean_env):
    tree = ObjectTree(cloud.uri(case.id), cloud.emu.options(), timeout=10.0)
    listing = await scan(tree, max_objects=10_000, page_size=50)
    now = time.time()
    first = detect(listing, now, None, case.layout, scheme=cloud.scheme)
    v = detect(listing, now + 1, first, case.layout, scheme=cloud.scheme)
    assert v.layout == case.layout
    if cloud.scheme == "gs" and case.layout == "orbax":
        # Orbax on GCS writes in place and commits with commit_success.txt, which these trees
        # (written the POSIX/S3 way) lack: no step may count as complete there.
        assert v.last_step is None and v.in_progress
        return
    assert v.last_step == case.step
    if case.marker_ts is not None:
        assert v.last_complete_ts == pytest.approx(case.marker_ts(cloud.built[case.id]), abs=1e-3)
    else:
        assert v.last_complete_ts == listing.entries[case.marker].mtime
    assert v.in_progress is case.in_progress
    assert v.pointer_dangling is case.dangling


async def test_discovered_store_from_environment_alone(cloud: Cloud, clean_env, monkeypatch):
    """No options at all: endpoint, account and plain HTTP come from AZURE_* / GOOGLE_* only,
    although the source always passes client options (timeouts) to obstore."""
    for k, v in cloud.emu.env().items():
        monkeypatch.setenv(k, v)
    cfg = load_config_text("kubernetes: {enabled: true}\ncheckpoints: {interval: 5s, timeout: 10s}\n")
    state = AppState()
    uri = cloud.uri("deepspeed-interrupted-shards")
    state.kube.pods = {"p": PodInfo(
        uid="p", namespace="ml", name="pretrain-0", node="n1", phase="Running", ip="10.0.0.1",
        labels={}, annotations={"ai-signals.io/checkpoint-uri": uri}, workload_kind="Job",
        workload="pretrain", requests={})}
    await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.targets[("checkpoints", "ml/pretrain")] is True
    obs = state.checkpoints["ml/pretrain"]
    now = time.time()
    m = _values(state, cfg, now)
    key = ("ml/pretrain", "ml", "pretrain", "deepspeed")
    assert m["ai_checkpoint_last_step"] == {key: 200}
    assert m["ai_checkpoint_in_progress"] == {key: 1}
    assert m["ai_checkpoint_age_seconds"][key] == pytest.approx(now - obs.verdict.last_complete_ts)
    # Uploaded an hour of fixture time ago at most: the age is the marker's real LastModified.
    assert 0 < m["ai_checkpoint_age_seconds"][key] < 600
    assert m["ai_checkpoint_store_objects"][("ml/pretrain", "ml", "pretrain")] == obs.objects > 0


async def test_options_override_the_environment(cloud: Cloud, clean_env, monkeypatch, caplog):
    # The environment points nowhere useful; the store's options win key by key.
    for k, v in cloud.emu.env().items():
        monkeypatch.setenv(k, v)
    endpoint_key = "AZURE_STORAGE_ENDPOINT" if cloud.kind == "azure" else "GOOGLE_BASE_URL"
    monkeypatch.setenv(endpoint_key, "http://127.0.0.1:9/nowhere")
    opts = cloud.emu.options()
    good_endpoint = opts["endpoint"] if cloud.kind == "azure" else opts["base_url"]
    ep = "endpoint" if cloud.kind == "azure" else "base_url"
    cfg = load_config_text(f"""
checkpoints:
  timeout: 10s
  stores:
    - name: good
      uri: {cloud.uri("dcp-complete")}
      options: {{{ep}: "{good_endpoint}", allow_http: true}}
    - name: env-endpoint
      uri: {cloud.uri("dcp-complete")}
""")
    state = AppState()
    with caplog.at_level(logging.WARNING):
        await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.targets[("checkpoints", "good")] is True
    assert state.checkpoints["good"].verdict.last_step == 200
    assert state.selfmon.targets[("checkpoints", "env-endpoint")] is False
    assert state.selfmon.errors[("checkpoints", "connect")] == 1
    assert "Connection refused" in caplog.text


async def test_plain_http_refused_names_the_cause(cloud: Cloud, clean_env, monkeypatch, caplog):
    # The environment allows plain HTTP, the store's options forbid it: options win.
    monkeypatch.setenv("AZURE_ALLOW_HTTP" if cloud.kind == "azure" else "GOOGLE_ALLOW_HTTP", "true")
    opts = {**cloud.emu.options(), "allow_http": False}  # a YAML boolean
    cfg = load_config_text(f"""
checkpoints:
  stores:
    - name: nohttp
      uri: {cloud.uri("dcp-complete")}
      options: {_yaml_map(opts)}
""")
    state = AppState()
    with caplog.at_level(logging.WARNING):
        await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.targets[("checkpoints", "nohttp")] is False
    assert "BadScheme" in caplog.text and "allow_http" in caplog.text


async def test_wrong_key_or_bucket_is_a_down_target_with_the_cause_logged(cloud: Cloud, clean_env, caplog):
    if cloud.kind == "azure":
        # A valid base64 key of the right length that is not the account's: 403 from Azurite.
        opts = {**cloud.emu.options(), "account_key": emulators.AZURE_KEY[:-8] + "AAAAAA=="}
        uri, cause = cloud.uri("dcp-complete"), "Code=AuthorizationFailure"
    else:
        # fake-gcs-server checks no credentials; a missing bucket is its refusal (HTTP 500).
        opts = cloud.emu.options()
        uri, cause = "gs://no-such-bucket/run", "HTTP 500"
    cfg = load_config_text(f"""
checkpoints:
  timeout: 10s
  stores:
    - name: denied
      uri: {uri}
      options: {_yaml_map(opts)}
""")
    state = AppState()
    src = CheckpointSource(cfg, state)
    with caplog.at_level(logging.WARNING):
        await src.run_once()
        await src.run_once()
    assert state.selfmon.targets[("checkpoints", "denied")] is False
    assert state.checkpoints["denied"].last_error == "storage"
    assert state.selfmon.errors[("checkpoints", "storage")] == 2
    lines = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
    assert len(lines) == 1, lines  # logged once per state change, counted every time
    assert cause in lines[0] and "<?xml" not in lines[0]
    assert "ai_checkpoint_store_objects" not in {
        f.name for f in derive(state, cfg, time.time()) if f.samples}


async def test_empty_prefix_does_not_look_healthy(cloud: Cloud, clean_env):
    cfg = load_config_text(f"""
checkpoints:
  stores:
    - name: typo
      uri: {cloud.uri("dcp-compleet")}
      expected_interval: 30m
      options: {_yaml_map(cloud.emu.options())}
""")
    state = AppState()
    await CheckpointSource(cfg, state).run_once()
    obs = state.checkpoints["typo"]
    m = _values(state, cfg, obs.scanned_at + 90)
    assert m["ai_checkpoint_store_objects"] == {("typo", "", "typo"): 0}
    assert m["ai_checkpoint_store_empty_seconds"] == {("typo", "", "typo"): pytest.approx(90)}


@pytest.mark.parametrize("cloud", ["azure"], indirect=True)  # fake-gcs-server checks no keys
async def test_rotated_key_file_is_read_again_after_a_failure(cloud: Cloud, clean_env, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(emulators.AZURE_KEY[:-8] + "AAAAAA==")  # the old, now wrong key
    opts = {k: v for k, v in cloud.emu.options().items() if k != "account_key"}
    cfg = load_config_text(f"""
checkpoints:
  timeout: 10s
  stores:
    - name: rotated
      uri: {cloud.uri("dcp-complete")}
      options: {{{", ".join(f'{k}: "{v}"' for k, v in opts.items())}, account_key: {{file: "{key_file}"}}}}
""")
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    assert state.selfmon.targets[("checkpoints", "rotated")] is False
    key_file.write_text(emulators.AZURE_KEY + "\n")  # the Secret volume updated in place
    await src.run_once()
    assert state.selfmon.targets[("checkpoints", "rotated")] is True
    assert state.checkpoints["rotated"].verdict.last_step == 200
