"""Model loading: the base model (a tiny Llama built from a config for CPU and tests, or a hub id on
CUDA: bf16, FlashAttention-2 or SDPA, the whole model on the GPU), 4-bit NF4 + double quantisation when the job
asks for QLoRA, LoRA adapters via peft on the preset's target modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from gpu_agent.config import JobSpec
from gpu_agent.settings import CPU, model_load_values

TINY = "tiny"
SPECIAL = ["<|pad|>", "<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def build_tokenizer(spec: JobSpec, texts: list[str]) -> PreTrainedTokenizerFast:
    """The tiny model's byte-level BPE is trained on the training file itself: deterministic, so a
    resumed run rebuilds exactly the same tokenizer."""
    if spec.base_model != TINY:
        tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=512, min_frequency=2, special_tokens=SPECIAL,
                                                      show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<|pad|>", bos_token="<|begin|>",
                                        eos_token="<|end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def quantization(spec: JobSpec, device: str = CPU) -> BitsAndBytesConfig | None:
    return model_load_values(spec, device, "sdpa").get("quantization_config")


def model_config(spec: JobSpec, tokenizer: PreTrainedTokenizerFast, attention: str = "sdpa") -> PretrainedConfig:
    """The base model's config before its weights load: the memory guard plans with it."""
    if spec.base_model != TINY:
        return AutoConfig.from_pretrained(spec.base_model)
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, attn_implementation=attention)


def base_model(spec: JobSpec, tokenizer: PreTrainedTokenizerFast, work_dir: Path, device: str = CPU,
               attention: str = "sdpa") -> Any:
    """A hub model (or a local directory) as gpu_agent/settings.py says for the device; the tiny one built from
    its config, on the CPU in fp32."""
    torch.manual_seed(spec.seed)
    if spec.base_model != TINY:
        return AutoModelForCausalLM.from_pretrained(spec.base_model, **model_load_values(spec, device, attention))
    model = LlamaForCausalLM(model_config(spec, tokenizer, attention))
    saved = tiny_base_dir(work_dir)  # shipped beside the adapter (it has no hub id); and bitsandbytes
    model.save_pretrained(saved)     # quantizes while loading, so QLoRA goes through this copy
    if not spec.qlora:
        return model
    return AutoModelForCausalLM.from_pretrained(saved, quantization_config=quantization(spec),
                                                device_map={"": "cpu"})


def tiny_base_dir(work_dir: Path) -> Path:
    return work_dir / "tiny-base"


def with_adapters(model: Any, spec: JobSpec) -> PeftModel:
    hyper = spec.hyperparameters
    if spec.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = LoraConfig(r=int(hyper["r"]), lora_alpha=int(hyper["lora_alpha"]), lora_dropout=float(hyper["lora_dropout"]),
                      target_modules=list(hyper["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)
