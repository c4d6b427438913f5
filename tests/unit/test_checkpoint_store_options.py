"""Checkpoint store options: environment vs `options:`, accepted schemes, check-time validation
of option keys and values, YAML scalars, secrets, and the logged cause of obstore errors."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ai_signals_exporter.checkpoints.stores import describe_error, split_options
from ai_signals_exporter.cli import main
from ai_signals_exporter.config import ConfigError, check_config_deeply, load_config_text
from ai_signals_exporter.signals.checkpoints import derive
from ai_signals_exporter.sources.checkpoints import CheckpointSource
from ai_signals_exporter.state import AppState


def _store_cfg(uri: str, options: str = "{}") -> str:
    return f"checkpoints:\n  stores:\n    - name: s\n      uri: {uri}\n      options: {options}\n"


@pytest.mark.parametrize("scheme,env", [
    ("az", {"AZURE_ALLOW_HTTP": "true", "AZURE_PROXY_URL": "http://proxy:3128"}),
    ("gs", {"GOOGLE_ALLOW_HTTP": "true", "GOOGLE_PROXY_URL": "http://proxy:3128"}),
    ("s3", {"AWS_ALLOW_HTTP": "true", "AWS_PROXY_URL": "http://proxy:3128"}),
])
def test_every_clouds_client_environment_is_carried_over(scheme, env):
    # obstore drops these as soon as client options are passed; we always pass a timeout.
    config, client = split_options(scheme, {}, environ={**env, "OTHER_ALLOW_HTTP": "false"})
    assert client == {"allow_http": "true", "proxy_url": "http://proxy:3128"}
    assert config == {}


def test_store_options_override_the_environment_key_by_key():
    config, client = split_options(
        "az", {"allow_http": "false", "AZURE_STORAGE_ACCOUNT_NAME": "acct"},
        environ={"AZURE_ALLOW_HTTP": "true", "AZURE_TIMEOUT": "7s"})
    assert client == {"allow_http": "false", "timeout": "7s"}
    assert config == {"azure_storage_account_name": "acct"}
    # A cloud-prefixed client key is a client key, not a store key (obstore panics on that).
    _, client = split_options("s3", {"aws_allow_http": "true"}, environ={})
    assert client == {"allow_http": "true"}


@pytest.mark.parametrize("uri", ["abfss://c@acct.dfs.core.windows.net/run", "gcs://bucket/run",
                                 "GS://bucket/run", "abfs://c@acct.dfs.core.windows.net/run"])
def test_scheme_spellings_are_accepted(uri):
    cfg = load_config_text(_store_cfg(uri))
    assert cfg.checkpoints.stores[0].uri == uri


@pytest.mark.parametrize("uri,options,scheme", [
    ("gcs://bucket/run", {"skip_signature": "true"}, "gs"),  # obstore itself rejects gcs://
    ("abfss://c@acct.dfs.core.windows.net/run", {}, "az"),
])
def test_scheme_spellings_build_a_store(uri, options, scheme):
    from ai_signals_exporter.checkpoints.stores import ObjectTree

    assert ObjectTree(uri, options, timeout=5).scheme == scheme


@pytest.mark.parametrize("uri,options,key", [
    ("gs://b/p", "{endpoint: 'http://127.0.0.1:1'}", "endpoint"),
    ("s3://b/p", "{endpiont: 'http://127.0.0.1:1'}", "endpiont"),
    ("az://c/p", "{account_name: a, alow_http: true}", "alow_http"),
    ("s3://b/p", "{allow_http: maybe}", "allow_http"),
    ("s3://b/p", "{timeout: soon}", "timeout"),
    ("s3://b/p", "{endpoint: '127.0.0.1:9000'}", "endpoint"),  # no scheme: a panic at run time
    ("s3://b/p", "{region: eu-west-1, aws_allow_http: maybe}", "aws_allow_http"),
])
def test_bad_option_is_reported_with_its_key_path(uri, options, key):
    cfg = load_config_text(_store_cfg(uri, options), "cfg.yaml")  # loads: judged at check/run time
    with pytest.raises(ConfigError) as exc:
        check_config_deeply(cfg, "cfg.yaml")
    assert str(exc.value).startswith(f"cfg.yaml: checkpoints.stores.0: options.{key}: ")
    assert "\n" not in str(exc.value)  # only the bad key, not its neighbours


def test_good_options_pass_the_check():
    cfg = load_config_text(_store_cfg(
        "az://c/p", "{account_name: a, endpoint: 'http://127.0.0.1:1/a', allow_http: true, timeout: 5s}"))
    check_config_deeply(cfg, "cfg.yaml")


def test_options_on_a_local_store_are_rejected_at_load():
    with pytest.raises(ConfigError, match="checkpoints.stores.0: .*file:// stores take no options"):
        load_config_text(_store_cfg("file:///data", "{region: x}"))


async def test_bad_option_at_run_time_is_a_config_failure_naming_the_key(caplog):
    cfg = load_config_text(_store_cfg("gs://b/p", "{endpoint: 'http://127.0.0.1:1'}"))
    state = AppState()
    with caplog.at_level(logging.WARNING):
        await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.errors[("checkpoints", "config")] == 1
    assert "'endpoint' is not valid for store 'GCS'" in caplog.text


def test_config_check_reports_the_option_key(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(_store_cfg("gs://b/p", "{endpoint: 'http://x:1'}"))
    assert main(["--config.check", f"--config.file={path}"]) == 1
    err = capsys.readouterr().err
    assert "checkpoints.stores.0" in err and "options.endpoint" in err and "gs://" in err


def test_yaml_booleans_and_numbers_become_strings():
    cfg = load_config_text(_store_cfg(
        "s3://b/p", "{allow_http: true, skip_signature: false, pool_max_idle_per_host: 4}"))
    assert cfg.checkpoints.stores[0].resolved_options() == {
        "allow_http": "true", "skip_signature": "false", "pool_max_idle_per_host": "4"}


def test_secrets_come_from_env_and_file(tmp_path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text("c2VjcmV0\n")
    monkeypatch.setenv("RUN42_ACCOUNT", "acct42")
    cfg = load_config_text(_store_cfg(
        "az://c/p", f"{{account_name: {{env: RUN42_ACCOUNT}}, account_key: {{file: '{key_file}'}}}}"))
    assert cfg.checkpoints.stores[0].resolved_options() == {
        "account_name": "acct42", "account_key": "c2VjcmV0"}
    # The key name is still checked when the secret is not readable where the config is checked.
    cfg = load_config_text(_store_cfg("az://c/p", "{acount_key: {env: NOT_SET_ANYWHERE}, account_key: {env: NOT_SET}}"))
    with pytest.raises(ConfigError, match="options.acount_key: not an option of az:// stores$"):
        check_config_deeply(cfg, "cfg.yaml")


async def test_unset_secret_marks_the_store_down_with_reason_config(monkeypatch, caplog):
    monkeypatch.delenv("CKPT_KEY_UNSET", raising=False)
    cfg = load_config_text(_store_cfg("az://c/p", "{account_name: a, account_key: {env: CKPT_KEY_UNSET}}"))
    state = AppState()
    with caplog.at_level(logging.WARNING):
        await CheckpointSource(cfg, state).run_once()
    assert state.selfmon.targets[("checkpoints", "s")] is False
    assert state.selfmon.errors[("checkpoints", "config")] == 1
    assert "CKPT_KEY_UNSET" in caplog.text


# Verbatim shapes of obstore 0.12.1 errors (object_store 0.14.2), captured in this project.
BAD_SCHEME = """Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:9/bkt?list-type=2&prefix=p%2F in 38.759µs - HTTP error: builder error

