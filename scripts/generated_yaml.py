"""What the generators of committed Kubernetes YAML share (gen_prometheusrule.py,
gen_dashboard_configmaps.py): one dump style, and `--check` for CI's drift test."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line strings (PromQL, dashboard JSON) as literal blocks, so diffs stay readable.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_all(header: str, docs: list[dict]) -> str:
    body = "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True) for d in docs)
    return header + body


def main(doc: str, render: Callable[[], str], output: Path, script: str, argv: list[str] | None = None) -> int:
    """Write `output`, or with --check exit 1 when the committed file differs from `render()`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            shown = output.relative_to(REPO) if output.is_relative_to(REPO) else output
            print(f"{shown} is out of date: run {script}", file=sys.stderr)
            return 1
        return 0
    output.write_text(text)
    return 0
