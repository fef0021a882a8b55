"""Bytes one LoRA/QLoRA training step holds on the GPU, part by part.

Sources: the QLoRA paper §3 (NF4, double quantization); what peft 0.21 (prepare_model_for_kbit_training, LoRA
layers), bitsandbytes 0.50 (MatMul4Bit) and transformers 5.24 (Llama layers, ForCausalLMLoss) keep for backward,
counted with saved-tensor hooks; Unsloth's published HF + FA2 context lengths for the whole. docs/gpu-memory.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from domain.gpu_memory.setup import TrainingSetup
from domain.gpu_memory.shapes import ModelShape

GB = 1024**3  # GiB: the unit of nvidia-smi and torch.cuda, and the one the H100's "80 GB" is counted in
DEFAULT_HEADROOM = 0.10  # of the card: allocator fragmentation, the nominal-vs-usable gap, this model's error
# 4-bit codes + an 8-bit absmax per 64 weights + an fp32 absmax per 256 of those (QLoRA §3, double quantization).
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
WEIGHT_BYTES = {"bf16": 2, "fp32": 4}
ADAPTER_BYTES = 4  # peft keeps adapters in fp32 (autocast_adapter_dtype; a 4-bit base has no float dtype to copy)
OPTIMIZER_STATE_BYTES = {"adamw_torch": 8, "paged_adamw_8bit": 2}  # exp_avg + exp_avg_sq per trainable weight
LOGIT_BYTES = 12  # per token × vocab: the loss's fp32 log-softmax, its gradient and the logits' gradient
OVERHEAD_BYTES = int(1.5 * GB)  # CUDA context, cuBLAS/bitsandbytes workspaces, allocator slack


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of one training step, by part; `total` is their sum."""

    base_weights: int
    lora_weights: int
    lora_gradients: int
    optimizer_state: int
    activations: int
    logits: int
    overhead: int

    @property
    def total(self) -> int:
        return sum(self.parts().values())

    @property
    def total_gb(self) -> float:
        return self.total / GB

    def parts(self) -> dict[str, int]:
        return {part.name: getattr(self, part.name) for part in fields(self)}

    def parts_gb(self) -> dict[str, float]:
        return {name: value / GB for name, value in self.parts().items()}

    def fits(self, gpu_memory_gb: float, headroom: float = DEFAULT_HEADROOM) -> bool:
        return self.total <= usable_bytes(gpu_memory_gb, headroom)


def usable_bytes(gpu_memory_gb: float, headroom: float = DEFAULT_HEADROOM) -> int:
    return int(gpu_memory_gb * GB * (1 - headroom))


def estimate(shape: ModelShape, **settings: Any) -> MemoryEstimate:
    """`estimate(LLAMA_3_70B, lora_rank=16, target_modules=[...], micro_batch=2, seq_len=2048, ...)`."""
    return estimate_setup(shape, TrainingSetup(**settings))


def estimate_setup(shape: ModelShape, setup: TrainingSetup) -> MemoryEstimate:
    """The peak of one optimizer step's forward and backward of `setup.micro_batch` rows."""
    trainable = lora_parameters(shape, setup)
    return MemoryEstimate(
        base_weights=base_weight_bytes(shape, setup), lora_weights=trainable * ADAPTER_BYTES,
        lora_gradients=trainable * ADAPTER_BYTES, optimizer_state=trainable * OPTIMIZER_STATE_BYTES[setup.optimizer],
        activations=activation_bytes(shape, setup), logits=setup.tokens * shape.vocab_size * LOGIT_BYTES,
        overhead=OVERHEAD_BYTES)


def base_weight_bytes(shape: ModelShape, setup: TrainingSetup) -> int:
    """nf4 quantizes the decoder's linear layers only; the rest stays bf16, or fp32 once upcast for k-bit training."""
    if setup.quantization != "nf4":
        return shape.parameters * WEIGHT_BYTES[setup.quantization]
    other = 4 if setup.upcast else 2
    return round(shape.linear_parameters * NF4_BYTES_PER_PARAM) + shape.other_parameters * other


def lora_parameters(shape: ModelShape, setup: TrainingSetup) -> int:
    """r × (in + out) per adapted linear layer: A is r × in, B is out × r."""
    return shape.num_layers * sum(setup.lora_rank * sum(shape.projection(m)) for m in setup.target_modules)


def activation_bytes(shape: ModelShape, setup: TrainingSetup) -> int:
    """Every layer's saved tensors, or with checkpointing each layer's input plus one layer recomputed in backward;
    and the gradients of the layer running backward."""
    layer, working = layer_bytes_per_token(shape, setup), backward_bytes_per_token(shape, setup)
    if not setup.gradient_checkpointing:
        return setup.tokens * (shape.num_layers * layer + working)
    checkpoints = shape.num_layers * shape.hidden_size * setup.activation_bytes
    return setup.tokens * (checkpoints + layer + working)


def layer_bytes_per_token(shape: ModelShape, setup: TrainingSetup) -> int:
    """What one decoder layer saves for backward, per token (counted with saved-tensor hooks: docs/gpu-memory.md)."""
    h, i, a = shape.hidden_size, shape.intermediate_size, setup.activation_bytes
    norms = 2 * 4 * h  # each RMSNorm keeps an fp32 copy of its input
    mlp = 3 * a * i  # gate, SiLU(gate) and up, kept by the SiLU and the product
    return norms + _attention_bytes(shape, setup) + mlp + _adapter_input_bytes(shape, setup)


def backward_bytes_per_token(shape: ModelShape, setup: TrainingSetup) -> int:
    """The gradients alive while one layer runs backward: the residual's and the MLP's two branches."""
    return setup.activation_bytes * (shape.hidden_size + 2 * shape.intermediate_size)


def _attention_bytes(shape: ModelShape, setup: TrainingSetup) -> int:
    h, a = shape.hidden_size, setup.activation_bytes
    if setup.attention == "flash_attention_2":
        # transformers casts q, k, v to bf16 for the kernel, which keeps K/V at their GQA width
        return 2 * (2 * h + 2 * shape.kv_size)
    kept = a * 4 * h  # q, k and v (repeated to every head once a padding mask is passed), the output
    if setup.attention == "eager":
        probabilities = 4 if a == 4 else 4 + 2  # fp32 softmax, plus its bf16 copy in a bf16 model
        kept += probabilities * shape.num_attention_heads * setup.seq_len
    return kept


# Adapters that read the same tensor: q/k/v read the attention norm's output, gate/up the MLP norm's.
_INPUT_GROUPS = (("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",))


def _adapter_input_bytes(shape: ModelShape, setup: TrainingSetup) -> int:
    """lora_A keeps its fp32 input; lora_B keeps lora_A's r-wide output."""
    total = 4 * setup.lora_rank * len(setup.target_modules)
    for group in _INPUT_GROUPS:
        adapted = [module for module in group if module in setup.target_modules]
        if not adapted:
            continue
        width = shape.projection(adapted[0])[0]
        if setup.lora_dropout > 0:
            total += len(adapted) * 5 * width  # each adapter's own fp32 dropout output and its bool mask (CUDA)
        elif setup.activation_bytes == 2:
            total += len(adapted) * 4 * width  # each adapter casts the bf16 input to its own fp32 copy
        else:
            total += 4 * width  # already fp32: the adapters share the tensor
    return total
