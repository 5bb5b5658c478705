"""The registry's notion of "today": China Standard Time, since award dates and validity are Beijing calendar dates."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def today() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()
