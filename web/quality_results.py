"""A job's item-level evaluation results and its suites' question texts, read from the object store
by digest (the events carry only the reference and the summary): what the Quality tab's tables and
the CSV exports are computed from. Objects never change under a digest, so each is kept once per
process (a small LRU)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path
from typing import Any

from litestar.datastructures import State

from domain.quality import SuiteFormatError, load_knowledge_suite
from domain.quality.model import KnowledgeSuite
from domain.quality.results import EvaluationResults, ResultsFormatError, parse
from domain.values import ArtifactRef
from handlers.evaluation import fetch_bytes
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError

KEEP = 32
_RESULTS: OrderedDict[str, EvaluationResults] = OrderedDict()
_SUITES: OrderedDict[str, KnowledgeSuite] = OrderedDict()


class ResultsUnavailableError(LookupError):
    """The results object is gone or damaged: the summary is all there is."""


def _kept(cache: OrderedDict[str, Any], key: str, value: Any) -> Any:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > KEEP:
        cache.popitem(last=False)
    return value


async def item_results(state: State, evaluation: dict[str, Any]) -> EvaluationResults:
    """The results an Evaluated event references (the jobs row's `evaluation`)."""
    ref = ArtifactRef(**evaluation["results"])
    if (found := _RESULTS.get(ref.sha256)) is not None:
        return found
    try:
        data = await fetch_bytes(state.objects, ref)
        results = await asyncio.to_thread(parse, data)
    except (ArtifactMissingError, ArtifactCorruptError, ResultsFormatError) as exc:
        raise ResultsUnavailableError(f"The item-level results {ref.name} cannot be read: {exc}") from None
    return _kept(_RESULTS, ref.sha256, results)


async def suite_questions(state: State, suite: dict[str, Any]) -> dict[str, str]:
    """Question id → text of a catalogued suite (a `probe_suites` row); empty when unreadable."""
    ref = ArtifactRef(**suite["file"])
    parsed = _SUITES.get(ref.sha256)
    if parsed is None:
        try:
            data = await fetch_bytes(state.objects, ref)
            parsed = _kept(_SUITES, ref.sha256, await asyncio.to_thread(load_knowledge_suite, data,
                                                                        Path(ref.name).name))
        except (ArtifactMissingError, ArtifactCorruptError, SuiteFormatError):
            return {}
    return {q.id: q.question for q in parsed.questions}
