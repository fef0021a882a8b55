"""A request that fails for a reason no handler answers is logged with its traceback (Litestar logs
nothing with debug off); refusals the user caused (404, a budget refusal, a bad value) are not."""

from __future__ import annotations

import logging

import pytest
from litestar import Litestar, get
from litestar.exceptions import NotFoundException
from litestar.testing import TestClient

from domain.applications import JobNotFoundError
from web.errors import domain_error_response, log_unexpected


@get("/boom")
async def boom() -> str:
    raise RuntimeError("the read model is gone")


@get("/missing")
async def missing() -> str:
    raise NotFoundException("no such page")


@get("/no-job")
async def no_job() -> str:
    raise JobNotFoundError("Training job not found")


@pytest.fixture
def client() -> TestClient:
    app = Litestar([boom, missing, no_job], after_exception=[log_unexpected], debug=False,
                   exception_handlers={JobNotFoundError: domain_error_response})
    return TestClient(app)


def test_an_unexpected_failure_is_logged_with_the_request_and_traceback(client: TestClient,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    with client, caplog.at_level(logging.ERROR, logger="web"):
        assert client.get("/boom").status_code == 500
    (record,) = [r for r in caplog.records if r.name == "web"]
    assert record.getMessage() == "GET /boom failed"
    assert record.exc_info is not None and "the read model is gone" in str(record.exc_info[1])


def test_refusals_the_user_caused_are_not_logged_as_errors(client: TestClient,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with client, caplog.at_level(logging.ERROR, logger="web"):
        assert client.get("/missing").status_code == 404
        assert client.get("/no-job").status_code == 404
    assert [r for r in caplog.records if r.name == "web"] == []
