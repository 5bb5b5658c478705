"""A body's filed scope (备案): what it may award, and from which day to which day, both days included
(``FiledScope.covers`` and ``registry.issuers.service.scope_covers``)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from registry.issuers.models import FiledScope
from registry.issuers.service import scope_covers

FIRST_DAY = date(2025, 1, 1)
LAST_DAY = date(2027, 12, 31)
DAY = timedelta(days=1)


def _filing(*, valid_from: date = FIRST_DAY, valid_until: date | None = LAST_DAY) -> FiledScope:
    return FiledScope(
        issuer_id=1,
        cert_type="title",
        catalogue_codes=["ENG-AI", "ENG-EAI"],
        levels=["intermediate", "associate_senior"],
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _covers(
    filing: FiledScope, *, on: date, cert_type: str = "title", code: str = "ENG-EAI", level: str = "intermediate"
) -> bool:
    return filing.covers(cert_type=cert_type, catalogue_code=code, level=level, on=on)


def test_an_award_on_the_first_day_of_the_filing_is_covered() -> None:
    assert _covers(_filing(), on=FIRST_DAY)


def test_an_award_the_day_before_the_filing_starts_is_not_covered() -> None:
    assert not _covers(_filing(), on=FIRST_DAY - DAY)


def test_an_award_on_the_last_day_of_the_filing_is_covered() -> None:
    assert _covers(_filing(), on=LAST_DAY)


def test_an_award_the_day_after_the_filing_ends_is_not_covered() -> None:
    assert not _covers(_filing(), on=LAST_DAY + DAY)


def test_a_filing_without_an_end_date_covers_any_later_award() -> None:
    assert _covers(_filing(valid_until=None), on=date(2099, 12, 31))


def test_a_filing_without_an_end_date_still_starts_on_its_first_day() -> None:
    assert not _covers(_filing(valid_until=None), on=FIRST_DAY - DAY)


def test_a_one_day_filing_covers_exactly_that_day() -> None:
    filing = _filing(valid_from=FIRST_DAY, valid_until=FIRST_DAY)
    assert [_covers(filing, on=FIRST_DAY + offset * DAY) for offset in (-1, 0, 1)] == [False, True, False]


@pytest.mark.parametrize(
    ("cert_type", "code", "level"),
    [
        pytest.param("skill", "ENG-EAI", "intermediate", id="a skill certificate from a title filing"),
        pytest.param("title", "ENG-IC", "intermediate", id="a speciality the body is not filed for"),
        pytest.param("title", "ENG-EAI", "senior", id="a level the body is not filed for"),
    ],
)
def test_an_award_outside_the_filed_type_speciality_or_level_is_not_covered(
    cert_type: str, code: str, level: str
) -> None:
    assert not _covers(_filing(), on=FIRST_DAY, cert_type=cert_type, code=code, level=level)


def test_every_filed_speciality_and_level_is_covered() -> None:
    filing = _filing()
    assert all(
        _covers(filing, on=FIRST_DAY, code=code, level=level)
        for code in ("ENG-AI", "ENG-EAI")
        for level in ("intermediate", "associate_senior")
    )


def test_a_body_with_no_filing_covers_nothing() -> None:
    assert not scope_covers([], cert_type="title", catalogue_code="ENG-EAI", level="intermediate", on=FIRST_DAY)


def test_any_one_filing_of_the_body_is_enough() -> None:
    expired = _filing(valid_from=date(2020, 1, 1), valid_until=FIRST_DAY - DAY)
    current = _filing()
    for filings in ([expired, current], [current, expired]):
        assert scope_covers(filings, cert_type="title", catalogue_code="ENG-EAI", level="intermediate", on=FIRST_DAY)
    assert not scope_covers([expired], cert_type="title", catalogue_code="ENG-EAI", level="intermediate", on=FIRST_DAY)


def test_scope_covers_passes_the_award_through_unchanged() -> None:
    skill = FiledScope(
        issuer_id=1, cert_type="skill", catalogue_codes=["SK-4-01-02-01"], levels=["level_3"], valid_from=FIRST_DAY
    )
    assert scope_covers([skill], cert_type="skill", catalogue_code="SK-4-01-02-01", level="level_3", on=FIRST_DAY)
    for cert_type, code, level, on in [
        ("title", "SK-4-01-02-01", "level_3", FIRST_DAY),
        ("skill", "SK-4-01-02-06", "level_3", FIRST_DAY),
        ("skill", "SK-4-01-02-01", "level_2", FIRST_DAY),
        ("skill", "SK-4-01-02-01", "level_3", FIRST_DAY - DAY),
    ]:
        assert not scope_covers([skill], cert_type=cert_type, catalogue_code=code, level=level, on=on)
