from __future__ import annotations

from pathlib import Path

import pytest

from . import fixture_cluster
from ..helpers.promstack import prometheus, query, text_server, wait_until
from .rulepack import rule_files


@pytest.fixture(scope="session")
def loaded_prometheus(tmp_path_factory) -> str:
    """A real Prometheus with the shipped rules, scraping realistic dcgm-exporter,
    ai-signals-exporter and kube-state-metrics series every second."""
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    with text_server(fixture_cluster.page) as target:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files()],
            "scrape_configs": [
                {"job_name": job, "metrics_path": path, "honor_labels": True,
                 "static_configs": [{"targets": [target]}]}
                for job, path in (("dcgm-exporter", "/dcgm"), ("ai-signals-exporter", "/ai"),
                                  ("kube-state-metrics", "/ksm"))
            ],
        }
        with prometheus(workdir, config) as url:
            # Rates need two scrapes; recording rules need an evaluation after that.
            wait_until(lambda: query(url, "workload:ai_serving_generation_tokens_per_second:sum")
                       and query(url, "rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER[30s]) > 0")
                       and query(url, "gpu:dcgm_xid_errors:recent")
                       and query(url, "workload:ai_serving_cold_start_seconds:mean")
                       and query(url, "namespace_workload_state:ai_gpu_seconds:rate5m")
                       and query(url, "increase(ai_gpu_node_admission_failures_total[1m])"),
                       30, "series and recording rules")
            yield url
