"""The registry's clock: "now" for deadlines, and "today" in China Standard Time, since award dates and validity are
Beijing calendar dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def now() -> datetime:
    """The moment (UTC) the registry judges deadlines against: a client's old secret, a retired token key. Call it as
    ``clock.now()``, so a test can move time on by replacing this function rather than by sleeping."""
    return datetime.now(UTC)


def today() -> date:
    """The Beijing calendar date at ``now()``: from 16:00 UTC it is already tomorrow in China."""
    return now().astimezone(CHINA_STANDARD_TIME).date()
