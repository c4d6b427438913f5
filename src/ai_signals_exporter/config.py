"""Typed, strict configuration.

Every section is a pydantic model with `extra="forbid"`, so a misspelt key is an error that names
its path (``serving.targets.0.engin: extra inputs are not permitted``) instead of a silently
ignored setting.  Durations are strings like ``500ms``, ``15s``, ``10m``, ``1h`` and become float
seconds.  Every section works with Kubernetes disabled.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError  # re-exported: callers import it from here

if TYPE_CHECKING:
    from .topology import Topology


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("url must start with http:// or https://")
    return value


# A node name in a target; "$NODE_NAME" is expanded from the environment (the downward API).
NodeName = Annotated[str, AfterValidator(os.path.expandvars)]


# Every URL the exporter requests (scrape targets, probes): http(s) only, checked in one place.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


def unique_names(items: list[Any], what: str) -> list[Any]:
    """Reject a list whose items share a `name` (they would render duplicate series)."""
    names = [item.name for item in items]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate {what} names: {sorted(dup)}")
    return items


_DURATION_RE = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))+\s*$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """'1m30s' -> 90.0.  Bare numbers are rejected: a unit-less '30' is ambiguous."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a duration string such as '500ms', '15s', '10m' or '1h'")
    if not _DURATION_RE.match(value):
        raise ValueError(f"invalid duration {value!r}: use e.g. '500ms', '15s', '10m', '1h'")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART_RE.findall(value))
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    if seconds == float("inf"):  # "999…9s" overflows; an infinite interval would never run
        raise ValueError("duration is too large")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Engine = Literal["auto", "vllm", "tgi", "sglang", "triton", "llamacpp", "trtllm"]
