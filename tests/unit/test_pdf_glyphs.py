"""The PDFs and the PNG charts print the symbols the spec's messages use (❌ 💡 ⚠ ✓) and Chinese,
Japanese or Korean text with fonts that have them: read back from the PDF, each character is in
the cmap (or, for the CFF-outlined CJK font, the ToUnicode map) of an embedded font that has an
outline for it. Also: table headings never break inside a word, short sections share a page, and
the comparison PDF draws each job in the page's colour (web/pdf_base.py, web/reports/)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from typing import Any

from fontTools.cffLib import CFFFontSet
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw
from pypdf import PdfReader

from projections.queries import MetricPoint
from web.compare_pdf import render_comparison, rgb
from web.comparison import chart
from web.pdf_base import BrandedPdf
from web.reports.font_fallback import EMOJI, TEXT, cjk, covered, runs
from web.reports.metrics_charts import typeface, write

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SPEC = "❌ 💡 ⚠ ✓"
CJK = "顾问语气 日本語 한국어"


def embedded_glyphs(pdf: bytes) -> dict[str, set[str]]:
    """Per embedded font (its PDF name), the characters it has an outline for."""
    found: dict[str, set[str]] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            name = str(font["/BaseFont"])
            if "/FontFile2" in descriptor:  # TrueType outlines: the subset keeps its cmap
                found[name] = truetype_glyphs(descriptor["/FontFile2"].get_object().get_data())
            else:  # CFF (the CJK font): codes → CIDs (its encoding CMap) → charstrings; codes → text (ToUnicode)
                found[name] = cff_glyphs(descriptor["/FontFile3"].get_object().get_data(),
                                         font["/Encoding"].get_object().get_data().decode("latin-1"),
                                         font["/ToUnicode"].get_object().get_data().decode("latin-1"))
    return found


def truetype_glyphs(data: bytes) -> set[str]:
    font = TTFont(io.BytesIO(data))
    glyf = font["glyf"]
    return {chr(code) for code, name in font.getBestCmap().items()
            if glyf[name].numberOfContours != 0}  # -1: composite, > 0: contours; 0: empty


def cff_glyphs(data: bytes, encoding: str, to_unicode: str) -> set[str]:
    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), None)
    strings = cff[cff.fontNames[0]].CharStrings
    cids = {int(code, 16): int(cid) for code, cid in re.findall(r"<([0-9A-Fa-f]+)>\s+(\d+)", encoding)}
    chars = {int(code, 16): chr(int(text, 16))
             for code, text in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", to_unicode)}

    def outlined(cid: int) -> bool:
        name = f"cid{cid:05d}"
        if name not in strings:
            return False
        glyph = strings[name]
        glyph.decompile()
        return len(glyph.program) > 2  # more than a width and "endchar": it draws something

    return {char for code, char in chars.items() if code in cids and outlined(cids[code])}


def comparison(names: list[str]) -> dict[str, Any]:
    jobs = [{"name": name, "status": "completed", "created_by": "alice"} for name in names]
    curves = [[MetricPoint(step=s, epoch=None, loss=2.0 - s / 10 - n / 5, eval_loss=None, perplexity=None,
                           learning_rate=None, grad_norm=None, tokens_per_s=None, gpu_util=None, gpu_memory_gb=None,
                           at=NOW)
               for s in range(0, 10)] for n, _ in enumerate(names)]
    finals = [{"training_loss": 1.0 + n, "validation_loss": None, "perplexity": None, "duration_hours": 1.5,
               "cost": None} for n, _ in enumerate(names)]
    return {"jobs": jobs, "finals": finals, "best": {"training_loss": 1.0},
            "recommendation": f"❌ Insufficient Budget for {names[-1]} 💡 Cost Reduction Tips: use spot",
            "chart": chart(jobs, curves), "differences": [f"⚠ {names[-1]} uses r=32 ✓"],
            "configuration": [{"label": "r", "differs": True, "values": ["16", "32"][:len(names)]}]}


def test_the_spec_symbols_and_cjk_print_in_the_comparison_pdf_with_embedded_fonts_that_draw_them() -> None:
    names = [f"Advisor tone {SPEC}", f"{CJK} v2"]
    pdf = render_comparison(comparison(names), "UTC", NOW)
    glyphs = embedded_glyphs(pdf)
    drawn = set().union(*glyphs.values())
    wanted = set((SPEC + CJK).replace(" ", ""))
    assert wanted <= drawn, f"no embedded outline for {sorted(wanted - drawn)}; fonts: {sorted(glyphs)}"
    assert any("NotoEmoji" in name for name in glyphs) and any("NotoSansCJK" in name for name in glyphs)
    # pypdf reads a NUL after each character of the CID-keyed CJK font (poppler's pdftotext does not).
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).replace("\x00", "")
    for word in ("❌", "💡", "⚠", "✓", "顾问语气", "日本語", "한국어"):
        assert word in text, word


def test_a_pdf_without_cjk_text_neither_reads_nor_embeds_the_cjk_font() -> None:
    pdf = BrandedPdf("t", "t", "UTC", NOW)
    pdf.title_page("Report", f"Budget {SPEC}", "line")
    fonts = set(embedded_glyphs(bytes(pdf.output())))
    assert not any("CJK" in name for name in fonts) and any("NotoEmoji" in name for name in fonts), fonts


def test_a_chart_png_draws_cjk_and_emoji_in_the_fonts_that_have_them_not_as_empty_boxes() -> None:
    title = f"{CJK} {SPEC}"
    assert [face for face, _ in runs("中💡a")] == [cjk(), EMOJI, TEXT]
    for char in title.replace(" ", ""):
        assert any(ord(char) in covered(face) for face in (TEXT, EMOJI, cjk())), char

    def drawn(draw_text) -> bytes:
        image = Image.new("RGB", (900, 60), (255, 255, 255))
        draw_text(ImageDraw.Draw(image))
        return image.tobytes()

    ours = drawn(lambda d: write(d, (10, 10), title, (0, 0, 0), 24))
    by_hand = drawn(lambda d: draw_runs(d, title))
    only_dejavu = drawn(lambda d: d.text((10, 10), title, fill=(0, 0, 0), font=typeface(TEXT, 24)))
    assert ours == by_hand  # each run in the face chosen for it
    assert ours != only_dejavu  # DejaVu alone has none of these: boxes


def draw_runs(draw: ImageDraw.ImageDraw, text: str) -> None:
    ascent, _ = typeface(TEXT, 24).getmetrics()
    x = 10.0
    for face, part in runs(text):
        draw.text((x, 10 + ascent), part, fill=(0, 0, 0), font=typeface(face, 24), anchor="ls")
        x += draw.textlength(part, font=typeface(face, 24))


def test_table_headings_never_break_inside_a_word_even_in_columns_asked_too_narrow() -> None:
    pdf = BrandedPdf("t", "t", "UTC", NOW)
    pdf.add_page()
    headings = ("Job", "Interruptions", "Perplexity", "Duration")
    pdf.grid(headings, [("Advisor tone", "2", "3.1", "1.5 h")], (120, 10, 10, 10))
    words = PdfReader(io.BytesIO(bytes(pdf.output()))).pages[0].extract_text().split()
    assert all(heading in words for heading in headings), words
    widths = pdf.fitted(headings, (120, 10, 10, 10))
    assert round(sum(widths), 6) == round(pdf.epw, 6)
    pdf.font(9, bold=True)
    assert all(pdf.get_string_width(h) + 2 < w for h, w in zip(headings, widths, strict=True))


def test_sections_share_a_page_while_there_is_room_and_start_a_new_one_when_not() -> None:
    pdf = BrandedPdf("t", "t", "UTC", NOW)
    pdf.title_page("Report", "Title", "line")
    for name in ("Summary", "Validation", "Costs"):
        pdf.section(name)
        pdf.paragraph("A short section. " * 10)
    assert pdf.page_no() == 2  # the cover, then the three sections on one page
    pdf.paragraph("Filler. " * 700)
    pdf.set_y(pdf.h - 60)
    pdf.section("Appendix")
    assert pdf.get_y() < 60  # too little room left: at the top of a new page


def test_the_comparison_pdf_draws_each_job_in_the_colour_the_page_gives_it() -> None:
    compared = comparison(["First", "Second"])
    content = b"".join(page.get_contents().get_data() for page in PdfReader(io.BytesIO(
        render_comparison(compared, "UTC", NOW))).pages)
    strokes = [tuple(float(v) for v in found) for found in
               re.findall(rb"([0-9.]+) ([0-9.]+) ([0-9.]+) RG", content)]
    for job in compared["chart"]["jobs"]:
        wanted = tuple(c / 255 for c in rgb(job["colour"]))
        assert any(all(abs(a - b) < 0.001 for a, b in zip(stroke, wanted, strict=True)) for stroke in strokes), \
            (job["colour"], strokes)
