"""The evaluation stage (FR6.1, FR6.3): on the pod, after training, while the base model is still
loaded — the trained model is the base with the adapter, the baseline the same model with the
adapter disabled (peft), so nothing is downloaded twice. Deterministic (eval mode, no sampling),
so a resumed or re-run evaluation gives the same figures.

Scoring rules, the field's (EleutherAI's lm-evaluation-harness uses the same; docs/quality-validation.md
says why we do not run the harness itself):
- perplexity: each held-out conversation's summed loss over the tokens the trainer scores (its labels),
  per model;
- multiple choice: the answer is the letter whose continuation has the highest log-likelihood after
  the question and its choices under the chat template."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import torch

from domain.quality.model import LETTERS, EiSuite, KnowledgeSuite, Question, Rubric
from domain.quality.perplexity import Sample
from domain.quality.results import EvaluationResults, SuiteAnswers
from domain.quality.retention import Answer
from domain.training_file import TrainingFile
from gpu_agent.baseline import baseline
from gpu_agent.generation import generate_replies

Progress = Callable[[str, int, int], None]  # (part, done, total)
INSTRUCTION = "Answer with the letter of the correct choice only."


def evaluate(model: Any, tokenizer: Any, training_file: TrainingFile, validation: Sequence[tuple[str, dict]],
             train_conversations: Iterable[str], knowledge: KnowledgeSuite | None, probes: Sequence[KnowledgeSuite],
             job_id: str, attempt: int, progress: Progress = lambda part, done, total: None, *,
             ei: EiSuite | None = None, rubric: Rubric | None = None, held_out: TrainingFile | None = None,
             max_new_tokens: int = 256, batch_size: int = 8, seed: int = 42) -> EvaluationResults:
    """`validation`: (conversation id, tokenized example with input_ids and, if the trainer masks,
    labels) pairs of the held-out split; `train_conversations`: the training split's ids (coverage);
    `ei`, `rubric`: the scenarios and brand-voice prompts both models reply to (gpu_agent/generation.py);
    `held_out`: the validation file the held-out examples come from (None: the training file)."""
    model.eval()
    conversations = {c.id: c for c in training_file.conversations}
    trained = losses(model, [item for _, item in validation], lambda n: progress("perplexity", n, len(validation)))
    with baseline(model):
        base = losses(model, [item for _, item in validation], lambda n: None)
    validated = conversations if held_out is None else {c.id: c for c in held_out.conversations}
    samples = perplexity_samples(validation, trained, base, validated)
    coverage: dict[tuple[str, str], int] = {}
    for conversation_id in set(train_conversations):
        c = conversations[conversation_id]
        coverage[(c.persona, c.emotional_arc)] = coverage.get((c.persona, c.emotional_arc), 0) + 1
    suites = [s for s in (knowledge, *probes) if s is not None]
    answered = [answers(model, tokenizer, suite, progress) for suite in suites]
    generations = None
    if ei is not None or (rubric is not None and rubric.prompts):
        generations = generate_replies(model, tokenizer, ei, rubric, max_new_tokens, batch_size, seed, progress)
    return EvaluationResults(job_id, attempt, samples=tuple(samples), coverage=coverage,
                             knowledge=answered[0] if knowledge is not None else None,
                             probes=tuple(answered[1:] if knowledge is not None else answered),
                             generations=generations)


@torch.no_grad()
def losses(model: Any, items: Sequence[Mapping[str, list[int]]], done: Callable[[int], None]
           ) -> list[tuple[int, float]]:
    """Each item's (scored tokens, summed negative log-likelihood in nats), one forward pass each."""
    out = []
    for n, item in enumerate(items, 1):
        ids = torch.tensor([item["input_ids"]], device=model.device)
        labels = torch.tensor([item.get("labels", item["input_ids"])], device=model.device)
        logits = model(input_ids=ids).logits[:, :-1].float()
        target = labels[:, 1:]
        scored = target != -100
        nll = torch.nn.functional.cross_entropy(logits[scored], target[scored], reduction="sum")
        out.append((int(scored.sum()), float(nll)))
        done(n)
    return out


def perplexity_samples(validation: Sequence[tuple[str, dict]], trained: Sequence[tuple[int, float]],
                       base: Sequence[tuple[int, float]], conversations: Mapping[str, Any]) -> list[Sample]:
    """The pairs' losses summed per conversation, with its persona, arc and topic."""
    sums: dict[str, list[float]] = {}
    for (conversation_id, _), (tokens, tuned), (_, untuned) in zip(validation, trained, base, strict=True):
        total = sums.setdefault(conversation_id, [0, 0.0, 0.0])
        total[0] += tokens
        total[1] += untuned
        total[2] += tuned
    return [Sample(cid, conversations[cid].persona, conversations[cid].emotional_arc, conversations[cid].topic,
                   int(tokens), untuned, tuned)
            for cid, (tokens, untuned, tuned) in sorted(sums.items()) if tokens > 0]


def answers(model: Any, tokenizer: Any, suite: KnowledgeSuite, progress: Progress) -> SuiteAnswers:
    found = []
    for n, question in enumerate(suite.questions, 1):
        trained = choose(model, tokenizer, question)
        with baseline(model):
            untuned = choose(model, tokenizer, question)
        found.append(Answer(question.id, question.category, question.difficulty, question.answer, untuned, trained,
                            question.critical))
        progress(suite.name, n, len(suite.questions))
    return SuiteAnswers(suite.name, tuple(found), {k: Decimal(v) for k, v in suite.critical_categories.items()})


def prompt(tokenizer: Any, question: Question) -> str:
    choices = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, question.choices, strict=True))
    messages = [{"role": "user", "content": f"{question.question}\n{choices}\n{INSTRUCTION}"}]
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return f"{messages[0]['content']}\nAnswer:"


@torch.no_grad()
def choose(model: Any, tokenizer: Any, question: Question) -> str:
    """The letter with the highest log-likelihood as the answer's continuation (ties: the first)."""
    context = tokenizer(prompt(tokenizer, question), add_special_tokens=False)["input_ids"]
    scores = []
    for letter in LETTERS:
        continuation = tokenizer(letter, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + continuation], device=model.device)
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        positions = range(len(context) - 1, len(context) - 1 + len(continuation))
        scores.append(sum(float(logprobs[p, token]) for p, token in zip(positions, continuation, strict=True)))
    return LETTERS[max(range(len(LETTERS)), key=lambda i: (scores[i], -i))]
