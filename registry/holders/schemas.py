"""The identity-number field validator shared by every request that names a holder (issuance, holder sign-in)."""

from __future__ import annotations

from pydantic import ValidationInfo

from registry.errors import InvalidIdentityNumber
from registry.holders.identity import normalize_id_number
from registry.i18n import message_of

TODAY = "today"  # validation context: the day a resident id's birth date may not be after (default: clock.today())


def checked_id_number(value: str, info: ValidationInfo) -> str:
    """Field validator for ``id_number`` beside an ``id_type`` field: normalised, or a ValueError naming why. A batch
    gives its day in the validation context (``TODAY``), so that every row is judged on the same day, wherever it is
    validated (``rows.parsed_chunks``)."""
    id_type = info.data.get("id_type")
    if id_type is None:
        return value  # id_type already failed and is reported on its own
    today = info.context.get(TODAY) if isinstance(info.context, dict) else None
    try:
        return normalize_id_number(id_type, value, today=today)
    except InvalidIdentityNumber as exc:
        raise ValueError(message_of(exc)) from None
