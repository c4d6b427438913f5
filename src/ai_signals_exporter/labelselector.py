"""Kubernetes label selectors (equality- and set-based), parsed once and matched in memory.

Used for discovery over the pods already held in `state.kube`, so no extra API calls are made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)\s*$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    # Commas separate requirements, except inside "in (a, b)".
    parts, depth, cur = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (p.strip() for p in parts) if p]


@dataclass(frozen=True)
class Selector:
    text: str
    _reqs: tuple[Callable[[Mapping[str, str]], bool], ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req(labels) for req in self._reqs)


def parse_selector(selector: str | None) -> Selector:
    """Parse `app=x,tier!=y,env in (a,b),!legacy`.  An empty selector matches everything."""
    reqs: list[Callable[[Mapping[str, str]], bool]] = []
    for part in _split(selector or ""):
        m = _EQ_RE.match(part)
        if m:
            key, op, val = m.group(1), m.group(3), m.group(4)
            if op == "!=":
                reqs.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                reqs.append(lambda l, k=key, v=val: l.get(k) == v)
            continue
        m = _SET_RE.match(part)
        if m:
            neg, key, op, values = m.group(1), m.group(2), m.group(4), m.group(5)
            if op is None:
                reqs.append((lambda l, k=key: k not in l) if neg else (lambda l, k=key: k in l))
                continue
            if neg:
                raise SelectorError(f"invalid requirement {part!r}")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            if op == "in":
                reqs.append(lambda l, k=key, vs=vals: l.get(k) in vs)
            else:
                reqs.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
            continue
        raise SelectorError(f"invalid label selector requirement {part!r}")
    return Selector(selector or "", tuple(reqs))
