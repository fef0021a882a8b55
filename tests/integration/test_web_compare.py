"""The compare page (FR5.1.1): loss curves from the metric history, final metrics side by side,
the configuration diff, the picker, and clear refusals of a wrong selection."""

from __future__ import annotations

import io
import json
import re
import uuid

from pypdf import PdfReader

from tests.factories import configuration, job_fields
from tests.integration.test_metrics import evaluation, step
from tests.live_stack import publish
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}


def add(web: WebRig, name: str, preset: str, r: int, tier: str = "spot") -> uuid.UUID:
    app = web.store.app
    job_id = app.create_job(**job_fields(name=name))
    app.configure_job(job_id, **configuration(preset=preset, gpu_tier=tier,
                                              hyperparameters={"r": r, "lora_alpha": 2 * r, "learning_rate": 2e-4}))
    return job_id


def compare(web: WebRig, *ids: object, user: str = "alice"):
    return web.client(user).get("/compare?" + "&".join(f"jobs={i}" for i in ids), headers=HTML)


def test_two_jobs_are_compared_curves_metrics_and_configuration(web: WebRig) -> None:
    first = add(web, "Advisor r16", "balanced", 16)
    second = add(web, "<script>alert(1)</script> r32", "aggressive", 32, tier="on_demand")
    # The agent's telemetry: the second job learns faster; a validation loss every 10 steps.
    items = [step(job, n, loss=loss) for n in range(1, 41)
             for job, loss in ((first, 2.0 / n + 0.5), (second, 1.5 / n + 0.4))]
    items += [evaluation(first, 40, 0.62), evaluation(second, 40, 0.5)]
    publish(web.nats_url, items, "compare")
    web.project()
    web.project("metrics")
    page = compare(web, first, second)
    assert page.status_code == 200, page.text
    text = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; r32" in text and "<script>alert(1)" not in text
    data = json.loads(re.search(r'id="compare-chart-data">(.*?)</script>', text).group(1))
    assert [job["name"] for job in data["jobs"]] == ["Advisor r16", "<script>alert(1)</script> r32"]
    assert data["jobs"][0]["steps"][:3] == [1, 2, 3] and data["jobs"][1]["loss"][-1] == 1.5 / 40 + 0.4
    assert data["jobs"][0]["eval_loss"][-1] == 0.62
    assert 'class="num best">0.5000</td>' in text and ">0.6200</td>" in text  # final validation losses
    assert "Job 2: 19% lower validation loss than Job 1" in text
    assert "Recommended: Job 2 – &lt;script&gt;" in text and "lowest validation loss" in text
    assert '<tr class="differs" data-setting="Preset">' in text and '<tr class="differs" data-setting="r">' in text
    assert '<tr class="differs" data-setting="GPU tier">' in text
    assert '<tr class="same" data-setting="Training file">' in text
    assert '<tr class="same" data-setting="learning_rate">' in text
    assert f'href="/jobs/{first}"' in text
    # FR5.1.1 "Export comparison as PDF report": the same figures.
    assert f'href="/compare.pdf?jobs={first}&amp;jobs={second}"' in text
    answer = web.client("alice").get(f"/compare.pdf?jobs={first}&jobs={second}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'attachment; filename="training-comparison-\d{8}-\d{6}\.pdf"',
                        answer.headers["content-disposition"])
    pdf = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(answer.content)).pages).split())
    for expected in ("Comparison of 2 training runs", "Job 1 Advisor r16 (configured, created by alice)",
                     "Job 2 <script>alert(1)</script> r32", "Recommended: Job 2 – <script>alert(1)</script> r32",
                     "Training loss", "2. <script>alert(1)</script> r32", "0.5000 ★", "0.6200",
                     "Job 2: 19% lower validation loss than Job 1", "≠ Preset", "≠ r", "≠ GPU tier",
                     "Training file financial-advisory.json financial-advisory.json"):
        assert expected in pdf, (expected, pdf)
    refused = web.client("alice").get(f"/compare.pdf?jobs={first}", headers=HTML)
    assert refused.status_code == 400 and "Select 2 to 4 jobs to compare (1 selected)" in refused.text


def test_a_wrong_selection_is_refused_clearly(web: WebRig) -> None:
    jobs = [add(web, f"Run {n}", "balanced", 16) for n in range(5)]
    web.project()
    one = compare(web, jobs[0])
    assert one.status_code == 400 and "Select 2 to 4 jobs to compare (1 selected)" in one.text
    assert f'value="{jobs[0]}" checked' in one.text  # the picker keeps the choice
    five = compare(web, *jobs)
    assert five.status_code == 400 and "Select 2 to 4 jobs to compare (5 selected)" in five.text
    twice = compare(web, jobs[0], jobs[0])
    assert twice.status_code == 400 and "(1 selected)" in twice.text
    unknown = uuid.uuid4()
    missing = compare(web, jobs[0], unknown)
    assert missing.status_code == 404 and f"No training job {unknown}" in missing.text
    garbage = compare(web, jobs[0], "<b>nope</b>")
    assert garbage.status_code == 400 and "Not a job id: &#39;&lt;b&gt;nope&lt;/b&gt;&#39;" in garbage.text


def test_the_picker_searches_jobs_by_name(web: WebRig) -> None:
    wanted = add(web, "Gamma insurer tone", "balanced", 16)
    add(web, "Delta bank tone", "balanced", 16)
    web.project()
    empty = web.client("carol").get("/compare", headers=HTML)
    assert empty.status_code == 200 and "Gamma insurer tone" in empty.text and "Delta bank tone" in empty.text
    found = web.client("carol").get("/compare?q=gamma&search=1", headers=HTML).text
    assert f'value="{wanted}"' in found and "Delta bank tone" not in found
    kept = web.client("carol").get(f"/compare?q=delta&search=1&jobs={wanted}", headers=HTML).text
    assert f'value="{wanted}" checked' in kept and "Delta bank tone" in kept and "Select 2 to 4" not in kept
