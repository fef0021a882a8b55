"""A client's brand-voice rubric typed into a form (FR6.4.2: 5-15 characteristics, each with its
description and scoring criteria), turned into the rubric file format (docs/quality-suites.md) so that the
one validator, `load_rubric`, judges it; its problems' places are told back in the form's terms
("Characteristic 3: level 5")."""

from __future__ import annotations

import json
import re
from typing import Any

from domain.quality.model import MAX_CHARACTERISTICS

ROWS = MAX_CHARACTERISTICS
LEVELS = ("1", "3", "5")
PLACE = re.compile(r"^characteristics\[(\d+)\](?:\.(\w+))?(?:\.(\d))?")


def slug(name: str) -> str:
    """A characteristic's id from its name: "Risk-aware language" → risk_aware_language."""
    text = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return text if re.match(r"[a-z]", text or "") else f"c_{text}" if text else ""


def rubric_from_form(form: Any) -> tuple[bytes, list[dict[str, str]], list[int]]:
    """The rubric document (JSON bytes), the rows as typed (to show the form again), and the form row of
    each characteristic in the document (a row left all empty is left out)."""
    rows: list[dict[str, str]] = []
    characteristics: list[dict[str, Any]] = []
    rows_of: list[int] = []
    for n in range(1, ROWS + 1):
        row = {key: str(form.get(f"c{n}_{key}") or "").strip()[:2000]
               for key in ("name", "description", *(f"level_{level}" for level in LEVELS))}
        rows.append(row)
        if not any(row.values()):
            continue
        scoring = {level: row[f"level_{level}"] for level in LEVELS if row[f"level_{level}"] or level != "3"}
        characteristics.append({"id": slug(row["name"]), "name": row["name"], "description": row["description"],
                                "scoring": scoring})
        rows_of.append(n)
    body = {"format_version": 1, "name": str(form.get("name") or "").strip()[:200], "characteristics": characteristics}
    return json.dumps(body, ensure_ascii=False).encode(), rows, rows_of


def form_place(place: str, rows_of: list[int]) -> str:
    """"characteristics[2].scoring.5" → "Characteristic 3: level 5" (the form's row, not the list's)."""
    found = PLACE.match(place or "")
    if not found:
        return "Rubric name" if place == "name" else "Rubric"
    index = int(found.group(1))
    row = rows_of[index] if index < len(rows_of) else index + 1
    field, level = found.group(2), found.group(3)
    if field == "scoring":
        return f"Characteristic {row}: level {level}" if level else f"Characteristic {row}: scoring"
    return f"Characteristic {row}: {'name' if field == 'id' else field or 'row'}"
