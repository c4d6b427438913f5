"""Build the container image with Debian's podman, offline, and cache what is slow to make.

No registry is reachable where the tests run, so the base image is a local stand-in for
`python:3.11-slim`: Debian bookworm with `python3` and `python3-venv`, made by `mmdebstrap` and
loaded with `podman import`.  The project and its dependencies are built into wheels on the host
and sent as the build context, so the build itself runs with `--network=none`.

Podman is configured here, not in /etc: a containers.conf and storage.conf written for the run
(runtime runc, storage driver vfs, cgroupfs, file events log, ulimits within this machine's hard
limits; runc refuses to raise RLIMIT_NPROC above the hard limit, podman's default asks for more).

Cached under .cache/image/ (or $AI_SIGNALS_IMAGE_CACHE), keyed by their inputs:
  base-<key>.tar     the mmdebstrap tarball (key: the mmdebstrap arguments)
  wheels-<key>/      `pip wheel` of the project (key: pyproject, README, src/, Python version)
  storage/           podman's image store: an image already built from the same base, wheels
                     and Dockerfile is reused as is; older test images are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("AI_SIGNALS_IMAGE_CACHE", REPO / ".cache" / "image"))
IMAGE_REPO = "localhost/ai-signals-exporter"
BASE_REPO = "localhost/ai-signals-base"

# python:3.11-slim's contents, near enough: Debian bookworm, Python 3.11 with venv/ensurepip,
# no documentation or translations.
MMDEBSTRAP_ARGS = [
    "--variant=minbase",
    "--include=python3,python3-venv",
    "--aptopt=Apt::Install-Recommends \"false\"",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "bookworm",
]


def need(binary: str) -> str:
    path = shutil.which(binary)
    assert path, f"{binary} is not installed (scripts/setup installs it from Debian packages)"
    return path


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:16]


def base_key() -> str:
    return _digest(json.dumps(MMDEBSTRAP_ARGS).encode())


def wheels_key() -> str:
    parts = [f"cp{sys.version_info.major}{sys.version_info.minor}".encode()]
    for name in ("pyproject.toml", "README.md"):
        parts += [name.encode(), (REPO / name).read_bytes()]
    for p in sorted((REPO / "src").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p):
            parts += [str(p.relative_to(REPO)).encode(), p.read_bytes()]
    return _digest(*parts)


def _drop_stale(prefix: str, keep: Path) -> None:
    for old in CACHE.glob(prefix + "*"):
        if old != keep:
            shutil.rmtree(old) if old.is_dir() else old.unlink()


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, what: str, fn):
        t = time.monotonic()
        try:
            return fn()
        finally:
            self.seconds[what] = round(time.monotonic() - t, 1)


def base_tarball(timings: Timings) -> Path:
    out = CACHE / f"base-{base_key()}.tar"
    if not out.exists():
        tmp = out.with_suffix(".tar.part")
        timings.run("mmdebstrap", lambda: subprocess.run(
            [need("mmdebstrap"), "--quiet", "--mode=root", "--format=tar", *MMDEBSTRAP_ARGS, str(tmp)],
            check=True, capture_output=True))
        tmp.rename(out)
        _drop_stale("base-", out)
    return out


def wheels(timings: Timings) -> Path:
    out = CACHE / f"wheels-{wheels_key()}"
    if not out.exists():
        tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=".wheels-"))
        res = timings.run("pip wheel", lambda: subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--wheel-dir", str(tmp), str(REPO)], capture_output=True, text=True))
        assert res.returncode == 0, res.stderr
        tmp.rename(out)
        _drop_stale("wheels-", out)
    return out


class Podman:
    """podman with a configuration of its own (see the module docstring)."""

    def __init__(self, workdir: Path):
        CACHE.mkdir(parents=True, exist_ok=True)
        conf = workdir / "containers.conf"
        _, nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        _, nproc = resource.getrlimit(resource.RLIMIT_NPROC)
        nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 65536)
        nproc = 4096 if nproc == resource.RLIM_INFINITY else min(nproc, 4096)
        conf.write_text(
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
            "[engine]\n"
            'runtime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        )
        storage = workdir / "storage.conf"
        storage.write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'runroot = "{workdir / "run"}"\n'
            f'graphroot = "{CACHE / "storage"}"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}
        self.binary = need("podman")

    def __call__(self, *args: str, check: bool = True, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
        res = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout, **kw)
        if check:
            assert res.returncode == 0, f"podman {' '.join(args)}: {res.stderr[-3000:]}"
        return res

    def has_image(self, ref: str) -> bool:
        return self("image", "exists", ref, check=False).returncode == 0

    def tags(self, repo: str) -> list[str]:
        out = self("images", "--format", "{{.Repository}}:{{.Tag}}", repo).stdout.split()
        return [t for t in out if t.startswith(repo + ":")]

    def drop_other_tags(self, repo: str, keep: str) -> None:
        stale = [t for t in self.tags(repo) if t != keep]
        if stale:
            self("rmi", "--force", *stale)
        self("image", "prune", "--force")


def build_image(podman: Podman, timings: Timings) -> str:
    """The image ref, built from the Dockerfile on the local base; reused when nothing changed."""
    tar = base_tarball(timings)
    base = f"{BASE_REPO}:{tar.stem.removeprefix('base-')}"
    whl = wheels(timings)
    dockerfile = (REPO / "Dockerfile").read_bytes()
    ref = f"{IMAGE_REPO}:test-{_digest(base.encode(), whl.name.encode(), dockerfile)}"
    if podman.has_image(ref):
        return ref
    if not podman.has_image(base):
        timings.run("podman import", lambda: podman("import", str(tar), base))
        podman.drop_other_tags(BASE_REPO, base)
    with tempfile.TemporaryDirectory(prefix="image-context-") as ctx:
        # The context the Dockerfile expects: wheels/ (and nothing else, as .dockerignore says).
        shutil.copytree(whl, Path(ctx) / "wheels")
        shutil.copy(REPO / ".dockerignore", ctx)
        timings.run("podman build", lambda: podman(
            "build", "--network=none", "--pull=never", "--build-arg", f"BASE_IMAGE={base}",
            "--file", str(REPO / "Dockerfile"), "--tag", ref, ctx))
    podman.drop_other_tags(IMAGE_REPO, ref)
    return ref
