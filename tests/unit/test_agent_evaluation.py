"""The evaluation stage's scorer on a real tiny Llama with a LoRA adapter (CPU): multiple choice by
log-likelihood, per-conversation losses, baseline through the disabled adapter, deterministic."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from domain.quality import load_knowledge_suite  # noqa: E402
from domain.quality.results import parse  # noqa: E402
from gpu_agent.config import JobSpec  # noqa: E402
from gpu_agent.data import examples, split  # noqa: E402
from gpu_agent.evaluation import choose, evaluate, losses, prompt  # noqa: E402
from gpu_agent.model import build_tokenizer  # noqa: E402
from tests.agent_helpers import small_training_file  # noqa: E402

SUITE = b"\n".join([
    b'{"id": "q1", "category": "taxes", "difficulty": "basic", "question": "What is a W-2?",'
    b' "choices": {"A": "A wage statement", "B": "A loan", "C": "A stock", "D": "A bond"}, "answer": "A"}',
    b'{"id": "q2", "category": "compliance", "question": "Who regulates broker-dealers?",'
    b' "choices": {"A": "NASA", "B": "FINRA", "C": "NOAA", "D": "FIFA"}, "answer": "B", "critical": true}'])


@pytest.fixture(scope="module")
def tiny():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    training_file, items = examples(small_training_file(10))
    tokenizer = build_tokenizer(JobSpec(training_file=None, hyperparameters={}),  # type: ignore[arg-type]
                                [m["content"] for e in items for m in e.messages])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                         pad_token_id=tokenizer.pad_token_id)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                task_type="CAUSAL_LM"))
    with torch.no_grad():  # a "trained" adapter: lora_B is zero at init, which would equal the base
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return training_file, items, tokenizer, model


def tokenized(tokenizer, examples_):
    return [(e.conversation_id, {"input_ids": tokenizer.apply_chat_template(e.messages, tokenize=True,
                                                                            return_dict=False)})
            for e in examples_]


def test_a_choice_is_the_letter_with_the_highest_continuation_log_likelihood(tiny) -> None:
    _, _, tokenizer, model = tiny
    suite = load_knowledge_suite(SUITE, "probes.jsonl")
    for question in suite.questions:
        context = tokenizer(prompt(tokenizer, question), add_special_tokens=False)["input_ids"]
        scores = {}
        for letter in "ABCD":  # brute force: the summed log-probability of the letter's tokens
            ids = context + tokenizer(letter, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
            scores[letter] = sum(float(logprobs[i - 1, ids[i]]) for i in range(len(context), len(ids)))
        assert choose(model, tokenizer, question) == max(scores, key=lambda k: (scores[k], -ord(k)))


def test_losses_score_only_the_labelled_tokens(tiny) -> None:
    _, items, tokenizer, model = tiny
    ids = tokenizer.apply_chat_template(items[0].messages, tokenize=True, return_dict=False)
    labels = [-100] * (len(ids) // 2) + ids[len(ids) // 2:]
    ((all_tokens, all_nll),) = losses(model, [{"input_ids": ids}], lambda n: None)
    ((some_tokens, some_nll),) = losses(model, [{"input_ids": ids, "labels": labels}], lambda n: None)
    assert all_tokens == len(ids) - 1 and some_tokens == len(ids) - len(ids) // 2
    assert 0 < some_nll < all_nll


def test_the_evaluation_is_deterministic_and_the_baseline_is_the_disabled_adapter(tiny) -> None:
    training_file, items, tokenizer, model = tiny
    halves = split(items)
    suite = load_knowledge_suite(SUITE, "probes.jsonl")
    run = lambda: evaluate(model, tokenizer, training_file, tokenized(tokenizer, halves.validation),  # noqa: E731
                           [e.conversation_id for e in halves.train], None, [suite], "job-1", 1)
    first, second = run(), run()
    assert first.to_json() == second.to_json() and parse(first.to_json()) == first
    assert {s.id for s in first.samples} == {e.conversation_id for e in halves.validation}
    assert all(s.baseline_nll != s.trained_nll for s in first.samples)  # the adapter changes the model
    ppl = first.perplexity()
    assert ppl is not None and math.isfinite(ppl.baseline) and ppl.conversations == len(first.samples)
    assert sum(first.coverage.values()) == len({e.conversation_id for e in halves.train})
    assert first.knowledge is None and [p.suite for p in first.probes] == ["probes.jsonl"]
    with model.disable_adapter():
        assert [choose(model, tokenizer, q) for q in suite.questions] == [a.baseline for a in first.probes[0].answers]
