"""Metric families as plain data, and their rendering to the Prometheus text format.

Signal modules build `Family` objects from in-memory state; the app renders all of them once per
refresh into bytes that every scrape then reuses.  Label values that come from the cluster (pod
names, annotations, model names) are escaped here and bounded in length, so no signal module has
to remember to do it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Iterable

# Long label values are cut rather than dropped: a 10 kB annotation must not become a 10 kB
# series, but the prefix still tells an operator which object it was.
MAX_LABEL_VALUE_LEN = 128

_TYPES = {"gauge", "counter", "summary", "histogram", "info", "untyped"}


# Label values repeat from one refresh to the next (node, pod, model names), so bounding and
# escaping are memoised; the caches are dropped wholesale when they grow past this many entries.
_CACHE_MAX = 200_000
_bounded: dict[str, str] = {}
_escaped: dict[str, str] = {}


def bound_label_value(value: object) -> str:
    """Return `value` as a valid, bounded UTF-8 label value (before escaping)."""
    if type(value) is str:
        cached = _bounded.get(value)
        if cached is not None:
            return cached
        out = _bound(value)
        if len(_bounded) >= _CACHE_MAX:
            _bounded.clear()
        _bounded[value] = out
        return out
    return _bound(value)


def _bound(value: object) -> str:
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = str(value)
    # Surrogates (from os.fsdecode of non-UTF-8 names) cannot be encoded as UTF-8.
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > MAX_LABEL_VALUE_LEN:
        # A digest of the whole value keeps long values that share a prefix (long pod names of
        # one workload) distinct series instead of duplicates after truncation.
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()
        text = text[: MAX_LABEL_VALUE_LEN - 11] + "..." + digest
    return text


def escape_label_value(value: str) -> str:
    cached = _escaped.get(value)
    if cached is None:
        cached = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
        if len(_escaped) >= _CACHE_MAX:
            _escaped.clear()
        _escaped[value] = cached
    return cached


def escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value: float) -> str:
    if type(value) is float and value.is_integer():  # the common case; False for NaN and Inf
        return str(int(value)) if -1e15 < value < 1e15 else repr(value)
    if value != value:  # NaN
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# Whole label-value tuples repeat too (one per series, every refresh): bounded tuples by raw
# tuple, and the rendered `name{labels} ` prefix of a line by (name, suffix, labels, values,
# extra).  Only all-str tuples are stored as keys, so 1, 1.0 and True (equal as keys) can never
# stand for each other.  Dropped wholesale past _CACHE_MAX entries, like the value caches.
_bounded_tuples: dict[tuple, tuple[str, ...]] = {}
_prefixes: dict[tuple, str] = {}


def bound_label_values(values: tuple) -> tuple[str, ...]:
    try:
        cached = _bounded_tuples.get(values)
    except TypeError:  # an unhashable value: bounded one by one, not cached
        return tuple(map(bound_label_value, values))
    if cached is None:
        cached = tuple(map(bound_label_value, values))
        if all(type(v) is str for v in values):
            if len(_bounded_tuples) >= _CACHE_MAX:
                _bounded_tuples.clear()
            _bounded_tuples[values] = cached
    return cached


def _line_prefix(
    name: str, suffix: str, labelnames: tuple[str, ...], values: tuple[str, ...],
    extra: tuple[tuple[str, str], ...],
) -> str:
    key = (name, suffix, labelnames, values, extra)
    prefix = _prefixes.get(key)
    if prefix is None:
        pairs = [f'{k}="{escape_label_value(v)}"' for k, v in zip(labelnames, values)]
        pairs.extend(f'{k}="{escape_label_value(v)}"' for k, v in extra)
        labels = "{" + ",".join(pairs) + "}" if pairs else ""
        prefix = f"{name}{suffix}{labels} "
        if len(_prefixes) >= _CACHE_MAX:
            _prefixes.clear()
        _prefixes[key] = prefix
    return prefix


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """A metric family declared as data: what docs/signals.md, the rule lint, the dashboards
    generator and the demo read.  Each area module lists its specs in a module-level FAMILIES
    tuple; `derive` only adds samples to the families made from them (`spec.new()`)."""

    name: str
    type: str
    help: str
    labelnames: tuple[str, ...] = ()
    # Topologies (topology.py).  scope: "node" | "cluster" | "instance", None = the area's.
    scope: str | None = None
    # The label whose value is the shard key of a sample (e.g. "node", "namespace"); None = the
    # area's.  A shard keeps only the samples it owns.
    shard_label: str | None = None
    # Several instances may each report a part of one series (a per-workload count whose pods
    # run on several nodes); the parts add up, the identity of a series includes the scraped
    # instance, and every rule sums over it.
    partial: bool = False
    # Several instances may each report the same value of one series (a configured price per GPU
    # model, for the models each instance sees): its identity includes the instance, and every
    # rule takes max by its labels.  Not sharded.
    replicated: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown metric type {self.type!r}")
        if self.shard_label is not None and self.shard_label not in self.labelnames:
            raise ValueError(f"{self.name}: shard_label {self.shard_label!r} is not a label")

    def new(self) -> "Family":
        return Family(self.name, self.type, self.help, self.labelnames)


def new_families(specs: Iterable[FamilySpec]) -> dict[str, "Family"]:
    """Empty families for `specs`, by name, in declaration order (the rendering order)."""
    return {spec.name: spec.new() for spec in specs}


@dataclass
class Family:
    """One metric family: name, type, help, the label names, and its samples.

    `samples` holds (suffix, label values, value); the suffix is "" for gauges and e.g. "_sum"
    for summaries.  Extra labels per sample (like `quantile`) go in `extra`.
    """

    name: str
    type: str
    help: str
    labelnames: tuple[str, ...] = ()
    samples: list[tuple[str, tuple[str, ...], float, tuple[tuple[str, str], ...]]] = field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"unknown metric type {self.type!r}")

    def add(
        self,
        labelvalues: Iterable[object] = (),
        value: float = 0.0,
        suffix: str = "",
        extra: tuple[tuple[str, str], ...] = (),
    ) -> "Family":
        values = bound_label_values(tuple(labelvalues))
        if len(values) != len(self.labelnames):
            raise ValueError(
                f"{self.name}: {len(values)} label values for labels {self.labelnames}"
            )
        self.samples.append((suffix, values, float(value), extra))
        return self

    def render(self) -> str:
        name, labelnames = self.name, self.labelnames
        lines = [f"# HELP {name} {escape_help(self.help)}", f"# TYPE {name} {self.type}"]
        append, prefixes, fmt = lines.append, _prefixes, format_value
        for suffix, values, value, extra in self.samples:
            prefix = prefixes.get((name, suffix, labelnames, values, extra))
            if prefix is None:
                prefix = _line_prefix(name, suffix, labelnames, values, extra)
            append(prefix + fmt(value))
        return "\n".join(lines) + "\n"


def render(families: Iterable[Family]) -> bytes:
    """Render families to exposition bytes.  Families with the same name are merged (first wins
    for HELP/TYPE) so two signal modules can contribute to one family without duplicate headers;
    empty families are skipped."""
    merged: dict[str, Family] = {}
    for fam in families:
        existing = merged.get(fam.name)
        if existing is None:
            merged[fam.name] = Family(fam.name, fam.type, fam.help, fam.labelnames, list(fam.samples))
        else:
            if existing.labelnames != fam.labelnames or existing.type != fam.type:
                raise ValueError(f"conflicting definitions of {fam.name}")
            existing.samples.extend(fam.samples)
    return "".join(f.render() for f in merged.values() if f.samples).encode("utf-8")
