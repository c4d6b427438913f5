"""Filtered parsing of the Prometheus text format (0.0.4) and OpenMetrics text.

Only the sample names a caller asks for are parsed.  Instead of walking every line in Python, one
regex per wanted-name set (compiled once, cached) jumps from line start to line start in C and
matches only lines that begin with a wanted name followed by `{` or a blank; everything else
(HELP/TYPE, comments, other families, garbage) is never looked at from Python.  A 100 kB TGI
payload with ~2,500 lines typically yields a few dozen matches.

Handles: label escaping (``\\\\``, ``\\"``, ``\\n``), NaN/+Inf/-Inf, scientific notation,
missing HELP/TYPE, timestamps, OpenMetrics exemplars (``# {trace_id="x"} 1.0``), blank lines,
no trailing newline, CRLF line ends, ``# EOF``.  Malformed lines are skipped, never raised.
"""

from __future__ import annotations

import re
from typing import Collection

Labels = dict[str, str]
Samples = dict[str, list[tuple[Labels, float]]]

# One label pair; possessive quantifiers keep a bad line from backtracking for long.
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=[ \t]*"(?:[^"\\\n]++|\\.)*+"'
# The label body between braces, validated as a whole: pairs separated by commas, an optional
# trailing comma, blanks allowed around them (prometheus_client accepts all of these).
_BODY = rf"[ \t]*+(?:{_LABEL}[ \t]*+(?:,[ \t]*+{_LABEL}[ \t]*+)*+(?:,[ \t]*+)?)?"
# Sample value: a float token; timestamp: optional; then an optional exemplar (`# {...} v [ts]`).
# The value class has no `_`: Python's float() would accept "1_000", the format does not.
_TAIL = (
    r"[ \t]++([-+.0-9a-zA-Z]++)(?:[ \t]++[-+.0-9eE]++)?+[ \t]*+(?:#[^\n]*+)?+\r?$"
)
_PAIR_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"')
_UNESCAPE_RE = re.compile(r"\\(.)")
_UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}

_KEY_JUNK = " \t,="

_CACHE: dict[frozenset[str], re.Pattern[str]] = {}
_CACHE_MAX = 256
# Label bodies repeat from scrape to scrape (same series, same text): parse each once.  Bounded
# (a DCGM body with its dict is ~1.5 kB: 4,096 entries stay under ~6 MB) and emptied when full,
# so targets with many or churning label values cannot grow it without limit.
_LABEL_CACHE: dict[str, Labels] = {}
_LABEL_CACHE_MAX = 4096


def _unescape(v: str) -> str:
    # Unknown escapes stay as written, like prometheus_client does.
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPE.get(m.group(1), "\\" + m.group(1)), v)


def _trie_alternation(names: Collection[str]) -> str:
    """Regex alternation of literal names, factored as a trie so that a line that shares no
    prefix with any wanted name is rejected after one character, not after one try per name."""
    trie: dict = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = []
        optional = False
        for ch in sorted(node):
            if ch == "":
                optional = True
                continue
            branches.append(re.escape(ch) + emit(node[ch]))
        if not branches:
            return ""
        if len(branches) == 1 and not optional:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if optional else "")

    return emit(trie)


def _compile(wanted: frozenset[str]) -> re.Pattern[str]:
    pat = _CACHE.get(wanted)
    if pat is None:
        names = [n for n in wanted if n]
        if not names:
            pat = re.compile(r"(?!)")
        else:
            pat = re.compile(
                rf"\n({_trie_alternation(names)})(?:\{{({_BODY})\}})?+{_TAIL}", re.MULTILINE
            )
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[wanted] = pat
    return pat


def _parse_body(body: str) -> Labels:
    if "\\" in body:
        return {k: _unescape(v) if "\\" in v else v for k, v in _PAIR_RE.findall(body)}
    # The body was validated by the line regex, and without a backslash no value can hold a
    # quote: splitting on quotes alternates `name=` / value.
    parts = body.split('"')
    return {k.strip(_KEY_JUNK): v for k, v in zip(parts[0::2], parts[1::2])}


# --------------------------------------------------------------------------- validation
#
# The filtered parser never looks at most lines, so by itself it cannot tell a payload from an
# HTML page (it finds nothing and reports nothing).  Validating every line would cost as much as
# parsing them all; instead a fixed number of lines is checked: the first ones and one line at
# each of a few evenly spaced offsets.  An HTML page, JSON, or binary junk fails on its first
# line; a payload that turns bad later is caught when a sampled line lands in the bad part.

