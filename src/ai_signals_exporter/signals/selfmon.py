"""The exporter's own metrics, from `state.selfmon`."""

from __future__ import annotations

from .. import __version__
from ..config import Config
from ..expo.families import Family
from ..selfmon import display_target
from ..state import AppState


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    sm = state.selfmon
    build = Family(
        "ai_signals_exporter_build_info", "gauge", "Build information; value is always 1.", ("version",)
    ).add((__version__,), 1)
    up = Family(
        "ai_signals_exporter_target_up",
        "gauge",
        "1 if the last scrape, list or probe of the target succeeded, else 0.",
        ("source", "target"),
    )
    for (source, target), ok in sorted(sm.targets.items()):
        up.add((source, display_target(target)), 1 if ok else 0)
    duration = Family(
        "ai_signals_exporter_source_duration_seconds",
        "gauge",
        "Wall time of the source's last run.",
        ("source",),
    )
    last_ok = Family(
        "ai_signals_exporter_source_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the source's last run without errors; 0 if never.",
        ("source",),
    )
    interval = Family(
        "ai_signals_exporter_source_interval_seconds",
        "gauge",
        "Configured run interval of a periodic source; staleness alerts scale with it.",
        ("source",),
    )
    for source, st in sorted(sm.sources.items()):
        duration.add((source,), st.last_duration)
        last_ok.add((source,), st.last_success)
        if st.interval:
            interval.add((source,), st.interval)
    errors = Family(
        "ai_signals_exporter_errors_total",
        "counter",
        "Errors by source and a bounded reason.",
        ("source", "reason"),
    )
    for (source, reason), n in sorted(sm.errors.items()):
        errors.add((source, reason), n)
    reload_ok = Family(
        "ai_signals_exporter_config_last_reload_successful",
        "gauge",
        "1 if the last configuration reload succeeded (the running config is the file's).",
    ).add((), 1 if sm.config_reload_ok else 0)
    reload_ts = Family(
        "ai_signals_exporter_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful configuration load.",
    ).add((), sm.config_reload_ts)
    lists = Family(
        "ai_signals_exporter_kube_list_total",
        "counter",
        "Kubernetes list calls by resource and result.",
        ("resource", "result"),
    )
    for (resource, result), n in sorted(sm.kube_lists.items()):
        lists.add((resource, result), n)
    events = Family(
        "ai_signals_exporter_kube_watch_events_total",
        "counter",
        "Kubernetes watch events received, by resource and event type.",
        ("resource", "type"),
    )
    for (resource, etype), n in sorted(sm.kube_watch_events.items()):
        events.add((resource, etype), n)
    objects = Family(
        "ai_signals_exporter_kube_objects",
        "gauge",
        "Kubernetes objects held in memory, by resource.",
        ("resource",),
    )
    if config.kubernetes.enabled:
        objects.add(("nodes",), len(state.kube.nodes)).add(("pods",), len(state.kube.pods))
    dropped = Family(
        "ai_signals_exporter_series_dropped_total",
        "counter",
        "Series dropped by the per-source cardinality limit.",
        ("source",),
    )
    for source, n in sorted(sm.series_dropped.items()):
        dropped.add((source,), n)
    return [build, up, duration, last_ok, interval, errors, reload_ok, reload_ts, lists, events, objects, dropped]
