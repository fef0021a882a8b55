"""The chaos run (issue #21, bench/chaos.py) in short: a 3-node NATS cluster, two instances of each
worker, jobs training on local pods with a preemption injected, and in turn a SIGKILL of one
instance of each kind (the relay's and provisioning's leaders among them), of a NATS node, a
PostgreSQL restart and the relay leader frozen past its lease. Then, by code: every job completed
with the undisturbed run's adapter, `pipeline audit verify` clean, every metric step once, every
budget charge once, one pod per attempt, every notification once. `python bench/chaos.py` runs
every instance and more rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_nothing_is_lost_or_done_twice_when_each_part_of_a_cluster_fails_in_turn(tmp_path: Path) -> None:
    report = chaos.run(tmp_path, rounds=1, steps=20, jobs=2, lease_s=3.0, every_instance=False, full_each=False)
    print(report.table())
    assert report.checks.failures == []
    assert len(report.checks.passed) == 7
    assert report.preempted >= 1
    # Back to serving and deciding everything, on a loaded CI machine: bounded well within the run.
    assert all(r.whole_s < 60 for r in report.recoveries), report.table()
