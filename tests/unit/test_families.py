from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ai_signals_exporter.expo.families import MAX_LABEL_VALUE_LEN, Family, render


def test_render_roundtrips_through_prometheus_parser() -> None:
    fam = Family("ai_x", "gauge", "help with \\ and\nnewline", ("pod", "ns"))
    fam.add(('we"ird\\pod\nname', "ns"), 1.5).add(("b", "ns"), math.inf).add(("c", "ns"), math.nan)
    text = render([fam]).decode()
    parsed = list(text_string_to_metric_families(text))
    samples = parsed[0].samples
    assert samples[0].labels["pod"] == 'we"ird\\pod\nname'
    assert samples[0].value == 1.5
    assert samples[1].value == math.inf
    assert math.isnan(samples[2].value)


def test_label_values_are_bounded_and_valid_utf8() -> None:
    fam = Family("ai_x", "gauge", "h", ("pod",))
    fam.add(("x" * 10_000,), 1).add((b"\xff\xfe bad bytes",), 2).add(("\udcff surrogate",), 3)
    text = render([fam]).decode("utf-8")
    values = [s.labels["pod"] for s in list(text_string_to_metric_families(text))[0].samples]
    assert len(values[0]) == MAX_LABEL_VALUE_LEN
    assert all(len(v) <= MAX_LABEL_VALUE_LEN for v in values)


def test_same_family_from_two_areas_is_merged_once() -> None:
    a = Family("ai_x", "gauge", "h", ("a",)).add(("1",), 1)
    b = Family("ai_x", "gauge", "h", ("a",)).add(("2",), 2)
    text = render([a, b]).decode()
    assert text.count("# TYPE ai_x") == 1
    assert 'ai_x{a="1"} 1' in text and 'ai_x{a="2"} 2' in text


def test_conflicting_definitions_rejected() -> None:
    a = Family("ai_x", "gauge", "h", ("a",)).add(("1",), 1)
    b = Family("ai_x", "gauge", "h", ("b",)).add(("2",), 2)
    with pytest.raises(ValueError):
        render([a, b])


def test_empty_families_are_omitted_and_wrong_arity_rejected() -> None:
    assert render([Family("ai_x", "gauge", "h", ("a",))]) == b""
    with pytest.raises(ValueError):
        Family("ai_x", "gauge", "h", ("a",)).add(("1", "2"), 1)
