"""Share links a holder created (who verified a certificate is registry.verification.models)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from registry.db import UTCDateTime, new_uuid, utcnow


class ShareLink(SQLModel, table=True):
    """A link that opens one certificate's verification page for a stated purpose, until it expires or is withdrawn.
    Only a hash of the link's token is kept: the database alone cannot open a link."""

    __tablename__ = "share_links"

    id: uuid.UUID = Field(default_factory=new_uuid, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    certificate_id: uuid.UUID = Field(foreign_key="certificates.id", index=True)
    holder_index: str = Field(max_length=64, index=True)  # the holder's blind index, as in holder tokens
    purpose: str = Field(max_length=32)
    purpose_text: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
