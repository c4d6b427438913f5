"""The exporter's own metrics, from `state.selfmon`."""

from __future__ import annotations

from .. import __version__
from ..config import Config
from ..expo.families import Family, FamilySpec
from ..selfmon import display_target
from ..serving.selection import ServingSelection, pods_without_node_agent
from ..state import AppState

BUILD_INFO = FamilySpec(
    "ai_signals_exporter_build_info", "gauge", "Build information; value is always 1.", ("version",)
)
TARGET_UP = FamilySpec(
    "ai_signals_exporter_target_up", "gauge",
    "1 if the last scrape, list or probe of the target succeeded, else 0.", ("source", "target"),
)
SOURCE_DURATION = FamilySpec(
    "ai_signals_exporter_source_duration_seconds", "gauge", "Wall time of the source's last run.", ("source",)
)
SOURCE_LAST_SUCCESS = FamilySpec(
    "ai_signals_exporter_source_last_success_timestamp_seconds", "gauge",
    "Unix time of the source's last run without errors; 0 if never.", ("source",),
)
SOURCE_INTERVAL = FamilySpec(
    "ai_signals_exporter_source_interval_seconds", "gauge",
    "Configured run interval of a periodic source; staleness alerts scale with it.", ("source",),
)
ERRORS = FamilySpec(
    "ai_signals_exporter_errors_total", "counter", "Errors by source and a bounded reason.", ("source", "reason")
)
RELOAD_OK = FamilySpec(
    "ai_signals_exporter_config_last_reload_successful", "gauge",
    "1 if the last configuration reload succeeded (the running config is the file's).",
)
RELOAD_TS = FamilySpec(
    "ai_signals_exporter_config_last_reload_success_timestamp_seconds", "gauge",
    "Unix time of the last successful configuration load.",
)
KUBE_LISTS = FamilySpec(
    "ai_signals_exporter_kube_list_total", "counter",
    "Kubernetes list calls by resource and result.", ("resource", "result"),
)
KUBE_WATCH_EVENTS = FamilySpec(
    "ai_signals_exporter_kube_watch_events_total", "counter",
    "Kubernetes watch events received, by resource and event type.", ("resource", "type"),
)
KUBE_OBJECTS = FamilySpec(
    "ai_signals_exporter_kube_objects", "gauge", "Kubernetes objects held in memory, by resource.", ("resource",)
)
SERIES_DROPPED = FamilySpec(
    "ai_signals_exporter_series_dropped_total", "counter",
    "Series dropped by the per-source cardinality limit.", ("source",),
)
SHARD = FamilySpec(
    "ai_signals_exporter_shard", "gauge",
    "Which shard this instance is (global.shard of global.total_shards); value is always 1.",
    ("shard", "total"),
)
TOTAL_SHARDS = FamilySpec(
    "ai_signals_exporter_total_shards", "gauge",
    "global.total_shards as a number, so rules can compare it with the shards reporting.",
)
WEB_RESTARTS = FamilySpec(
    "ai_signals_exporter_web_restarts_total", "counter",
    "Times the main process restarted a crashed web process (the one that serves /metrics).", (),
)
RESIDENT_MEMORY = FamilySpec(
    "ai_signals_exporter_process_resident_memory_bytes", "gauge",
    "Resident memory of each process of this instance: main (sources, refresh) and web (HTTP).",
    ("process",),
)
WITHOUT_AGENT = FamilySpec(
    "ai_signals_exporter_serving_pods_without_node_agent", "gauge",
    "Running serving pods on nodes with no ready node agent (kubernetes.node_agent_selector): "
    "in the node-agent topology nobody scrapes them.",
)
FAMILIES = (
    BUILD_INFO, TARGET_UP, SOURCE_DURATION, SOURCE_LAST_SUCCESS, SOURCE_INTERVAL, ERRORS, RELOAD_OK,
    RELOAD_TS, KUBE_LISTS, KUBE_WATCH_EVENTS, KUBE_OBJECTS, SERIES_DROPPED,
    WEB_RESTARTS, RESIDENT_MEMORY, SHARD, TOTAL_SHARDS, WITHOUT_AGENT,
)


def derive(state: AppState, config: Config, now: float) -> list[Family]:
    sm = state.selfmon
    (build, up, duration, last_ok, interval, errors, reload_ok, reload_ts, lists, events, objects,
     dropped, web_restarts, rss, shard, total_shards, without_agent) = fams = [spec.new() for spec in FAMILIES]
    build.add((__version__,), 1)
    topology = config.topology
    shard.add((topology.shard, topology.total_shards), 1)
    total_shards.add((), topology.total_shards)
    for (source, target), ok in sorted(sm.targets.items()):
        up.add((source, display_target(target)), 1 if ok else 0)
    for source, st in sorted(sm.sources.items()):
        duration.add((source,), st.last_duration)
        last_ok.add((source,), st.last_success)
        if st.interval:
            interval.add((source,), st.interval)
    for (source, reason), n in sorted(sm.errors.items()):
        errors.add((source, reason), n)
    reload_ok.add((), 1 if sm.config_reload_ok else 0)
    reload_ts.add((), sm.config_reload_ts)
    for (resource, result), n in sorted(sm.kube_lists.items()):
        lists.add((resource, result), n)
    for (resource, etype), n in sorted(sm.kube_watch_events.items()):
        events.add((resource, etype), n)
    if config.kubernetes.enabled:
        objects.add(("nodes",), len(state.kube.nodes)).add(("pods",), len(state.kube.pods))
        agents, discovery = config.kubernetes.node_agent_selector, config.serving.discovery
        if agents and discovery.enabled:
            without_agent.add((), pods_without_node_agent(state.kube.pods.values(), ServingSelection(discovery),
                                                          agents))
    for source, n in sorted(sm.series_dropped.items()):
        dropped.add((source,), n)
    if sm.web_restarts is not None:
        web_restarts.add((), sm.web_restarts)
    for process, n in sorted(sm.resident_memory.items()):
        rss.add((process,), n)
    return fams
