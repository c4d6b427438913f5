"""Per-framework rules: which checkpoints in a listing are complete, which are still being written.

One module per framework (its `sniff` and its `rule`), `registry` lists them in sniffing order,
`verdict` turns a listing into a `Verdict`.  Every rule and its source is written up in
docs/checkpoints.md; the short version:

- age comes from a commit marker (`.metadata`, `trainer_state.json`, `latest`, the Megatron
  tracker, Orbax's commit time), never from a directory's mtime, which moves on rotation;
- a save that started after the last complete checkpoint and has not committed is "in progress";
  how long it has been in progress is what tells an abandoned (evicted) save from a slow one.
"""

from .common import SETTLE_SECONDS, TAIL_BYTES, TORCH_EXTS, Candidate, step_of, zip_complete
from .registry import LAYOUTS, REGISTRY, sniff
from .verdict import detect, plan_reads, summarise

__all__ = [
    "LAYOUTS", "REGISTRY", "SETTLE_SECONDS", "TAIL_BYTES", "TORCH_EXTS", "Candidate", "detect",
    "plan_reads", "sniff", "step_of", "summarise", "zip_complete",
]
