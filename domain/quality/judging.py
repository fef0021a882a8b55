"""What a model judge is asked and what it must answer (docs/quality-validation.md, "The model judge"):
one chat-completions request per item, both replies in it, labelled A and B in the item's recorded
blind order; a strict JSON schema per rubric (every characteristic a whole number 1-5 for each reply,
and a reason); the answer checked here, so a malformed one is never taken for a score. Pure: the
HTTP client is handlers/judge_client.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.quality.generations import EI, Generated
from domain.quality.model import Characteristic
from domain.quality.scores import SCORES, check_scores

SYSTEM = ("You are an impartial evaluator of replies a financial advisor wrote to a client. Score each reply on "
          "its own, from 1 (worst) to 5 (best), on every characteristic listed, using the descriptions of the "
          "levels. The two replies are labelled A and B in a random order: their order and their length say "
          "nothing about their quality. Answer only with a JSON object that follows the given schema, with a "
          "one- or two-sentence reason.")
REASON_MAX = 1000
PER_MILLION = Decimal(1_000_000)


class MalformedJudgementError(ValueError):
    """The judge's answer is not the JSON the schema asks for (not JSON, a missing or out-of-range score)."""


@dataclass(frozen=True)
class Judgement:
    first: dict[str, int]   # reply A's scores
    second: dict[str, int]  # reply B's scores
    reason: str


def messages(part: str, item: Generated, characteristics: Sequence[Characteristic], rubric_name: str,
             first: str, second: str) -> list[dict[str, str]]:
    lines = [f"Rubric: {rubric_name}", "", "The client's situation:"]
    if item.system_prompt:
        lines.append(f"- The advisor's instructions: {item.system_prompt}")
    for label, value in (("Persona", item.persona), ("Emotional arc", item.emotional_arc), ("Topic", item.topic)):
        if value:
            lines.append(f"- {label}: {value}")
    lines += ["", "The client's message:", item.prompt]
    if part == EI and item.reference_notes:
        lines += ["", "What a good reply does:", item.reference_notes]
    lines += ["", "Characteristics (score each reply 1-5 on each):"]
    for c in characteristics:
        levels = "; ".join(f"{level} = {text}" for level, text in sorted(c.scoring.items()))
        lines.append(f"- {c.id}: {c.name} ({c.description}). Levels: {levels}")
    lines += ["", "Reply A:", first or "(empty reply)", "", "Reply B:", second or "(empty reply)"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def schema_name(part: str) -> str:
    return "ei_scores" if part == EI else "brand_voice_scores"


def response_schema(characteristics: Sequence[Characteristic]) -> dict[str, Any]:
    """A strict JSON schema (OpenAI structured outputs: every property required, no others; scores as an
    enum, which strict mode accepts where minimum/maximum may not be)."""
    ids = [c.id for c in characteristics]
    reply = {"type": "object", "additionalProperties": False, "required": ids,
             "properties": {i: {"type": "integer", "enum": list(SCORES)} for i in ids}}
    return {"type": "object", "additionalProperties": False, "required": ["reply_a", "reply_b", "reason"],
            "properties": {"reply_a": reply, "reply_b": reply, "reason": {"type": "string"}}}


def response_format(part: str, characteristics: Sequence[Characteristic]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": schema_name(part), "strict": True,
                                                   "schema": response_schema(characteristics)}}


def read_judgement(content: str | None, characteristics: Sequence[Characteristic]) -> Judgement:
    """The judge's message content as scores; raises MalformedJudgementError saying what is wrong."""
    if not content or not content.strip():
        raise MalformedJudgementError("the answer is empty")
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise MalformedJudgementError(f"the answer is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise MalformedJudgementError("the answer is not a JSON object")
    ids = [c.id for c in characteristics]
    replies = []
    for key in ("reply_a", "reply_b"):
        scores = body.get(key)
        if not isinstance(scores, dict):
            raise MalformedJudgementError(f"'{key}' is missing or not an object")
        try:
            replies.append(check_scores(scores, ids, key))
        except ValueError as exc:
            raise MalformedJudgementError(str(exc)) from None
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise MalformedJudgementError("'reason' is missing or not a string")
    return Judgement(replies[0], replies[1], " ".join(reason.split())[:REASON_MAX])


def judging_cost(prompt_tokens: int, completion_tokens: int, input_per_million: Decimal,
                 output_per_million: Decimal) -> Decimal:
    """Tokens × the configured prices (USD per million tokens), exact."""
    return (Decimal(prompt_tokens) * input_per_million + Decimal(completion_tokens) * output_per_million) / PER_MILLION
