"""docs/configuration.md documents every key of the config model (no silent drift)."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from ai_signals_exporter.config import Config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        out.append(path)
        ann = field.annotation
        is_list = typing.get_origin(ann) is list
        candidates = [ann, *typing.get_args(ann)]
        for a in list(candidates):
            candidates.extend(typing.get_args(a))
        for sub in candidates:
            if isinstance(sub, type) and issubclass(sub, BaseModel) and sub is not model:
                out.extend(_paths(sub, path + ("[]." if is_list else ".")))
                break
    return out


def test_every_config_key_is_documented() -> None:
    text = DOC.read_text()
    # A key counts as documented when it is written in backticks, alone or as the prefix of its
    # documented sub-keys (`serving.targets[].url` documents `serving.targets`).
    missing = [p for p in _paths(Config) if f"`{p}`" not in text and f"`{p}." not in text
               and f"`{p}[]" not in text]
    assert not missing, f"undocumented config keys: {missing}"
