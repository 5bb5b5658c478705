"""Every day the registry is given (awards, validity, filed scopes, catalogue entries, recognition rules, search
bounds) is ``YYYY-MM-DD``: what pydantic alone would also read as a day is refused as the date field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from registry.catalogue.schemas import CatalogueEntryCreate
from registry.certificates.schemas import CertificateIssue, Correction
from registry.issuers.schemas import FiledScopeIn
from registry.recognition.schemas import RuleCreate
from registry.schemas import Day


class Dated(BaseModel):
    day: Day


@pytest.mark.parametrize("value", ["2026-06-30", date(2026, 6, 30)])
def test_a_day_is_written_yyyy_mm_dd(value: Any) -> None:
    assert Dated(day=value).day == date(2026, 6, 30)


@pytest.mark.parametrize(
    "value",
    [
        1782777600,  # seconds since 1970
        "1782777600",
        1782777600.0,
        "20260630",  # read as seconds
        46203,  # a spreadsheet's serial day
        0,
        "2026-06-30T00:00:00Z",
        "2026-06-30T00:00:00",
        datetime(2026, 6, 30, tzinfo=UTC),
        "２０２６-０６-３０",
        " 2026-06-30",
        "2026-6-30",
        None,
        True,
    ],
)
def test_anything_else_is_refused_as_a_date(value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        Dated(day=value)
    assert [error["type"] for error in refused.value.errors()] == ["date_type"]


def test_a_real_calendar_day_is_still_checked() -> None:
    with pytest.raises(ValidationError) as refused:
        Dated(day="2026-02-30")
    assert refused.value.errors()[0]["type"] == "date_from_datetime_parsing"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (CertificateIssue, "awarded_on"),
        (CertificateIssue, "valid_until"),
        (Correction, "awarded_on"),
        (FiledScopeIn, "valid_from"),
        (CatalogueEntryCreate, "effective_from"),
        (RuleCreate, "effective_from"),
        (RuleCreate, "effective_until"),
    ],
)
def test_every_day_a_body_gives_is_one(model: type[BaseModel], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({field: 1782777600})
    assert any(error["loc"] == (field,) and error["type"] == "date_type" for error in refused.value.errors())
