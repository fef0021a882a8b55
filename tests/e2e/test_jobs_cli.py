"""`pipeline login` and `pipeline jobs …` against a running stack (#20): a login kept owner-only, a job
created from a file and started, `watch` in a terminal ending with the job's failure (exit 1) and with
a cancellation (exit 3), the other commands through `--json`, and refusals and usage errors with
their own exit codes. Every job's first pod runs out of memory above a batch of 2 (a stack fault)."""

import stat
from pathlib import Path

import pytest

from tests.e2e import api
from tests.e2e.terminal import client_env, in_terminal, piped
from tests.e2e.test_queue import upload_variant
from tests.e2e.test_recovery import stack
from tests.e2e.test_up import interrupt, start_up

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"


def test_jobs_from_the_terminal_with_exit_codes_a_script_can_rely_on(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_FAULT="oom_above_batch:2", PIPELINE_AGENT_MAX_STEPS="10")
    process, base = start_up(env, tmp_path / "up.log")
    token = api._admins[base]["Authorization"].removeprefix("Bearer ")
    config_home = tmp_path / "config"
    signed_out = {"XDG_CONFIG_HOME": str(config_home), "PIPELINE_API_URL": "", "PIPELINE_API_TOKEN": ""}
    try:
        code, refused = piped(["jobs", "list", "--json"], signed_out)
        assert code == 2 and "run `pipeline login`" in refused["error"]["detail"]
        code, wrong = piped(["login", "--url", base, "--token", "lpt_not-a-token", "--json"], signed_out)
        assert code == 4 and "refused the token" in wrong["error"]["detail"]
        code, login = piped(["login", "--url", base, "--token", token, "--json"], signed_out)
        saved = Path(login["saved_to"])
        assert code == 0 and saved.parent.parent == config_home and stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert token in saved.read_text()

        code, made = piped(["jobs", "create", "--file", str(SAMPLE), "--name", "From the terminal", "--preset",
                            "conservative", "--no-start", "--tag", "cli", "--json"], signed_out)
        assert code == 0 and made["started"] is False, made
        job = made["id"]
        assert piped(["jobs", "start", job, "--json"], signed_out) == (0, {"id": job, "started": True,
                                                                          "warnings": []})
        code, again = piped(["jobs", "start", job, "--json"], signed_out)
        assert code == 4 and again["error"]["status"] == 409  # queued, or its pod already on its way
        assert again["error"]["detail"].startswith("This job has already started (status: ")

        terminal = client_env(base, f"Bearer {token}", config_home)
        code, shown = in_terminal(["jobs", "watch", job], terminal)
        assert code == 1, shown
        assert "From the terminal" in shown and "✗ Failed" in shown and "out of memory" in shown.lower()
        code, detail = piped(["jobs", "show", job, "--json"], signed_out)
        assert code == 0 and (detail["job"]["status"], detail["job"]["failure_type"]) == ("failed", "oom")
        code, listed = piped(["jobs", "list", "--status", "failed", "--json"], signed_out)
        assert code == 0 and [row["id"] for row in listed] == [job]
        code, log = piped(["jobs", "logs", job, "--category", "error", "--json"], signed_out)
        assert code == 0 and log and all(e["event_type"] == "error" for e in log)
        code, nothing = piped(["jobs", "download", job, "--json"], signed_out)
        assert code == 4 and nothing["error"]["detail"].startswith("This job has no adapter to download")
        code, not_training = piped(["jobs", "pause", job, "--json"], signed_out)
        assert code == 4 and not_training["error"]["detail"] == "Only a training job can be paused (this one is failed)"

        other = upload_variant(base, "a second file")
        code, queued = piped(["jobs", "create", "--file", other, "--name", "Cancelled at once", "--json"], signed_out)
        assert code == 0 and queued["started"] is True
        code, cancelled = piped(["jobs", "cancel", queued["id"], "--reason", "testing", "--json"], signed_out)
        assert (code, cancelled) == (0, {"id": queued["id"], "status": "cancelled"})
        code, watched = piped(["jobs", "watch", queued["id"], "--json"], signed_out)
        assert code == 3 and watched["status"] == "cancelled"  # the last JSON line: how it ended

        code, usage = piped(["jobs", "cancel", "not-a-job", "--json"], signed_out)
        assert code == 2 and usage["error"]["detail"].startswith("JOB_ID: 'not-a-job' is not a job id")
        code, unknown = piped(["jobs", "show", "00000000-0000-0000-0000-000000000000", "--json"], signed_out)
        assert code == 4 and unknown["error"]["status"] == 404
        code, _ = in_terminal(["logout"], terminal)
        assert code == 0 and not saved.exists()
    finally:
        assert interrupt(process) == 0
