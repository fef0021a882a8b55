"""The official `openai` client against a running stack (`pipeline up`, local pods), over real HTTP, as
a team's existing fine-tuning script drives it (#20): the sample and an OpenAI chat JSON Lines file
uploaded, a job created with `n_epochs: "auto"`, another cancelled, the list paged and filtered by
metadata, the job retrieved until it succeeds, its events and checkpoints; a malformed file and a
budget refusal as the client's typed exceptions with our messages. A webhook endpoint registered
first gets the job's end and the cancellation from the notifications worker, each verified by the
client's `webhooks.unwrap`. (Pause and resume through the client, to the uninterrupted run's adapter:
tests/e2e/test_pause_resume.py.)"""

import json
from datetime import datetime, timezone
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from domain.budget_month import budget_month
from tests.e2e import api
from tests.e2e.test_recovery import stack
from tests.e2e.test_up import interrupt, start_up
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
JUSTIFICATION = "End-to-end check: a limit below any job's estimate, to see the create refused."


def chat_lines(conversations: int) -> list[dict]:
    """The sample's first conversations as OpenAI chat examples: the system prompt, then every pair a turn."""
    examples = []
    for conversation in json.loads(SAMPLE.read_bytes())["conversations"][:conversations]:
        pairs = conversation["training_pairs"]
        messages = [{"role": "system", "content": pairs[0]["system_prompt"]}]
        for pair in pairs:
            messages += [{"role": "user", "content": pair["user_input"]},
                         {"role": "assistant", "content": pair["target_response"]}]
        examples.append({"messages": messages})
    return examples


def jsonl(examples: list[dict]) -> bytes:
    return ("\n".join(json.dumps(e) for e in examples) + "\n").encode()


def test_a_script_written_for_openais_fine_tuning_api_runs_against_the_stack(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="10", PIPELINE_AGENT_CHECKPOINT_EVERY="5")
    process, base = start_up(env, tmp_path / "up.log")
    # strict: every answer must also pass the client's own models (required fields, literals, types)
    ai = OpenAI(base_url=f"{base}/v1", api_key=api._admins[base]["Authorization"].removeprefix("Bearer "),
                max_retries=0, _strict_response_validation=True)
    receiver = WebhookReceiver().start()
    try:
        hook = api.post(f"{base}/api/webhooks", json={"url": receiver.url, "events": [
            "fine_tuning.job.succeeded", "fine_tuning.job.cancelled"]})
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]

        path = tmp_path / "advisor.jsonl"
        path.write_bytes(jsonl(chat_lines(60)))
        with path.open("rb") as handle:
            chat = ai.files.create(file=handle, purpose="fine-tune")
        with SAMPLE.open("rb") as handle:
            ours = ai.files.create(file=handle, purpose="fine-tune")
        assert (chat.status, chat.model_extra["format"], chat.model_extra["conversation_count"]) == (
            "processed", "openai-chat", 60)
        assert (ours.status, ours.model_extra["format"], ours.model_extra["conversation_count"]) == (
            "processed", "pipeline", 300)
        assert ai.files.content(chat.id).read() == path.read_bytes()

        job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, hyperparameters={"n_epochs": "auto"},
                                         suffix="advisor", metadata={"team": "risk"})
        assert (job.status, job.hyperparameters.n_epochs, job.model_extra["preset"]) == ("queued", 2, "conservative")
        other = ai.fine_tuning.jobs.create(model="tiny", training_file=ours.id, metadata={"team": "ops"})
        assert ai.fine_tuning.jobs.cancel(other.id).status == "cancelled"

        first = wait_for(lambda: (page := ai.fine_tuning.jobs.list(limit=1)).data and page.data[0].id == other.id
                         and page, message="the jobs in the read model")
        assert first.has_more and [j.id for j in first.get_next_page().data] == [job.id]  # newest first, paged
        assert [j.id for j in ai.fine_tuning.jobs.list(metadata={"team": "risk"})] == [job.id]

        done = wait_for(lambda: (j := ai.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed",
                                                                                      "cancelled") and j,
                        timeout=300, interval=1, message="the job to end")
        assert done.status == "succeeded", (tmp_path / "up.log").read_text()[-3000:]
        assert (done.fine_tuned_model, done.error, done.estimated_finish) == (f"ft:tiny:advisor:{job.id}", None, None)
        assert done.trained_tokens > 0 and done.finished_at >= done.created_at
        assert float(done.model_extra["cost"]) > 0 and done.model_extra["pipeline_status"] == "completed"

        ended = {("fine_tuning.job.cancelled", other.id), ("fine_tuning.job.succeeded", job.id)}
        wait_for(lambda: {(e.type, e.data.id) for e in receiver.accepted} == ended, timeout=60,
                 message="the webhooks, as the openai client verifies them")
        assert not any(r["error"] for r in receiver.requests) and len(receiver.requests) == 2
        log = api.get(f"{base}/api/webhooks/{hook.json()['id']}/deliveries").json()
        assert sorted((d["event_type"], d["status"], len(d["log"])) for d in log) == [
            ("fine_tuning.job.cancelled", "delivered", 1), ("fine_tuning.job.succeeded", "delivered", 1)]

        events = list(ai.fine_tuning.jobs.list_events(job.id, limit=10))  # the client pages through them all
        names = [e.data["event"] for e in events]
        assert names[-1] == "Created" and "Completed" in names
        # evaluated on the shipped suites, as a job created on the pages or the JSON API is (FR6.2-FR6.4)
        assert "SuitesAttached" in names and names.index("Evaluated") == names.index("Completed") + 1
        progress = [e for e in events if e.data["event"] == "ProgressRecorded"]
        assert progress and all(e.type == "metrics" and e.data["train_loss"] is not None for e in progress)
        checkpoints = ai.fine_tuning.jobs.checkpoints.list(job.id).data
        steps = [c.step_number for c in checkpoints]
        assert steps == sorted(steps, reverse=True) and 5 in steps  # newest first, every 5 steps
        assert all(c.fine_tuned_model_checkpoint == f"ft:tiny:advisor:{job.id}:ckpt-step-{c.step_number}"
                   for c in checkpoints)

        broken = chat_lines(3)
        del broken[1]["messages"][1]["role"]
        with pytest.raises(openai.BadRequestError) as malformed:
            ai.files.create(file=("broken.jsonl", jsonl(broken)), purpose="fine-tune")
        assert (malformed.value.param, malformed.value.code) == ("file", "invalid_training_file")
        assert malformed.value.body["message"] == ("broken.jsonl failed validation with 1 problem; the first, at"
                                                   " line 2: messages[1].role: Line 2, message #2 is missing 'role'")

        month = budget_month(datetime.now(timezone.utc), "UTC")
        limited = api.post(f"{base}/budget/limit", data={"month": month, "new_limit": "0.01",
                                                         "justification": JUSTIFICATION})
        assert limited.status_code == 303, limited.text
        with pytest.raises(openai.ConflictError) as refused:
            ai.fine_tuning.jobs.create(model="tiny", training_file=ours.id)
        assert refused.value.code == "budget_exceeded"
        assert refused.value.body["message"].startswith("Estimated cost ($")
        assert refused.value.body["message"].endswith("Adjust configuration or increase budget limit.")
    finally:
        receiver.stop()
        assert interrupt(process) == 0
