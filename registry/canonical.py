"""Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 — the bytes that signatures and hashes cover."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

import orjson


def canonical_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def iso_time(at: datetime) -> str:
    """``at.isoformat()``, remembered: a batch's 10,000 log entries state the same one or two timestamps, and a
    look-up costs a fifth of writing one. Remembered by instant *and* offset: the same instant at +08:00 is written
    otherwise (equal datetimes, which a cache keyed on the datetime alone would confuse)."""
    return _iso_time(at, at.utcoffset())


@functools.lru_cache(maxsize=8)
def _iso_time(at: datetime, offset: timedelta | None) -> str:
    return at.isoformat()
