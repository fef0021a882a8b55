"""Llama decoder shapes: the published Llama-3 configs, lookup by hub id, and a shape from a config.json dict."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
PROJECTIONS = ATTENTION_PROJECTIONS + MLP_PROJECTIONS


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide a Llama decoder's memory (GQA attention, SwiGLU MLP, RMSNorm)."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    tie_word_embeddings: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """From a transformers config: the keys of config.json, or `PretrainedConfig.to_dict()`."""
        try:
            heads = int(config["num_attention_heads"])
            return cls(hidden_size=int(config["hidden_size"]), intermediate_size=int(config["intermediate_size"]),
                       num_layers=int(config["num_hidden_layers"]), num_attention_heads=heads,
                       num_key_value_heads=int(config.get("num_key_value_heads") or heads),
                       vocab_size=int(config["vocab_size"]),
                       tie_word_embeddings=bool(config.get("tie_word_embeddings", False)))
        except KeyError as missing:
            raise ModelShapeError(f"model config has no {missing.args[0]!r}") from None

    @property
    def kv_size(self) -> int:
        """Width of the key and value projections: GQA shares each key/value head among several query heads."""
        return self.num_key_value_heads * (self.hidden_size // self.num_attention_heads)

    def projection(self, module: str) -> tuple[int, int]:
        """(in, out) features of one decoder linear layer, named as peft's `target_modules` name it."""
        h, kv, i = self.hidden_size, self.kv_size, self.intermediate_size
        sizes = {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                 "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}
        try:
            return sizes[module]
        except KeyError:
            raise ModelShapeError(f"unknown target module {module!r}; expected some of {list(PROJECTIONS)}") from None

    @property
    def linear_parameters(self) -> int:
        """The decoder layers' linear weights: what bitsandbytes quantizes."""
        return self.num_layers * sum(fan_in * fan_out for fan_in, fan_out in map(self.projection, PROJECTIONS))

    @property
    def other_parameters(self) -> int:
        """Embeddings, lm_head (unless tied) and the RMSNorm weights: bitsandbytes leaves them unquantized."""
        tables = 1 if self.tie_word_embeddings else 2
        return tables * self.vocab_size * self.hidden_size + (2 * self.num_layers + 1) * self.hidden_size

    @property
    def parameters(self) -> int:
        return self.linear_parameters + self.other_parameters


# meta-llama's config.json; Llama-3.1 and 3.3 keep these shapes (only RoPE scaling and context length change).
LLAMA_3_8B = ModelShape(hidden_size=4096, intermediate_size=14336, num_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256)
LLAMA_3_70B = ModelShape(hidden_size=8192, intermediate_size=28672, num_layers=80, num_attention_heads=64,
                         num_key_value_heads=8, vocab_size=128256)
_PUBLISHED = {"8": LLAMA_3_8B, "70": LLAMA_3_70B}
# "meta-llama/Meta-Llama-3-70B-Instruct", "meta-llama/Llama-3.1-8B", "unsloth/llama-3-70b-bnb-4bit", "Llama3-8B"...
_LLAMA_3 = re.compile(r"llama-?3(?:\.[13])?-(8|70)b(?![0-9])", re.IGNORECASE)


def shape_for_model(model_id: str) -> ModelShape:
    """The published shape for a Llama-3 8B/70B hub id (any variant: Instruct, 3.1, 3.3, re-quantized uploads)."""
    found = _LLAMA_3.search(model_id)
    if found is None:
        raise UnknownModelError(f"no published shape for {model_id!r}; build one with ModelShape.from_config()")
    return _PUBLISHED[found.group(1)]


class ModelShapeError(ValueError):
    pass


class UnknownModelError(LookupError):
    pass
