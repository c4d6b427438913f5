"""Misbehaving HTTP servers on raw sockets, for faults aiohttp's server cannot produce: a peer that
resets the connection mid-body, one that dribbles a response byte by byte, one that accepts and
never answers, one that streams a body forever.

    async with FaultServer(reset_mid_body(VLLM_PAYLOAD)) as url:
        ...                                   # url = "http://127.0.0.1:PORT"

Handlers are coroutines `(reader, writer)`; the request head is read for them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# A small vLLM page: enough for engine auto-detection and a token counter.
VLLM_PAYLOAD = (
    b"# HELP vllm:num_requests_running Number of requests running.\n"
    b"# TYPE vllm:num_requests_running gauge\n"
    b'vllm:num_requests_running{model_name="m"} 1\n'
    b"# TYPE vllm:generation_tokens_total counter\n"
    b'vllm:generation_tokens_total{model_name="m"} 5\n'
)


def rst_close(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN: SO_LINGER on, zero timeout."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def head(status: str = "200 OK", content_type: str = "text/plain; version=0.0.4",
         length: int | None = None, chunked: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def hang() -> Handler:
    """Accept, read the request, never answer."""

    async def handler(reader, writer):
        await asyncio.sleep(3600)

    return handler


def reset_mid_body(body: bytes, sent: int | None = None) -> Handler:
    """Announce the whole body, send part of it, then reset the connection."""

    async def handler(reader, writer):
        writer.write(head(length=len(body)) + body[: sent if sent is not None else len(body) // 2])
        await writer.drain()
        await asyncio.sleep(0.05)
        rst_close(writer)

    return handler


def byte_by_byte(body: bytes, delay: float) -> Handler:
    """A complete, valid response, one byte every `delay` seconds."""

    async def handler(reader, writer):
        for i, b in enumerate(head(length=len(body)) + body):
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(delay)

    return handler


def endless(line: bytes = b'vllm:num_requests_running{model_name="m"} 1\n') -> Handler:
    """200, chunked, and a body that never ends (no Content-Length to reject up front)."""

    async def handler(reader, writer):
        writer.write(head(chunked=True))
        piece = chunk(line * 1000)
        while True:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)

    return handler


def sse_reset_after(events: int) -> Handler:
    """A streamed SSE response that sends `events` events and then resets the connection."""

    async def handler(reader, writer):
        writer.write(head(content_type="text/event-stream", chunked=True))
        for i in range(events):
            writer.write(chunk(f'data: {{"i": {i}}}\n\n'.encode()))
            await writer.drain()
            await asyncio.sleep(0.02)
        rst_close(writer)

    return handler


class FaultServer:
    """Serve `handler` on 127.0.0.1 (random port) until the context exits; counts connections."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.host = host
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await reader.readuntil(b"\r\n\r\n")
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            writer.transport.abort()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
