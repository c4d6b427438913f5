"""What the serving source keeps per target: its identity and the snapshots of the rate window."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..engines.base import ModelSnapshot
from ..slots import Slot

CAPACITY_ANNOTATION = "ai-signals.io/capacity-tokens-per-second"


@dataclass
class TargetIdentity:
    """Who a target is, in cluster terms.  Filled from static labels or from the discovered pod."""

    namespace: str = ""
    pod: str = ""
    workload_kind: str = ""
    workload: str = ""
    # Used for engines that expose no model label (TGI, llama.cpp).
    model: str = ""
    capacity_tokens_per_second: float | None = None


def keep_seconds(window: float, interval: float) -> float:
    """How long a target's samples are kept: the rate window plus two scrape intervals, so a
    rate can start at the sample just before the window (the config keeps the interval at most
    half the window, so this is never more than the two windows `signals/serving.py` looks back)."""
    return window + 2 * interval


@dataclass
class TargetHistory:
    url: str
    identity: TargetIdentity
    engine: str = ""
    # The engine counts a request's tokens when it finishes (TGI, SGLang, Triton's TRT-LLM):
    # recorded by the source from the engine mapping when it first scrapes the target.
    bursty: bool = False
    samples: deque[tuple[float, dict[str, ModelSnapshot]]] = field(default_factory=deque)
    last_success: float = 0.0
    # Cold start (serving/coldstart.py): the generation-token total of the newest sample, and when
    # the first token of the engine's current run was counted (None until then; a counter drop
    # is a restarted engine and starts a new run).
    token_total: float | None = None
    first_token_at: float | None = None

    def append(self, ts: float, snapshot: dict[str, ModelSnapshot], keep_seconds: float) -> None:
        self.samples.append((ts, snapshot))
        self.last_success = ts
        # Keep one sample older than the window so a rate can span the whole window.
        while len(self.samples) > 2 and self.samples[1][0] < ts - keep_seconds:
            self.samples.popleft()


SERVING: Slot[dict[str, TargetHistory]] = Slot("serving", dict)  # target URL -> history
