"""One series, one owner, in every topology (docs/deploy.md): the same simulated cluster is watched
by a single instance, by 3 node agents + a cluster instance, and by 3 shards, each topology
scraped by its own real Prometheus loaded with the shipped rules.

- every recording rule, every prometheus-adapter query and every KEDA query gives the single
  instance's values (within 1 %) in the other topologies;
- no `ai_*` series is reported twice (`count without (instance)` never exceeds 1, self-
  metrics aside, which are per instance), and none is missing;
- re-sharding 3 -> 2 (the shards restart with the new total, the third goes away) while
  Prometheus scrapes reports nothing twice, and nothing is missing after one refresh except the
  what needs history in a restarted shard (serving rates: half a rate window; GPU time: a second
  dcgm observation).

Every exporter runs the real sources and server; sources are driven by one injected clock at the
same instants (like tests/golden), so rates and ages are comparable to the last digit.  The
cluster: 3 tainted GPU nodes whose names hash to shards 0, 1 and 2, the demo's five serving pods
spread over them, a multi-node training job with one pod per node and a checkpoint store
discovered from their annotation (issue 12: with node agents it was listed 3 times), a static and
a discovered store, and two streaming probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from ai_signals_exporter.app import Exporter
from ai_signals_exporter.areas import AREAS
from ai_signals_exporter.config import Config, load_config_text
from ai_signals_exporter.server import serve
from ai_signals_exporter.sim import gpu as simgpu
from ai_signals_exporter.sim import serving as simserving
from ai_signals_exporter.sim import streaming as simstreaming
from ai_signals_exporter.sim import training
from ai_signals_exporter.sim.cluster import SimCluster
from ai_signals_exporter.sim.training import TrainingJob
from ai_signals_exporter.sources.base import PeriodicSource, Source
from ai_signals_exporter.sources.kube import KubeSource
from ai_signals_exporter.sources.probes import ProbeSource
from ai_signals_exporter.state import AppState
from ai_signals_exporter.topology import shard_of

from ..helpers.clock import FakeClock
from ..helpers.net import free_port
from ..helpers.promstack import http_json, prometheus, query
from ..helpers.wait import wait_for, wait_until
from ..rules.rulepack import DASHBOARDS, DEPLOY, ai_metrics_in, all_rules, rule_files
from ..rules.test_dashboards import adapter_query

# Node names chosen so that each of 3 shards owns one (asserted below).
NODES = ("gpu-node-2", "gpu-node-15", "gpu-node-1")
STEP = 2.0  # the sim's serving and gpu interval
SCRAPES = 11  # covers the sim's 20 s rate window
HALF_WINDOW_SCRAPES = 6  # counters' rates wait for half a window after a restart
CKPT_URI = "ai-signals.io/checkpoint-uri"
MULTINODE = "ml/multinode"
# Families a restarted instance serves only once it has history: serving rates (half a rate
# window) and GPU time (integrated between two dcgm observations).
RATE_FAMILIES = {
    "ai_gpu_seconds_total", "ai_gpu_mig_instance_seconds_total",
    "ai_serving_generation_tokens_per_second", "ai_serving_prompt_tokens_per_second",
    "ai_serving_requests_per_second", "ai_serving_token_capacity_ratio",
    "ai_serving_time_to_first_token_seconds", "ai_serving_time_to_first_token_seconds_sum",
    "ai_serving_time_to_first_token_seconds_count", "ai_serving_failed_requests_per_second",
    "ai_serving_queue_time_seconds", "ai_serving_queue_time_seconds_sum", "ai_serving_queue_time_seconds_count",
}
# Measured in real time (stream timings, source durations): compared by presence only.
VOLATILE = ("ai_stream_time_to_first_byte_seconds", "ai_stream_time_to_first_chunk_seconds",
            "ai_stream_duration_seconds", "ai_stream_max_chunk_gap_seconds",
            "ai_stream_buffering_delay_seconds")
# The scrape job is the same in every Prometheus here; `job` is also a label of the checkpoint
# families (the training job, kept by honor_labels), so only the instance is a target label.
TARGET_LABELS = ("instance",)


def per_instance_families() -> set[str]:
    """Families every instance reports for itself (self-metrics), or that several instances may
    each report a part of (partial) or a copy of (replicated): their identity includes the
    instance."""
    out = set()
    for area in AREAS:
        for spec in area.families:
            scope, _ = area.ownership()[spec.name]
            if scope == "instance" or spec.partial or spec.replicated:
                out.add(spec.name)
    return out


def owned_query() -> str:
    """Every ai_* series whose identity is its labels alone."""
    skip = "|".join(sorted(per_instance_families()))
    return f'{{__name__=~"ai_.+",__name__!~"({skip})(_sum|_count|_bucket)?"}}'


class Instance:
    """One exporter process of a topology: the real Exporter and server, its sources driven by the
    shared clock."""

    def __init__(self, name: str, config: Config, clock: FakeClock) -> None:
        self.name, self.clock = name, clock
        self.exporter = Exporter(config)
        self.port = free_port()
        self.runner: Any = None
        self.sources: list[Source] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def restart(self, config: Config) -> None:
        """A new process with `config` (as a StatefulSet pod replaced after a config change):
        empty state, its sources for its role, a fresh Kubernetes list."""
        for src in self.sources:
            await src.close()
        ex = self.exporter
        ex.config, ex.state = config, AppState()
        topology = config.topology
        # As the exporter builds them (area.sources are factories of (config, state)), on the
        # shared clock.  The kube source is stopped once synced, below.
        self.sources = [make(config, ex.state) for area in AREAS if area.sources_run_on(topology)
                        for make in area.sources]
        self.sources = [s for s in self.sources if s.enabled()]
        for src in self.sources:
            src.clock = self.clock
        kube = next((s for s in self.sources if isinstance(s, KubeSource)), None)
        if kube is not None:
            task = asyncio.create_task(kube.run())
            try:
                await wait_for(lambda: ex.state.kube.pods_synced and ex.state.kube.nodes_synced, timeout=20,
                               what=f"{self.name}: kube synced")
            finally:
                # The simulated objects do not change: no watch event at a scheduling-dependent clock.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def cycle(self) -> None:
        """One run of every periodic source at the clock's instant."""
        for src in self.sources:
            if isinstance(src, PeriodicSource):
                await src.run_once()

    async def probe(self) -> None:
        for src in self.sources:
            if isinstance(src, ProbeSource):
                await asyncio.gather(*(src.run_probe(p) for p in src.probes()))

    def refresh(self) -> None:
        self.exporter.refresh(now=self.clock())

    async def start_serving(self, stop: asyncio.Event) -> None:
        self.runner = await serve(self.exporter, ("127.0.0.1", self.port), "/metrics", None, stop)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        for src in self.sources:
            await src.close()


