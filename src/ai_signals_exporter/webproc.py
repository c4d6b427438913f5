"""/metrics from a process that never parses or derives, so a refresh cannot delay a scrape.

    main process (sources, refresh)                 web process (this module's child side)
    Exporter ── each refresh: gzipped body ──frame──> latest bytes ──> GET /metrics
             <── reload / landing request ──frame── POST /-/reload, SIGHUP, GET /
             ── answer ─────────────────────frame──>

The two talk over one Unix socketpair in length-prefixed frames: a 4-byte length of a small JSON
header, then the blobs it lists.  The main process writes a new exposition only after the
refresh has rendered and gzipped it, so the web process does nothing per scrape but send bytes.
Only the gzip form crosses (0.6 MB instead of 5.9 MB at 1,000 nodes: Prometheus always asks for
gzip); a scrape without `Accept-Encoding: gzip` gets it inflated once per exposition, in a
thread, so the web process holds one plain copy only while someone reads the plain text.

Why a separate process: on two cores a refresh's derive and render hold the GIL for ~0.2 s at
1,000 nodes; a thread or a cooperative refresh still makes scrapes wait for it
(docs/performance.md).  Why a socketpair and a fresh interpreter (`python -m`, no fork): nothing
is inherited from a running event loop or its threads, the child imports only the HTTP side
(webapp.py), and the child sees end-of-file on the pair when the main process dies, even from
SIGKILL, and exits.  The main process restarts a web process that died
(`ai_signals_exporter_web_restarts_total`) and samples both processes' resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import itertools
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .logs import setup_logging
from .webapp import SHUTDOWN_GRACE_SECONDS, make_web_app, start_site
from .webconfig import load_web_config

if TYPE_CHECKING:
    from .app import Exporter, Exposition

log = logging.getLogger(__name__)

_LEN = struct.Struct("!I")
# The stream reader's buffer: a whole exposition (several MB at 1,000 nodes) arrives without
# pausing and resuming the socket every 64 kB.
READ_LIMIT = 16 * 1024 * 1024
SOCKET_BUFFER = 4 * 1024 * 1024
START_TIMEOUT = 30.0
RELOAD_TIMEOUT = 60.0
LANDING_TIMEOUT = 10.0
RESTART_MIN = 0.5
RESTART_MAX = 30.0


def _frame(meta: dict[str, Any], *blobs: bytes) -> list[bytes]:
    head = json.dumps({**meta, "sizes": [len(b) for b in blobs]}).encode()
    return [_LEN.pack(len(head)), head, *blobs]


async def write_frame(writer: asyncio.StreamWriter, meta: dict[str, Any], *blobs: bytes) -> None:
    # All parts are written before the first await: frames from two coroutines never interleave.
    writer.writelines(_frame(meta, *blobs))
    await writer.drain()


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], list[bytes]]:
    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
    meta = json.loads(await reader.readexactly(n))
    blobs = [await reader.readexactly(size) if size else b"" for size in meta["sizes"]]
    return meta, blobs


def _tune(sock: socket.socket) -> None:
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:  # a lower system limit is fine: only more round trips
            pass


def resident_memory(pid: int | str = "self") -> int | None:
    """Resident set size in bytes from /proc (Linux); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


# -- main-process side -------------------------------------------------------------------------


