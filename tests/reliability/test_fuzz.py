"""Hostile input for every parser that reads bytes from the network or a file we do not write:
the exposition parser, the streaming decoders and parsers, the config loaders.  No exception
escapes (ConfigError/ParseError/DecodeError are the documented failures), and time and memory stay
bounded on pathological input.

Complements tests/unit/test_parse.py (agreement with prometheus_client, arbitrary short input) and
tests/unit/test_stream_parsers.py (well-formed streams cut anywhere).
"""

from __future__ import annotations

import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_signals_exporter.config import Config, ConfigError, load_config_text
from ai_signals_exporter.expo.parse import parse_families
from ai_signals_exporter.streaming import DecodeError, ParseError, make_decoder, make_parser
from ai_signals_exporter.streaming.decode import MAX_DECODED_BYTES
from ai_signals_exporter.streaming.parsers import DEFAULT_MAX_PENDING

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of real exposition syntax, so the fuzzer spends its time near the parser's edge cases.
ATOMS = [b"vllm:num_requests_running", b"a", b"a_bucket", b"{", b"}", b"=", b",", b'"', b"\\", b"\\n",
         b'\\"', b" ", b"\t", b"\n", b"\r\n", b"\r", b"#", b"# HELP a x\n", b"# TYPE a gauge\n", b"# EOF\n",
         b"1", b"-1e308", b"NaN", b"+Inf", b"1e999", b"0x1F", b"le", b'le="+Inf"', b"\xff\xfe", b"\x00",
         "é€".encode(), b"1700000000000", b" # {trace_id=\"x\"} 1"]
WANTED = {"a", "a_bucket", "vllm:num_requests_running"}


@FUZZ
@given(st.lists(st.sampled_from(ATOMS), max_size=200))
def test_exposition_parser_never_raises_on_near_valid_input(atoms):
    got = parse_families(b"".join(atoms), WANTED)
    assert set(got) <= WANTED
    for samples in got.values():
        for labels, value in samples:
            assert isinstance(labels, dict) and isinstance(value, float)


@pytest.mark.parametrize("blob", [
    b"{" * 2_000_000,
    b'a{b="' + b'\\"' * 1_000_000,
    b"a{" + b'x="y",' * 300_000 + b"} 1\n",
    b"a 1\n" * 500_000,
    b"\n" * 2_000_000,
    b"a" * 2_000_000 + b" 1\n",
    b'a{le="' + b"\xff" * 1_000_000 + b'"} 1\n',
], ids=["braces", "escaped-quotes", "many-labels", "many-lines", "blank-lines", "long-name", "non-utf8"])
def test_exposition_parser_pathological_input_is_linear_and_fast(blob):
    """Megabytes of the worst shapes parse in well under a second each (measured: <0.6 s on the
    2-core runner for the slowest, 500k wanted samples); no backtracking blow-up."""
    t0 = time.perf_counter()
    parse_families(blob, {"a"})
    assert time.perf_counter() - t0 < 5.0


@FUZZ
@given(st.binary(max_size=4000), st.lists(st.integers(0, 4000), max_size=20),
       st.sampled_from(["sse", "ndjson", "chunked"]))
def test_stream_parsers_only_raise_parse_error(data, cuts, fmt):
    parser = make_parser(fmt, max_pending=512)
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    try:
        for a, b in zip(edges, edges[1:]):
            n = parser.feed(data[a:b])
            assert n >= 0
        assert parser.finish() >= 0
    except ParseError as exc:
        assert exc.reason == "too_large"


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from(["gzip", "deflate", "gzip, deflate", "x-gzip"]))
def test_decoders_only_raise_decode_error(data, encoding):
    dec = make_decoder(encoding)
    try:
        dec.decode(data)
        dec.flush()
    except DecodeError:
        pass


def test_unbounded_line_is_cut_for_every_format():
    for fmt in ("sse", "ndjson"):
        parser = make_parser(fmt)
        with pytest.raises(ParseError):
            for _ in range(DEFAULT_MAX_PENDING // 65536 + 2):
                parser.feed(b"x" * 65536)


def test_compression_bomb_is_cut_in_bounded_time_and_memory():
    """200 MB of newlines gzip to ~200 KB; before the cap one 64 KB read expanded to ~64 MB and
    the SSE parser spent minutes on it with the event loop blocked."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = c.compress(b"\n" * 200_000_000) + c.flush()
    assert len(bomb) < 300_000
    dec, parser = make_decoder("gzip"), make_parser("sse")
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(DecodeError):
            for i in range(0, len(bomb), 65536):
                parser.feed(dec.decode(bomb[i:i + 65536]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 10
    assert peak < 4 * MAX_DECODED_BYTES, peak


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                         st.text(max_size=20), st.sampled_from(["15s", "0s", "-1s", "1h30m", "http://x", "s3://b"]))
KEYS = ["global", "kubernetes", "serving", "gpu", "checkpoints", "probes", "interval", "targets", "url",
        "stores", "name", "uri", "window", "enabled", "headers", "discovery", "labels", "timeout", "bogus"]
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=6))
def test_config_loader_structured_input_only_raises_config_error(doc):
    import yaml

    text = yaml.safe_dump(doc)
    try:
        cfg = load_config_text(text)
    except ConfigError as exc:
        assert str(exc).startswith("<config>: ")
    else:
        assert isinstance(cfg, Config)


@FUZZ
@given(st.text(max_size=500) | st.binary(max_size=500).map(lambda b: b.decode("latin-1")))
def test_config_loader_arbitrary_text_only_raises_config_error(text):
    try:
        load_config_text(text)
    except ConfigError:
        pass


@pytest.mark.parametrize("text", [
    "[" * 50_000,
    "{a: " * 5_000,
    "a: &a [1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")),
    "global: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
    "global: {interval: " + "9" * 5000 + "s}\n",
    "\x00",
], ids=["deep-list", "deep-map", "billion-laughs", "python-tag", "huge-number", "nul"])
def test_config_loader_hostile_documents(text):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError):
        load_config_text(text)
    assert time.perf_counter() - t0 < 10
