"""Issue #17: the new-job page and its JSON estimate warn before launch when the chosen file's long tail would be
cut by the sequence length the agent would train with (web/new_job_view.py, web/job_checks.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from uuid import UUID

from domain.training_file import summarize, validate
from domain.training_file.lengths import LengthDistribution
from domain.values import ArtifactRef
from tests.integration.test_web_new_job import HTML, SAMPLE, plain
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

LLAMA_70B = "meta-llama/Meta-Llama-3-70B-Instruct"
LONG_ANSWER = "I understand how stressful this is. " * 3_400  # ≈ 122,000 characters: ≈ 30,600 tokens


def add_file(web: WebRig, data: bytes, name: str) -> UUID:
    report, stats = validate(data), summarize(data)
    ref = ArtifactRef("files", f"abc/{name}", stats.sha256, len(data))
    return web.store.app.register_training_file(name, ref, report, stats, "alice", datetime.now(timezone.utc))


def long_tail() -> bytes:
    """The sample with ten answers far longer than the rest: 10 of 1,419 examples, inside the 1 % tail."""
    doc = json.loads(SAMPLE.read_bytes())
    for conversation in doc["conversations"][:10]:
        conversation["training_pairs"][0]["target_response"] = LONG_ANSWER
    return json.dumps(doc).encode()


def on_base_model(web: WebRig, model: str) -> None:
    web.settings = web.settings.model_copy(update={"agent": web.settings.agent.model_copy(
        update={"base_model": model})})


def estimate(web: WebRig, file_id: UUID, preset: str = "balanced") -> dict:
    answer = web.client("alice").get("/jobs/new/estimate.json", params={
        "training_file_id": str(file_id), "preset": preset, "gpu_tier": "spot"})
    assert answer.status_code == 200, answer.text
    return answer.json()["sequence_length"]


def test_a_file_whose_long_tail_would_be_cut_is_warned_about_before_launch(web: WebRig) -> None:
    on_base_model(web, LLAMA_70B)
    file_id = add_file(web, long_tail(), "long-tail.json")
    web.project()

    # the 70B model cannot keep ~30,000-token rows on an 80 GB GPU: the agent trains at the 99 % length, which
    # cuts the ten long answers and the few examples between that length and the longest of the rest
    lengths = LengthDistribution.stored(summarize(long_tail()).example_tokens)
    assert lengths is not None
    cut = lengths.cut_at(lengths.covering_length())
    checked = estimate(web, file_id)
    assert checked["estimated"] is True and checked["examples"] == 1_419 and checked["examples_cut"] == cut.examples
    assert checked["seq_len"] == cut.seq_len < 200 and 10 <= cut.examples <= 14
    assert checked["most_tokens_cut"] == cut.most_tokens > 30_000 and checked["percent_cut"] == round(cut.percent, 1)
    page = plain(web.client("alice").get("/jobs/new", params={"file": str(file_id), "preset": "balanced"},
                                         headers=HTML).text)
    assert (f"About {cut.examples} of 1,419 examples ({cut.percent:.1f} %) are longer than the {cut.seq_len:,} tokens"
            in page)
    assert f"up to about {checked['most_tokens_cut']:,} tokens" in page and "Shorten or split those examples" in page
    fragment = web.client("alice").get("/jobs/new/estimate", headers=HTML, params={
        "training_file_id": str(file_id), "preset": "conservative", "gpu_tier": "spot"}).text
    assert f"About {cut.examples} of 1,419 examples" in plain(fragment)


def test_the_shipped_sample_fits_whole_and_is_not_warned_about(web: WebRig) -> None:
    on_base_model(web, LLAMA_70B)
    file_id = add_file(web, SAMPLE.read_bytes(), "financial-advisory.json")
    web.project()

    for preset in ("conservative", "balanced", "aggressive"):
        checked = estimate(web, file_id, preset)
        assert checked["examples_cut"] == 0 and checked["warning"] is None
    page = plain(web.client("alice").get("/jobs/new", params={"file": str(file_id)}, headers=HTML).text)
    assert "examples (" not in page and "Shorten or split" not in page


def test_a_model_without_a_published_shape_keeps_every_example_whole(web: WebRig) -> None:
    """The tiny test model: the memory guard cannot be judged here, and the agent then cuts nothing."""
    file_id = add_file(web, long_tail(), "long-tail.json")
    web.project()
    checked = estimate(web, file_id)
    assert checked["examples_cut"] == 0 and checked["seq_len"] > 30_000 and checked["warning"] is None