class WebProcess:
    """Starts, feeds, supervises and stops the web process of one Exporter."""

    def __init__(
        self,
        exporter: Exporter,
        listen: tuple[str, int],
        telemetry_path: str = "/metrics",
        web_config_file: str | None = None,
        log_level: str = "info",
        log_format: str = "logfmt",
    ) -> None:
        self.exporter = exporter
        self.args = [
            f"--listen={listen[0]}:{listen[1]}",
            f"--telemetry-path={telemetry_path}",
            f"--log.level={log_level}",
            f"--log.format={log_format}",
        ]
        if web_config_file:
            self.args.append(f"--web-config={os.path.abspath(web_config_file)}")
        self.telemetry_path = telemetry_path
        self.proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._latest: Exposition | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._conn_task: asyncio.Task | None = None
        self._stopping = False
        self.restarts = 0
        self.handoff_seconds = 0.0  # the last exposition's write + drain, for the benchmark
        self.handoffs = 0
        exporter.state.selfmon.web_restarts = 0
        exporter.exposition_listeners.append(self.publish)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        """Start the web process; OSError when it cannot listen."""
        await self._spawn()
        self._tasks = [
            asyncio.create_task(self._supervise(), name="web:supervise"),
            asyncio.create_task(self._send_loop(), name="web:send"),
            asyncio.create_task(self._sample_memory(), name="web:memory"),
        ]

    def publish(self, expo: Exposition) -> None:
        """A new exposition (called by the refresh loop): only the latest is ever sent."""
        self._latest = expo
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        proc, writer = self.proc, self._writer
        if proc is not None and proc.returncode is None:
            try:
                if writer is not None:
                    await asyncio.wait_for(write_frame(writer, {"op": "stop"}), 1.0)
            except (ConnectionError, OSError, TimeoutError):
                pass
            try:
                await asyncio.wait_for(proc.wait(), SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                log.warning("web process did not stop within %.0fs; killing it", SHUTDOWN_GRACE_SECONDS)
                proc.kill()
                await proc.wait()
            if proc.returncode != 0:
                log.warning("web process exited with code %s while stopping", proc.returncode)
        self._drop_connection()

    # -- internals -----------------------------------------------------------------------

    async def _spawn(self) -> None:
        parent, child = socket.socketpair()
        _tune(parent)
        _tune(child)
        # The child finds this package where the parent did, whatever sys.path tricks got us here.
        src = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ai_signals_exporter.webproc", f"--fd={child.fileno()}",
                *self.args, pass_fds=(child.fileno(),), env=env, stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()  # only the child holds its end: its death is our end-of-file
        reader, writer = await asyncio.open_unix_connection(sock=parent, limit=READ_LIMIT)
        try:
            expo = self._latest or self.exporter.exposition
            gz = await asyncio.to_thread(expo.gzipped)
            await write_frame(writer, self._expo_meta(expo), gz)
            first = asyncio.ensure_future(read_frame(reader))
            exited = asyncio.ensure_future(proc.wait())
            await asyncio.wait({first, exited}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            meta = first.result()[0] if first.done() and not first.exception() else {}
            if not first.done():
                first.cancel()
            if meta.get("op") != "listening":
                raise OSError(meta.get("message") or "the web process did not start")
        except BaseException:
            writer.close()
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            raise
        self.proc, self._writer = proc, writer
        self._conn_task = asyncio.create_task(self._answer(reader, writer), name="web:answer")
        log.debug("web process %d listening", proc.pid)

    def _expo_meta(self, expo: Exposition) -> dict[str, Any]:
        return {"op": "expo", "ready": self.exporter.ready, "rendered_at": expo.rendered_at}

    def _drop_connection(self) -> None:
        if self._conn_task is not None:
            self._conn_task.cancel()
            self._conn_task = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            expo, writer = self._latest, self._writer
            if expo is None or writer is None:
                continue
            started = time.perf_counter()
            try:
                await write_frame(writer, self._expo_meta(expo), expo.gzipped())
            except (ConnectionError, OSError):
                continue  # the web process died: _supervise restarts it with the latest bytes
            self.handoff_seconds = time.perf_counter() - started
            self.handoffs += 1

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests from the web process: config reloads and the landing page."""
        from .server import landing_html

        pending: set[asyncio.Task] = set()

        async def reload(rid: int) -> None:
            ok, message = await self.exporter.reload()
            try:
                await write_frame(writer, {"op": "answer", "id": rid, "ok": ok, "message": message})
            except (ConnectionError, OSError):
                pass  # the web process stopped (SIGTERM) while the reload ran: nobody waits for it

        try:
            while True:
                meta, _ = await read_frame(reader)
                if meta.get("op") == "reload":
                    task = asyncio.create_task(reload(meta["id"]))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                elif meta.get("op") == "landing":
                    html = landing_html(self.exporter, self.telemetry_path).encode()
                    await write_frame(writer, {"op": "answer", "id": meta["id"]}, html)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass  # the web process is gone; _supervise sees it exit

    async def _supervise(self) -> None:
        delay = RESTART_MIN
        while True:
            started = time.monotonic()
            assert self.proc is not None
            rc = await self.proc.wait()
            if self._stopping:
                return
            self._drop_connection()
            self.restarts += 1
            self.exporter.state.selfmon.web_restarts = self.restarts
            log.error("web process %d exited with code %s; restarting it in %.1fs", self.proc.pid, rc, delay)
            if time.monotonic() - started > RESTART_MAX:
                delay = RESTART_MIN  # it ran fine for a while: not a crash loop
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)
            try:
                await self._spawn()
            except OSError as exc:  # self.proc is still the dead one: the loop tries again
                log.error("cannot restart the web process: %s", exc)

    async def _sample_memory(self) -> None:
        # Sampled here, not in derive: reading /proc is I/O, and signals are pure.
        every = min(max(1.0, self.exporter.config.global_.refresh_interval), 30.0)
        mon = self.exporter.state.selfmon
        while True:
            rss = {"main": resident_memory()}
            if self.proc is not None and self.proc.returncode is None:
                rss["web"] = resident_memory(self.proc.pid)
            mon.resident_memory = {k: v for k, v in rss.items() if v is not None}
            await asyncio.sleep(every)


# -- web-process side --------------------------------------------------------------------------


class Handed:
    """The web process's backend: the latest exposition handed over, and requests forwarded to
    the main process."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._gzipped = b""
        self._inflated: asyncio.Future[bytes] | None = None
        self._ready = False
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future] = {}

    def take(self, meta: dict[str, Any], blobs: list[bytes]) -> None:
        op = meta.get("op")
        if op == "expo":
            (self._gzipped,) = blobs
            self._inflated = None
            self._ready = bool(meta.get("ready"))
        elif op == "answer":
            fut = self._pending.get(meta["id"])
            if fut is not None and not fut.done():
                fut.set_result((meta, blobs))

    def disconnected(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("main process gone"))

    async def body(self) -> bytes:
        # One inflate per exposition however many plain scrapes arrive while it runs.
        if self._inflated is None:
            self._inflated = asyncio.ensure_future(asyncio.to_thread(gzip.decompress, self._gzipped))
        return await asyncio.shield(self._inflated)

    def gzipped(self) -> bytes:
        return self._gzipped

    def is_ready(self) -> bool:
        return self._ready

    async def _ask(self, op: str, timeout: float) -> tuple[dict[str, Any], list[bytes]]:
        rid = next(self._ids)
        fut = self._pending[rid] = asyncio.get_running_loop().create_future()
        try:
            await write_frame(self.writer, {"op": op, "id": rid})
            return await asyncio.wait_for(fut, timeout)
        finally:
            del self._pending[rid]

    async def reload(self) -> tuple[bool, str]:
        try:
            meta, _ = await self._ask("reload", RELOAD_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError):
            return False, "the main process did not answer the reload"
        return bool(meta["ok"]), str(meta["message"])

    async def landing(self, telemetry_path: str) -> str:
        try:
            _, blobs = await self._ask("landing", LANDING_TIMEOUT)
        except (ConnectionError, OSError, TimeoutError):
            return "<!doctype html><p>ai-signals-exporter: the main process did not answer.</p>\n"
        return blobs[0].decode()


async def _web_main(args: argparse.Namespace) -> int:
    sock = socket.socket(fileno=args.fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=READ_LIMIT)
    backend = Handed(writer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    # Ctrl-C reaches the whole process group: the main process decides when this one stops.
    loop.add_signal_handler(signal.SIGINT, lambda: None)
    # A SIGHUP sent here instead of to the main process still reloads the config there.
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(backend.reload()))
    try:
        backend.take(*await read_frame(reader))  # the first exposition before the port opens
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0  # the main process went away before we started
    try:
        web_config = load_web_config(args.web_config) if args.web_config else None
        host, _, port = args.listen.rpartition(":")
        runner = await start_site(make_web_app(backend, args.telemetry_path, web_config),
                                  (host, int(port)), web_config)
    except Exception as exc:  # reported to the main process, which exits with it
        await write_frame(writer, {"op": "error", "message": str(exc)})
        return 1
    await write_frame(writer, {"op": "listening"})

    async def receive() -> None:
        try:
            while True:
                meta, blobs = await read_frame(reader)
                if meta.get("op") == "stop":
                    break
                backend.take(meta, blobs)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            log.info("main process gone; web process exiting")
        finally:
            backend.disconnected()
            stop.set()

    receiving = asyncio.create_task(receive())
    await stop.wait()
    await runner.cleanup()
    receiving.cancel()
    writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ai-signals-exporter web process")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--telemetry-path", default="/metrics")
    p.add_argument("--web-config", default=None)
    p.add_argument("--log.level", dest="log_level", default="info")
    p.add_argument("--log.format", dest="log_format", default="logfmt")
    args = p.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    return asyncio.run(_web_main(args))


if __name__ == "__main__":
    sys.exit(main())
