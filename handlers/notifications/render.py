"""A notice as an email (plain text and HTML alternatives from the Jinja templates in `templates/`)
and as a Slack Block Kit message."""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from handlers.notifications.notices import Notice

TEMPLATES = Environment(loader=PackageLoader("handlers.notifications", "templates"),
                        autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
SLACK_TEXT_LIMIT = 3000  # characters in one section block


def email(notice: Notice, sender: str, to: str, delivery_key: str) -> EmailMessage:
    """`delivery_key` fixes the Message-ID, so a copy resent after a crash is recognisably the
    same message to mail clients that deduplicate."""
    message = EmailMessage()
    message["Subject"] = notice.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = Address(addr_spec=parseaddr(sender)[1] or "pipeline@localhost").domain or "localhost"
    message["Message-ID"] = f"<{hashlib.sha256(delivery_key.encode()).hexdigest()[:32]}@{domain}>"
    message.set_content(TEMPLATES.get_template("notice.txt").render(notice=notice))
    message.add_alternative(TEMPLATES.get_template("notice.html").render(notice=notice), subtype="html")
    return message


def slack(notice: Notice) -> dict[str, Any]:
    """The headline with the job's name in bold and the main link (FR8.2.1's "[View Job]"); `text`
    is the fallback shown in notifications and by clients without blocks."""
    text = _escape(notice.headline)
    if notice.name:
        text = text.replace(_escape(notice.name), f"*{_escape(notice.name)}*", 1)
    fallback = notice.headline
    if notice.link:
        label, url = notice.link
        text += f" <{url}|{_escape(label)}>"
        fallback += f" {label}: {url}"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": text[:SLACK_TEXT_LIMIT]}}
    return {"text": fallback, "blocks": [section]}


def _escape(text: str) -> str:
    """Slack's three control characters (its formatting reference)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
