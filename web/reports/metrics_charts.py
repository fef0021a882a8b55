"""FR4.2.1's "Option to include charts (loss curves) as embedded PNG in export package": a job's
loss curves (training and validation) and learning-rate schedule over its steps, drawn as PNG
images with Pillow, in the PDFs' fonts (web/reports/font_fallback.py: a job named in Chinese or with
an emoji is drawn as typed)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from projections.queries import MetricPoint
from web.reports.chart_axes import axis
from web.reports.font_fallback import BOLD, TEXT, Face, runs

WIDTH, HEIGHT = 1000, 500
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 50, 70
WHITE, INK, MUTED, GRID = (255, 255, 255), (31, 41, 51), (97, 110, 124), (217, 226, 236)
TRAIN, EVAL, RATE = (37, 99, 235), (217, 119, 6), (14, 159, 110)
Series = tuple[str, tuple[int, int, int], list[tuple[float, float]]]


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def loss_curves_png(points: Sequence[MetricPoint], title: str) -> bytes | None:
    """Training and validation loss by step; None when the job logged neither."""
    train = [(float(p.step), v) for p in points if (v := finite(p.loss)) is not None]
    evals = [(float(p.step), v) for p in points if (v := finite(p.eval_loss)) is not None]
    series = [s for s in (("training loss", TRAIN, train), ("validation loss", EVAL, evals)) if s[2]]
    return line_chart(f"{title}: loss", series, "step", lambda v: f"{v:g}") if series else None


def learning_rate_png(points: Sequence[MetricPoint], title: str) -> bytes | None:
    rates = [(float(p.step), v) for p in points if (v := finite(p.learning_rate)) is not None]
    return line_chart(f"{title}: learning rate", [("learning rate", RATE, rates)], "step",
                      lambda v: f"{v:.1e}") if rates else None


def line_chart(title: str, series: list[Series], x_label: str, y_format: Callable[[float], str]) -> bytes:
    image = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(image)
    font = typeface(TEXT, 14)
    points = [p for _, _, pts in series for p in pts]
    x0, x1, x_ticks = axis(min(p[0] for p in points), max(p[0] for p in points))
    y0, y1, y_ticks = axis(min(p[1] for p in points), max(p[1] for p in points))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return LEFT + (p[0] - x0) / (x1 - x0) * inner_w, TOP + inner_h - (p[1] - y0) / (y1 - y0) * inner_h

    write(draw, (LEFT, 14), title, INK, 18, bold=True)
    for tick in y_ticks:
        y = at((x0, tick))[1]
        draw.line([(LEFT, y), (LEFT + inner_w, y)], fill=GRID)
        draw.text((LEFT - 8, y), y_format(tick), fill=MUTED, font=font, anchor="rm")
    for tick in x_ticks:
        x = at((tick, y0))[0]
        draw.line([(x, TOP), (x, TOP + inner_h)], fill=GRID)
        draw.text((x, TOP + inner_h + 8), f"{tick:g}", fill=MUTED, font=font, anchor="mt")
    draw.text((LEFT + inner_w / 2, HEIGHT - 30), x_label, fill=MUTED, font=font, anchor="mt")
    legend = LEFT
    for label, colour, pts in series:
        shown = [at(p) for p in pts]
        if len(shown) > 1:
            draw.line(shown, fill=colour, width=2, joint="curve")
        for x, y in shown if len(shown) <= 50 else ():
            draw.ellipse([(x - 3, y - 3), (x + 3, y + 3)], fill=colour)
        draw.rectangle([(legend, HEIGHT - 14), (legend + 16, HEIGHT - 8)], fill=colour)
        legend += 40 + int(write(draw, (legend + 22, HEIGHT - 11), label, INK, 14, anchor="lm"))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


@cache
def typeface(face: Face, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(face.path), size, index=face.index)


def write(draw: ImageDraw.ImageDraw, at: tuple[float, float], text: str, fill: tuple[int, int, int], size: int,
          anchor: str = "la", bold: bool = False) -> float:
    """`draw.text` with the fallback fonts: each run of `text` in the face that has it, on one
    baseline; `anchor` as Pillow's (l/m/r, a/m/s/d). Returns the width drawn."""
    primary = BOLD if bold else TEXT
    pieces = [(typeface(face, size), part) for face, part in runs(text, primary)]
    width = sum(draw.textlength(part, font=font) for font, part in pieces)
    ascent, descent = typeface(primary, size).getmetrics()
    x = at[0] - {"l": 0.0, "m": width / 2, "r": width}[anchor[0]]
    y = at[1] + {"a": ascent, "t": ascent, "m": (ascent - descent) / 2, "s": 0, "d": -descent}[anchor[1]]
    for font, part in pieces:
        draw.text((x, y), part, fill=fill, font=font, anchor="ls")
        x += draw.textlength(part, font=font)
    return width
