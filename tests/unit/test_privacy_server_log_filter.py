"""Served by plain ``uvicorn api.main:app``, the registry's error lines and uvicorn's reach uvicorn's (or Python's
last-resort) handlers, never ``JsonFormatter``: ``guard_server_logs`` redacts them before any handler formats them,
the traceback of an unhandled error included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from api.logs import RedactingFilter, guard_server_logs

IDENTITY_NUMBER = "11010519491231002X"
TOKEN_PATH = "/v/Kq3vX9mZpL2wR7tYbN4cJ8dF"


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What a plain handler (uvicorn's default formatter is no redaction either) writes for ``registry.api``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("registry.api")
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_an_unhandled_errors_traceback_is_redacted_before_a_plain_handler_writes_it(written: io.StringIO) -> None:
    guard_server_logs()
    try:
        raise ValueError(f"no holder {IDENTITY_NUMBER} behind {TOKEN_PATH}")
    except ValueError:
        logging.getLogger("registry.api").exception("unhandled error on %s %s", "GET", TOKEN_PATH)
    text = written.getvalue()
    assert "ValueError: no holder [identity number] behind /v/[redacted]" in text, text
    assert "unhandled error on GET /v/[redacted]" in text, text
    assert IDENTITY_NUMBER not in text, text
    assert TOKEN_PATH not in text, text


def test_guarding_twice_puts_one_filter_on_each_logger() -> None:
    guard_server_logs()
    guard_server_logs()
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn.asgi", "registry.api", "registry.serve"):
        filters = logging.getLogger(name).filters
        assert sum(isinstance(found, RedactingFilter) for found in filters) == 1, name


def test_uvicorns_trace_of_a_request_scope_carries_no_token_or_identity_number() -> None:
    """``uvicorn --log-level trace`` logs every scope on ``uvicorn.asgi``, with its path and query string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("uvicorn.asgi")
    logger.addHandler(handler)
    scope = {"path": TOKEN_PATH, "raw_path": TOKEN_PATH.encode(), "query_string": b"holder_id_number=E98765432"}
    try:
        guard_server_logs()
        logger.warning("%s - ASGI [%d] Started scope=%s", "127.0.0.1:5000", 2, scope)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "ASGI [2] Started scope=" in text, text
    for secret in (TOKEN_PATH, "E98765432"):
        assert secret not in text, text


def test_arguments_that_do_not_fit_the_format_raise_nothing_and_are_redacted(written: io.StringIO) -> None:
    """As without the filter, a call whose arguments do not fit its format is no exception where it is made (logging
    reports it and goes on), and what is written of it is redacted too (found in review)."""
    guard_server_logs()
    logging.getLogger("registry.api").error("unhandled error on %d", IDENTITY_NUMBER)  # %d of a str

    line = written.getvalue()
    assert "unhandled error on" in line, line
    assert IDENTITY_NUMBER not in line, line
