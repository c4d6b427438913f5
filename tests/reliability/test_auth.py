"""Web security beyond tests/integration/test_server.py (TLS + bcrypt basic auth, wrong password,
plain HTTP to a TLS port): unknown users, timing that does not reveal which users exist, a flood
of wrong passwords that must not stall scrapes, and mutual TLS (client certificates)."""

from __future__ import annotations

import asyncio
import ssl
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.config import Config
from ai_signals_exporter.server import make_app
from ai_signals_exporter.webconfig import BasicAuth, WebConfig, load_web_config

from ..helpers.net import run_app

PASSWORD = "correct horse"


def _basic(user: str, password: str) -> str:
    return aiohttp.BasicAuth(user, password).encode()


def test_unknown_user_costs_as_much_as_a_wrong_password() -> None:
    """Unknown users are checked against a dummy hash of the same cost, so response time does not
    tell an attacker which user names exist."""
    auth = BasicAuth({"prom": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()})

    def timed(header: str) -> float:
        t0 = time.perf_counter()
        assert auth.check(header) is False
        return time.perf_counter() - t0

    # Interleaved, so both see the same load from whatever else runs on the machine.
    wrong, unknown = [], []
    for _ in range(7):
        wrong.append(timed(_basic("prom", "nope")))
        unknown.append(timed(_basic("mallory", "nope")))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.4 < ratio < 2.5, (unknown, wrong)
    # Another user's password does not open this user; a malformed header is just rejected.
    assert auth.check(_basic("prom", PASSWORD)) is True
    assert auth.check(_basic("mallory", PASSWORD)) is False
    for bad in ["Basic", "Basic !!!", "Bearer x", "Basic " + "A" * 10_000, "basic " + _basic("prom", PASSWORD)[6:]]:
        assert auth.check(bad) is False


async def test_wrong_password_flood_does_not_stall_authorized_scrapes() -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    exporter = Exporter(Config())
    exporter.refresh()
    app = make_app(exporter, web_config=WebConfig(basic_auth_users={"prom": hashed}))
    good = {"Authorization": _basic("prom", PASSWORD)}
    async with run_app(app) as base, aiohttp.ClientSession() as s:
        async with s.get(base + "/metrics", headers=good) as r:  # first check fills the cache
            assert r.status == 200

        async def attack() -> int:
            async with s.get(base + "/metrics", headers={"Authorization": _basic("prom", "guess")}) as r:
                return r.status

        flood = [asyncio.create_task(attack()) for _ in range(30)]  # ~30 bcrypt rounds queued
        await asyncio.sleep(0.05)
        latencies = []
        for _ in range(10):
            t0 = time.monotonic()
            async with s.get(base + "/metrics", headers=good) as r:
                assert r.status == 200
                await r.read()
            latencies.append(time.monotonic() - t0)
        statuses = await asyncio.gather(*flood)
    assert set(statuses) == {401}
    # Each wrong guess costs ~60 ms of bcrypt; run on the event loop, 30 of them would hold an
    # authorized scrape for well over a second.
    assert max(latencies) < 0.5, latencies


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "1", "-subj", "/CN=test-ca", cwd=tmp_path)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=tmp_path)
        (tmp_path / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=tmp_path)
    # A client certificate from a CA the server does not trust.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.crt",
             "-days", "1", "-subj", "/CN=rogue", cwd=tmp_path)
    return tmp_path


async def test_mutual_tls_requires_a_client_certificate_from_the_ca(pki: Path) -> None:
    (pki / "web.yaml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")
    web_cfg = load_web_config(str(pki / "web.yaml"))
    exporter = Exporter(Config())
    exporter.refresh()

    def client_ctx(cert: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        if cert:
            ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
        return ctx

    async with run_app(make_app(exporter, web_config=web_cfg), ssl_context=web_cfg.ssl_context()) as base:
        https = base.replace("http://", "https://") + "/metrics"
        async with aiohttp.ClientSession() as s:
            async with s.get(https, ssl=client_ctx("client")) as r:
                assert r.status == 200
                assert b"ai_signals_exporter_build_info" in await r.read()
            for cert in (None, "rogue"):
                with pytest.raises(aiohttp.ClientError):
                    async with s.get(https, ssl=client_ctx(cert)) as r:
                        await r.read()
