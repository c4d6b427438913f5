"""Incremental SSE / NDJSON / chunk parsing and decoding, fed in arbitrary pieces."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_signals_exporter.streaming import (
    DecodeError,
    ParseError,
    format_from_content_type,
    make_decoder,
    make_parser,
)
from ai_signals_exporter.streaming.parsers import NDJSONParser, SSEParser


def feed_in_pieces(parser, data: bytes, cuts: list[int]) -> int:
    points = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    total, prev = 0, 0
    for p in points + [len(data)]:
        total += parser.feed(data[prev:p])
        prev = p
    return total + parser.finish()


# -- SSE ---------------------------------------------------------------------------------------

EOLS = st.sampled_from([b"\n", b"\r\n", b"\r"])
TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
).map(lambda s: s.encode())


@st.composite
def sse_stream(draw):
    """(bytes, expected token events, expect done) in the many shapes servers send."""
    parts, expected = [], 0
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["data", "multi", "comment", "meta", "empty_data"]))
        eol = draw(EOLS)
        if kind == "data":
            payload = draw(TEXT)
            if payload.strip() == b"[DONE]":
                payload = b"x"
            sep = draw(st.sampled_from([b": ", b":"]))
            parts.append(b"data" + sep + payload + eol + eol)
            expected += 1
        elif kind == "multi":
            parts.append(b"event: delta" + eol + b"data: a" + eol + b"data: b" + eol + b"id: 7" + eol + eol)
            expected += 1
        elif kind == "empty_data":  # `data` with no colon is a data field with empty value
            parts.append(b"data" + eol + eol)
            expected += 1
        elif kind == "comment":  # keep-alives must not count
            parts.append(b": ping" + eol + eol)
        else:  # fields without data: no event
            parts.append(b"retry: 1000" + eol + b"event: x" + eol + eol)
    done = draw(st.booleans())
    if done:
        parts.append(b"data: [DONE]" + draw(EOLS) * 2)
        parts.append(b"data: after-done\n\n")  # ignored
    return b"".join(parts), expected, done


@settings(max_examples=300, deadline=None)
@given(sse_stream(), st.lists(st.integers(0, 10_000), max_size=30))
def test_sse_counts_events_across_any_chunk_boundaries(stream, cuts):
    data, expected, done = stream
    p = SSEParser()
    assert feed_in_pieces(p, data, cuts) == expected
    assert p.done is done


@settings(deadline=None)
@given(sse_stream())
def test_sse_byte_by_byte_equals_whole(stream):
    data, expected, done = stream
    p = SSEParser()
    assert sum(p.feed(data[i : i + 1]) for i in range(len(data))) + p.finish() == expected
    assert p.done is done


def test_sse_crlf_split_between_reads_is_one_line_end():
    p = SSEParser()
    # "\r" at the end of a read might be half of "\r\n": a blank line must not be seen early.
    assert p.feed(b"data: a\r") == 0
    assert p.feed(b"\n") == 0
    assert p.feed(b"\r") == 0
    assert p.feed(b"\ndata: b\r\n\r\n") == 2


def test_sse_unfinished_event_at_eof_is_discarded():
    p = SSEParser()
    assert p.feed(b"data: a\n\ndata: b\n") == 1
    assert p.finish() == 0


def test_sse_bom_and_trailing_cr_at_eof():
    p = SSEParser()
    assert p.feed(b"\xef\xbb\xbfdata: a\n\r") == 0
    assert p.finish() == 1


def test_sse_long_data_is_not_mistaken_for_done():
    p = SSEParser()
    assert p.feed(b"data: [DONE]" + b" " * 100 + b"x\n\n") == 1
    assert not p.done


def test_sse_unbounded_line_is_too_large():
    p = SSEParser(max_pending=1024)
    with pytest.raises(ParseError) as ei:
        p.feed(b"data: " + b"x" * 2000)
    assert ei.value.reason == "too_large"


# -- NDJSON / chunks ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="{}\":ab1 ", min_size=1, max_size=20), max_size=15),
    st.booleans(),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_ndjson_counts_nonblank_lines(lines, final_newline, cuts):
    data = "\n".join(lines).encode() + (b"\n" if final_newline and lines else b"")
    expected = sum(1 for line in lines if line.strip())
    assert feed_in_pieces(NDJSONParser(), data, cuts) == expected


def test_ndjson_crlf_and_blank_lines():
    p = NDJSONParser()
    assert p.feed(b'{"a":1}\r\n\r\n{"b"') == 1
    assert p.feed(b":2}\r\n") == 1
    assert p.finish() == 0


def test_chunk_parser_counts_nonempty_pieces():
    p = make_parser("chunked")
    assert [p.feed(b"abc"), p.feed(b""), p.feed(b"d")] == [1, 0, 1]


@pytest.mark.parametrize(
    "ctype,fmt",
    [
        ("text/event-stream", "sse"),
        ("Text/Event-Stream; charset=utf-8", "sse"),
        ("application/x-ndjson", "ndjson"),
        ("application/jsonl", "ndjson"),
        ("application/json", "chunked"),
        ("text/plain", "chunked"),
        (None, "chunked"),
    ],
)
def test_format_auto_from_content_type(ctype, fmt):
    assert format_from_content_type(ctype) == fmt


# -- decoding ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10_000), max_size=20),
       st.sampled_from(["gzip", "deflate", "x-gzip", "", "identity"]))
def test_decoder_round_trips_in_any_pieces(payload, cuts, encoding):
    if encoding in ("gzip", "x-gzip"):
        data = gzip.compress(payload)
    elif encoding == "deflate":
        data = zlib.compress(payload)
    else:
        data = payload
    d = make_decoder(encoding)
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = b"", 0
    for p in points + [len(data)]:
        out += d.decode(data[prev:p])
        prev = p
    assert out + d.flush() == payload


def test_sync_flushed_gzip_decodes_each_event_as_it_arrives():
    """What a streaming-friendly compressor sends: each event flushed.  The decoder must hand out
    each event on its own read, not wait for the end of the stream."""
    c = zlib.compressobj(wbits=31)
    d = make_decoder("gzip")
    for i in range(3):
        piece = c.compress(b"data: %d\n\n" % i) + c.flush(zlib.Z_SYNC_FLUSH)
        assert d.decode(piece) == b"data: %d\n\n" % i


def test_raw_deflate_is_accepted_and_stacked_codings_decode_in_reverse():
    c = zlib.compressobj(wbits=-15)
    raw = c.compress(b"hello") + c.flush()
    assert make_decoder("deflate").decode(raw) == b"hello"
    stacked = gzip.compress(zlib.compress(b"two layers"))
    d = make_decoder("deflate, gzip")
    assert d.decode(stacked) + d.flush() == b"two layers"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress"])
def test_unsupported_encoding_is_a_decode_error(encoding):
    with pytest.raises(DecodeError):
        make_decoder(encoding)


def test_corrupt_gzip_is_a_decode_error():
    with pytest.raises(DecodeError):
        make_decoder("gzip").decode(b"not gzip at all")
