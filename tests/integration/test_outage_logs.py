"""Workers say what happens during an outage in a few lines: one when it starts, rate-limited
repeats, one summary when it ends, and no traceback for what is expected."""

from __future__ import annotations

import time
from pathlib import Path

from tests.agent_helpers import declare_streams
from tests.helpers import pipeline_process, stop_process, wait_for

OUTAGE_S = 5.0


def lines(log: Path) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if line.strip()]


def test_a_nats_outage_under_running_consumers_takes_a_few_lines_and_one_summary_per_worker(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    declare_streams(nats_server.url)
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    logs = {"projections": tmp_path / "projections.log", "relay": tmp_path / "relay.log"}
    workers = [pipeline_process(["projections", "run"], env, logs["projections"]),
               pipeline_process(["relay"], env, logs["relay"])]
    try:
        wait_for(lambda: "projections: consuming" in logs["projections"].read_text()
                 and "relay: leader" in logs["relay"].read_text(), timeout=60, message="both workers running")
        before = {name: len(lines(log)) for name, log in logs.items()}
        nats_server.stop()
        time.sleep(OUTAGE_S)  # the outage itself
        nats_server.start()
        for name, log in logs.items():
            wait_for(lambda log=log: any("NATS reconnected after" in line for line in lines(log)), timeout=30,
                     message=f"the {name} worker's recovery summary")
        for name, log in logs.items():
            outage = lines(log)[before[name]:]
            assert len(outage) <= 10, "\n".join(outage)
            assert sum("NATS reconnected after" in line for line in outage) == 1, "\n".join(outage)
            assert not any("Traceback" in line for line in outage), "\n".join(outage)
        assert all(worker.poll() is None for worker in workers)
    finally:
        for worker in workers:
            stop_process(worker)
    for name, log in logs.items():
        assert "Traceback" not in log.read_text(errors="replace"), f"{name} at its shutdown:\n{log.read_text()}"
