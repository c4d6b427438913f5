"""`--web.config.file`: TLS and basic auth in the Prometheus exporter-toolkit format.

    tls_server_config:
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional
      client_ca_file: ca.crt                          # optional
      min_version: TLS12                              # optional
    basic_auth_users:
      alice: $2y$10$...                               # bcrypt hash
    http_server_config:
      headers: {X-Frame-Options: deny}                # optional

Paths are relative to the web config file, as in exporter-toolkit.  The web process loads this
file, and it imports neither pydantic nor `config` (~12 MB of its memory): the few keys are
checked by hand here, with the same `file: key.path: message` errors as the main config.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from .errors import ConfigError

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
MIN_VERSIONS = ("TLS12", "TLS13")


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: str
    key_file: str
    client_auth_type: str = "NoClientCert"
    client_ca_file: str | None = None
    min_version: str = "TLS12"


@dataclass(frozen=True)
class HTTPServerConfig:
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WebConfig:
    tls_server_config: TLSServerConfig | None = None
    basic_auth_users: dict[str, str] = field(default_factory=dict)
    http_server_config: HTTPServerConfig = field(default_factory=HTTPServerConfig)
    base_dir: Path = Path(".")

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self.base_dir / q

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.tls_server_config
        if tls is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = (
            ssl.TLSVersion.TLSv1_3 if tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
        )
        ctx.load_cert_chain(self.path(tls.cert_file), self.path(tls.key_file))
        if tls.client_ca_file:
            ctx.load_verify_locations(self.path(tls.client_ca_file))
        ctx.verify_mode = CLIENT_AUTH[tls.client_auth_type]
        return ctx


class _Checker:
    """Collects every problem of one file, as pydantic does for the main config."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    def fail(self, where: str, msg: str) -> None:
        self.errors.append(f"{self.source}: {where}: {msg}")

    def mapping(self, value: Any, where: str, keys: tuple[str, ...], required: tuple[str, ...] = ()
                ) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "Input should be a valid dictionary")
            return {}
        for k in value:
            if k not in keys:
                self.fail(f"{where}.{k}" if where else str(k), "unknown key")
        for k in required:
            if k not in value:
                self.fail(f"{where}.{k}", "Field required")
        return {k: v for k, v in value.items() if k in keys}

    def strings(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(where, "Input should be a valid dictionary")
            return {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                self.fail(f"{where}.{k}", "Input should be a valid string")
        return value

    def string(self, value: Any, where: str, choices: tuple[str, ...] = ()) -> str:
        if not isinstance(value, str):
            self.fail(where, "Input should be a valid string")
        elif choices and value not in choices:
            self.fail(where, "Input should be " + " or ".join(f"'{c}'" for c in choices))
        return value


def _validate(data: dict[str, Any], source: str, base_dir: Path) -> WebConfig:
    c = _Checker(source)
    top = c.mapping(data, "", ("tls_server_config", "basic_auth_users", "http_server_config"))
    tls = None
    if top.get("tls_server_config") is not None:
        where = "tls_server_config"
        t = c.mapping(top["tls_server_config"], where, tuple(TLSServerConfig.__dataclass_fields__),
                      ("cert_file", "key_file"))
        for key in ("cert_file", "key_file"):
            c.string(t.get(key, ""), f"{where}.{key}")
        if t.get("client_ca_file") is not None:
            c.string(t["client_ca_file"], f"{where}.client_ca_file")
        c.string(t.get("client_auth_type", "NoClientCert"), f"{where}.client_auth_type", tuple(CLIENT_AUTH))
        c.string(t.get("min_version", "TLS12"), f"{where}.min_version", MIN_VERSIONS)
        if not c.errors:
            tls = TLSServerConfig(**t)
    users = c.strings(top.get("basic_auth_users") or {}, "basic_auth_users")
    http = c.mapping(top.get("http_server_config") or {}, "http_server_config", ("headers",))
    headers = c.strings(http.get("headers") or {}, "http_server_config.headers")
    if c.errors:
        raise ConfigError("\n".join(c.errors))
    return WebConfig(tls, dict(users), HTTPServerConfig(dict(headers)), base_dir)


def load_web_config(path: str) -> WebConfig:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes recursively: "[[[[…" must not escape as a crash
        raise ConfigError(f"{p}: invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    cfg = _validate(data, str(p), p.parent)
    for user, hashed in cfg.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"{p}: basic_auth_users.{user}: not a bcrypt hash")
    if cfg.tls_server_config is not None:
        try:
            cfg.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{p}: tls_server_config: {exc}") from None
    return cfg


class BasicAuth:
    """Checks `Authorization: Basic` against bcrypt hashes.

    bcrypt is slow by design (~50-250 ms); Prometheus sends the same credentials every scrape, so
    successful checks are cached by a keyed digest of the credentials (as exporter-toolkit does).
    A failed check is never cached, so a wrong password always costs a full bcrypt round.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {u: h.encode() for u, h in users.items()}
        self._key = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
        self._ok: set[bytes] = set()
        self._slow: asyncio.Semaphore | None = None

    def _parse(self, header: str | None) -> tuple[str, str, bytes] | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password, hmac.new(self._key, f"{user}\0{password}".encode(), "sha256").digest()

    async def check_async(self, header: str | None) -> bool:
        """`check` without blocking the event loop: cached credentials answer at once; a full
        bcrypt round runs in a thread (bcrypt releases the GIL), at most two at a time, so a
        flood of wrong passwords queues up instead of freezing scrapes and sources."""
        parsed = self._parse(header)
        if parsed is None:
            return False
        if parsed[2] in self._ok:
            return True
        if self._slow is None:
            self._slow = asyncio.Semaphore(2)
        async with self._slow:
            return await asyncio.to_thread(self.check, header)

    def check(self, header: str | None) -> bool:
        parsed = self._parse(header)
        if parsed is None:
            return False
        user, password, digest = parsed
        if digest in self._ok:
            return True
        hashed = self.users.get(user)
        # Compare against a dummy hash for unknown users so timing doesn't reveal who exists.
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH) and hashed is not None
        if ok:
            if len(self._ok) > 1024:
                self._ok.clear()
            self._ok.add(digest)
        return ok


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=10))
