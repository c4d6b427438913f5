"""The soak as an opt-in test (`pytest -m slow tests/soak`, SOAK_SECONDS to lengthen it): no
growth in RSS or open file descriptors beyond a stated bound under constant scrape load and
periodic faults; never an exit of its own; a clean SIGTERM at the end."""

from __future__ import annotations

import json
import os

import pytest

from .soak import soak

# Bounds, stated: after warm-up, the second half's median RSS may exceed the first half's by at
# most 16 MiB (allocator noise and history windows; a leak of one object per scrape or per fault
# would show up far beyond that over thousands of scrapes), and open fds by at most 16 (sockets
# in flight to the hanging/endless targets and the scrapers come and go).
RSS_GROWTH_MIB = 16
FD_GROWTH = 16


@pytest.mark.slow
async def test_soak_rss_and_fds_stay_flat():
    report = await soak(duration=float(os.environ.get("SOAK_SECONDS", "120")))
    print(json.dumps(report, indent=2))
    assert report["alive_until_sigterm"] and report["exit_code"] == 0
    assert report["scrape_errors"] == 0 and report["scrapes"] > 1000
    assert report["faults_injected"] >= 6
    growth = report["rss_mib_warm_second_half_median"] - report["rss_mib_warm_first_half_median"]
    assert growth <= RSS_GROWTH_MIB, report
    assert report["fds_warm_second_half_max"] - report["fds_warm_first_half_max"] <= FD_GROWTH, report
