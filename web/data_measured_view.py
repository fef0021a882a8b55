"""Issue #17: what the pod measured of the training data (TrainingJob.DataMeasured), as rows of the job page's
metrics table: the sequence length it trained with, and how many examples that cut, by how much."""

from __future__ import annotations

from typing import Any

from projections.event_messages import DECIDED_BY

Row = dict[str, Any]


def data_rows(measured: dict[str, Any] | None) -> list[Row]:
    """Empty until the pod has measured the data."""
    if not measured:
        return []
    decided_by = DECIDED_BY.get(measured["decided_by"], measured["decided_by"])
    return [{"label": "Sequence length", "value": f"{measured['seq_len']:,} tokens",
             "note": f"{decided_by}; longest example {measured['longest']:,}"},
            truncated(measured),
            {"label": "Masked from the loss", "value": f"{measured['masked_share']:.0%} of tokens",
             "note": "system and user turns: the loss is on the assistant's answers"}]


def truncated(measured: dict[str, Any]) -> Row:
    examples, cut = measured["examples"], measured["truncated_examples"]
    if not cut:
        return {"label": "Examples truncated", "value": f"none of {examples:,}"}
    return {"label": "Examples truncated", "value": f"{cut:,} of {examples:,} ({cut / examples:.1%})",
            "note": f"{measured['truncated_tokens']:,} tokens cut in all",
            "warning": f"⚠ Up to {measured['most_cut']:,} tokens cut from one example's end: shorten or split the "
                       "longest examples, or choose a preset with a smaller batch so longer rows fit"}
