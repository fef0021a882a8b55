"""The PDFs the dashboard hands out (the training report, the cost estimate, the comparison, the
cost optimization report): A4 pages in DejaVu Sans with Noto Emoji and Noto Sans CJK for what it
lacks (web/reports/font_fallback.py: ❌ 💡, Chinese, Japanese and Korean print as typed), with
headings, label / value tables, grids and line charts drawn by fpdf2."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF, XPos, YPos
from fpdf.enums import TableCellFillMode

from web.reports.chart_axes import axis
from web.reports.font_fallback import BOLD, EMOJI, TEXT, cjk, covered

BRAND = "LoRA Pipeline"
CELL_PADDING = 1.0  # mm left and right of a table cell's text: fpdf2's cell margin (its tables add no padding)
INK, MUTED, ACCENT = (31, 41, 51), (97, 110, 124), (16, 42, 67)
Point = tuple[float, float]




class BrandedPdf(FPDF):
    """`footer_text` is shown at the foot of every page but the first (the cover)."""

    def __init__(self, title: str, footer_text: str, time_zone: str, created: datetime) -> None:
        super().__init__(format="A4", unit="mm")
        self.footer_text = footer_text
        self.zone = ZoneInfo(time_zone)
        self.add_font(TEXT.name, "", str(TEXT.path))
        self.add_font(BOLD.name, "B", str(BOLD.path))
        self.add_font(EMOJI.name, "", str(EMOJI.path))
        self.set_fallback_fonts([EMOJI.name], exact_match=False)  # bold text too: the fallbacks are regular
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.set_title(title)
        self.set_author(BRAND)
        self.set_creation_date(created)

    def get_fallback_font(self, char: str, style: str = "") -> str | None:
        """fpdf2's choice among the fallback fonts; the CJK font (~20 MB) is added to the document the
        first time a character needs it, so a PDF without such text neither reads nor embeds it."""
        found = super().get_fallback_font(char, style)
        face = cjk()
        if found is None and face.name.lower() not in self.fonts and ord(char) in covered(face):
            self.add_font(face.name, "", str(face.path), collection_font_number=face.index)
            self.set_fallback_fonts([EMOJI.name, face.name], exact_match=False)
            found = super().get_fallback_font(char, style)
        return found

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-12)
        self.font(8, color=MUTED)
        self.cell(0, 5, f"{self.footer_text} · page {self.page_no()}", align="C")

    def title_page(self, kind: str, title: str, line: str, size: float = 18) -> None:
        """A first page: the band naming `kind`, the title, and a muted line under it."""
        self.add_page()
        self.banner(kind)
        self.set_y(82)
        self.font(size, bold=True)
        self.multi_cell(0, 9, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.font(10, color=MUTED)
        self.cell(0, 6, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def banner(self, subtitle: str) -> None:
        """The cover's band with the product's name."""
        self.set_fill_color(*ACCENT)
        self.rect(0, 0, self.w, 70, style="F")
        self.set_xy(18, 24)
        self.font(14, bold=True, color=(255, 255, 255))
        self.cell(0, 8, BRAND, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.font(11, color=(217, 226, 236))
        self.cell(0, 6, subtitle, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    # --- small helpers ----------------------------------------------------------------------

    def font(self, size: float, bold: bool = False, color: tuple[int, int, int] = INK) -> None:
        self.set_font(TEXT.name, "B" if bold else "", size)
        self.set_text_color(*color)

    def local(self, at: datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        return at.astimezone(self.zone).strftime(fmt) if at else "—"

    def section(self, title: str, room: float = 70) -> None:
        """A section's heading where the page has `room` mm left for it and its first lines, else at
        the top of the next page: sections follow one another without leaving half-empty pages."""
        if self.page_no() <= 1 or self.will_page_break(room):
            self.add_page()
        else:
            self.ln(8)
        self.heading(text=title)

    def heading(self, text: str) -> None:
        self.font(16, bold=True, color=ACCENT)
        self.cell(0, 10, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def subheading(self, text: str) -> None:
        if self.will_page_break(25):  # not a heading alone at the foot of a page
            self.add_page()
        self.ln(2)
        self.font(11, bold=True)
        self.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def paragraph(self, text: str, size: float = 10, color: tuple[int, int, int] = INK) -> None:
        self.font(size, color=color)
        self.multi_cell(0, 5.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def facts(self, rows: Sequence[tuple[str, str]], widths: tuple[int, int] = (55, 119)) -> None:
        self.font(10)
        self.set_draw_color(217, 226, 236)
        self.set_fill_color(255, 255, 255)
        with self.table(col_widths=widths, text_align=("LEFT", "LEFT"), first_row_as_headings=False,
                        line_height=6, borders_layout="HORIZONTAL_LINES",
                        cell_fill_mode=TableCellFillMode.NONE) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label)
                row.cell(value)

    def grid(self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> None:
        """A table over the text width, `widths` in proportion; a column is widened (from the others'
        room) until every word of its heading fits on a line, so no heading breaks inside a word."""
        widths = self.fitted(headings, widths)
        self.font(9)
        self.set_draw_color(217, 226, 236)
        self.set_fill_color(255, 255, 255)
        with self.table(col_widths=tuple(widths), line_height=5.5, borders_layout="HORIZONTAL_LINES",
                        text_align="LEFT", cell_fill_mode=TableCellFillMode.NONE) as table:
            heading = table.row()
            for text in headings:
                heading.cell(text)
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(value)

    def fitted(self, headings: Sequence[str], widths: Sequence[float]) -> list[float]:
        """`widths` scaled to the text width (mm), each at least its heading's longest word (bold) plus
        the cell's padding, the room taken from the columns that have more than they need."""
        self.font(9, bold=True)
        need = [max((self.get_string_width(word) for word in heading.split()), default=0) + 2 * CELL_PADDING + 0.5
                for heading in headings]
        scaled = [w * self.epw / sum(widths) for w in widths]
        short = sum(max(0.0, n - w) for n, w in zip(need, scaled, strict=True))
        spare = sum(max(0.0, w - n) for n, w in zip(need, scaled, strict=True))
        if short == 0 or spare < short:
            return scaled
        return [n if w < n else w - (w - n) * short / spare for n, w in zip(need, scaled, strict=True)]

    def chart(self, title: str, series: list[tuple[str, tuple[int, int, int], list[Point]]], x_label: str,
              y_format: Callable[[float], str], height: float = 62) -> None:
        """A line chart of one or more series over the text width; a series with one point is a dot."""
        points = [p for _, _, pts in series for p in pts]
        if not points:
            return
        if self.will_page_break(height + 14):
            self.add_page()
        self.subheading(title)
        left, top = self.l_margin + 16, self.get_y() + 2
        width, inner_h = self.epw - 18, height - 14
        x0, x1, x_ticks = axis(min(p[0] for p in points), max(p[0] for p in points))
        y0, y1, y_ticks = axis(min(p[1] for p in points), max(p[1] for p in points))

        def at(p: Point) -> Point:
            return (left + (p[0] - x0) / (x1 - x0) * width, top + inner_h - (p[1] - y0) / (y1 - y0) * inner_h)

        self.set_draw_color(217, 226, 236)
        self.set_line_width(0.2)
        self.font(7, color=MUTED)
        for tick in y_ticks:
            y = at((x0, tick))[1]
            self.line(left, y, left + width, y)
            self.text(self.l_margin, y + 1, y_format(tick))
        for tick in x_ticks:
            x = at((tick, y0))[0]
            self.line(x, top, x, top + inner_h)
            self.text(x - 3, top + inner_h + 4, f"{tick:g}")
        self.text(left + width / 2 - 6, top + inner_h + 8.5, x_label)
        for _, color, pts in series:
            self.set_draw_color(*color)
            self.set_fill_color(*color)
            self.set_line_width(0.5)
            if len(pts) > 1:
                self.polyline([at(p) for p in pts])
            for p in pts if len(pts) <= 30 else ():
                x, y = at(p)
                self.circle(x, y, 0.7, style="F")
        bottom = self.legend([(label, color) for label, color, _ in series], left, top + inner_h + 10, width)
        self.set_y(max(top + height, bottom + 2))

    def legend(self, entries: Sequence[tuple[str, tuple[int, int, int]]], left: float, top: float,
               width: float) -> float:
        """A colour key and label per entry in rows under a chart, wrapped where the next would not fit
        (set as cells, so a label in Chinese or with an emoji prints too); returns the bottom."""
        self.font(7)
        x, y = left, top
        for label, color in entries:
            if x > left and x + 4 + self.get_string_width(label) > left + width:
                x, y = left, y + 4
            self.set_fill_color(*color)
            self.rect(x, y + 0.8, 3, 1.5, style="F")
            self.set_xy(x + 4, y)
            self.cell(h=3, text=label, new_x=XPos.RIGHT, new_y=YPos.TOP)
            x = self.get_x() + 4
        return y + 4