Debug source:
Generic {
    store: "S3",
    source: ListRequest {
        source: RetryError(
            RetryErrorImpl {
                method: GET,
                inner: Http(
                    HttpError {
                        kind: Unknown,
                        source: reqwest::Error {
                            kind: Builder,
                            source: BadScheme,
                        },
                    },
                ),
            },
        ),
    },
}"""
REFUSED = """Generic S3 error: Error performing list request: Error performing GET http://127.0.0.1:9/bkt?list-type=2&prefix=p%2F in 16.214884ms - HTTP error: error sending request

Debug source:
Generic {
    store: "S3",
    source: ListRequest {
        source: RetryError(
            RetryErrorImpl {
                inner: Http(
                    HttpError {
                        kind: Connect,
                        source: reqwest::Error {
                            kind: Request,
                            source: hyper_util::client::legacy::Error(
                                Connect,
                                ConnectError(
                                    "tcp connect error",
                                    127.0.0.1:9,
                                    Os {
                                        code: 111,
                                        kind: ConnectionRefused,
                                        message: "Connection refused",
                                    },
                                ),
                            ),
                        },
                    },
                ),
            },
        ),
    },
}"""
FORBIDDEN = """Generic MicrosoftAzure error: Error performing list request: Error performing GET http://127.0.0.1:40367/devstoreaccount1/ckpt?restype=container&comp=list&prefix=p%2F in 3.453208ms - Server returned non-2xx status code: 403 Forbidden: <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Error>
  <Code>AuthorizationFailure</Code>
  <Message>Server failed to authenticate the request.</Message>
