"""The pod's environment, the contract between the provisioner that launches a pod and the GPU
agent inside it: JSON values travel base64-encoded, so user text never reaches a shell raw."""

from __future__ import annotations

import base64
import json
from typing import Any


class PodEnvError(ValueError):
    """A value of the pod's environment cannot be decoded; the message is one line."""


def encode_json(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_json(value: str, name: str) -> Any:
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (ValueError, TypeError) as exc:
        raise PodEnvError(f"{name} is not base64-encoded JSON ({exc})") from None
