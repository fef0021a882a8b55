"""Share links (FR4.2.2 report, 30 days; FR4.3.1 package, 48 hours): signed for one job and one
purpose, refused when tampered with, expired, signed with another secret, for another purpose, or
when sharing is not set up."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.factories import T0
from web.share_links import PACKAGE, REPORT, ExpiredLinkError, InvalidLinkError
from web.share_links import share as share_any
from web.share_links import verify as verify_any

SECRET = "a-long-enough-secret-for-links"


def share(job_id, by, secret, now):
    return share_any(REPORT, job_id, by, secret, now)


def verify(token, secret, now):
    return verify_any(REPORT, token, secret, now)


def test_a_link_names_its_job_and_sharer_for_30_days_and_no_longer() -> None:
    job = uuid.uuid4()
    token, shared = share(job, "bob", SECRET, T0)
    assert shared.expires_at == T0 + timedelta(days=30)
    assert verify(token, SECRET, T0 + timedelta(days=29, hours=23)) == shared
    with pytest.raises(ExpiredLinkError, match="expired on 2026-12-24 12:00 UTC"):
        verify(token, SECRET, T0 + timedelta(days=30))


def flip(text: str, at: int) -> str:
    """Another character at `at` (a middle one: every bit of it counts)."""
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


@pytest.mark.parametrize("mangle", [
    lambda t: flip(t, len(t) // 2), lambda t: flip(t, 5), lambda t: "x" + t, lambda t: t.partition(".")[0],
    lambda t: "", lambda t: "!!.!!", lambda t: "~~~~" + t, lambda t: t + "!!!!", lambda t: t + "==",
])
def test_a_mangled_link_is_refused(mangle) -> None:
    token, _ = share(uuid.uuid4(), "bob", SECRET, T0)
    with pytest.raises(InvalidLinkError, match="not valid"):
        verify(mangle(token), SECRET, T0)


def test_only_the_canonical_spelling_of_a_token_decodes() -> None:
    """Base64 ignores the last character's spare bits: a re-spelt token is refused, not accepted as
    a "different" token that would look unused."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for _ in range(50):  # the signature's last character: its lowest bit is one the bytes do not use
        token, _ = share(uuid.uuid4(), "bob", SECRET, T0)
        head, _, tail = token.partition(".")
        respelt = alphabet[alphabet.index(tail[-1]) ^ 1]
        with pytest.raises(InvalidLinkError):
            verify(f"{head}.{tail[:-1]}{respelt}", SECRET, T0)


def test_another_secret_or_none_opens_nothing() -> None:
    token, _ = share(uuid.uuid4(), "bob", SECRET, T0)
    with pytest.raises(InvalidLinkError, match="not valid"):
        verify(token, SECRET + "-rotated", T0)
    with pytest.raises(InvalidLinkError, match="not enabled"):
        verify(token, "", T0)


def test_a_package_link_lasts_48_hours_and_opens_no_report_nor_the_reverse() -> None:
    job = uuid.uuid4()
    package, shared = share_any(PACKAGE, job, "bob", SECRET, T0)
    assert shared.expires_at == T0 + timedelta(hours=48)
    assert verify_any(PACKAGE, package, SECRET, T0 + timedelta(hours=47)).job_id == job
    with pytest.raises(ExpiredLinkError, match="This deployment package link expired on 2026-11-26 12:00 UTC"):
        verify_any(PACKAGE, package, SECRET, T0 + timedelta(hours=48))
    report, _ = share(job, "bob", SECRET, T0)
    with pytest.raises(InvalidLinkError, match="This deployment package link is not valid"):
        verify_any(PACKAGE, report, SECRET, T0)
    with pytest.raises(InvalidLinkError, match="This report link is not valid"):
        verify(package, SECRET, T0)
