"""Review: a log call whose arguments do not fit its format is, as without ``RedactingFilter``, no exception at the
call site (logging reports it and goes on) — and what is written of it is redacted too."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from api.logs import guard_server_logs

IDENTITY_NUMBER = "11010519491231002X"


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("registry.api")
    logger.addHandler(handler)
    guard_server_logs()
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_arguments_that_do_not_fit_the_format_raise_nothing_and_are_redacted(written: io.StringIO) -> None:
    logging.getLogger("registry.api").error("unhandled error on %d", IDENTITY_NUMBER)  # %d of a str

    line = written.getvalue()
    assert "unhandled error on" in line, line
    assert IDENTITY_NUMBER not in line, line
