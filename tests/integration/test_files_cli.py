"""`pipeline files add`: a real upload to the object store and a catalog entry, or every problem."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg

SAMPLES = Path(__file__).parents[2] / "samples"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=os.environ | env,
                          capture_output=True, text=True, timeout=120)


def test_files_add_catalogues_a_valid_file_and_reports_the_exact_place_of_each_problem(
    migrated: str, nats_server
) -> None:
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    good = run_cli(env, "files", "add", str(SAMPLES / "financial-advisory.json"), "--name", "Advisor sample")
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("Advisor sample: 300 conversations, 1419 training pairs")
    bad = run_cli(env, "files", "add", str(SAMPLES / "broken-missing-target.json"))
    assert bad.returncode == 1
    assert "conversations[1].training_pairs[1].target_response: Training pair #4 (conversation conv_abc123) " \
           "is missing 'target_response'" in bad.stdout
    missing = run_cli(env, "files", "add", "/nonexistent.json")
    assert missing.returncode == 2 and missing.stderr.strip() == "pipeline: error: no such file: /nonexistent.json"
    with psycopg.connect(migrated) as conn:
        events = conn.execute("SELECT topic FROM pipeline_events ORDER BY notification_id").fetchall()
    assert [t for (t,) in events] == ["CatalogFile.Created", "CatalogFile.Created"]


def test_a_pod_fault_without_its_job_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_cli({"PIPELINE_STATE_DIR": str(tmp_path)}, "pods", "fault", "preempt")
    assert result.returncode == 2
    assert result.stderr.strip() == "pipeline: error: preempt needs --job JOB_ID"
