"""The training report's validation section (FR6.1.1 "Export perplexity data with validation report",
FR6.3.1 "Include retention test results in validation report", FR6.2.1 "Include EI validation in
training completion report", FR6.2.2 "Include regression analysis in validation report", FR6.4.1
"Include voice consistency report in validation PDF"): the delivery gate's outcome and reasons, a
manager's release, perplexity with its badge, knowledge retention and each probe suite by category,
and the scored replies of each source, from the summary the job's Evaluated / Judged events carry."""

from __future__ import annotations

from typing import Any

from domain.quality.gate import LABELS, Outcome
from web.pdf_base import MUTED, BrandedPdf


def validation(pdf: BrandedPdf, job: Any) -> None:
    pdf.section("Validation")
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
    judged(pdf, summary, job)


def judged(pdf: BrandedPdf, summary: dict[str, Any], job: Any) -> None:
    """FR6.2.1, FR6.2.2, FR6.4.1: each complete source's EI benchmark, regressions and brand voice."""
    generated = summary.get("generations")
    if not generated:
        return
    sources = summary.get("judged") or []
    if not sources:
        pdf.subheading("Emotional intelligence and brand voice")
        pdf.paragraph("The generated replies are not scored yet (a model judge or reviewers score them on the"
                      " Quality tab).", color=MUTED)
        return
    for source in sources:
        if ei := source.get("ei"):
            pdf.subheading(f"Emotional intelligence — {source['label']}")
            rows = [("Overall", ei["headline"]), ("Badge", ei["badge"])]
            rows += [(f"{c['name']} subscore", f"{c['baseline']} → {c['trained']} ({c['improvement_percent']}%"
                                               " improvement)") for c in ei["subscores"]]
            rows.append(("Scored", f"{ei['scored']} of {ei['scenarios']} scenarios"))
            pdf.facts(rows)
        if found := source.get("regressions"):
            rows = [("Regressions", found["headline"])]
            rows += [("Blocks delivery", b) for b in found["blocks"]]
            rows += [("Warning", found["warning"])] if found["warning"] else []
            rows += [("Pattern", p) for p in found["patterns"]]
            rows += [("Corrective action", a) for a in found["corrective_actions"]]
            pdf.facts(rows)
            if found["list"]:
                pdf.ln(1)
                pdf.grid(("Scenario", "Persona", "Baseline → trained", "Severity"),
                         [(f"#{r['number']} {r['id']}", r["persona"], f"{r['baseline']} → {r['trained']}"
                           f" (-{r['decrease_percent']}%)", r["severity"]) for r in found["list"][:20]],
                         (40, 54, 50, 30))
        if brand := source.get("brand_voice"):
            pdf.subheading(f"Brand voice: {brand['rubric']} — {source['label']}")
            pdf.facts([("Voice consistency", brand["headline"]), ("Badge", brand["badge"]),
                       *(("Flagged", f) for f in brand["flagged"])])
            pdf.ln(1)
            pdf.grid(("Characteristic", "Baseline", "Trained", ""),
                     [(c["name"], c["baseline"], f"{c['trained']}/5", c["word"]) for c in brand["characteristics"]],
                     (84, 25, 25, 40))
    if getattr(job, "judging_cost", 0):
        pdf.paragraph(f"Judging cost (the model judge's tokens, charged to this job): ${job.judging_cost:.4f}",
                      color=MUTED)
