"""The base model, on the pod: the loaded model with its adapter disabled (peft), as the evaluation
(gpu_agent/evaluation.py) and the replies (gpu_agent/generation.py) both measure it, so nothing is
downloaded twice. A model without an adapter is its own base."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any


def baseline(model: Any) -> AbstractContextManager[Any]:
    disable = getattr(model, "disable_adapter", None)
    return disable() if disable is not None else nullcontext()
