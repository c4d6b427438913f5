"""Who owns what: the role of this instance and its shard, as pure functions.

Whatever the topology, every `ai_*` series must come from exactly one instance (DESIGN.md
"Topologies").  Two independent cuts decide it:

- the *role* cuts by scope: a node agent (`role: node`, implied by `kubernetes.node_scope`) does
  node-local work only, a cluster instance (`role: cluster`) the cluster-scope work only, and the
  default `all` does both;
- the *shard* cuts by key: with `global.total_shards: N`, shard i owns a key when a stable hash
  of it is i mod N (as kube-state-metrics shards objects).  The key of each thing is fixed: pod UID
  for serving pods and cold starts, node name for dcgm-exporters, node joins and GPU time, store
  name, probe name, and namespace for pending pods and quota.

The hash is blake2b, never Python's `hash()` (randomised per process: two shards would disagree),
spread over the shards by jump consistent hashing.  Ownership is a function of the key and N
only, so changing N moves keys between shards without a key owned twice or by none once every
shard has refreshed with the new N.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Literal, Mapping

if TYPE_CHECKING:
    from .expo.families import Family

Role = Literal["all", "node", "cluster"]
# Where a family's or source's work belongs: "node" (node-local: a node agent does it), "cluster"
# (cluster-wide: the cluster instance does it), "instance" (about this process itself: every
# instance reports its own, told apart by the scrape's instance label).
Scope = Literal["node", "cluster", "instance"]

ROLES: tuple[Role, ...] = ("all", "node", "cluster")
SCOPES: tuple[Scope, ...] = ("node", "cluster", "instance")

# The scopes each role serves.
_SERVES: dict[str, frozenset[str]] = {
    "all": frozenset({"node", "cluster", "instance"}),
    "node": frozenset({"node", "instance"}),
    "cluster": frozenset({"cluster", "instance"}),
}

# A StatefulSet pod is named <statefulset>-<ordinal>.
_ORDINAL_RE = re.compile(r"-(\d+)$")


class ShardError(ValueError):
    """A shard setting that names no usable shard (message names what was wrong)."""


def shard_hash(key: str) -> int:
    """A stable 64-bit hash of `key`, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=8).digest(), "big")


@lru_cache(maxsize=200_000)  # keys repeat every refresh (node names, namespaces)
def shard_of(key: str, total: int) -> int:
    """The shard in [0, total) that owns `key`: jump consistent hash (Lamping & Veach, 2014,
    arXiv:1406.2294).  Unlike `hash % total`, going from N to N+1 shards moves only 1/(N+1) of
    the keys, and N -> N-1 only the removed shard's: fewer serving pods lose the rate history
    their new shard has to rebuild (half a rate window)."""
    key64, bucket, jump = shard_hash(key), -1, 0
    while jump < total:
        bucket = jump
        key64 = (key64 * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        jump = int((bucket + 1) * ((1 << 31) / ((key64 >> 33) + 1)))
    return bucket


def parse_shard(value: int | str, environ: dict[str, str] | None = None) -> int:
    """`global.shard` as an ordinal: an integer, a string of digits, or a StatefulSet pod name
    (`llm-exporter-2` -> 2), possibly as `$POD_NAME` / `${POD_NAME}` to read from `environ`."""
    if isinstance(value, bool):
        raise ShardError("must be an integer or a StatefulSet pod name")
    if isinstance(value, int):
        if value < 0:
            raise ShardError("must not be negative")
        return value
    env = os.environ if environ is None else environ
    text = value.strip()
    if "$" in text:
        m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", text)
        if not m:
            raise ShardError(f"{value!r}: give one variable, e.g. $POD_NAME")
        if m.group(1) not in env:
            raise ShardError(f"environment variable {m.group(1)} is not set")
        text = env[m.group(1)].strip()
    if text.isdigit():
        return int(text)
    m = _ORDINAL_RE.search(text)
    if not m:
        raise ShardError(f"{text!r} is neither an integer nor a StatefulSet pod name ending in -<ordinal>")
    return int(m.group(1))


@dataclass(frozen=True)
class Topology:
    """This instance's share of the work: its role and shard."""

    role: Role = "all"
    shard: int = 0
    total_shards: int = 1
    # A node agent's node (kubernetes.node_scope): it owns nothing of other nodes.
    node: str | None = None

    def __post_init__(self) -> None:
        if self.role not in _SERVES:
            raise ValueError(f"unknown role {self.role!r}")
        if self.total_shards < 1 or not 0 <= self.shard < self.total_shards:
            raise ValueError(f"shard {self.shard} is not in [0, {self.total_shards})")

    @property
    def sharded(self) -> bool:
        return self.total_shards > 1

    def serves(self, scope: str) -> bool:
        """Whether this instance does work of `scope` ("node", "cluster" or "instance")."""
        return scope in _SERVES[self.role]

    def owns(self, key: str) -> bool:
        """Whether this shard owns the thing identified by `key` (always, unsharded)."""
        return self.total_shards == 1 or shard_of(key, self.total_shards) == self.shard

    def owns_node(self, name: str) -> bool:
        """Whether this instance owns the node-local work of node `name` (its dcgm-exporter, its
        joins, its GPU time): its own node for a node agent, its hash share for a shard."""
        return (self.node is None or name == self.node) and self.owns(name)


SINGLE = Topology()

# How the families of one area are owned: name -> (scope, shard label or None).
Ownership = Mapping[str, tuple[str, "str | None"]]


def keep_owned(families: Iterable["Family"], ownership: Ownership, topology: Topology) -> list["Family"]:
    """The part of an area's output this instance owns: families of a scope its role does not
    serve are dropped, and from a family with a shard label, the samples whose key it does not
    own (a "node" key also keeps a node agent to its own node).  Unlisted families are kept."""
    from .expo.families import Family

    out = []
    for fam in families:
        scope, label = ownership.get(fam.name, ("instance", None))
        if not topology.serves(scope):
            continue
        if label is None or (not topology.sharded and (label != "node" or topology.node is None)):
            out.append(fam)
            continue
        i = fam.labelnames.index(label)
        owns = topology.owns_node if label == "node" else topology.owns
        samples = [s for s in fam.samples if owns(s[1][i])]
        if len(samples) == len(fam.samples):
            out.append(fam)
        else:
            out.append(Family(fam.name, fam.type, fam.help, fam.labelnames, samples))
    return out
