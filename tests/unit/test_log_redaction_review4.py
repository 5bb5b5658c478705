"""Review 4 of ``api.logs.redact``, which every log line passes through: an identity number between whose groups a
dash other than ASCII's (as a word processor types it: ‐ ‑ – — −), spaced separators or two different ones stood was
written in full; and a line holding a long run of slashes (a client's path ``//////…``, which plain uvicorn's access
line writes) took seconds to redact, the verification-path pattern being tried again at every slash of the run."""

from __future__ import annotations

import logging

import pytest

from api.logs import _VERIFICATION_PATH, RedactingFilter, redact

GROUPED = [
    "110105\u201019491231\u2010002X",  # hyphen
    "110105\u201119491231\u2011002X",  # non-breaking hyphen (NFKC makes it U+2010)
    "110105\u201319491231\u2013002X",  # en dash
    "110105\u201419491231\u2014002X",  # em dash
    "110105\u221219491231\u2212002X",  # minus sign
    "110105 - 19491231 - 002X",
    "110105 / 19491231 / 002X",
    "110105  19491231  002X",
    "110105 19491231-002X",
    "１１０１０５—１９４９１２３１—００２Ｘ",  # full-width, as the registry's own JSON lines may hold it
]


@pytest.mark.parametrize("number", GROUPED)
async def test_an_identity_number_in_groups_however_separated_is_masked(number: str) -> None:
    line = redact(f"holder {number} looked up")
    assert line == "holder [identity number] looked up", line


@pytest.mark.parametrize(
    "kept",
    [
        "kid cert-20261205-1a2b3c4d rotated",
        "key cert-20261205-12345678",
        "at 2026-12-05T17:04:05.123456+00:00",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "ids 123456, 12345678, 1234",
        "run 1234567 12345678 1234",
        "certificate BJ-T-2026-00001234-7",
    ],
)
async def test_what_only_looks_numeric_is_kept(kept: str) -> None:
    assert redact(kept) == kept


async def test_a_verification_path_is_read_from_the_first_slash_of_a_run_only() -> None:
    # Tried again at each slash of a run, the pattern's work grew with the square of the run: a 10 KB path of slashes
    # cost seconds on every line that held it.
    text = "/" * 10_000 + "v/Kq3vX9mZpL2wR7tYbN4cJ8dF"
    assert _VERIFICATION_PATH.match(text, 1) is None
    assert _VERIFICATION_PATH.match(text, 9_999) is None
    assert redact(text) == "/" * 10_000 + "v/[redacted]"


async def test_uvicorns_access_line_for_a_path_of_slashes_is_redacted() -> None:
    # No verification path follows the run: each attempt at it failed only after reading the whole run (seconds).
    path = "/" * 20_000 + "x/Kq3vX9mZpL2wR7tYbN4cJ8dF?x=1"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", path, "1.1", 404),
        None,
    )
    assert RedactingFilter().filter(record)
    assert isinstance(record.args, tuple)
    assert record.args[2] == "/" * 20_000 + "x/[redacted]"
    assert "Kq3vX9mZpL2wR7tYbN4cJ8dF" not in record.getMessage()