_SAMPLE_LINE_RE = re.compile(rf"[a-zA-Z_:][a-zA-Z0-9_:]*+(?:\{{{_BODY}\}})?+{_TAIL}")
_HEAD_LINES = 8
_SPREAD_LINES = 16
SHOWN_LINE_MAX = 120


class NotExposition(ValueError):
    """A body that is not the text exposition format.  `reason`: ``not_metrics`` (its first
    sample line is not a sample: a web page, JSON, binary data) or ``parse`` (it starts as
    exposition, a later line is malformed).  `line`: the first bad line found, truncated and
    escaped, safe to show and log."""

    def __init__(self, reason: str, line: str) -> None:
        super().__init__(f"{reason}: {line}")
        self.reason = reason
        self.line = line


def shown(line: str) -> str:
    """A line from a target, made safe for a log or a web page: truncated, non-printable and
    non-ASCII characters escaped."""
    out = ascii(line[: SHOWN_LINE_MAX + 1])[1:-1]
    return out[:SHOWN_LINE_MAX] + "..." if len(out) > SHOWN_LINE_MAX else out


def _line_ok(line: str) -> bool:
    line = line.rstrip("\r")
    if not line.strip() or line.startswith("#"):
        return True
    m = _SAMPLE_LINE_RE.fullmatch(line)
    if m is None:
        return False
    try:
        float(m.group(1))
    except ValueError:
        return False
    return True


def check_exposition(text: str) -> None:
    """Raise NotExposition when the sampled lines of `text` are not exposition format.  Costs a
    few dozen line checks, whatever the size of the payload."""
    if "\x00" in text[:4096]:
        raise NotExposition("not_metrics", shown(text[: text.find("\n")] if "\n" in text else text))
    first_sample = True
    pos = 0
    n = len(text)
    for _ in range(_HEAD_LINES):
        if pos >= n:
            return
        end = text.find("\n", pos)
        end = n if end < 0 else end
        line = text[pos:end]
        if not _line_ok(line):
            raise NotExposition("not_metrics" if first_sample else "parse", shown(line))
        if line.strip() and not line.startswith("#"):
            first_sample = False
        pos = end + 1
    if first_sample:
        # No sample among the first lines (a long HELP/TYPE preamble): find the first one.
        for line in text[pos:].split("\n", 256)[:256]:
            if line.strip() and not line.startswith("#"):
                if not _line_ok(line):
                    raise NotExposition("not_metrics", shown(line))
                break
    step = max(1, (n - pos) // (_SPREAD_LINES + 1))
    for k in range(1, _SPREAD_LINES + 1):
        start = text.find("\n", pos + k * step - 1)
        if start < 0 or start + 1 >= n:
            break
        end = text.find("\n", start + 1)
        line = text[start + 1 : n if end < 0 else end]
        if not _line_ok(line):
            raise NotExposition("parse", shown(line))


def parse_families(data: bytes | str, wanted: Collection[str]) -> Samples:
    """Return {sample name: [(labels, value), ...]} for the sample names in `wanted`.

    Sample names are as on the wire, suffixes included (``x_bucket``, ``x_sum``, ``x_total``;
    TGI counters have no ``_total``).  Samples keep their order in the payload.  Malformed lines
    are skipped, never raised: one bad line must not hide the rest of a target.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data).decode("utf-8", "replace")
    else:
        text = data
    key = wanted if isinstance(wanted, frozenset) else frozenset(wanted)
    pattern = _compile(key)
    out: Samples = {}
    label_cache = _LABEL_CACHE
    # A leading newline lets every sample line, the first one included, start with "\n": the
    # regex then has a literal first character, which sre scans for in C.
    for name, body, value in pattern.findall("\n" + text):
        try:
            v = float(value)
        except ValueError:
            continue
        if not body:
            labels = {}
        else:
            cached = label_cache.get(body)
            if cached is None:
                cached = _parse_body(body)
                if len(label_cache) >= _LABEL_CACHE_MAX:
                    label_cache.clear()
                label_cache[body] = cached
            # A copy: callers own what they get back.
            labels = cached.copy()
        lst = out.get(name)
        if lst is None:
            out[name] = [(labels, v)]
        else:
            lst.append((labels, v))
    return out
