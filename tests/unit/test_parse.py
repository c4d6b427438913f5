"""The filtered parser: edge cases of the text format, and equivalence with prometheus_client's
parser on generated expositions (for the wanted sample names)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as om_families,
)
from prometheus_client.parser import text_string_to_metric_families

from ai_signals_exporter.expo.parse import parse_families

REAL = Path(__file__).resolve().parents[3] / "shared" / "real-payloads"


def _vals(samples):
    return [v for _, v in samples]


def test_only_wanted_names_are_returned():
    text = b"a 1\nb 2\nc{x=\"y\"} 3\n"
    assert parse_families(text, {"a", "c", "zz"}) == {"a": [({}, 1.0)], "c": [({"x": "y"}, 3.0)]}


def test_name_must_end_at_brace_or_blank():
    # "foo" is wanted; "foo_bar" and "foobar" are other series and must not be taken for it.
    text = "foo_bar 1\nfoobar{a=\"b\"} 2\nfoo 3\n"
    assert parse_families(text, {"foo"}) == {"foo": [({}, 3.0)]}


def test_label_escaping():
    text = r'm{a="back\\slash",b="quo\"te",c="new\nline",d="tab\tstays"} 1' + "\n"
    (labels, value), = parse_families(text, {"m"})["m"]
    assert labels == {"a": "back\\slash", "b": 'quo"te', "c": "new\nline", "d": "tab\\tstays"}
    assert value == 1.0


def test_label_values_with_format_characters():
    text = 'm{a="x} 9",b="# not a comment",c="a,b=c"} 4\n'
    assert parse_families(text, {"m"}) == {
        "m": [({"a": "x} 9", "b": "# not a comment", "c": "a,b=c"}, 4.0)]
    }


def test_special_values_and_scientific_notation():
    text = "a NaN\nb +Inf\nc -Inf\nd 1.5e+06\ne -2E-3\nf Inf\n"
    out = parse_families(text, set("abcdef"))
    assert math.isnan(out["a"][0][1])
    assert out["b"][0][1] == math.inf
    assert out["c"][0][1] == -math.inf
    assert out["d"][0][1] == 1.5e6
    assert out["e"][0][1] == -2e-3
    assert out["f"][0][1] == math.inf


def test_timestamps_and_exemplars_are_ignored():
    text = (
        'a{x="1"} 5 1700000000000\n'
        'b_total 7 # {trace_id="abc"} 1.0 1700000000.123\n'
        'c_bucket{le="0.5"} 3 1700000000 # {span_id="s"} 0.2\n'
    )
    out = parse_families(text, {"a", "b_total", "c_bucket"})
    assert out == {
        "a": [({"x": "1"}, 5.0)],
        "b_total": [({}, 7.0)],
        "c_bucket": [({"le": "0.5"}, 3.0)],
    }


def test_missing_help_type_blank_lines_no_trailing_newline():
    text = "\n\nx 1\n\n\n# random comment\ny{a=\"b\"} 2"
    assert parse_families(text, {"x", "y"}) == {"x": [({}, 1.0)], "y": [({"a": "b"}, 2.0)]}


def test_first_line_is_a_sample():
    assert parse_families(b"x 1", {"x"}) == {"x": [({}, 1.0)]}


def test_crlf_line_ends():
    text = b"# TYPE x gauge\r\nx{a=\"b\"} 1\r\ny 2\r\n"
    assert parse_families(text, {"x", "y"}) == {"x": [({"a": "b"}, 1.0)], "y": [({}, 2.0)]}


def test_openmetrics_eof_and_blank_separators():
    text = "# TYPE x counter\nx_total 3\nx_created 1.7e9\n# EOF\n"
    assert parse_families(text, {"x_total", "x_created"}) == {
        "x_total": [({}, 3.0)],
        "x_created": [({}, 1.7e9)],
    }


def test_spaces_and_trailing_comma_in_labels():
    text = 'm{ a = "1" , b="2", } 3\nm{} 4\n'
    assert parse_families(text, {"m"}) == {"m": [({"a": "1", "b": "2"}, 3.0), ({}, 4.0)]}


@pytest.mark.parametrize(
    "line",
    [
        "m",  # no value
        "m ",  # no value
        "m abc",  # not a number
        "m 1_000",  # Python float() would take it; the format does not
        'm{a="1" 2',  # unclosed brace
        'm{a="1} 2',  # unclosed quote
        "m{a=1} 2",  # unquoted value
        "m{1a=\"x\"} 2",  # bad label name
        "m 1 2 3",  # too many fields
        'm{a="1"}{b="2"} 3',
        "m\x00 1",
    ],
)
def test_garbage_lines_are_skipped(line):
    text = f"ok 1\n{line}\nok 2\n"
    out = parse_families(text, {"m", "ok"})
    assert out == {"ok": [({}, 1.0), ({}, 2.0)]}


def test_invalid_utf8_does_not_raise():
    text = b'm{a="\xff\xfe"} 1\n\xff\xff garbage\nn 2\n'
    out = parse_families(text, {"m", "n"})
    assert out["n"] == [({}, 2.0)]
    assert out["m"][0][1] == 1.0


def test_empty_inputs():
    assert parse_families(b"", {"x"}) == {}
    assert parse_families(b"x 1\n", set()) == {}
    assert parse_families(b"x 1\n", []) == {}


def test_returned_labels_are_owned_by_the_caller():
    text = 'm{a="1"} 1\n'
    first = parse_families(text, {"m"})["m"][0][0]
    first["a"] = "changed"
    assert parse_families(text, {"m"})["m"][0][0] == {"a": "1"}


def test_label_cache_stays_bounded():
    from ai_signals_exporter.expo import parse

    text = "".join(f'm{{pod="p{i}"}} {i}\n' for i in range(3 * parse._LABEL_CACHE_MAX))
    out = parse_families(text, {"m"})["m"]
    assert len(out) == 3 * parse._LABEL_CACHE_MAX
    assert out[-1] == ({"pod": f"p{len(out) - 1}"}, float(len(out) - 1))
    assert len(parse._LABEL_CACHE) <= parse._LABEL_CACHE_MAX


def test_accepts_list_and_str_inputs():
    assert parse_families("x 1\n", ["x"]) == parse_families(b"x 1\n", frozenset({"x"}))


def test_many_wanted_names_sharing_prefixes():
    names = [f"vllm:metric_{i}" for i in range(200)] + ["vllm:metric", "vllm:metric_1_total"]
    text = "".join(f"{n} {i}\n" for i, n in enumerate(names))
    out = parse_families(text, set(names))
    assert {n: out[n][0][1] for n in names} == {n: float(i) for i, n in enumerate(names)}


def test_exemplars_agree_with_openmetrics_parser():
    text = (
        "# TYPE req counter\n"
        'req_total{code="200"} 10 # {trace_id="t1"} 1.0 1700000000.5\n'
        'req_created{code="200"} 1700000000.0\n'
        "# TYPE lat histogram\n"
        'lat_bucket{le="0.1"} 2 # {trace_id="t2"} 0.05\n'
        'lat_bucket{le="+Inf"} 3\n'
        "lat_count 3\n"
        "lat_sum 1.5\n"
        "# EOF\n"
    )
    wanted = {"req_total", "req_created", "lat_bucket", "lat_sum", "lat_count"}
    expected: dict = {}
    for fam in om_families(text):
        for s in fam.samples:
            if s.name in wanted:
                expected.setdefault(s.name, []).append((dict(s.labels), s.value))
    assert parse_families(text, wanted) == expected


# ---------------------------------------------------------------- property test vs prometheus_client

_NAME_CHARS = "abcdefgh_:"
_RESERVED = ("_total", "_bucket", "_sum", "_count", "_created", "_info", "_gsum", "_gcount")

metric_names = st.text(_NAME_CHARS, min_size=1, max_size=8).map(lambda s: "m" + s).filter(
    lambda n: not n.endswith(_RESERVED)
)
label_names = st.sampled_from(["a", "b", "model_name", "engine", "tp_rank", "_x", "pod"])
label_values = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(lambda c: c not in "\r")
    | st.sampled_from(list('\\"\n}{#, =')),
    max_size=12,
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12).map(float),
)


def _fmt_value(v: float, style: int) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if style == 0:
        return repr(v)
    if style == 1:
        return format(v, ".6g")  # llama.cpp-style, e.g. 1.23457e+06
    return format(v, ".17e")


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@st.composite
def expositions(draw):
    """A valid text-format exposition, the wire names of its samples, and the pc->wire renames."""
    names = draw(st.lists(metric_names, min_size=1, max_size=6, unique=True))
    # A name that is another's prefix plus a suffix would be merged into one family by
    # prometheus_client; keep family names independent.
    lines: list[str] = []
    wire_names: set[str] = set()
    renames: dict[str, str] = {}
    for name in names:
        kind = draw(st.sampled_from(["gauge", "counter", "counter_total", "untyped", "histogram", "summary", "none"]))
        family = name
        if draw(st.booleans()):
            lines.append(f"# HELP {family} some help with \\\\ and \\n escapes")
        if kind != "none":
            lines.append(f"# TYPE {family} {kind.replace('_total', '')}")
        n_series = draw(st.integers(1, 3))
        series_labels = draw(
            st.lists(
                st.dictionaries(label_names, label_values, max_size=3),
                min_size=n_series,
                max_size=n_series,
                unique_by=lambda d: tuple(sorted(d.items())),
            )
        )
        for labels in series_labels:
            samples: list[tuple[str, dict, float]] = []
            if kind == "histogram":
                count = 0.0
                for le in ("0.1", "1.0", "+Inf"):
                    count += draw(st.integers(0, 5))
                    samples.append((name + "_bucket", {**labels, "le": le}, count))
                samples.append((name + "_sum", labels, draw(values)))
                samples.append((name + "_count", labels, count))
            elif kind == "summary":
                for q in ("0.5", "0.99"):
                    samples.append((name, {**labels, "quantile": q}, draw(values)))
                samples.append((name + "_sum", labels, draw(values)))
                samples.append((name + "_count", labels, float(draw(st.integers(0, 9)))))
            elif kind == "counter_total":
                samples.append((name + "_total", labels, draw(values)))
            else:
                samples.append((name, labels, draw(values)))
                if kind == "counter":  # TGI style: a counter without _total
                    renames[name + "_total"] = name
            for sname, slabels, v in samples:
                wire_names.add(sname)
                body = ",".join(f'{k}="{_esc(x)}"' for k, x in slabels.items())
                if slabels or draw(st.booleans()):
                    body = "{" + body + ("," if slabels and draw(st.booleans()) else "") + "}"
                line = f"{sname}{body} {_fmt_value(v, draw(st.integers(0, 2)))}"
                if draw(st.booleans()):
                    line += f" {draw(st.integers(0, 2 * 10**12))}"
                lines.append(line)
        if draw(st.booleans()):
            lines.append("")
    text = "\n".join(lines) + ("\n" if draw(st.booleans()) else "")
    return text, wire_names, renames


def _same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for (la, va), (lb, vb) in zip(a, b):
        if la != lb:
            return False
        # prometheus_client keeps an integer token as a Python int (exact beyond 2**53, e.g. the
        # DCGM int64 blank sentinel); the text format's values are floats (as Prometheus reads them).
        vb = float(vb)
        if not (va == vb or (math.isnan(va) and math.isnan(vb))):
            return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=expositions(), pick=st.data())
def test_equals_prometheus_client_on_wanted_names(data, pick):
    text, wire_names, renames = data
    wanted = set(pick.draw(st.sets(st.sampled_from(sorted(wire_names))))) | {"not_there"}
    expected: dict = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = renames.get(s.name, s.name)
            if name in wanted:
                expected.setdefault(name, []).append((dict(s.labels), s.value))
    for raw in (text, text.encode()):
        got = parse_families(raw, wanted)
        assert got.keys() == expected.keys()
        for name in expected:
            assert _same(got[name], expected[name]), name


_GARBAGE = st.sampled_from(
    [
        "{name}",
        "{name} ",
        "{name} not_a_number",
        '{name}{a="unterminated} 1',
        "{name}{a=unquoted} 1",
        "{name} 1 2 3",
        '{name}{a="1"}{b="2"} 3',
        "{name}\x00 1",
        "# {name} 1",
        " {name} 1",
        "#{name} 1",
        "\t",
        "}{ 1",
        '="x" 1',
    ]
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=expositions(), pick=st.data())
def test_garbage_lines_and_crlf_do_not_change_the_result(data, pick):
    text, wire_names, _ = data
    wanted = set(wire_names)
    clean = parse_families(text, wanted)
    lines = text.split("\n")
    for _ in range(pick.draw(st.integers(1, 5))):
        template = pick.draw(_GARBAGE)
        bad = template.replace("{name}", pick.draw(st.sampled_from(sorted(wire_names))))
        lines.insert(pick.draw(st.integers(0, len(lines))), bad)
    dirty = "\n".join(lines)
    for variant in (dirty, dirty.replace("\n", "\r\n")):
        got = parse_families(variant, wanted)
        assert got.keys() == clean.keys()
        assert all(_same(got[n], clean[n]) for n in clean)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=expositions(), pick=st.data())
def test_exemplars_do_not_change_the_result(data, pick):
    text, wire_names, _ = data
    wanted = set(wire_names)
    clean = parse_families(text, wanted)
    exemplar = st.sampled_from(
        [' # {trace_id="abc"} 1.5', ' # {trace_id="a\\"b",x="}"} 0.25 1700000000.5', " # {} 3"]
    )
    lines = [
        line + pick.draw(exemplar) if line and line[0] != "#" and pick.draw(st.booleans()) else line
        for line in text.split("\n")
    ]
    got = parse_families("\n".join(lines), wanted)
    assert got.keys() == clean.keys()
    assert all(_same(got[n], clean[n]) for n in clean)


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_input_never_raises(blob):
    out = parse_families(blob, {"a", "b_total", "m"})
    assert set(out) <= {"a", "b_total", "m"}


# ------------------------------------------------------------------------- real payloads

REAL_FILES = sorted(REAL.glob("*.prom")) if REAL.is_dir() else []


# The project's own payloads (engine fixtures written from upstream source, DCGM fixtures, and
# the simulator's current-release renders) run the same check in any clone.
OWN_FILES = sorted((Path(__file__).resolve().parents[1] / "fixtures").glob("*/*.prom"))
assert len(OWN_FILES) >= 20, "the project's payload fixtures are missing"


@pytest.mark.parametrize("path", OWN_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_own_payloads_match_prometheus_client_for_every_name(path):
    _check_against_prometheus_client(path.read_bytes())


@pytest.mark.parametrize("kind", ["vllm", "tgi", "sglang", "triton", "llamacpp", "trtllm"])
def test_simulated_payloads_match_prometheus_client_for_every_name(kind):
    from ai_signals_exporter.sim.engines import SimEngine

    t = [1_750_000_000.0]
    e = SimEngine(kind, load=4.0, ranks=2, clock=lambda: t[0], seed=1)
    t[0] += 300
    _check_against_prometheus_client(e.render())


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real-payloads not present")
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_payloads_match_prometheus_client_for_every_name(path):
    _check_against_prometheus_client(path.read_bytes())


def _check_against_prometheus_client(data: bytes) -> None:
    text = data.decode()
    expected: dict = {}
    pc_to_wire = {}
    wire = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name
            if name not in wire and name.endswith("_total") and name[:-6] in wire:
                pc_to_wire[name] = name[:-6]  # TGI counters: prometheus_client adds _total
            expected.setdefault(pc_to_wire.get(name, name), []).append((dict(s.labels), s.value))
    got = parse_families(data, set(expected))
    assert got.keys() == expected.keys()
    for name in expected:
        assert _same(got[name], expected[name]), name