LabelMap = dict[str, str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


class GlobalConfig(Strict):
    # Default scrape interval of the dcgm-exporter targets (gpu.interval) when that is not set;
    # 15s matches dcgm-exporter's own collection interval.
    interval: Duration = "15s"
    # How often derived signals are recomputed and the /metrics bytes re-rendered.
    refresh_interval: Duration = "5s"
    # Cardinality guard: at most this many series per source; the rest are dropped and counted.
    max_series_per_source: int = Field(100_000, ge=1)
    # Topologies (docs/deploy.md): which scope of work this instance does.  Unset means "all",
    # or "node" when kubernetes.node_scope is set (a node agent).
    role: Literal["all", "node", "cluster"] | None = None
    # Shards: this instance owns what hashes to `shard` of `total_shards`.  `shard` is an integer
    # or a StatefulSet pod name, usually "$POD_NAME" (its ordinal is the shard).
    shard: int | str = 0
    total_shards: int = Field(1, ge=1)
    # The shard as an ordinal, resolved from `shard` when the config is loaded.
    _shard_ordinal: int = PrivateAttr(0)

    @property
    def shard_ordinal(self) -> int:
        return self._shard_ordinal

    @field_validator("shard")
    @classmethod
    def _check_shard(cls, shard: int | str) -> int | str:
        from .topology import ShardError, parse_shard

        try:
            parse_shard(shard)
        except ShardError as exc:
            raise ValueError(str(exc)) from None
        return shard

    @model_validator(mode="after")
    def _resolve_shard(self) -> "GlobalConfig":
        from .topology import parse_shard

        self._shard_ordinal = parse_shard(self.shard)
        if self._shard_ordinal >= self.total_shards:
            raise ValueError(
                f"shard: {self._shard_ordinal} is not below total_shards ({self.total_shards})"
            )
        return self


class KubernetesConfig(Strict):
    enabled: bool = False
    kubeconfig: str | None = None
    # DaemonSet mode: this instance owns only this node's pods and GPUs.  "$NODE_NAME" style
    # values are expanded from the environment (the downward API sets it).
    node_scope: str | None = None
    namespaces: list[str] = Field(default_factory=list)  # empty = all namespaces
    watch_timeout: Duration = "5m"  # server-side timeoutSeconds of one watch call
    request_timeout: Duration = "30s"  # client timeout of a list call
    backoff_max: Duration = "30s"
    # Node-agent topology, on the cluster instance: the label selector of the node-agent pods.
    # Serving pods on a node where no such pod is ready are scraped by nobody; the instance
    # counts them (ai_signals_exporter_serving_pods_without_node_agent).
    node_agent_selector: str | None = None

    @model_validator(mode="after")
    def _expand_node(self) -> "KubernetesConfig":
        from .labelselector import SelectorError, parse_selector

        if self.node_scope:
            self.node_scope = os.path.expandvars(self.node_scope)
        if self.node_agent_selector is not None:
            if self.node_scope:
                raise ValueError("node_agent_selector: only a cluster-wide instance sees every node's "
                                 "agent; set it on the cluster instance, not with node_scope")
            try:
                parse_selector(self.node_agent_selector)
            except SelectorError as exc:
                raise ValueError(f"node_agent_selector: {exc}") from None
        return self


class ServingTarget(Strict):
    url: HttpUrl
    engine: Engine = "auto"
    labels: LabelMap = Field(default_factory=dict)
    capacity_tokens_per_second: float | None = Field(None, gt=0)
    # Node the server runs on ("$NODE_NAME" is expanded): a node agent scrapes only its node's.
    node: NodeName | None = None


class ServingDiscovery(Strict):
    enabled: bool = True
    # Pods matching this label selector are scraped, as are pods annotated ai-signals.io/scrape=true.
    label_selector: str | None = None
    namespaces: list[str] = Field(default_factory=list)
    default_port: int = 8000
    default_path: str = "/metrics"


class ServingConfig(Strict):
    interval: Duration = "5s"
    window: Duration = "30s"
    timeout: Duration = "3s"
    max_concurrency: int = Field(64, ge=1)
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    targets: list[ServingTarget] = Field(default_factory=list)
    discovery: ServingDiscovery = Field(default_factory=ServingDiscovery)

    @model_validator(mode="after")
    def _window_vs_interval(self) -> "ServingConfig":
        if self.window < 2 * self.interval:
            raise ValueError("window must be at least twice the interval (a rate needs two samples)")
        return self


class DcgmTarget(Strict):
    url: HttpUrl
    # Node this dcgm-exporter runs on; when absent it comes from the Hostname label or discovery.
    # "$NODE_NAME" is expanded (a node agent's own dcgm-exporter).
    node: NodeName | None = None


# Labels of dcgm-exporter pods in the common deployments: the GPU Operator's classic stack
# (DaemonSet nvidia-dcgm-exporter), the upstream Helm chart (app.kubernetes.io/name), and the
# GPU Operator's DRA stack (nvidia-dcgm-exporter-dra).
DEFAULT_DCGM_SELECTORS = (
    "app=nvidia-dcgm-exporter",
    "app.kubernetes.io/name=dcgm-exporter",
    "app=nvidia-dcgm-exporter-dra",
)


class DcgmDiscovery(Strict):
    enabled: bool = True
    # A pod matching any of these selectors is a dcgm-exporter.
    label_selectors: list[str] = Field(default_factory=lambda: list(DEFAULT_DCGM_SELECTORS))
    # One selector, kept for older configs: when set it replaces `label_selectors`.
    label_selector: str | None = None
    namespaces: list[str] = Field(default_factory=list)
    # The container port of this name is scraped; `port` only when the pod declares none.
    port_name: str = Field("metrics", min_length=1)
    port: int = Field(9400, ge=1, le=65535)
    path: str = Field("/metrics", pattern=r"^/")

    @property
    def selectors(self) -> list[str]:
        return [self.label_selector] if self.label_selector is not None else self.label_selectors

    @model_validator(mode="after")
    def _check_selector(self) -> "DcgmDiscovery":
        from .labelselector import SelectorError, parse_selector

        if not self.selectors:
            raise ValueError("label_selectors: at least one selector is needed")
        for selector in self.selectors:
            try:
                parse_selector(selector)
            except SelectorError as exc:
                raise ValueError(f"label_selector: {exc}") from None
        return self


class GpuConfig(Strict):
    interval: Duration = "15s"
    timeout: Duration = "5s"
    max_concurrency: int = Field(64, ge=1)
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    idle_threshold: float = Field(0.05, ge=0, le=1)
    idle_after: Duration = "10m"
    # Extended resources that are GPUs on the kube side: one name or a list, e.g. both
    # nvidia.com/gpu and a time-slicing rename such as nvidia.com/gpu.shared (renameByDefault).
    # nvidia.com/mig-* always counts.
    resource_name: str | list[str] = "nvidia.com/gpu"
    taint_key: str = "nvidia.com/gpu"
    # Price of one GPU-hour per GPU model (the node's nvidia.com/gpu.product label); "default"
    # applies to models not listed.  Enables ai_gpu_idle_cost_per_hour.
    price_per_gpu_hour: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    dcgm_targets: list[DcgmTarget] = Field(default_factory=list)
    discovery: DcgmDiscovery = Field(default_factory=DcgmDiscovery)

    @property
    def resource_names(self) -> tuple[str, ...]:
        names = [self.resource_name] if isinstance(self.resource_name, str) else self.resource_name
        return tuple(dict.fromkeys(names))

    @model_validator(mode="after")
    def _check_resource_name(self) -> "GpuConfig":
        if not self.resource_names or not all(self.resource_names):
            raise ValueError("resource_name: give one or more non-empty resource names")
        return self


Layout = Literal[
    "auto", "dcp", "torch_save", "lightning", "hf_trainer", "deepspeed", "orbax", "megatron",
    "nemo", "composer",
]


class ValueFrom(Strict):
    """A value given inline, from a file or from an environment variable, so secrets (probe API
    keys, object-store account keys) stay out of the config file and its ConfigMap.  One
    mechanism for probe headers and checkpoint store options; resolved when used, since files
    may be rotated (`resolve_value`)."""

    value: str | None = None
    file: str | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ValueFrom":
        if sum(x is not None for x in (self.value, self.file, self.env)) != 1:
            raise ValueError("exactly one of value, file, env must be set")
        return self


HeaderValue = ValueFrom  # the name probe headers have used


def _scalar_to_str(value: Any) -> Any:
    # YAML reads `allow_http: true` and `timeout: 30` as bool/int; the clients want strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


OptionValue = Annotated[str | ValueFrom, BeforeValidator(_scalar_to_str)]


STORE_URI_PREFIXES = ("file://", "s3://", "gs://", "gcs://", "az://", "abfs://", "abfss://")


class CheckpointStore(Strict):
    name: str = Field(min_length=1)
    uri: str
    layout: Layout = "auto"
    expected_interval: Duration | None = None
    labels: LabelMap = Field(default_factory=dict)
    # Passed to the object-store client (endpoint, region, credentials...); they override the
    # cloud's standard environment variables key by key.  Values may come {env: NAME} or
    # {file: PATH}.
    options: dict[str, OptionValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_uri(self) -> "CheckpointStore":
        if not self.uri.lower().startswith(STORE_URI_PREFIXES):
            raise ValueError(
                "uri must start with file://, s3://, gs:// (gcs://) or az:// (abfs://, abfss://)"
            )
        if self.uri.lower().startswith("file://") and self.options:
            raise ValueError("options: file:// stores take no options")
        return self

    def option_errors(self) -> list[str]:
        """Options the store's client rejects (unknown key, bad value), found by building it
        without network: for --config.check, since a build costs ~15 ms per store.  At run time
        the same mistake marks the store down with reason "config"."""
        from .checkpoints.stores import option_errors

        literal = {k: v if isinstance(v, str) else v.value for k, v in self.options.items()}
        return [f"options.{k}: {msg}" for k, msg in option_errors(self.uri, literal)]

    def has_secrets(self) -> bool:
        return any(isinstance(v, ValueFrom) and v.value is None for v in self.options.values())

    def resolved_options(self) -> dict[str, str]:
        """The options with secrets read now (raises ConfigError for a missing one)."""
        return {k: resolve_value(v) for k, v in self.options.items()}


class CheckpointDiscovery(Strict):
    enabled: bool = True
    # Whoever can create a pod can make the exporter list a store with the exporter's own
    # credentials (and file:// paths inside its container).  In shared clusters, allow only these
    # URI prefixes (e.g. "s3://ml-checkpoints/"); empty = any store.
    uri_prefixes: list[str] = Field(default_factory=list)


class CheckpointsConfig(Strict):
    interval: Duration = "60s"
    timeout: Duration = "30s"
    max_objects: int = Field(100_000, ge=1)
    page_size: int = Field(1000, ge=1)
    max_concurrency: int = Field(8, ge=1)
    stores: list[CheckpointStore] = Field(default_factory=list)
    discovery: CheckpointDiscovery = Field(default_factory=CheckpointDiscovery)

    @model_validator(mode="after")
    def _unique_names(self) -> "CheckpointsConfig":
        unique_names(self.stores, "store")
        return self


class Probe(Strict):
    name: str = Field(min_length=1)
    url: HttpUrl
    direct_url: HttpUrl | None = None
    method: Literal["GET", "POST"] = "POST"
    headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    body: str | None = None
    interval: Duration = "30s"
    timeout: Duration = "30s"
    format: Literal["auto", "sse", "ndjson", "chunked"] = "auto"
    # Extra ingress-vs-direct delay of the first chunk above which the stream counts as buffered.
    buffering_threshold: Duration = "1s"

    @model_validator(mode="after")
    def _check(self) -> "Probe":
        if self.timeout > self.interval:
            raise ValueError("timeout must not exceed interval")
        return self


class Config(Strict):
    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    checkpoints: CheckpointsConfig = Field(default_factory=CheckpointsConfig)
    probes: list[Probe] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("probes")
    @classmethod
    def _unique_probes(cls, probes: list[Probe]) -> list[Probe]:
        return unique_names(probes, "probe")

    @model_validator(mode="after")
    def _global_defaults(self) -> "Config":
        if "interval" not in self.gpu.model_fields_set:
            self.gpu.interval = self.global_.interval
        return self

    @property
    def topology(self) -> "Topology":
        """This instance's role, shard and node (topology.py)."""
        from .topology import Topology

        g = self.global_
        role = g.role or ("node" if self.kubernetes.node_scope else "all")
        return Topology(role, g.shard_ordinal, g.total_shards, self.kubernetes.node_scope or None)


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        path = path.replace("global_", "global")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{source}: {path}: {msg}")
    return "\n".join(lines)


def topology_errors(config: Config) -> list[str]:
    """Work the config enables that its role does not do, as "key: why" lines.  A node agent
    runs once per node: cluster-scope work there would run (and be reported) once per node."""
    topo = config.topology
    node = config.kubernetes.node_scope
    errors = []
    if config.global_.role in ("all", "cluster") and node:
        errors.append(f"global.role: {config.global_.role} contradicts kubernetes.node_scope "
                      "(a node-scoped instance is a node agent: role node)")
    if topo.role == "node":
        why = "is cluster-scope work; a node agent (role node) runs once per node: give it to the cluster instance"
        if config.checkpoints.stores:
            errors.append(f"checkpoints.stores: {why}")
        if "enabled" in config.checkpoints.discovery.model_fields_set and config.checkpoints.discovery.enabled:
            errors.append(f"checkpoints.discovery.enabled: {why}")
        if config.probes:
            errors.append(f"probes: {why}")
        # Without node_scope, role node is node-local work of every node (e.g. shards of it).
        for section, targets in (("serving.targets", config.serving.targets),
                                 ("gpu.dcgm_targets", config.gpu.dcgm_targets)):
            for i, t in enumerate(targets):
                if node and t.node != node:
                    errors.append(f"{section}.{i}.node: a node agent scrapes only its own node's "
                                  f"servers: set node to kubernetes.node_scope ({node})")
    if topo.sharded:
        for i, t in enumerate(config.gpu.dcgm_targets):
            if t.node is None:
                errors.append(f"gpu.dcgm_targets.{i}.node: a shard owns dcgm-exporters by node name: "
                              "give each static target its node")
    if topo.role == "cluster":
        why = "is node-local work, which a cluster instance (role cluster) does not do: give it to the node agents"
        if config.serving.targets:
            errors.append(f"serving.targets: {why}")
        if config.gpu.dcgm_targets:
            errors.append(f"gpu.dcgm_targets: {why}")
    return errors


def load_config_text(text: str, source: str = "<config>") -> Config:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:  # PyYAML composes recursively: "[[[[…" must not escape as a crash
        raise ConfigError(f"{source}: invalid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    errors = topology_errors(config)
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return config


def check_config_deeply(config: Config, source: str) -> None:
    """The checks of --config.check beyond loading: build every checkpoint store (no network)."""
    lines = [
        f"{source}: checkpoints.stores.{i}: {err}"
        for i, store in enumerate(config.checkpoints.stores)
        for err in store.option_errors()
    ]
    if lines:
        raise ConfigError("\n".join(lines))


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    return load_config_text(text, str(p))


def resolve_value(value: str | ValueFrom) -> str:
    """Resolve a value where it is used (files may be rotated).  Never log the result."""
    if isinstance(value, str):
        return value
    if value.value is not None:
        return value.value
    if value.file is not None:
        return Path(value.file).read_text(encoding="utf-8").strip()
    assert value.env is not None
    v = os.environ.get(value.env)
    if v is None:
        raise ConfigError(f"environment variable {value.env} is not set")
    return v


resolve_header = resolve_value  # probe headers
