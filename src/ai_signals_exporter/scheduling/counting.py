"""Counting pod state transitions once per pod UID, across watch re-lists and restarts.

A counter only knows what the current watch has shown it, so the rule is:

- before the initial list has been applied (`synced=False`) everything seen is *baseline*: the
  UID is remembered, nothing is counted; a restart therefore starts at zero and never re-counts
  pods that had failed before it;
- after it, a UID counts once, when it is first seen in the counted state, whether it had been
  seen before in another state (a transition while watched) or is new (created and failed
  between two events, or between a 410 and the re-list);
- a re-list replays every pod: known UIDs are no-ops, so nothing is counted twice;
- `forget(uid)` on a pod's deletion keeps memory bounded by the live pods.  Only the deletion of
  one pod forgets it, never the transient emptiness of a store being replaced.
"""

from __future__ import annotations

from typing import Hashable

Labels = tuple[str, ...]


class OnceCounter:
    __slots__ = ("_seen", "totals")

    def __init__(self) -> None:
        # uid -> True once the pod has been counted (or was baseline in the counted state).
        self._seen: dict[str, bool] = {}
        self.totals: dict[Labels, int] = {}

    def observe(self, uid: str, labels: Labels | None, synced: bool) -> bool:
        """Show the counter a pod; `labels` is None while the pod is not in the counted state.
        Returns True when this observation was counted."""
        done = self._seen.get(uid)
        if done:
            return False
        if labels is None:
            self._seen[uid] = False
            return False
        self._seen[uid] = True
        if not synced:
            return False
        self.totals[labels] = self.totals.get(labels, 0) + 1
        return True

    def forget(self, uid: str) -> None:
        self._seen.pop(uid, None)

    def __len__(self) -> int:
        return len(self._seen)


class IncrementCounter:
    """Counts occurrences of a repeating object (an Event's `count` / `series.count`).

    Keeps only the last count per object key: increments after the initial sync are counted, the
    count of an object first seen during the initial list is baseline, and an object first seen
    after it counts all its occurrences.  A lower count than before (the object was recreated
    under the same key) is a new baseline plus its own occurrences.
    """

    __slots__ = ("_last", "totals")

    def __init__(self) -> None:
        self._last: dict[Hashable, int] = {}
        self.totals: dict[Labels, int] = {}

    def observe(self, key: Hashable, labels: Labels | None, count: int, synced: bool) -> int:
        count = max(1, int(count))
        last = self._last.get(key)
        self._last[key] = count
        if labels is None or not synced:
            return 0
        delta = count if last is None or count < last else count - last
        if delta:
            self.totals[labels] = self.totals.get(labels, 0) + delta
        return delta

    def forget(self, key: Hashable) -> None:
        self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)
