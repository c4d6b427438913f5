"""What the checkpoint source keeps per store: the latest verdict and how it was obtained."""

from __future__ import annotations

from dataclasses import dataclass

from ..slots import Slot
from .model import Verdict


@dataclass
class StoreObservation:
    """`state.checkpoints[name]`: the latest verdict for one store and how it was obtained."""

    name: str
    uri: str
    namespace: str
    job: str
    layout: str  # configured layout ("auto" or a fixed one)
    expected_interval: float | None
    verdict: Verdict | None = None  # last good verdict; None until a scan succeeded
    scanned_at: float = 0.0  # unix time of that verdict
    up: bool | None = None
    last_error: str = ""
    objects: int = 0
    empty_since: float | None = None  # unix time of the first of the scans that listed nothing
    discovered: bool = False


CHECKPOINTS: Slot[dict[str, StoreObservation]] = Slot("checkpoints", dict)  # store name -> observation
