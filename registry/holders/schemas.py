"""The identity-number field validator shared by every request that names a holder (issuance, holder sign-in)."""

from __future__ import annotations

from pydantic import ValidationInfo

from registry.errors import InvalidIdentityNumber
from registry.holders.identity import normalize_id_number
from registry.i18n import message_of


def checked_id_number(value: str, info: ValidationInfo) -> str:
    """Field validator for ``id_number`` beside an ``id_type`` field: normalised, or a ValueError naming why."""
    id_type = info.data.get("id_type")
    if id_type is None:
        return value  # id_type already failed and is reported on its own
    try:
        return normalize_id_number(id_type, value)
    except InvalidIdentityNumber as exc:
        raise ValueError(message_of(exc)) from None
