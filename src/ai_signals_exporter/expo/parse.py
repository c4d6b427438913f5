"""Filtered parsing of the Prometheus text format.

Only the sample names a caller asks for are parsed; every other line is skipped after reading
its name, without building objects.  Handles escaping in label values, NaN/+Inf, missing
HELP/TYPE, timestamps and OpenMetrics exemplars (``# {trace_id="x"} 1.0``).
"""

from __future__ import annotations

import re
from typing import Collection

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]

_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE_RE = re.compile(r"\\(.)")
_UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}


def _unescape(v: str) -> str:
    if "\\" not in v:
        return v
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPE.get(m.group(1), "\\" + m.group(1)), v)


def parse_value(token: str) -> float:
    # float() accepts NaN, +Inf, -Inf, scientific notation; Go also writes "Inf" without a sign.
    return float(token)


def parse_families(data: bytes | str, wanted: Collection[str]) -> Samples:
    """Return {sample name: [(labels, value), ...]} for the sample names in `wanted`.

    Sample names include suffixes (``x_bucket``, ``x_sum``, ``x_total``).  Malformed lines are
    skipped, never raised: one bad line must not hide the rest of a target.
    """
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    wanted = wanted if isinstance(wanted, (set, frozenset, dict)) else set(wanted)
    out: Samples = {}
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if name not in wanted:
                continue
            labels: Labels = {}
            pos = brace + 1
            end = len(line)
            while True:
                while pos < end and line[pos] in " ,":
                    pos += 1
                if pos < end and line[pos] == "}":
                    pos += 1
                    break
                m = _LABEL_RE.match(line, pos)
                if m is None:
                    labels = None  # type: ignore[assignment]
                    break
                labels[m.group(1)] = _unescape(m.group(2))
                pos = m.end()
            if labels is None:
                continue
            rest = line[pos:]
        else:
            name = line[:space] if space != -1 else line
            if name not in wanted:
                continue
            labels = {}
            rest = line[space:] if space != -1 else ""
        # rest: " value [timestamp] [# exemplar]"
        hash_pos = rest.find("#")
        if hash_pos != -1:
            rest = rest[:hash_pos]
        parts = rest.split()
        if not parts:
            continue
        try:
            value = parse_value(parts[0])
        except ValueError:
            continue
        out.setdefault(name, []).append((labels, value))
    return out
