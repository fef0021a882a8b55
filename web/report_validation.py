"""The training report's validation section (FR6.1.1 "Export perplexity data with validation report",
FR6.3.1 "Include retention test results in validation report"): the delivery gate's outcome and
reasons, a manager's release, perplexity with its badge, knowledge retention and each probe suite
by category, from the summary the job's Evaluated event carries."""

from __future__ import annotations

from typing import Any

from domain.quality.gate import LABELS, Outcome
from web.pdf_base import MUTED, BrandedPdf


def validation(pdf: BrandedPdf, job: Any) -> None:
    pdf.add_page()
    pdf.heading("Validation")
    if job.evaluation is None:
        failure = job.evaluation_failure
        pdf.paragraph("This adapter has no evaluation" + (f": its results could not be read ({failure['reason']})."
                                                         if failure else ".") + " It is not gated.", color=MUTED)
        return
    summary: dict[str, Any] = job.evaluation["summary"]
    outcome = str(summary.get("outcome"))
    rows = [("Delivery gate", LABELS[Outcome(outcome)] if outcome in set(Outcome) else outcome)]
    rows += [("Reason", str(r)) for r in summary.get("reasons") or []]
    if override := job.delivery_override:
        rows.append(("Released by", f"{override['actor']} on {pdf.local(override['at'])}: {override['justification']}"))
    if ppl := summary.get("perplexity"):
        rows += [("Perplexity (base → adapter)", f"{ppl['baseline']:.1f} → {ppl['trained']:.1f} on"
                                                 f" {ppl['conversations']} held-out conversations"),
                 ("Perplexity improvement", f"{ppl['improvement_percent']:.1f}% ({ppl['badge']})")]
    pdf.facts(rows)
    for title, suite in ([("Knowledge retention", summary["knowledge"])] if summary.get("knowledge") else []) + [
            ("Domain probes", p) for p in summary.get("probes") or []]:
        pdf.subheading(f"{title}: {suite['suite']}")
        pdf.facts([("Baseline accuracy", f"{suite['baseline_accuracy']}% ({suite['baseline_correct']}/"
                                         f"{suite['questions']})"),
                   ("Trained accuracy", f"{suite['trained_accuracy']}% ({suite['trained_correct']}/"
                                        f"{suite['questions']})"),
                   ("Retention", f"{suite['retention_percent']}% ({suite['verdict']})"),
                   ("Questions that regressed", str(suite["regressed"]))])
        if categories := suite.get("categories"):
            pdf.ln(1)
            pdf.grid(("Category", "Retention", "Threshold", "Regressed"),
                     [(c["suite"] + (" (critical)" if c["critical"] else ""), f"{c['retention_percent']}%",
                       f"{c['threshold']}%", str(c["regressed"])) for c in categories], (84, 30, 30, 30))
