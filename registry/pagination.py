"""Opaque page cursors for keyset pagination: the sort key of a page's last row, which the next page starts after.
Every paginated list encodes and reads its cursors here, so a cursor that was not ours is refused alike everywhere."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from registry.errors import InvalidInput
from registry.i18n import _

_T = TypeVar("_T")


def encode_cursor(position: Sequence[str | int]) -> str:
    """The cursor for a page's last row, given as the values of the list's sort key."""
    return base64.urlsafe_b64encode(orjson.dumps(list(position))).decode().rstrip("=")


def decode_cursor(cursor: str, read: Callable[[list[Any]], _T]) -> _T:
    """The position a cursor holds, typed by ``read``. Whatever ``read`` cannot make sense of (it raises ValueError
    or TypeError) is the caller's bad ``cursor`` parameter: 422 naming it, never a 500."""
    try:
        position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, list):
            raise TypeError("a cursor holds a list")
        return read(position)
    except (ValueError, TypeError):  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise InvalidInput.field("cursor", _("is not a cursor this service returned")) from None
