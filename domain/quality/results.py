"""The evaluation's item-level results: what the GPU agent writes to the job's bucket after training
(one JSON object, referenced by digest from the job's events) and the control plane reads back to
compute every figure and the gate's verdict itself (docs/quality-validation.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.quality.gate import ProbeResult, Verdict, judge
from domain.quality.generations import Generations
from domain.quality.judged import gate_findings, source_summary
from domain.quality.perplexity import Perplexity, Sample, perplexity
from domain.quality.problems import SuiteFormatError
from domain.quality.retention import Answer, Retention, by_category, retention
from domain.quality.scores import SourceScores

# 2 adds `generations` (the replies to score, FR6.2.1 / FR6.4.1); version 1 objects (no replies) still read.
RESULTS_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(frozen=True)
class SuiteAnswers:
    suite: str
    answers: tuple[Answer, ...]
    critical_categories: Mapping[str, Decimal] = field(default_factory=dict)

    def retention(self) -> Retention:
        return retention(self.suite, self.answers)

    def probe(self) -> ProbeResult:
        return ProbeResult(self.suite, self.retention(), by_category(self.answers, self.critical_categories))


@dataclass(frozen=True)
class EvaluationResults:
    job_id: str
    attempt: int
    samples: tuple[Sample, ...] = ()
    coverage: Mapping[tuple[str, str], int] = field(default_factory=dict)  # training conversations per pair
    knowledge: SuiteAnswers | None = None
    probes: tuple[SuiteAnswers, ...] = ()
    generations: Generations | None = None

    def perplexity(self) -> Perplexity | None:
        return perplexity(self.samples) if self.samples else None

    def verdict(self, sources: Sequence[SourceScores] = ()) -> Verdict:
        """The gate's outcome; `sources`: scores of the generated replies (the model judge's, people's)."""
        found, pending = gate_findings(self.generations, sources)
        return judge(self.perplexity(), self.knowledge.retention() if self.knowledge else None,
                     [p.probe() for p in self.probes], found, pending)

    def to_json(self) -> bytes:
        body = {"format_version": RESULTS_VERSION, "job_id": self.job_id, "attempt": self.attempt,
                "perplexity": {"samples": [asdict(s) for s in self.samples],
                               "coverage": [{"persona": p, "emotional_arc": a, "conversations": n}
                                            for (p, a), n in sorted(self.coverage.items())]},
                "knowledge": _suite_json(self.knowledge) if self.knowledge else None,
                "probes": [_suite_json(p) for p in self.probes],
                "generations": self.generations.to_dict() if self.generations else None}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _suite_json(suite: SuiteAnswers) -> dict[str, Any]:
    return {"suite": suite.suite, "answers": [asdict(a) for a in suite.answers],
            "critical_categories": {k: str(v) for k, v in suite.critical_categories.items()}}


class ResultsFormatError(ValueError):
    """The results object is not what the agent writes (truncated, another version, forged)."""


def parse(data: bytes) -> EvaluationResults:
    try:
        body = json.loads(data)
        if body.get("format_version") not in READABLE_VERSIONS:
            raise ResultsFormatError(f"evaluation results version {body.get('format_version')!r} is not one of "
                                     f"{', '.join(map(str, READABLE_VERSIONS))}")
        ppl = body.get("perplexity") or {}
        return EvaluationResults(
            job_id=str(body["job_id"]), attempt=int(body["attempt"]),
            samples=tuple(Sample(**s) for s in ppl.get("samples", [])),
            coverage={(c["persona"], c["emotional_arc"]): int(c["conversations"]) for c in ppl.get("coverage", [])},
            knowledge=_suite(body["knowledge"]) if body.get("knowledge") else None,
            probes=tuple(_suite(p) for p in body.get("probes", [])),
            generations=Generations.from_dict(body["generations"]) if body.get("generations") else None)
    except ResultsFormatError:
        raise
    except SuiteFormatError as exc:
        raise ResultsFormatError(f"evaluation results carry a malformed rubric: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
        raise ResultsFormatError(f"evaluation results are malformed: {exc}") from None


def _suite(body: dict[str, Any]) -> SuiteAnswers:
    return SuiteAnswers(str(body["suite"]), tuple(Answer(**a) for a in body["answers"]),
                        {k: Decimal(v) for k, v in (body.get("critical_categories") or {}).items()})


def summary(results: EvaluationResults, sources: Sequence[SourceScores] = ()) -> dict[str, Any]:
    """The figures a job's Evaluated event carries (JSON-safe), and a Judged event with the scores of the
    generated replies (`sources`): what every page, export, PDF and notification shows, so none of them
    recomputes or re-rounds differently."""
    verdict = results.verdict(sources)
    ppl = results.perplexity()
    out: dict[str, Any] = {"outcome": verdict.outcome.value, "reasons": list(verdict.reasons),
                           "notes": list(verdict.notes), "perplexity": None, "knowledge": None, "probes": []}
    if (generated := results.generations) is not None and generated.parts:
        out["generations"] = {
            "max_new_tokens": generated.max_new_tokens,
            "ei": {"suite": generated.ei_suite, "scenarios": len(generated.ei)} if generated.ei else None,
            "brand_voice": {"rubric": generated.rubric.name, "responses": len(generated.brand_voice),
                            "characteristics": len(generated.rubric.characteristics)}
            if generated.rubric is not None and generated.brand_voice else None}
        out["judged"] = [source_summary(generated, s) for s in sources]
    if ppl is not None:
        out["perplexity"] = {"baseline": round(ppl.baseline, 4), "trained": round(ppl.trained, 4),
                             "improvement_percent": round(ppl.improvement_percent, 2), "badge": ppl.badge,
                             "conversations": ppl.conversations, "tokens": ppl.tokens}
    if results.knowledge is not None:
        out["knowledge"] = retention_summary(results.knowledge.retention())
    out["probes"] = [retention_summary(p.retention()) | {"categories": [
        retention_summary(c) | {"threshold": str(c.threshold), "critical": c.critical} for c in p.probe().categories]}
        for p in results.probes]
    return out


def retention_summary(r: Retention) -> dict[str, Any]:
    return {"suite": r.name, "questions": r.questions, "baseline_correct": r.baseline_correct,
            "trained_correct": r.trained_correct, "baseline_accuracy": str(r.baseline_accuracy),
            "trained_accuracy": str(r.trained_accuracy), "retention_percent": str(r.percent),
            "verdict": r.verdict, "regressed": len(r.regressed)}
