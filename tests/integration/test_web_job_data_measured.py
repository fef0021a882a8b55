"""Issue #17: the job page shows what the pod measured of the data (TrainingJob.DataMeasured) beside the metrics,
not only as a line of the event log (web/data_measured_view.py, projections/job_detail.py)."""

from __future__ import annotations

import html

from tests.integration.test_web_job_detail import add_job, ago, page, run, text_of, training
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

MEASURED = {"examples": 1_419, "longest": 153, "seq_len": 96, "decided_by": "max_seq_length",
            "truncated_examples": 273, "truncated_tokens": 4_810, "most_cut": 57, "masked_share": 0.48}


def test_the_overview_shows_the_sequence_length_and_what_it_cut(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    web.project()
    assert "Examples truncated" not in html.unescape(text_of(page(web, "alice", f"/jobs/{job}").text))
    run(web, job, lambda j: j.record_data_measurement(1, ago(100), **MEASURED))
    web.project()

    text = html.unescape(text_of(page(web, "alice", f"/jobs/{job}").text))
    assert "Sequence length 96 tokens (capped by the job's max_seq_length; longest example 153)" in text
    assert "Examples truncated 273 of 1,419 (19.2%) (4,810 tokens cut in all)" in text
    assert "⚠ Up to 57 tokens cut from one example's end" in text
    assert "Masked from the loss 48% of tokens" in text


def test_a_measurement_that_cut_nothing_says_so(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    run(web, job, lambda j: j.record_data_measurement(
        1, ago(100), **MEASURED | {"seq_len": 153, "decided_by": "data", "truncated_examples": 0,
                                   "truncated_tokens": 0, "most_cut": 0}))
    web.project()

    text = html.unescape(text_of(page(web, "alice", f"/jobs/{job}").text))
    assert "Sequence length 153 tokens (from the data; longest example 153)" in text
    assert "Examples truncated none of 1,419" in text and "tokens cut from one example" not in text
