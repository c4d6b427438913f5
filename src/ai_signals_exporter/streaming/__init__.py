"""Streaming-probe internals, all pure (no I/O): incremental stream parsers, content decoding,
the per-request measurement record, and the buffering verdict.

`sources/probes.py` drives the network and feeds bytes in; `signals/streaming.py` turns the
records into metric families.
"""

from .decode import DecodeError, make_decoder
from .parsers import ParseError, make_parser, format_from_content_type
from .record import ProbeObservation, StreamMeasurement, StreamTimer
from .verdict import Verdict, is_burst, judge

__all__ = [
    "DecodeError",
    "ParseError",
    "ProbeObservation",
    "StreamMeasurement",
    "StreamTimer",
    "Verdict",
    "format_from_content_type",
    "is_burst",
    "judge",
    "make_decoder",
    "make_parser",
]
