"""The evaluation stage's replies (FR6.2.1, FR6.4.1): both models answer each emotional-intelligence
scenario and each brand-voice prompt, greedy (do_sample=False) up to `max_new_tokens`, in batches with
left padding, under a fixed seed: the same adapter gives the same texts. The pod only generates; the
control plane scores (docs/quality-validation.md), so no judge key is ever needed here.

The scenario's system prompt is used as given; a brand-voice prompt has none (the voice should come
from the adapter, not from instructions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from domain.quality.generations import BRAND_VOICE, EI, Generated, Generations
from domain.quality.model import EiSuite, Rubric
from gpu_agent.baseline import baseline

Progress = Callable[[str, int, int], None]
PARTS = {EI: "ei replies", BRAND_VOICE: "brand voice replies"}


def generate_replies(model: Any, tokenizer: Any, ei: EiSuite | None, rubric: Rubric | None, max_new_tokens: int,
                     batch_size: int, seed: int, progress: Progress = lambda part, done, total: None) -> Generations:
    model.eval()
    ei_items: list[Generated] = []
    if ei is not None:
        chats = [_chat(s.system_prompt, s.prompt) for s in ei.scenarios]
        replies = _both(model, tokenizer, chats, max_new_tokens, batch_size, seed, PARTS[EI], progress)
        ei_items = [Generated(s.id, EI, s.prompt, base, tuned, s.system_prompt, s.category, s.difficulty, s.persona,
                              s.emotional_arc, s.topic, s.reference_notes)
                    for s, (base, tuned) in zip(ei.scenarios, replies, strict=True)]
    voice: list[Generated] = []
    if rubric is not None and rubric.prompts:
        chats = [_chat("", p.prompt) for p in rubric.prompts]
        replies = _both(model, tokenizer, chats, max_new_tokens, batch_size, seed, PARTS[BRAND_VOICE], progress)
        voice = [Generated(p.id, BRAND_VOICE, p.prompt, base, tuned, persona=p.persona or "", topic=p.topic or "")
                 for p, (base, tuned) in zip(rubric.prompts, replies, strict=True)]
    return Generations(max_new_tokens, ei.name if ei is not None else None, tuple(ei_items),
                       rubric if voice else None, tuple(voice))


def _chat(system: str, prompt: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def _both(model: Any, tokenizer: Any, chats: Sequence[list[dict[str, str]]], max_new_tokens: int, batch_size: int,
          seed: int, part: str, progress: Progress) -> list[tuple[str, str]]:
    """(baseline's, trained's) reply to each chat."""
    out: list[tuple[str, str]] = []
    for start in range(0, len(chats), batch_size):
        batch = chats[start:start + batch_size]
        tuned = generate(model, tokenizer, batch, max_new_tokens, seed)
        with baseline(model):
            base = generate(model, tokenizer, batch, max_new_tokens, seed)
        out.extend(zip(base, tuned, strict=True))
        progress(part, len(out), len(chats))
    return out


@torch.no_grad()
def generate(model: Any, tokenizer: Any, chats: Sequence[list[dict[str, str]]], max_new_tokens: int,
             seed: int) -> list[str]:
    """Greedy replies to a batch of chats (left-padded, so every reply starts at the same column)."""
    texts = [prompt_text(tokenizer, chat) for chat in chats]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    torch.manual_seed(seed)
    ids = encoded["input_ids"].to(model.device)
    mask = encoded["attention_mask"].to(model.device)
    output = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return [tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True).strip() for row in output]


def prompt_text(tokenizer: Any, chat: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
    return "\n".join(m["content"] for m in chat) + "\n"
