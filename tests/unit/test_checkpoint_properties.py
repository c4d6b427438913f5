"""Property tests: any history of saves, some cut off at any stage, some rotated away — the
verdict names the newest committed checkpoint still present and flags newer uncommitted ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ai_signals_exporter.checkpoints import Entry, Listing, detect

RANKS = 3
# A save is (stage, ) where stage = how many of its files were written before it was cut off;
# the full count means it committed.
DCP_FILES = RANKS + 1  # shards, then .metadata (the commit)
HF_FILES = 3  # weights, optimizer, trainer_state.json (the commit)


def dcp_files(step: int, written: int, t0: float) -> list[Entry]:
    d = f"step_{step}"
    out = [Entry(f"{d}/__{r}_0.distcp", 10, t0 + r) for r in range(min(written, RANKS))]
    if written == DCP_FILES:
        out.append(Entry(f"{d}/.metadata", 1, t0 + RANKS))
    return out


def hf_files(step: int, written: int, t0: float) -> list[Entry]:
    names = ["model.safetensors", "optimizer.pt", "trainer_state.json"]
    return [Entry(f"checkpoint-{step}/{n}", 10, t0 + i) for i, n in enumerate(names[:written])]


histories = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=12)


def check(layout: str, make, full: int, stages: list[int], keep: int) -> None:
    saves = []  # (step, written, t0)
    for i, stage in enumerate(stages):
        written = min(stage, full) if stage < 4 else full
        saves.append(((i + 1) * 100, written, 1000.0 + i * 50))
    present = [s for s in saves if s[1] > 0][-keep:]  # rotation keeps the newest `keep`
    entries = [e for s in present for e in make(*s)]
    v = detect(Listing(entries), 10_000.0, None, layout)
    committed = [s for s in present if s[1] == full]
    last = committed[-1] if committed else None
    pending = [s for s in present if s[1] < full and (last is None or s[0] > last[0])]
    assert v.last_step == (last[0] if last else None)
    assert v.in_progress is bool(pending)
    if pending:
        assert v.in_progress_since == pending[0][2]
    if last is not None:
        commit_offset = full - 1 if layout == "hf_trainer" else RANKS
        assert v.last_complete_ts == last[2] + commit_offset
    else:
        assert v.last_complete_ts is None


@settings(max_examples=200, deadline=None)
@given(histories, st.integers(min_value=1, max_value=5))
def test_dcp_histories(stages, keep):
    check("dcp", dcp_files, DCP_FILES, stages, keep)


@settings(max_examples=200, deadline=None)
@given(histories, st.integers(min_value=1, max_value=5))
def test_hf_trainer_histories(stages, keep):
    check("hf_trainer", hf_files, HF_FILES, stages, keep)
