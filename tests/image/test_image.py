"""The container image, built from the Dockerfile and run the way deploy/ runs it.

Built with Debian's podman on a local base image (see podman.py), then started with the
deployment's own security settings read from deploy/base/deployment.yaml: its uid/gid, read-only
root filesystem, all capabilities dropped, no privilege escalation, the config mounted read-only
and an emptyDir-like /tmp.  The exporter must become ready, serve /metrics that promtool accepts
(with a checkpoint store read through the image's own obstore build), and exit 0 promptly on
SIGTERM, as the kubelet sends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from .podman import REPO, Podman, Timings, build_image, need

DEPLOYMENT = REPO / "deploy" / "base" / "deployment.yaml"
SIGTERM_BUDGET_SECONDS = 5.0


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> Podman:
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman) -> str:
    timings = Timings()
    ref = build_image(podman, timings)
    # Shown with -rA; the README quotes first and cached figures.
    print(f"\nimage {ref}: build steps {timings.seconds or 'all cached'}")
    return ref


def deploy_security() -> tuple[dict, dict, dict]:
    pod = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod["securityContext"], container["securityContext"], container


def run_flags(config_dir: Path, extra_mounts: list[str]) -> list[str]:
    """podman run flags equivalent to the Deployment's pod and container security settings."""
    pod_sc, sc, container = deploy_security()
    flags = [f"--user={pod_sc['runAsUser']}:{pod_sc['runAsGroup']}"]
    if sc["readOnlyRootFilesystem"]:
        flags += ["--read-only", "--read-only-tmpfs=false"]  # only what deploy/ mounts is writable
    flags += [f"--cap-drop={c}" for c in sc["capabilities"]["drop"]]
    if sc["allowPrivilegeEscalation"] is False:
        flags.append("--security-opt=no-new-privileges")
    for m in container["volumeMounts"]:
        if m["name"] == "config":
            assert m["readOnly"] is True
            flags.append(f"--volume={config_dir}:{m['mountPath']}:ro")
        elif m["name"] == "tmp":
            flags.append(f"--tmpfs={m['mountPath']}")
    return flags + extra_mounts


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


# One container for both checks: with vfs storage every container start copies the image.
IDENTITY = """
import grp, json, os, pwd, sys, ai_signals_exporter
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                  "user": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name,
                  "python": list(sys.version_info[:2]), "package": ai_signals_exporter.__file__}))
"""


def test_image_runs_as_deploys_user_with_a_group_of_its_own_on_python_3_11(podman, image):
    pod_sc, _, _ = deploy_security()
    uid, gid = pod_sc["runAsUser"], pod_sc["runAsGroup"]
    assert pod_sc["fsGroup"] == gid
    cfg = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert cfg["User"] == f"{uid}:{gid}"
    out = podman("run", "--rm", "--network=none", "--entrypoint=python3", image, "-c", IDENTITY).stdout
    got = json.loads(out)
    # Named entries in /etc/passwd and /etc/group: a gid with no group is what this replaced.
    assert (got["uid"], got["gid"], got["user"], got["group"]) == (uid, gid, "exporter", "exporter")
    assert got["groups"] in ([], [gid])
    # The wheels are built for the host's CPython 3.11 (requires-python >= 3.11).
    assert got["python"] == [3, 11]
    assert got["package"].startswith("/opt/ai-signals-exporter/lib/python3.11/site-packages/")


def test_image_runs_as_deploy_runs_it_and_stops_on_sigterm(podman, image, tmp_path):
    promtool = need("promtool")
    config_dir = tmp_path / "config"
    config_dir.mkdir(mode=0o755)
    store = tmp_path / "ckpt"
    (store / "checkpoint-100").mkdir(parents=True, mode=0o755)
    (store / "checkpoint-100" / "model.safetensors").write_bytes(b"\0" * 4096)
    state = store / "checkpoint-100" / "trainer_state.json"
    state.write_text('{"global_step": 100}')
    # trainer_state.json is written last by the HF Trainer: that is what marks the step complete.
    t = time.time() - 60
    os.utime(store / "checkpoint-100" / "model.safetensors", (t - 5, t - 5))
    os.utime(state, (t, t))
    (config_dir / "config.yaml").write_text(
        "global: {interval: 1s, refresh_interval: 1s}\n"
        "kubernetes: {enabled: false}\n"
        "checkpoints:\n"
        "  interval: 1s\n"
        "  stores:\n"
        "    - {name: run42, uri: 'file:///data/ckpt', labels: {namespace: ml, job: run42}}\n"
    )
    for p in (config_dir / "config.yaml", state, store / "checkpoint-100" / "model.safetensors"):
        p.chmod(0o644)
    for d in (config_dir, store, store / "checkpoint-100"):
        d.chmod(0o755)

    _, _, container = deploy_security()
    port = container["ports"][0]["containerPort"]
    name = f"ai-signals-image-test-{os.getpid()}"
    flags = run_flags(config_dir, [f"--volume={store}:/data/ckpt:ro"])
    podman("run", "--detach", f"--name={name}", f"--publish=127.0.0.1::{port}", *flags, image,
           *container["args"])
    try:
        host_port = podman("port", name, f"{port}/tcp").stdout.strip().rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{host_port}"
        wait_for(lambda: get(f"{base}/-/ready")[0] == 200, 60, "/-/ready")

        def metrics_with_checkpoint() -> bytes | None:
            status, body = get(f"{base}/metrics")
            return body if status == 200 and b"ai_checkpoint_last_step{" in body else None

        body = wait_for(metrics_with_checkpoint, 30, "checkpoint series on /metrics")
        assert ('ai_checkpoint_last_step{store="run42",namespace="ml",job="run42",layout="hf_trainer"} 100'
                in body.decode()), body.decode()
        assert b'ai_signals_exporter_target_up{source="checkpoints",target="run42"} 1' in body
        res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True)
        assert res.returncode == 0, res.stdout + res.stderr

        started = time.monotonic()
        podman("kill", "--signal=TERM", name)
        code = podman("wait", name, timeout=30).stdout.strip()
        took = time.monotonic() - started
        out = podman("logs", name)
        logs = out.stdout + out.stderr
        assert code == "0", logs
        assert took < SIGTERM_BUDGET_SECONDS, f"exit took {took:.1f}s"
        assert "shutting down" in logs
        assert "Traceback" not in logs and "Permission denied" not in logs, logs
    finally:
        podman("rm", "--force", "--time=0", name, check=False)
