"""Once-per-UID counting across re-lists and restarts, and event count increments."""

from __future__ import annotations

from hypothesis import given, strategies as st

from ai_signals_exporter.scheduling.counting import IncrementCounter, OnceCounter

L = ("gpu-1", "unexpected_admission_error")


def test_initial_list_is_baseline_and_a_restart_starts_at_zero():
    c = OnceCounter()
    assert not c.observe("old", L, synced=False)  # failed before we started
    assert c.totals == {}
    # A fresh counter (exporter restart) that sees the same old pod again: still nothing.
    again = OnceCounter()
    again.observe("old", L, synced=False)
    assert again.totals == {}


def test_transition_while_watched_counts_once_and_relist_does_not_recount():
    c = OnceCounter()
    c.observe("p", None, synced=False)  # Pending during the initial list
    assert c.observe("p", L, synced=True)  # watch: Failed
    assert not c.observe("p", L, synced=True)  # the same status again (another update)
    for _ in range(3):  # re-lists after 410 Gone replay it
        assert not c.observe("p", L, synced=True)
    assert c.totals == {L: 1}


def test_new_pod_first_seen_failed_after_sync_counts():
    c = OnceCounter()
    assert c.observe("new", L, synced=True)
    assert c.totals == {L: 1}


def test_forget_bounds_memory_and_counts_never_decrease():
    c = OnceCounter()
    c.observe("p", L, synced=True)
    c.forget("p")
    assert len(c) == 0 and c.totals == {L: 1}


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.booleans()), max_size=60),
       st.integers(min_value=0, max_value=60))
def test_never_more_than_one_count_per_uid(events, sync_at):
    c = OnceCounter()
    for i, (uid, failed) in enumerate(events):
        c.observe(uid, L if failed else None, synced=i >= sync_at)
    counted_uids = {uid for i, (uid, failed) in enumerate(events) if failed and i >= sync_at}
    assert sum(c.totals.values()) <= len(counted_uids)
    # A UID failed before the sync is never counted.
    baseline = {uid for i, (uid, failed) in enumerate(events) if failed and i < sync_at}
    assert sum(c.totals.values()) <= len(counted_uids - baseline)


def test_event_increments():
    c = IncrementCounter()
    ns = ("team-a",)
    assert c.observe("e1", ns, 5, synced=False) == 0  # baseline during the initial list
    assert c.observe("e1", ns, 7, synced=True) == 2  # count went 5 -> 7
    assert c.observe("e1", ns, 7, synced=True) == 0  # re-list replay
    assert c.observe("e2", ns, 1, synced=True) == 1  # a new event
    assert c.observe("e2", ns, 3, synced=True) == 2  # series.count grows
    assert c.totals == {ns: 5}
    c.forget("e1")
    assert len(c) == 1
