"""Listing checkpoint stores: local disk and object storage, into one `Listing` shape.

Object storage goes through obstore (Rust `object_store`): one library for S3, GCS and Azure with
each cloud's standard credential chain and environment variables (`AWS_ENDPOINT_URL`,
`AWS_ALLOW_HTTP`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_NAME`, ...), so no
request signing lives here.  `file://` is walked with `os.scandir` instead of obstore's
LocalStore because LocalStore follows symlinks silently, and the symlinks are the point:
Lightning's `last.ckpt` and Composer's `latest-rank0.pt` are symlinks whose target must exist.

Every scan is bounded: `max_objects` (a larger store fails with reason "too_large" rather than
be judged on a partial listing, where a missing `.metadata` would look like a torn save),
`page_size` objects per batch handed to Python, and the caller's timeout.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .layouts import TAIL_BYTES, plan_reads
from .model import Entry, Listing


class ScanError(Exception):
    """A scan that failed; `reason` is one of selfmon.REASONS."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


class Tree(Protocol):
    scheme: str

    async def list(self, max_objects: int, page_size: int) -> list[Entry]: ...

    async def read(self, path: str, size: int) -> bytes: ...

    async def tail(self, path: str, size: int, n: int) -> bytes: ...


def scheme_of(uri: str) -> str:
    scheme = uri.split("://", 1)[0].lower()
    return {"abfs": "az", "abfss": "az", "azure": "az", "s3a": "s3", "gcs": "gs"}.get(scheme, scheme)


# --- local disk ---------------------------------------------------------------------------------


def _walk(root: str, max_objects: int, deadline: float) -> list[Entry]:
    if not os.path.isdir(root):
        raise ScanError("storage", f"{root}: not a directory")
    out: list[Entry] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(os.path.join(root, rel_dir) if rel_dir else root)
        except FileNotFoundError:  # removed between listing its parent and now (rotation)
            continue
        except OSError as exc:
            raise ScanError("storage", str(exc)) from None
        with it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                try:
                    if de.is_symlink():
                        out.append(_link_entry(root, rel, de.path))
                    elif de.is_dir(follow_symlinks=False):
                        stack.append(rel)
                        continue
                    elif de.is_file(follow_symlinks=False):
                        st = de.stat(follow_symlinks=False)
                        out.append(Entry(rel, st.st_size, st.st_mtime, ctime=st.st_ctime))
                    else:
                        continue
                except FileNotFoundError:
                    continue
                if len(out) > max_objects:
                    raise ScanError("too_large", f"more than {max_objects} objects")
                if len(out) % 1024 == 0 and time.monotonic() > deadline:
                    raise ScanError("timeout")
    return out


def _link_entry(root: str, rel: str, full: str) -> Entry:
    """A symlink as an entry: its target relative to the root, and the target's size and mtime
    (what a reader of the link gets); a dangling link keeps its own mtime and size 0."""
    target = os.readlink(full)
    if os.path.isabs(target):
        norm = os.path.relpath(target, root)
    else:
        norm = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    norm = norm.replace(os.sep, "/")
    try:
        st = os.stat(full)
        return Entry(rel, 0 if os.path.isdir(full) else st.st_size, st.st_mtime, link=norm, ctime=st.st_ctime)
    except OSError:
        return Entry(rel, 0, os.lstat(full).st_mtime, link=norm)


def _read(path: str, n: int | None) -> bytes:
    with open(path, "rb") as f:
        if n is None:
            return f.read()
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - n))
        return f.read()


class LocalTree:
    scheme = "file"

    def __init__(self, uri: str) -> None:
        self.root = unquote(urlsplit(uri).path) or "/"
        self.deadline_s = 30.0
        self._walking = False

    async def list(self, max_objects: int, page_size: int) -> list[Entry]:
        # A hung mount blocks scandir for good and a thread cannot be cancelled: a scan that
        # timed out leaves its walk running.  Start no second one meanwhile, or every scan adds
        # a stuck thread until the default executor (/metrics compression uses it) is exhausted.
        if self._walking:
            raise ScanError("timeout", f"{self.root}: previous listing still running")
        deadline = time.monotonic() + self.deadline_s
        return await asyncio.to_thread(self._walk_once, max_objects, deadline)

    def _walk_once(self, max_objects: int, deadline: float) -> list[Entry]:
        # Set in the thread itself: a walk cancelled before a worker picked it up never ran.
        self._walking = True
        try:
            return _walk(self.root, max_objects, deadline)
        finally:
            self._walking = False

    async def read(self, path: str, size: int) -> bytes:
        return await asyncio.to_thread(_read, os.path.join(self.root, path), None)

    async def tail(self, path: str, size: int, n: int) -> bytes:
        return await asyncio.to_thread(_read, os.path.join(self.root, path), n)


# --- object storage -----------------------------------------------------------------------------

