"""The exporter's own health: per-target up/down, per-source timings, error counters.

Sources call these methods; `signals/selfmon.py` turns the data into families.  Error reasons
are a closed vocabulary (see REASONS) so an error message never becomes a label value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The closed set of error reasons.  Anything else is recorded as "other".
REASONS = frozenset(
    {
        "timeout",
        "connect",
        "http_status",
        "too_large",
        "parse",
        "not_metrics",
        "no_engine",
        "exception",
        "list",
        "watch",
        "gone",
        "decode",
        "storage",
        "throttled",
        "redirect",
        "reset",
        "header",
        "read_timeout",
        "no_chunks",
        "config",
        "cardinality",
        "tls",
        "empty",  # a 200 with no body (dcgm-exporter 4.8.3 while it reloads)
    }
)


def bound_reason(reason: str) -> str:
    return reason if reason in REASONS else "other"


def display_target(target: str) -> str:
    """A target as shown in labels and on the landing page: URL user-info (a password in
    `http://user:pass@host/`) removed, everything else kept so targets stay distinct."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    authority, slash, path = rest.partition("/")
    if "@" not in authority:
        return target
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


@dataclass
class SourceStats:
    last_duration: float = 0.0
    last_success: float = 0.0  # unix time; 0 = never
    interval: float = 0.0  # configured run interval; 0 = not periodic (the kube watch)


@dataclass
class SelfMon:
    # (source, target) -> up
    targets: dict[tuple[str, str], bool] = field(default_factory=dict)
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    sources: dict[str, SourceStats] = field(default_factory=dict)
    # kube list/watch accounting: (resource, result) -> count
    kube_lists: dict[tuple[str, str], int] = field(default_factory=dict)
    kube_watch_events: dict[tuple[str, str], int] = field(default_factory=dict)
    series_dropped: dict[str, int] = field(default_factory=dict)
    config_reload_ok: bool = True
    config_reload_ts: float = 0.0
    # The processes behind this instance (webproc.py); empty / None with the in-process server.
    web_restarts: int | None = None
    resident_memory: dict[str, int] = field(default_factory=dict)  # process -> RSS bytes

    def target_up(self, source: str, target: str, up: bool) -> None:
        self.targets[(source, target)] = up

    def forget_targets(self, source: str, keep: set[str]) -> None:
        """Drop targets of `source` that are no longer configured or discovered."""
        for key in [k for k in self.targets if k[0] == source and k[1] not in keep]:
            del self.targets[key]

    def error(self, source: str, reason: str) -> None:
        key = (source, bound_reason(reason))
        self.errors[key] = self.errors.get(key, 0) + 1

    def source_run(
        self, source: str, duration: float, ok: bool, now: float, interval: float = 0.0
    ) -> None:
        st = self.sources.setdefault(source, SourceStats())
        st.last_duration = duration
        if interval:
            st.interval = interval
        if ok:
            st.last_success = now

    def kube_list(self, resource: str, result: str) -> None:
        key = (resource, result)
        self.kube_lists[key] = self.kube_lists.get(key, 0) + 1

    def kube_event(self, resource: str, event_type: str) -> None:
        key = (resource, event_type)
        self.kube_watch_events[key] = self.kube_watch_events.get(key, 0) + 1

    def dropped(self, source: str, n: int) -> None:
        self.series_dropped[source] = self.series_dropped.get(source, 0) + n