def validated(config: dict) -> Config:
    """Through the file loader, so the topology checks of --config.check apply."""
    return load_config_text(yaml.safe_dump(config), "topology-test")


def node_agent_config(base: dict, node: str) -> dict:
    cfg = copy.deepcopy(base)
    cfg["kubernetes"]["node_scope"] = node  # implies global.role: node
    cfg["gpu"]["dcgm_targets"] = [t for t in base["gpu"]["dcgm_targets"] if t["node"] == node]
    cfg["checkpoints"]["stores"] = []
    cfg["probes"] = []
    return cfg


def cluster_instance_config(base: dict) -> dict:
    cfg = copy.deepcopy(base)
    cfg["global"]["role"] = "cluster"
    cfg["gpu"]["dcgm_targets"] = []
    cfg["serving"]["targets"] = []
    return cfg


def shard_config(base: dict, shard: int, total: int) -> dict:
    cfg = copy.deepcopy(base)
    cfg["global"].update(shard=f"ai-signals-exporter-{shard}", total_shards=total)
    return cfg


class Stack:
    """The simulated cluster and every topology's exporters, on one event loop in a background
    thread, so the Prometheus servers can be driven synchronously."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.clock = FakeClock(time.time())
        self.topologies: dict[str, list[Instance]] = {}

    def run(self, coro, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def __enter__(self) -> "Stack":
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _start(self) -> None:
        (self.tmpdir / "sim").mkdir(parents=True, exist_ok=True)
        self.cluster = SimCluster(self.tmpdir / "sim")
        await self.cluster.start()
        self.stop_event = asyncio.Event()

        # A multi-node training job: one pod and one GPU on each node, one checkpoint store.
        multinode = TrainingJob(self.tmpdir / "ckpt-multinode", layout="dcp", interval=20.0, save_seconds=1.0)
        await multinode.backfill()
        fleet = simgpu.DcgmSim()
        for i, node in enumerate(NODES):
            n = fleet.add_node(node, 2, tainted=True)
            fleet.allocate(node, n.devices[0:1], "ml", f"multinode-{i}", ("Job", "multinode"))
            n.devices[0].load = simgpu.wave(phase=i / 3)
            n.devices[1].load = simgpu.idle  # unallocated and idle
        for pod in fleet.pods:
            if pod["metadata"]["name"].startswith("multinode-"):
                pod["metadata"].setdefault("annotations", {})[CKPT_URI] = multinode.root.resolve().as_uri()
        await simgpu.attach(self.cluster, sim=fleet)
        await simserving.attach(self.cluster, pods=simserving.default_pods(clock=self.clock), nodes=NODES)
        await training.attach(self.cluster, start=False)
        await simstreaming.attach(self.cluster)
        base = self.cluster.config
        base.setdefault("global", {})

        self.base = base
        self.topologies = {
            "single": [Instance("single", validated(base), self.clock)],
            "agents": [Instance(f"agent-{n}", validated(node_agent_config(base, n)), self.clock) for n in NODES]
            + [Instance("cluster", validated(cluster_instance_config(base)), self.clock)],
            "shards": [Instance(f"shard-{i}", validated(shard_config(base, i, 3)), self.clock) for i in range(3)],
        }
        everyone = [i for insts in self.topologies.values() for i in insts]
        await asyncio.gather(*(i.restart(i.exporter.config) for i in everyone))
        start = self.clock.t
        for k in range(SCRAPES):
            self.clock.t = start + k * STEP
            await asyncio.gather(*(i.cycle() for i in everyone))
        await asyncio.gather(*(i.probe() for i in everyone))
        for i in everyone:
            i.refresh()
            await i.start_serving(self.stop_event)

    async def _stop(self) -> None:
        self.stop_event.set()
        for insts in self.topologies.values():
            for i in insts:
                await i.stop()
        await self.cluster.stop()

    def targets(self, topology: str) -> list[str]:
        return [i.target for i in self.topologies[topology]]

    def pod_uids(self) -> dict[str, str]:
        """Serving pod name -> UID, from the single instance's kube store."""
        pods = self.topologies["single"][0].exporter.state.kube.pods.values()
        return {p.name: p.uid for p in pods if p.namespace == "llm"}