</Error>

Debug source:
Generic {
    store: "MicrosoftAzure",
    source: ListRequest {
        source: RetryError(
            RetryErrorImpl {
                inner: Status {
                    status: 403,
                    body: Some(
                        "<Error><Code>AuthorizationFailure</Code></Error>",
                    ),
                },
            },
        ),
    },
}"""


class GenericError(Exception):
    pass


@pytest.mark.parametrize("text,wanted", [
    (BAD_SCHEME, ["builder error", "Builder", "BadScheme", "allow_http"]),
    (REFUSED, ["error sending request", "tcp connect error", "ConnectionRefused", "Connection refused"]),
    (FORBIDDEN, ["403 Forbidden", "HTTP 403", "Code=AuthorizationFailure"]),
])
def test_error_log_line_carries_the_cause_chain(text, wanted):
    line = describe_error(GenericError(text))
    assert "\n" not in line and len(line) <= 600
    for w in wanted:
        assert w in line, (w, line)
    assert "<?xml" not in line and "RetryErrorImpl" not in line


async def test_failures_are_logged_once_per_state_change(tmp_path, caplog):
    missing = tmp_path / "not-yet"
    cfg = load_config_text(_store_cfg(f"file://{missing}"))
    state = AppState()
    src = CheckpointSource(cfg, state)
    with caplog.at_level(logging.INFO, logger="ai_signals_exporter.sources.checkpoints"):
        for _ in range(3):
            await src.run_once()
        missing.mkdir()
        await src.run_once()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not a directory" in warnings[0].getMessage()
    assert state.selfmon.errors[("checkpoints", "storage")] == 3
    assert any("listing again" in r.getMessage() for r in caplog.records)


async def test_scan_timeout_is_logged(tmp_path, caplog, monkeypatch):
    cfg = load_config_text(_store_cfg(f"file://{tmp_path}"))
    src = CheckpointSource(cfg, AppState())

    async def hang(*a, **k):
        await asyncio.Event().wait()

    monkeypatch.setattr("ai_signals_exporter.sources.checkpoints.scan", hang)
    src.cfg.timeout = 0.05
    with caplog.at_level(logging.WARNING):
        await src.run_once()
        await src.run_once()
    timeouts = [r for r in caplog.records if "timeout" in r.getMessage()]
    assert len(timeouts) == 1 and "within 0.05s" in timeouts[0].getMessage()


async def test_empty_store_exports_zero_objects_and_how_long(tmp_path):
    (tmp_path / "run").mkdir()
    cfg = load_config_text(_store_cfg(f"file://{tmp_path}/run"))
    state = AppState()
    src = CheckpointSource(cfg, state)
    await src.run_once()
    obs = state.checkpoints["s"]
    fams = {f.name: f for f in derive(state, cfg, obs.empty_since + 120)}
    assert [(s[1], s[2]) for s in fams["ai_checkpoint_store_objects"].samples] == [(("s", "", "s"), 0)]
    assert [s[2] for s in fams["ai_checkpoint_store_empty_seconds"].samples] == [120]
    (tmp_path / "run" / "ckpt.pt").write_bytes(b"x")
    await src.run_once()
    fams = {f.name: f for f in derive(state, cfg, obs.scanned_at + 5)}
    assert [s[2] for s in fams["ai_checkpoint_store_objects"].samples] == [1]
    assert [s[2] for s in fams["ai_checkpoint_store_empty_seconds"].samples] == [0]


def test_documented_store_examples_pass_the_check():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "checkpoints.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "stores:" in b]
    assert len(blocks) >= 3  # the general one, GCS, Azure
    for block in blocks:
        check_config_deeply(load_config_text(block, "docs/checkpoints.md"), "docs/checkpoints.md")
