"""Push samples at chosen timestamps into a real Prometheus (`--web.enable-remote-write-receiver`)
with the remote-write 1.0 protocol: a protobuf `prometheus.WriteRequest`, snappy block-compressed.

Encoded by hand (a few varints; prompb/types.proto and remote.proto of Prometheus v2.42 were
followed) and compressed as snappy literals only (a valid snappy block: the format's literal
element, github.com/google/snappy format_description.txt), so the tests need neither protobuf
nor a snappy binding.
"""

from __future__ import annotations

import struct
import urllib.request
from typing import Iterable

Sample = tuple[dict[str, str], float, float]  # labels (with __name__), value, unix seconds


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # length-delimited (wire type 2)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode(samples: Iterable[Sample]) -> bytes:
    """WriteRequest{timeseries: [TimeSeries{labels (sorted by name), samples: [Sample]}]}."""
    out = bytearray()
    for labels, value, ts in samples:
        series = bytearray()
        for name in sorted(labels):
            series += _field(1, _field(1, name.encode()) + _field(2, labels[name].encode()))
        sample = b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(int(round(ts * 1000)))
        series += _field(2, sample)
        out += _field(1, bytes(series))
    return bytes(out)


def snappy_literals(data: bytes) -> bytes:
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes([60 << 2, n])
        else:
            out += bytes([61 << 2]) + struct.pack("<H", n)
        out += chunk
    return bytes(out)


def push(url: str, samples: list[Sample]) -> None:
    if not samples:
        return
    req = urllib.request.Request(
        url + "/api/v1/write", data=snappy_literals(encode(samples)), method="POST",
        headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status in (200, 204), resp.status
