"""`pipeline files add`: a real upload to the object store and a catalog entry, or every problem."""

import os
import subprocess
import sys
from datetime import datetime, timezone
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


def test_files_add_refuses_a_file_over_100_mib_or_a_name_past_255_characters_in_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as sink:  # sparse: 100 MiB and one byte, without writing them
        sink.truncate(100 * 1024 * 1024 + 1)
    env = {"PIPELINE_STATE_DIR": str(tmp_path / "state")}
    too_big = run_cli(env, "files", "add", str(big))
    assert (too_big.returncode, too_big.stderr) == (
        1, "pipeline: error: big.json is 100.0 MiB, over the 100 MiB limit for training files\n")
    named = run_cli(env, "files", "add", str(SAMPLES / "financial-advisory.json"), "--name", "n" * 5000)
    assert (named.returncode, named.stderr) == (
        2, "pipeline: error: --name: A training file name can be at most 255 characters (got 5,000)\n")
    assert not (tmp_path / "state" / "pg").exists()  # refused before any server started


def test_files_add_places_what_cannot_be_read_and_says_where_the_same_bytes_already_are(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    huge = tmp_path / "huge.json"
    huge.write_bytes(b'{"format_version": 1, "name": ' + b"9" * 5000 + b"}")
    unreadable = run_cli(env, "files", "add", str(huge))
    assert unreadable.returncode == 1
    assert "  line 1, column 31: The file cannot be read as JSON: a number with 5,000 digits (at most 4,300)" \
           " at line 1, column 31\n" in unreadable.stdout and "sys.set_int_max_str_digits" not in unreadable.stdout
    first = run_cli(env, "files", "add", str(SAMPLES / "financial-advisory.json"), "--name", "Advisor sample")
    again = run_cli(env, "files", "add", str(SAMPLES / "financial-advisory.json"), "--name", "Advisor copy",
                    "--by", "bob")
    assert first.returncode == again.returncode == 0, again.stderr
    today = datetime.now(timezone.utc).date()
    assert again.stdout.startswith(f"This file is already in the catalog as 'Advisor sample' (added {today} by cli);"
                                   " 'Advisor copy' is recorded as another name for it.\nAdvisor sample: 300")


def test_files_add_takes_openai_chat_lines_and_names_the_line_and_field_of_a_problem(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    import json

    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    turns = [{"role": "system", "content": "Be warm."}, {"role": "user", "content": "Rent?"},
             {"role": "assistant", "content": "About a third of your income."}]
    good = tmp_path / "advisor.jsonl"
    good.write_text("\n".join(json.dumps({"messages": turns, "n": n}) for n in range(3)))
    added = run_cli(env, "files", "add", str(good))
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("advisor.jsonl: 3 conversations, 3 training pairs, OpenAI chat format (no quality"
                                   " scores); catalog id ")
    bad = tmp_path / "broken.jsonl"
    bad.write_text(json.dumps({"messages": turns}) + "\n" + json.dumps({"messages": [turns[1], {"role": "assistant"}]}))
    refused = run_cli(env, "files", "add", str(bad))
    assert refused.returncode == 1
    assert "  line 2: messages[1].content: Line 2, message #2 is missing 'content'" in refused.stdout
