"""Shared training-report links (FR4.2.2): signed for one job and 30 days, refused when tampered
with, expired, signed with another secret, or when sharing is not set up."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.factories import T0
from web.report_links import ExpiredLinkError, InvalidLinkError, share, verify

SECRET = "a-long-enough-secret-for-links"


def test_a_link_names_its_job_and_sharer_for_30_days_and_no_longer() -> None:
    job = uuid.uuid4()
    token, shared = share(job, "bob", SECRET, T0)
    assert shared.expires_at == T0 + timedelta(days=30)
    assert verify(token, SECRET, T0 + timedelta(days=29, hours=23)) == shared
    with pytest.raises(ExpiredLinkError, match="expired on 2026-12-24 12:00 UTC"):
        verify(token, SECRET, T0 + timedelta(days=30))


@pytest.mark.parametrize("mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: "x" + t,
                                    lambda t: t.partition(".")[0], lambda t: "", lambda t: "!!.!!"])
def test_a_mangled_link_is_refused(mangle) -> None:
    token, _ = share(uuid.uuid4(), "bob", SECRET, T0)
    with pytest.raises(InvalidLinkError, match="not valid"):
        verify(mangle(token), SECRET, T0)


def test_another_secret_or_none_opens_nothing() -> None:
    token, _ = share(uuid.uuid4(), "bob", SECRET, T0)
    with pytest.raises(InvalidLinkError, match="not valid"):
        verify(token, SECRET + "-rotated", T0)
    with pytest.raises(InvalidLinkError, match="not enabled"):
        verify(token, "", T0)