def every_second_rules(workdir: Path) -> list[str]:
    """The shipped rule files with every group evaluated each second: groups with a long
    `interval:` (daily GPU time) would otherwise first run minutes later.  Expressions unchanged."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            group.pop("interval", None)
        (workdir / path.name).write_text(yaml.safe_dump(doc))
        paths.append(str(workdir / path.name))
    return paths


def prometheus_config(targets: list[str], rules: list[str]) -> dict:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rules,
        # As the shipped ServiceMonitor: the exporter's namespace/pod labels name workloads.
        "scrape_configs": [{"job_name": "ai-signals-exporter", "honor_labels": True,
                            "static_configs": [{"targets": targets}]}],
    }


def _rfc3339(ts: str) -> float:
    from datetime import datetime

    head, _, frac = ts.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def scraped_since(url: str, since: float, down: set[str] = frozenset()) -> bool:
    """Every target scraped after `since`: up, except those in `down`."""
    targets = http_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
    return bool(targets) and all(
        _rfc3339(t["lastScrape"]) > since
        and t["health"] == ("down" if t["labels"]["instance"] in down else "up")
        for t in targets)


def evaluated_since(url: str, since: float) -> bool:
    groups = http_json(f"{url}/api/v1/rules")["data"]["groups"]
    return bool(groups) and all(_rfc3339(g["lastEvaluation"]) > since for g in groups)


def settled(url: str) -> None:
    """Wait until Prometheus has scraped every target and evaluated every rule group after that."""
    since = time.time()
    wait_until(lambda: scraped_since(url, since), 30, f"{url}: every target scraped")
    since = time.time()
    wait_until(lambda: evaluated_since(url, since), 30, f"{url}: every rule group evaluated")


def keyed(result: list[dict]) -> dict[frozenset, float]:
    out: dict[frozenset, float] = {}
    for r in result:
        key = frozenset((k, v) for k, v in r["metric"].items() if k not in TARGET_LABELS)
        assert key not in out, f"two series for {dict(key)}"
        out[key] = float(r["value"][1])
    return out


def close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 0.01 * max(abs(a), abs(b)) or abs(a - b) < 1e-9


def assert_same_values(got: dict[frozenset, float], want: dict[frozenset, float], what: str) -> None:
    assert set(got) == set(want), f"{what}: missing {[dict(k) for k in set(want) - set(got)]}, " \
                                  f"extra {[dict(k) for k in set(got) - set(want)]}"
    bad = {tuple(sorted(k)): (got[k], want[k]) for k in want if not close(got[k], want[k])}
    assert not bad, f"{what}: values differ from the single instance (got, single): {bad}"


def adapter_and_keda_queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())["rules"]
    # The adapter serves Deployments (workload_kind="Deployment"): llm/llama-8b here.
    out = [adapter_query(r, "llm", "llama-8b") for r in rules]
    so = yaml.safe_load((DEPLOY / "autoscaling" / "keda-scaledobject.yaml").read_text())
    for trigger in so["spec"]["triggers"]:
        # The shipped example names prod/llama; the simulated cluster serves llm/llama-8b.
        out.append(trigger["metadata"]["query"].replace('namespace="prod"', 'namespace="llm"')
                   .replace('workload_kind="Deployment",workload="llama"', 'workload_kind="Deployment",workload="llama-8b"'))
    return out


def named(selector: str) -> str:
    """The series of `selector` with their name copied to a label, which aggregation keeps."""
    return f'label_replace({selector}, "name", "$1", "__name__", "(.+)")'


def duplicates(url: str) -> list[dict]:
    """count by (__name__, <identity labels>) > 1: the same series from two instances."""
    return query(url, f"count without (instance) ({named(owned_query())}) > 1")


def identities(url: str) -> set[frozenset]:
    return set(keyed(query(url, f"group without (instance) ({named(owned_query())})")))


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("topologies")) as s:
        yield s


@pytest.fixture(scope="module")
def proms(stack: Stack, tmp_path_factory) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as es:
        rules = every_second_rules(tmp_path_factory.mktemp("rules"))
        urls = {name: es.enter_context(prometheus(tmp_path_factory.mktemp(f"prom-{name}"),
                                                  prometheus_config(stack.targets(name), rules)))
                for name in stack.topologies}
        for url in urls.values():
            settled(url)
        yield urls


def test_the_cluster_exercises_every_owner(stack: Stack) -> None:
    assert [shard_of(n, 3) for n in NODES] == [0, 1, 2]
    # Ownership moves when the shards go from 3 to 2: the third shard's node and store move.
    assert [shard_of(n, 2) for n in NODES] == [0, 1, 1]
    stores = {"llm-pretrain", "ml/finetune", MULTINODE}
    assert {s: shard_of(s, 3) for s in stores} == {"llm-pretrain": 2, "ml/finetune": 2, MULTINODE: 1}


@pytest.mark.parametrize("topology", ["agents", "shards"])
def test_recording_rules_and_autoscaling_queries_match_the_single_instance(stack, proms, topology) -> None:
    single, other = proms["single"], proms[topology]
    records = sorted({r["record"] for r in all_rules() if "record" in r})
    compared = []
    for record in records:
        want = keyed(query(single, record))
        assert_same_values(keyed(query(other, record)), want, f"{topology}: {record}")
        if want:
            compared.append(record)
    # Not vacuous: the serving, GPU allocation and (per-node idle) records have data here.
    assert {"workload:ai_serving_generation_tokens_per_second:sum", "workload:ai_serving_token_capacity_ratio:avg",
            "workload:ai_serving_requests_waiting:sum", "workload:ai_serving_pods:count",
            "node:ai_gpu_node_idle_gpus:sum"} <= set(compared), compared
    for q in adapter_and_keda_queries():
        want = keyed(query(single, q))
        assert want, q
        assert_same_values(keyed(query(other, q)), want, f"{topology}: {q}")


@pytest.mark.parametrize("topology", ["single", "agents", "shards"])
def test_every_series_has_one_owner(stack, proms, topology) -> None:
    url = proms[topology]
    assert duplicates(url) == []
    assert len(query(url, "up == 1")) == len(stack.targets(topology))
    # Issue 12: the multi-node job's store (its pods on all 3 nodes) is listed once.
    ages = query(url, f'ai_checkpoint_age_seconds{{store="{MULTINODE}"}}')
    assert len(ages) == 1, ages
    # Self-metrics say which shard each instance is.
    shards = sorted((r["metric"]["shard"], r["metric"]["total"]) for r in query(url, "ai_signals_exporter_shard"))
    assert shards == ([("0", "3"), ("1", "3"), ("2", "3")] if topology == "shards"
                      else [("0", "1")] * len(stack.targets(topology)))
    assert query(url, shards_inconsistent()) == []


def shards_inconsistent() -> str:
    (rule,) = [r for r in all_rules() if r.get("alert") == "AiSignalsShardsInconsistent"]
    return rule["expr"]


@pytest.mark.parametrize("topology", ["agents", "shards"])
def test_no_series_is_missing_and_values_match(stack, proms, topology) -> None:
    single, other = proms["single"], proms[topology]
    assert identities(other) == identities(single)
    skip = "|".join(VOLATILE)
    want = keyed(query(single, f'{owned_query()} unless {{__name__=~"{skip}"}}'))
    assert len(want) >= 80
    assert_same_values(keyed(query(other, f'{owned_query()} unless {{__name__=~"{skip}"}}')), want, topology)


def test_resharding_3_to_2_while_prometheus_scrapes(stack, proms) -> None:
    url, single = proms["shards"], proms["single"]
    want = identities(single)
    shards = stack.topologies["shards"]
    gone = shards[2]
    uids = stack.pod_uids()
    moved_pods = {name for name, uid in uids.items() if shard_of(uid, 3) != shard_of(uid, 2)}

    async def reshard() -> None:
        # The StatefulSet goes to 2 replicas with total_shards 2: pods 0 and 1 restart with the
        # new config, pod 2 is deleted.  One refresh of each.
        await gone.stop()
        await asyncio.gather(*(s.restart(validated(shard_config(stack.base, i, 2))) for i, s in enumerate(shards[:2])))
        stack.clock.advance(STEP)
        await asyncio.gather(*(s.cycle() for s in shards[:2]))
        await asyncio.gather(*(s.probe() for s in shards[:2]))
        for s in shards[:2]:
            s.refresh()

    stack.run(reshard())
    since = time.time()  # every shard has refreshed with the new total
    wait_until(lambda: scraped_since(url, since, down={gone.target}), 30, "every shard scraped after re-sharding")
    assert duplicates(url) == []
    assert query(url, shards_inconsistent()) == []  # 2 shards of 2 now
    got = identities(url)
    # After one refresh: everything but what needs history (rates: half a window; GPU time: two
    # dcgm observations).
    missing = want - got
    assert all(dict(k)["name"] in RATE_FAMILIES for k in missing), sorted(
        (dict(k)["name"], dict(k).get("pod", ""), dict(k).get("store", "")) for k in missing)
    assert not got - want
    assert query(url, "ai_signals_exporter_shard") and {
        (r["metric"]["shard"], r["metric"]["total"]) for r in query(url, "ai_signals_exporter_shard")} == {("0", "2"), ("1", "2")}

    async def scrape_half_a_window() -> None:
        for _ in range(HALF_WINDOW_SCRAPES):
            stack.clock.advance(STEP)
            await asyncio.gather(*(s.cycle() for s in shards[:2]))
        for s in shards[:2]:
            s.refresh()

    stack.run(scrape_half_a_window())
    since = time.time()
    wait_until(lambda: scraped_since(url, since, down={gone.target}), 30, "every shard scraped again")
    assert duplicates(url) == []
    assert identities(url) == want
    # The pods that changed shards (jump hash: only shard 2's) are among those served now.
    assert moved_pods <= set(uids)


# --- the audit, kept: nothing in rules, dashboards or autoscaling inputs assumes one instance ---

# Labels the scrape adds per exporter instance (the ServiceMonitor drops namespace/pod/container).
SCRAPE_LABELS = ("instance", "endpoint", "service")
GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
SELF_PREFIX = "ai_signals_exporter_"


def shipped_queries() -> list[tuple[str, str]]:
    out = [(r.get("record") or r["alert"], r["expr"]) for r in all_rules()]
    for path in sorted(DASHBOARDS.glob("*.json")):
        def panels(ps: list[dict]) -> Iterator[dict]:
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))
        for p in panels(json.loads(path.read_text()).get("panels", [])):
            out += [(f"{path.name}: {p.get('title')}", t["expr"]) for t in p.get("targets", []) if t.get("expr")]
    out += [(f"adapter: {q}", q) for q in adapter_and_keda_queries()]
    return out


def instance_joins(expr: str) -> list[str]:
    """Grouping or matching clauses over a scrape label, in an expression about our signals
    (self-metrics are per instance by nature, and dcgm-exporter's series are dcgm-exporter's)."""
    if all(n.startswith(SELF_PREFIX) for n in ai_metrics_in(expr)):
        return []
    return [m.group(0) for m in GROUPING_RE.finditer(expr)
            if set(re.split(r"[\s,]+", m.group(2).strip())) & set(SCRAPE_LABELS)]


def test_no_query_joins_or_groups_signals_by_exporter_instance() -> None:
    queries = shipped_queries()
    assert len(queries) > 60
    bad = {name: instance_joins(expr) for name, expr in queries if instance_joins(expr)}
    assert not bad, f"these assume one exporter instance per signal: {bad}"
    # The check is not vacuous.
    assert instance_joins("ai_gpu_idle_seconds > on (node, instance) ai_gpu_node_tainted")
    assert not instance_joins("time() - ai_signals_exporter_source_last_success_timestamp_seconds"
                              " > on (job, instance, source) ai_signals_exporter_source_interval_seconds")


def test_replicated_families_are_maxed_over_instances() -> None:
    # A replicated family (a GPU model's price, from every instance that sees the model) is only
    # right aggregated by max (or min/avg) over instances before a join: a plain on() join would
    # be many-to-many, a sum would multiply the price.
    replicated = {spec.name for area in AREAS for spec in area.families if spec.replicated}
    assert replicated == {"ai_gpu_price_per_hour"}
    used = 0
    for name, expr in shipped_queries():
        for fam in ai_metrics_in(expr) & replicated:
            used += 1
            assert re.search(rf"(max|min|avg)\s*by\s*\([^)]*\)\s*\(\s*{fam}\b", expr), (name, fam, expr)
    assert used, "the GPU-time cost rules use the price"


def test_partial_families_are_summed_over_instances() -> None:
    # A partial family (several node agents each report a part of one series) is only right
    # summed: max by / avg by / a one-to-one join would see one agent's part.
    partial = {spec.name for area in AREAS for spec in area.families if spec.partial}
    assert {"ai_gpu_pod_disruptions_total", "ai_serving_cold_start_seconds"} <= partial
    used = 0
    for name, expr in shipped_queries():
        for series in ai_metrics_in(expr):
            if re.sub(r"_(bucket|sum|count)$", "", series) in partial:
                used += 1
                assert re.search(rf"sum\s*(by|without)?\s*(\([^)]*\))?\s*\(\s*((increase|rate)\()?\s*{series}\b",
                                 expr), (name, series, expr)
    assert used, "the cold-start rules use the histogram"