# obstore splits settings between the store config and the HTTP client; a store's `options:` map
# is one flat map in our config, so route each key to the side that knows it.  (A client key in
# the store config is not an error but a Rust panic, so this routing is not optional.)
CLIENT_KEYS = frozenset({
    "allow_http", "allow_invalid_certificates", "connect_timeout", "default_content_type",
    "http1_only", "http2_keep_alive_interval", "http2_keep_alive_timeout",
    "http2_keep_alive_while_idle", "http2_max_frame_size", "http2_only", "pool_idle_timeout",
    "pool_max_idle_per_host", "proxy_url", "proxy_ca_certificate", "proxy_excludes",
    "randomize_addresses", "timeout", "user_agent",
})
# The prefix of each cloud's environment variables and of its long option names.
ENV_PREFIX = {"s3": "aws_", "gs": "google_", "az": "azure_"}
# Options whose value is a URL: without a scheme obstore builds the store and then panics on
# the first request, so these are checked up front.
URL_KEYS = frozenset({"endpoint", "endpoint_url", "base_url", "gcs_base_url", "proxy_url"})


def normalize_uri(uri: str) -> str:
    """The URI as obstore understands it: `gcs://` is a common spelling it does not parse."""
    scheme, sep, rest = uri.partition("://")
    return f"gs://{rest}" if sep and scheme.lower() == "gcs" else uri


def split_options(scheme: str, options: dict[str, str], environ: dict[str, str] | None = None
                  ) -> tuple[dict[str, str], dict[str, str]]:
    """(store config, client options) for one store.

    obstore reads each cloud's environment itself, but client options passed explicitly
    *replace* the ones it read, so `AZURE_ALLOW_HTTP`, `GOOGLE_PROXY_URL`, `AWS_TIMEOUT`, ...
    would be lost as soon as we set a timeout.  Carry the cloud's client variables over here;
    the store's own `options:` then override both (store config keys from the environment are
    still read by obstore and overridden by the config it is given)."""
    prefix = ENV_PREFIX.get(scheme, "")
    env = os.environ if environ is None else environ
    config: dict[str, str] = {}
    client: dict[str, str] = {}
    if prefix:
        for name, value in env.items():
            bare = name.lower().removeprefix(prefix)
            if name.lower().startswith(prefix) and bare in CLIENT_KEYS:
                client[bare] = value
    for key, value in options.items():
        k = key.lower()
        bare = k.removeprefix(prefix) if prefix else k
        if bare in CLIENT_KEYS:
            client[bare] = value
        else:
            config[k] = value
    return config, client


_XML_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
_CAUSES = re.compile(
    r'(?:source|kind): ([A-Z][A-Za-z]{2,40})[,\s]'  # unit variants: BadScheme, TimedOut, Connect
    r'|message: "([^"]{1,120})"'  # OS error text: "Connection refused"
    r'|ConnectError\(\s*"([^"]{1,80})"'  # "tcp connect error", "dns error"
    r'|status: (\d{3}),'
)
_BORING = {"Generic", "Request", "Unknown", "Http", "ListRequest", "GetRequest", "RetryError"}


def describe_error(exc: BaseException) -> str:
    """One bounded line for the log: obstore's summary, then the causes buried in its debug dump
    (the summary of a refused connection is just "error sending request").  No label uses it."""
    text = str(exc)
    summary, _, debug = text.partition("Debug source:")
    first = summary.strip().split("\n", 1)[0]
    first = first.split(": <", 1)[0]  # the XML body of an error response: its <Code> below
    causes: list[str] = []
    for m in _CAUSES.finditer(debug):
        word, message, connect, status = m.groups()
        item = word or message or connect or (f"HTTP {status}" if status else "")
        if item and item not in _BORING and item not in causes:
            causes.append(item)
    causes += [f"Code={c}" for c in dict.fromkeys(_XML_CODE.findall(text))]
    if "BadScheme" in causes:
        causes.append("http:// endpoints need allow_http")
    out = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if causes:
        out += f" (cause: {', '.join(causes)})"
    return out[:600]


def _obstore_error_reason(exc: BaseException) -> str:
    # The summary line only: the debug dump that follows names fields like `retry_timeout`.
    text, _, debug = str(exc).partition("Debug source:")
    if any(s in text for s in ("SlowDown", " 429 ", " 503 ", "TooManyRequests", "Throttl", "RequestLimitExceeded")):
        return "throttled"
    if "timed out" in text.lower() or "kind: Timeout" in debug:
        return "timeout"
    if "kind: Connect," in debug:
        return "connect"
    return "storage"


def _is_panic(exc: BaseException) -> bool:
    # pyo3's PanicException derives from BaseException, not Exception: a Rust panic in obstore
    # (a malformed option it accepted) must fail one store, not escape as a crash.
    return type(exc).__name__ == "PanicException"


def build_store(uri: str, options: dict[str, str], timeout: float,
                retry: dict[str, Any] | None = None) -> Any:
    """The obstore store for `uri` (no network).  ScanError("config") names what is wrong."""
    from obstore.store import from_url

    scheme = scheme_of(uri)
    for key, value in options.items():
        if key.lower().removeprefix(ENV_PREFIX.get(scheme, "")) in URL_KEYS and not str(value).startswith(("http://", "https://")):
            raise ScanError("config", f"option {key}: must be an http:// or https:// URL")
    config, client = split_options(scheme, options)
    defaults = {
        "timeout": f"{max(1, int(timeout))}s",
        "connect_timeout": f"{max(1, min(5, int(timeout)))}s",
    }
    client = {**defaults, **client}
    try:
        return from_url(normalize_uri(uri), config=config or None, client_options=client,
                        retry_config=retry)
    except Exception as exc:  # bad option names or values: a config problem, not an outage
        raise ScanError("config", describe_error(exc)) from None
    except BaseException as exc:
        if not _is_panic(exc):
            raise
        raise ScanError("config", describe_error(exc)) from None


