"""Shared building blocks for request and response schemas."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


def _cleaner(max_length: int) -> Callable[[str], str]:
    def clean(value: str) -> str:
        """NFC, single spaces, no control or invisible characters: what is stored is what a person would read."""
        value = unicodedata.normalize("NFC", value)
        if _CONTROL.search(value):
            raise ValueError("must not contain control or invisible characters")
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        if len(value) > max_length:  # normalisation can lengthen a string; the column cannot
            raise ValueError(f"must be at most {max_length} characters")
        return value

    return clean


Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_cleaner(64))]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_cleaner(128))]
Text256 = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_cleaner(256))]


Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9][A-Z0-9-]{1,47}$")]


class StrictInput(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_max_length=4096)


def person_name_key(name: str) -> str:
    """How names are compared in public verification: compatibility-normalised, case- and space-insensitive."""
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())
