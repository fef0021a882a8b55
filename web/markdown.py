"""Notes and descriptions rendered from Markdown: raw HTML is never passed through, and the result
goes through an allow-list sanitizer (nh3), so a `<script>` in a note is shown, never run."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3", "h4",
        "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td"}


def render(text: str | None) -> Markup:
    """Markdown → safe HTML (links get rel="noopener noreferrer nofollow"; only http(s) and mailto)."""
    if not text:
        return Markup("")
    html = _MD.render(text)
    return Markup(nh3.clean(html, tags=TAGS, attributes={"a": {"href", "title"}}, url_schemes={"http", "https",
                                                                                                "mailto"},
                            link_rel="noopener noreferrer nofollow"))
