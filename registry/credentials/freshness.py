"""How old a signed status list is, and whether it is still the registry's current word.

A list says when it was signed (``validFrom``, else its ``iat``), how long anyone may keep it (``ttl``, Bitstring
Status List v1.0 §2.2, in milliseconds; this registry's documented ``CACHE_SECONDS`` when it says none) and until when
it counts offline (``validUntil``). This registry signs ``validFrom`` as the minute a list is served in, so a list
fetched just now may say up to that minute more: a list older than its ``ttl`` and that minute is *stale* — a copy
kept past what the registry allows, which a verifier that may fetch replaces with the current one
(registry.credentials.sources). Offline, a saved list counts until its ``validUntil`` (registry.credentials.offline);
the report says how old it is either way (``window``). A ``ttl`` longer than ``MOST_KEPT`` (a year) is no ttl a
registry means — a damaged or doctored file's, which a ``timedelta`` may not even hold — and counts as none given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from registry.auth.numeric_dates import is_numeric_date
from registry.credentials.status_list import CACHE_SECONDS, VALID_FROM_ROUNDING
from registry.i18n import _

MOST_KEPT = timedelta(days=366)  # the longest ttl taken as said; this registry's is CACHE_SECONDS


def signed_at(list_claims: dict[str, Any]) -> datetime | None:
    """When the list was signed: its ``validFrom`` (a time with its zone), else its ``iat``; None if it says neither."""
    valid_from = _moment(list_claims.get("validFrom"))
    if valid_from is not None:
        return valid_from
    issued = list_claims.get("iat")
    if is_numeric_date(issued) and isinstance(issued, int | float):
        try:
            return datetime.fromtimestamp(issued, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def kept_for(list_claims: dict[str, Any]) -> timedelta:
    """How long the registry lets anyone keep the list: its ``ttl`` (a whole number of milliseconds, at most
    ``MOST_KEPT``), else ``CACHE_SECONDS``."""
    subject = list_claims.get("credentialSubject")
    ttl = subject.get("ttl") if isinstance(subject, dict) else None
    if isinstance(ttl, int) and not isinstance(ttl, bool) and 0 <= ttl <= MOST_KEPT // timedelta(milliseconds=1):
        return timedelta(milliseconds=ttl)
    return timedelta(seconds=CACHE_SECONDS)


def stale(list_claims: dict[str, Any], now: datetime) -> bool:
    """Whether the list is older than it may be kept (its ``ttl``, plus the minute ``validFrom`` is rounded to); a
    list that says not when it was signed is as good as stale."""
    signed = signed_at(list_claims)
    return signed is None or now - signed > kept_for(list_claims) + timedelta(seconds=VALID_FROM_ROUNDING)


def duration(span: timedelta) -> str:
    """A duration said the way a person reads it: ``45 s``, ``3 min``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h", days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min", hours=hours, minutes=minutes)
    if minutes:
        return _("{minutes} min", minutes=minutes)
    return _("{seconds} s", seconds=seconds)


def window(list_claims: dict[str, Any], now: datetime) -> str:
    """How old a list is and until when it counts: what a status line says of the list it read."""
    signed, until = signed_at(list_claims), _moment(list_claims.get("validUntil"))
    shown_until = _utc(until) if until is not None else str(list_claims.get("validUntil"))[:40]
    if signed is None:
        return _("status list signed at a time it does not say, valid until {until}", until=shown_until)
    return _(
        "status list signed {signed}, {age} ago, valid until {until}",
        signed=_utc(signed),
        age=duration(now - signed),
        until=shown_until,
    )


def _moment(value: Any) -> datetime | None:
    """A dateTimeStamp's moment (a time with its zone), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