def option_errors(uri: str, options: dict[str, str | None]) -> list[tuple[str, str]]:
    """(key, message) for every option the store for `uri` rejects, without network.  One build
    with all literal options (~15 ms: obstore loads its TLS roots per client); only when that
    fails is each key built alone, so the message names the key.  A value of None (a secret not
    readable here) is checked for its name only."""
    from obstore.exceptions import UnknownConfigurationKeyError
    from obstore.store import from_url

    scheme = scheme_of(uri)
    if scheme == "file":
        return [(k, "file:// stores take no options") for k in options]
    literal = {k: v for k, v in options.items() if v is not None}
    names_only = [k for k, v in options.items() if v is None]
    try:
        build_store(uri, literal, 30.0)
        suspects: list[str] = []
    except ScanError:
        try:
            build_store(uri, {}, 30.0)
            suspects = list(literal)
        except ScanError:  # the environment alone fails here: judge the names only
            names_only += list(literal)
            suspects = []
    unknown = f"not an option of {scheme}:// stores"
    out: list[tuple[str, str]] = []
    for key in suspects:
        try:
            build_store(uri, {key: literal[key]}, 30.0)
        except ScanError as exc:
            out.append((key, unknown if "UnknownConfigurationKey" in str(exc) else str(exc)))
    for key in names_only:
        config, client = split_options(scheme, {key: ""}, environ={})
        if client:
            continue
        try:
            # An unknown key fails while the config is read, before any value or environment.
            from_url(normalize_uri(uri), config=config)
        except UnknownConfigurationKeyError:
            out.append((key, unknown))
        except Exception:
            continue  # a known key with an empty value: judged when the secret is resolved
    return out


class ObjectTree:
    def __init__(self, uri: str, options: dict[str, str], timeout: float) -> None:
        self.scheme = scheme_of(uri)
        # Retries must fit inside one scan's timeout; the next scan is the real retry.
        retry = {
            "max_retries": 2,
            "retry_timeout": timedelta(seconds=max(1.0, timeout / 2)),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=2),
                "base": 2.0,
            },
        }
        self.store = build_store(uri, options, timeout, retry)

    async def list(self, max_objects: int, page_size: int) -> list[Entry]:
        import obstore

        out: list[Entry] = []
        try:
            async for batch in obstore.list(self.store, chunk_size=page_size):
                for meta in batch:
                    out.append(Entry(meta["path"], int(meta["size"]), meta["last_modified"].timestamp()))
                if len(out) > max_objects:
                    raise ScanError("too_large", f"more than {max_objects} objects")
        except ScanError:
            raise
        except Exception as exc:
            raise ScanError(_obstore_error_reason(exc), describe_error(exc)) from None
        except BaseException as exc:
            if not _is_panic(exc):
                raise
            raise ScanError("storage", describe_error(exc)) from None
        return out

    async def read(self, path: str, size: int) -> bytes:
        import obstore

        result = await obstore.get_async(self.store, path)
        return bytes(await result.bytes_async())

    async def tail(self, path: str, size: int, n: int) -> bytes:
        import obstore

        start = max(0, size - n)
        return bytes(await obstore.get_range_async(self.store, path, start=start, end=size))


def open_tree(uri: str, options: dict[str, str], timeout: float) -> Tree:
    if scheme_of(uri) == "file":
        tree = LocalTree(uri)
        tree.deadline_s = timeout
        return tree
    return ObjectTree(uri, options, timeout)


async def scan(tree: Tree, max_objects: int, page_size: int) -> Listing:
    """List the store, then make the few small reads the layouts need."""
    entries = await tree.list(max_objects, page_size)
    by_path = {e.path: e for e in entries}
    wanted, tails = plan_reads(entries)

    async def one(path: str, tail: bool) -> tuple[str, bytes | None]:
        e = by_path[path]
        try:
            if tail:
                return path, await tree.tail(path, e.size, TAIL_BYTES)
            return path, await tree.read(path, e.size)
        except (FileNotFoundError, IsADirectoryError):
            return path, None  # rotated away since the listing: judged as absent content
        except OSError as exc:
            raise ScanError("storage", str(exc)) from None
        except Exception as exc:
            name = type(exc).__name__
            if name == "NotFoundError":
                return path, None
            raise ScanError(_obstore_error_reason(exc), describe_error(exc)) from None

    got = await asyncio.gather(*(one(p, False) for p in wanted), *(one(p, True) for p in tails))
    contents = {p: b for p, b in got[: len(wanted)] if b is not None}
    tail_bytes = {p: b for p, b in got[len(wanted) :] if b is not None}
    return Listing(entries, contents, tail_bytes)
