"""Incremental Content-Encoding decoding, done by the probe itself.

aiohttp's transparent decompression is switched off on purpose: the probe must time the moment
*decoded events* become available, and it must know that the response was compressed at all.  The
first bytes of a gzip stream (the 10-byte header) can arrive long before any event can be decoded,
so "first body byte" and "first event" are different instants for a compressed stream.  Decoding
here, piece by piece, with zlib's streaming decompressor gives exactly the bytes a browser's
EventSource would have at each read.
"""

from __future__ import annotations

import zlib

# Only what we can decode is advertised; a probe should still ask for compression like a browser
# does, so that an ingress that compresses event streams shows up.
ACCEPT_ENCODING = "gzip, deflate"


# Decoded bytes one stream may produce.  A probe stream is kilobytes to a few MB; without a cap,
# one 64 KB read of a compression bomb (~1000:1) becomes 64 MB for the parser, blocking the
# event loop for seconds per read.
MAX_DECODED_BYTES = 8 << 20


class DecodeError(Exception):
    reason = "decode"


class _Identity:
    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Zlib:
    def __init__(self, wbits: int, fallback_raw: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._fallback_raw = fallback_raw
        self._started = False
        self._room = MAX_DECODED_BYTES

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._d.decompress(data, self._room + 1)
        except zlib.error:
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            if self._fallback_raw and not self._started:
                self._fallback_raw = False
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data)
            raise DecodeError("bad compressed data") from None
        self._started = True
        self._room -= len(out)
        if self._room < 0:
            raise DecodeError(f"decoded stream larger than {MAX_DECODED_BYTES} bytes")
        return out

    def flush(self) -> bytes:
        try:
            return self._d.flush()
        except zlib.error:
            raise DecodeError("bad compressed data") from None


class _Chain:
    def __init__(self, decoders: list) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> bytes:
        for d in self._decoders:
            data = d.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for d in self._decoders:
            data = (d.decode(data) if data else b"") + d.flush()
        return data


def make_decoder(content_encoding: str | None):
    """A decoder for a Content-Encoding header value (codings applied in order, so decoded in
    reverse).  Raises DecodeError for codings we cannot decode."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    decoders = []
    for c in reversed(codings):
        if c in ("gzip", "x-gzip"):
            decoders.append(_Zlib(16 + zlib.MAX_WBITS))
        elif c == "deflate":
            decoders.append(_Zlib(zlib.MAX_WBITS, fallback_raw=True))
        else:
            raise DecodeError(f"unsupported content-encoding {c!r}")
    if not decoders:
        return _Identity()
    if len(decoders) == 1:
        return decoders[0]
    return _Chain(decoders)
