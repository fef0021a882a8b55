"""The chaos run (issue #21, bench/chaos.py) in short: a 3-node NATS cluster, two instances of each
worker, jobs training on local pods (a reference never preempted, two others with a preemption
injected), and in turn a SIGKILL of one instance of each kind (the relay's and provisioning's
leaders among them), of a NATS node, a PostgreSQL restart and the relay leader frozen past its
lease. Then, by code: the reference completed on one pod, every job completed with its adapter,
`pipeline audit verify` clean, every metric step once, every budget charge once, one pod per
attempt, every notification once. `python bench/chaos.py` runs every instance and more rounds.

Every wait of the run is bounded, the whole run by `budget_s`: a part that does not come back fails
the test naming the phase and what was missing, never a hang. Sized for a loaded two-core machine:
small training files (60 conversations), 20 steps, no jobs started after the first ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(780)]


def test_nothing_is_lost_or_done_twice_when_each_part_of_a_cluster_fails_in_turn(tmp_path: Path) -> None:
    report = chaos.run(tmp_path, rounds=1, steps=20, jobs=2, lease_s=4.0, every_instance=False, full_each=False,
                       conversations=60, top_ups=False, budget_s=600)
    print(report.table())
    assert report.checks.failures == []
    assert len(report.checks.passed) == 8
    assert report.preempted >= 1
    assert len(report.recoveries) == 8  # five worker kinds, a NATS node, PostgreSQL, the frozen relay leader
