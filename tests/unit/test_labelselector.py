import pytest

from ai_signals_exporter.labelselector import SelectorError, parse_selector


@pytest.mark.parametrize(
    "selector,labels,expected",
    [
        ("", {"a": "1"}, True),
        ("app=vllm", {"app": "vllm"}, True),
        ("app==vllm", {"app": "tgi"}, False),
        ("app!=vllm", {}, True),
        ("app.kubernetes.io/name=x,tier", {"app.kubernetes.io/name": "x", "tier": ""}, True),
        ("!legacy", {"legacy": "1"}, False),
        ("env in (prod, staging)", {"env": "staging"}, True),
        ("env notin (prod,staging)", {"env": "prod"}, False),
        ("env notin (prod)", {}, True),
    ],
)
def test_selector(selector: str, labels: dict, expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["a b", "=x", "!a in (b)", "a in b"])
def test_bad_selector(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)
