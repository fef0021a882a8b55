"""FR4.2.1's "Option to include charts (loss curves) as embedded PNG in export package": a job's
loss curves (training and validation) and learning-rate schedule over its steps, drawn as PNG
images with Pillow, in DejaVu Sans (web/reports/fonts, shared with the PDFs)."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from projections.queries import MetricPoint
from web.reports.chart_axes import axis

FONTS = Path(__file__).parent / "fonts"
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
    font = ImageFont.truetype(str(FONTS / "DejaVuSans.ttf"), 14)
    bold = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), 18)
    points = [p for _, _, pts in series for p in pts]
    x0, x1, x_ticks = axis(min(p[0] for p in points), max(p[0] for p in points))
    y0, y1, y_ticks = axis(min(p[1] for p in points), max(p[1] for p in points))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(p: tuple[float, float]) -> tuple[float, float]:
        return LEFT + (p[0] - x0) / (x1 - x0) * inner_w, TOP + inner_h - (p[1] - y0) / (y1 - y0) * inner_h

    draw.text((LEFT, 14), title, fill=INK, font=bold)
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
        draw.text((legend + 22, HEIGHT - 11), label, fill=INK, font=font, anchor="lm")
        legend += 40 + int(draw.textlength(label, font=font))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
