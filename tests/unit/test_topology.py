"""Ownership (topology.py): roles, stable-hash shards, and the generic filter of area output."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_signals_exporter.areas import AREAS
from ai_signals_exporter.config import load_config_text
from ai_signals_exporter.expo.families import Family
from ai_signals_exporter.topology import (
    SCOPES, ShardError, Topology, keep_owned, parse_shard, shard_hash, shard_of,
)

keys = st.text(min_size=0, max_size=60)


def test_hash_is_stable_across_processes() -> None:
    # Python's hash() of a str changes per process (PYTHONHASHSEED): two shards would disagree.
    code = "from ai_signals_exporter.topology import shard_hash; print(shard_hash('gpu-node-17'))"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)}).stdout.strip()
        for seed in ("1", "2")
    }
    assert runs == {str(shard_hash("gpu-node-17"))}
    # Pinned: changing the hash moves every key of every running sharded deployment at once.
    assert shard_hash("gpu-node-17") == 12197815334917378565
    assert [shard_of("gpu-node-17", n) for n in (2, 3, 4, 5)] == [1, 1, 1, 1]


@settings(max_examples=200)
@given(keys, st.integers(1, 16))
def test_every_key_has_exactly_one_owner(key: str, total: int) -> None:
    owners = [i for i in range(total) if Topology(shard=i, total_shards=total).owns(key)]
    assert owners == [shard_of(key, total)]


@settings(max_examples=50)
@given(st.lists(keys, min_size=1, max_size=200, unique=True), st.integers(1, 8), st.integers(1, 8))
def test_resharding_partitions_keys_for_any_n(all_keys: list[str], old: int, new: int) -> None:
    # After every shard refreshed with the new N, the keys are partitioned again: none twice,
    # none lost, whatever the old N was (ownership depends on key and N only).
    for total in (old, new):
        parts = [{k for k in all_keys if Topology(shard=i, total_shards=total).owns(k)} for i in range(total)]
        assert sum(len(p) for p in parts) == len(all_keys)
        assert set().union(*parts) == set(all_keys)


def test_changing_n_moves_few_keys() -> None:
    # Jump consistent hashing: N -> N-1 moves only the removed shard's keys, N -> N+1 about
    # 1/(N+1) of them (hash % N would move most keys, and each moved pod loses its rate history).
    all_keys = [f"pod-uid-{i}" for i in range(6000)]
    moved = [k for k in all_keys if shard_of(k, 3) != shard_of(k, 2)]
    assert moved == [k for k in all_keys if shard_of(k, 3) == 2]
    grown = sum(shard_of(k, 3) != shard_of(k, 4) for k in all_keys)
    assert 0.2 * len(all_keys) < grown < 0.3 * len(all_keys)
    assert all(shard_of(k, 4) == 3 for k in all_keys if shard_of(k, 3) != shard_of(k, 4))


def test_shards_share_keys_roughly_evenly() -> None:
    counts = [0, 0, 0]
    for i in range(3000):
        counts[shard_of(f"node-{i}", 3)] += 1
    assert all(800 < c < 1200 for c in counts), counts


@pytest.mark.parametrize("value,env,ordinal", [
    (2, {}, 2), ("4", {}, 4), ("ai-signals-exporter-3", {}, 3), ("$POD_NAME", {"POD_NAME": "x-12"}, 12),
    ("${POD_NAME}", {"POD_NAME": "ai-signals-exporter-0"}, 0), ("$SHARD", {"SHARD": "5"}, 5),
])
def test_parse_shard(value, env, ordinal) -> None:
    assert parse_shard(value, env) == ordinal


@pytest.mark.parametrize("value,env,message", [
    (-1, {}, "negative"), ("exporter", {}, "neither an integer"), ("$POD_NAME", {}, "POD_NAME is not set"),
    ("$A-$B", {"A": "1", "B": "2"}, "one variable"), (True, {}, "integer"),
])
def test_parse_shard_errors(value, env, message) -> None:
    with pytest.raises(ShardError, match=message):
        parse_shard(value, env)


def test_roles_serve_their_scopes() -> None:
    assert {s for s in SCOPES if Topology("all").serves(s)} == {"node", "cluster", "instance"}
    assert {s for s in SCOPES if Topology("node").serves(s)} == {"node", "instance"}
    assert {s for s in SCOPES if Topology("cluster").serves(s)} == {"cluster", "instance"}
    with pytest.raises(ValueError):
        Topology(shard=3, total_shards=3)


def test_node_agent_owns_only_its_node() -> None:
    agent = Topology("node", node="gpu-1")
    assert agent.owns_node("gpu-1") and not agent.owns_node("gpu-2")
    assert agent.owns("any-pod-uid")  # unsharded: the kube watch already limits it to its node


def test_config_topology() -> None:
    assert load_config_text("").topology == Topology()
    node = load_config_text("kubernetes: {enabled: true, node_scope: gpu-3}").topology
    assert (node.role, node.node) == ("node", "gpu-3")
    cluster = load_config_text("global: {role: cluster}\nkubernetes: {enabled: true}").topology
    assert cluster.role == "cluster" and cluster.node is None


def test_config_shard_from_statefulset_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "ai-signals-exporter-2")
    topo = load_config_text("global: {shard: $POD_NAME, total_shards: 3}").topology
    assert (topo.shard, topo.total_shards) == (2, 3)


def test_node_role_without_node_scope_does_every_nodes_node_local_work() -> None:
    # e.g. shards of node-local work beside one cluster instance: static targets are fine.
    cfg = load_config_text("global: {role: node, shard: 1, total_shards: 2}\n"
                           "gpu: {dcgm_targets: [{url: 'http://10.0.1.7:9400/metrics', node: gpu-7}]}\n")
    assert (cfg.topology.role, cfg.topology.node, cfg.topology.shard) == ("node", None, 1)


def test_node_agent_may_scrape_its_own_dcgm_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_NAME", "gpu-7")
    cfg = load_config_text(
        "kubernetes: {enabled: true, node_scope: $NODE_NAME}\n"
        "gpu: {dcgm_targets: [{url: 'http://127.0.0.1:9400/metrics', node: $NODE_NAME}]}\n"
        "serving: {targets: [{url: 'http://127.0.0.1:8000/metrics', node: $NODE_NAME}]}\n"
    )
    assert cfg.gpu.dcgm_targets[0].node == "gpu-7" and cfg.serving.targets[0].node == "gpu-7"


def _fam(name: str, labelnames: tuple[str, ...], *values: tuple[str, ...]) -> Family:
    fam = Family(name, "gauge", "h", labelnames)
    for v in values:
        fam.add(v, 1)
    return fam


def test_keep_owned_by_scope_and_shard_label() -> None:
    ownership = {"n": ("node", "node"), "c": ("cluster", "namespace"), "i": ("instance", None)}
    fams = [_fam("n", ("node",), *[(f"node-{i}",) for i in range(30)]),
            _fam("c", ("namespace",), *[(f"ns-{i}",) for i in range(30)]),
            _fam("i", ("source",), ("serving",))]
    by_name = lambda out: {f.name: [s[1][0] for s in f.samples] for f in out}  # noqa: E731
    assert {k: len(v) for k, v in by_name(keep_owned(fams, ownership, Topology())).items()} == {"n": 30, "c": 30, "i": 1}
    assert set(by_name(keep_owned(fams, ownership, Topology("cluster")))) == {"c", "i"}
    agent = by_name(keep_owned(fams, ownership, Topology("node", node="node-4")))
    assert agent == {"n": ["node-4"], "i": ["serving"]}
    shards = [by_name(keep_owned(fams, ownership, Topology(shard=i, total_shards=3))) for i in range(3)]
    for name in ("n", "c"):
        parts = [set(s[name]) for s in shards]
        assert sum(map(len, parts)) == 30 and len(set().union(*parts)) == 30
        assert all(parts), "30 keys over 3 shards: each shard owns some"
    assert all(s["i"] == ["serving"] for s in shards)  # every instance reports its own health


def test_every_area_declares_its_topology() -> None:
    names = {a.name for a in AREAS}
    assert {"kube", "serving", "gpu", "checkpoints", "probes", "self"} <= names
    for area in AREAS:
        assert area.scope in SCOPES, area.name
        for spec in area.families:
            scope, label = area.ownership()[spec.name]
            assert scope in SCOPES, spec.name
            assert label is None or label in spec.labelnames, spec.name
            if scope != "instance" and area.sources:
                # Sharded work needs a key; sources filter by it (docs/deploy.md lists them).
                assert area.shard_key, area.name
    by_name = {a.name: a for a in AREAS}
    assert by_name["checkpoints"].scope == by_name["probes"].scope == "cluster"
    assert by_name["serving"].scope == by_name["gpu"].scope == "node"
    assert not by_name["checkpoints"].runs_on(Topology("node", node="n"))
    assert not by_name["gpu"].runs_on(Topology("cluster"))
    assert by_name["kube"].runs_on(Topology("node", node="n")) and by_name["kube"].runs_on(Topology("cluster"))


def test_config_check_cli_rejects_cluster_work_on_a_node_agent(tmp_path) -> None:
    # The shipped node-agent config plus a checkpoint store: the defect of issue 12 (a multi-node
    # job's store listed by every node) is refused before it runs, naming the key.
    from pathlib import Path

    overlay = Path(__file__).resolve().parents[2] / "deploy" / "overlays" / "daemonset"
    text = (overlay / "node-config.yaml").read_text()
    good, bad = tmp_path / "node.yaml", tmp_path / "node-with-store.yaml"
    good.write_text(text)
    bad.write_text(text + "checkpoints:\n  stores:\n    - {name: run42, uri: 'file:///data/run42'}\n")
    env = {"NODE_NAME": "gpu-node-7", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    run = lambda p: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "ai_signals_exporter.cli", "--config.check", f"--config.file={p}"],
        capture_output=True, text=True, env=env)
    assert run(good).returncode == 0
    out = run(bad)
    assert out.returncode == 1 and "checkpoints.stores: is cluster-scope work" in out.stderr, out.stderr


def test_node_agents_watch_no_cluster_wide_resources() -> None:
    from ai_signals_exporter.areas import kube_watches

    def watched(text: str) -> set[str]:
        return {w.resource for w in kube_watches(load_config_text(text))}

    cluster_wide = {"resourcequotas", "events", "deployments", "statefulsets", "leaderworkersets"}
    assert cluster_wide <= watched("global: {role: cluster}\nkubernetes: {enabled: true}")
    assert cluster_wide <= watched("kubernetes: {enabled: true}")
    assert cluster_wide <= watched("global: {shard: 1, total_shards: 2}\nkubernetes: {enabled: true}")
    assert watched("kubernetes: {enabled: true, node_scope: gpu-1}") == {"pods", "nodes"}


def test_serving_scrapes_only_where_node_work_is_done() -> None:
    serving = next(a for a in AREAS if a.name == "serving")
    assert serving.runs_on(Topology("cluster"))  # replicas per workload: cluster scope
    assert not serving.sources_run_on(Topology("cluster"))  # but no scraping there
    assert serving.sources_run_on(Topology("node", node="n")) and serving.sources_run_on(Topology())
