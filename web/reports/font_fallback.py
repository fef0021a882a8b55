"""The fonts the PDFs and the PNG charts set text in, and which of them draws each character:
DejaVu Sans (Latin, Greek, Cyrillic, ✓ ⚠ → ★ ≠ and most symbols), Noto Emoji (❌ 💡 and every other
emoji; both in web/reports/fonts), then Noto Sans CJK (Chinese, Japanese, Korean; the
noto-cjk-sans-otc package, read only when a text has a character the first two lack). The browser
gets the same emoji font (web/static/app.css, served from /static/fonts/)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont

FONTS = Path(__file__).parent / "fonts"
# Marks that only shape the character before them (emoji presentation, joiners): they stay in its run.
JOINING = {0x200D, 0xFE0E, 0xFE0F}


@dataclass(frozen=True)
class Face:
    name: str  # the family name the PDFs register it under
    path: Path
    index: int = 0  # the font's number inside a collection (.ttc)


TEXT = Face("DejaVu", FONTS / "DejaVuSans.ttf")
BOLD = Face("DejaVu", FONTS / "DejaVuSans-Bold.ttf")
EMOJI = Face("NotoEmoji", FONTS / "NotoEmoji-Regular.ttf")


@cache
def cjk() -> Face:
    from noto_cjk_sans_otc import FONT_PATH

    return Face("NotoSansCJK", Path(str(FONT_PATH)), 2)  # 2: the Simplified Chinese member of the collection


@cache
def covered(face: Face) -> frozenset[int]:
    """The code points `face` has a glyph for (its cmap); read once per process."""
    font = TTFont(str(face.path), fontNumber=face.index, lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def face_for(char: str, primary: Face = TEXT) -> Face:
    """The first of `primary`, the emoji font and the CJK font that has `char`; `primary` if none has."""
    code = ord(char)
    for face in (primary, EMOJI):
        if code in covered(face):
            return face
    return cjk() if code in covered(cjk()) else primary


def runs(text: str, primary: Face = TEXT) -> list[tuple[Face, str]]:
    """`text` cut into the longest pieces one face draws whole, in order."""
    pieces: list[tuple[Face, str]] = []
    for char in text:
        face = pieces[-1][0] if pieces and ord(char) in JOINING else face_for(char, primary)
        if pieces and pieces[-1][0] == face:
            pieces[-1] = (face, pieces[-1][1] + char)
        else:
            pieces.append((face, char))
    return pieces
