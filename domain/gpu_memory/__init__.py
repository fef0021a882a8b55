"""GPU memory of LoRA/QLoRA training on one GPU: Llama shapes, a per-part estimate, the agent's plan, pre-flight.

Pure arithmetic (no torch), shared by the control plane's pre-flight check and the GPU agent's memory guard.
What is counted, the formulas and their sources: docs/gpu-memory.md.
"""

from domain.gpu_memory.estimate import (
    DEFAULT_HEADROOM,
    GB,
    MemoryEstimate,
    estimate,
    estimate_setup,
    usable_bytes,
)
from domain.gpu_memory.job_check import InsufficientGpuMemoryError, MemoryCheck
from domain.gpu_memory.plan import MemoryPlan, Verdict, largest_fitting_seq_len, plan
from domain.gpu_memory.preflight import Preflight, preflight
from domain.gpu_memory.setup import TrainingSetup, UnsupportedSettingError
from domain.gpu_memory.shapes import (
    LLAMA_3_8B,
    LLAMA_3_70B,
    ModelShape,
    ModelShapeError,
    UnknownModelError,
    shape_for_model,
)

__all__ = [
    "DEFAULT_HEADROOM", "GB", "LLAMA_3_8B", "LLAMA_3_70B", "InsufficientGpuMemoryError", "MemoryCheck",
    "MemoryEstimate", "MemoryPlan", "ModelShape",
    "ModelShapeError", "Preflight", "TrainingSetup", "UnknownModelError", "UnsupportedSettingError", "Verdict",
    "estimate", "estimate_setup", "largest_fitting_seq_len", "plan", "preflight", "shape_for_model", "usable_bytes",
]
