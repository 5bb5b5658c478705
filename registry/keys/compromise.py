"""Marking a signing key compromised, and what the mark cuts off: the one home of these rules. The marking of a body's
key (``registry.issuers.service.mark_key_compromised``, the API's route), of the registry's own token and checkpoint
key (``mark_registry_key``, ``registry keys compromise --registry``) and ``registry keys check|repair``
(``registry.keys.cut_offs``) all apply them.

- A compromise has already happened: a date ahead of now, beyond ``COMPROMISE_CLOCK_LEEWAY``, is refused (422).
- Once marked, the date only moves earlier (``marked_before``: a later one is 409), so a second mark never brings back
  to 'valid' what was signed in between; the same or an earlier date is taken, and audited, again.
- A key in use is retired at once; one that signs JWS (a body's credential key, the registry's token key) is replaced
  by a fresh key of its algorithm. A document key's successor is certified by the next PDF.
- A body's credential key cuts off the body's document (PDF-signing) keys whose time window overlaps its own from the
  compromise date (``cut_off_from``), each dated no earlier than its own start (``dated_for``): their certificates
  are in the PDF root's CRL from then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import clock
from registry.audit import service as audit
from registry.audit.service import Actor
from registry.db import utcnow
from registry.errors import Conflict, FieldError, InvalidInput, NotFound
from registry.i18n import _
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse, SigningKey

# How far ahead of this server's clock a compromise may be dated (the admin's clock may run a little fast).
COMPROMISE_CLOCK_LEEWAY = timedelta(seconds=60)
MARKED = "key.compromised"  # the audit action of every mark; ``registry.keys.cut_offs`` reads a key's own marks
# Keys whose successor is made at once when the key in use is marked: the ones every request signs with.
_REPLACED_AT_ONCE = frozenset({KeyUse.certificate, KeyUse.access_token})


def refuse_future(since: datetime) -> None:
    """A compromise dated ahead of now (beyond the leeway) is a typing error: 422 naming ``compromised_from``."""
    if since > clock.now() + COMPROMISE_CLOCK_LEEWAY:
        raise InvalidInput.field("compromised_from", _("must not be after now: a compromise has already happened"))


def marked_before(key: SigningKey, since: datetime) -> datetime | None:
    """The date ``key`` is already marked compromised from, if any; a later ``since`` is refused (409), for a
    compromise date only moves earlier: a second mark must not bring certificates signed between back to 'valid'."""
    earlier = key.compromised_from if key.status == KeyStatus.compromised else None
    if earlier is not None and since > earlier:
        raise Conflict(
            _(
                "key {kid} is compromised from {since}: that date can only move earlier",
                kid=key.kid,
                since=earlier.isoformat(),
            ),
            errors=[FieldError(field="compromised_from", message=_("after the date already marked"))],
        )
    return earlier


def dated_for(key: SigningKey, since: datetime) -> datetime:
    """A compromise date as ``key`` takes it: a document key's never before its own start (its certificate's
    revocation date in the CRL; nothing it signed is older)."""
    return max(since, key.valid_from) if key.use == KeyUse.document else since


def cut_off_from(credential_key: SigningKey, document_key: SigningKey) -> datetime | None:
    """The date from which ``credential_key``'s compromise cuts ``document_key`` (of the same body) off, or None.

    No column says which credential key a document key served: the time windows do, exactly, since a body has one
    active key of each use at a time (its issuer row is locked by whoever makes or retires one; a rotation or a
    compromise of the active credential key retires its document key with it, and the next PDF certifies a new one).
    A compromised key's window runs from its compromise date (or its start, if later) to its retirement, which the
    mark sets if it was in use: a document key in use during that window is cut off. The window is read from the
    stored rows alone, so a check long after the mark judges as the mark did."""
    since, end = credential_key.compromised_from, credential_key.retired_at
    if credential_key.status != KeyStatus.compromised or since is None or end is None:
        return None
    start = max(credential_key.valid_from, since)
    if start >= end:  # dated after the key stopped signing: nothing it signed, so no document key, is concerned
        return None
    if document_key.valid_from < end and (document_key.retired_at is None or document_key.retired_at > start):
        return dated_for(document_key, since)
    return None


def compromise(keyring: keys.KeyRing, key: SigningKey, since: datetime, *, now: datetime) -> None:
    """Mark ``key`` compromised from ``since`` (retired now if it was active). A compromise date only moves earlier;
    a document key's is never before its own start (``dated_for``)."""
    since = dated_for(key, since)
    if key.status == KeyStatus.compromised and key.compromised_from is not None:
        since = min(since, key.compromised_from)
    key.status = KeyStatus.compromised
    key.compromised_from = since
    if key.retired_at is None:
        key.retired_at = now
    keys.reseal(keyring.box, key)
    keyring.forget(key.kid)


async def document_keys(session: AsyncSession, issuer_id: int | None, *, for_update: bool) -> list[SigningKey]:
    """The body's document keys, oldest first (locked, for a writer that holds the body's turn)."""
    query = (
        select(SigningKey)
        .where(col(SigningKey.issuer_id) == issuer_id, col(SigningKey.use) == KeyUse.document)
        .order_by(col(SigningKey.id))
        .execution_options(populate_existing=True)
    )
    if for_update:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def mark(
    session: AsyncSession,
    keyring: keys.KeyRing,
    *,
    actor: Actor,
    key: SigningKey,
    since: datetime,
    owner: dict[str, Any],
    label: str,
) -> SigningKey:
    """Mark ``key`` compromised from ``since``, with every consequence above, and audit it (``owner``: who the key is
    for, as the audit details say it; ``label``: the kid prefix of a replacement). The caller has refused a future
    date (``refuse_future``) and holds the owner's turn (the body's issuer row, or ``keys.lock_registry_keys``)."""
    earlier = marked_before(key, since)
    was_active = key.status == KeyStatus.active
    now = utcnow()
    compromise(keyring, key, since, now=now)
    cut_off: list[SigningKey] = []
    if key.use == KeyUse.certificate:
        for document_key in await document_keys(session, key.issuer_id, for_update=True):
            date = cut_off_from(key, document_key)
            if date is not None:
                compromise(keyring, document_key, date, now=now)
                cut_off.append(document_key)
    replacement = None
    if was_active and key.use in _REPLACED_AT_ONCE:
        # Of the same algorithm: the body chose it for its relying parties.
        replacement = await keys.create_key(
            session,
            keyring.box,
            use=KeyUse(key.use),
            issuer_id=key.issuer_id,
            label=label,
            algorithm_name=key.algorithm,
        )
    await audit.append(
        session,
        actor=actor,
        action=MARKED,
        object_type="signing_key",
        object_id=key.kid,
        purpose="key management",
        details={
            **owner,
            "compromised_from": since.isoformat(),
            "previously_from": earlier.isoformat() if earlier else None,
            "document_keys": [k.kid for k in cut_off],
            "replacement": replacement.kid if replacement else None,
        },
    )
    await session.flush()
    return key


async def mark_registry_key(
    session: AsyncSession, keyring: keys.KeyRing, *, actor: Actor, kid: str, since: datetime
) -> SigningKey:
    """Mark one of the registry's own token keys compromised — the current one, one still trusted for the tokens it
    signed, or one long outlived and published only for the checkpoints it signed — by the rules every key follows.
    The JWKS and the registry's issuer metadata then list it ``compromised`` with ``compromised_from``: no peer node
    and no token check trusts it any more; the current one is replaced at once, and every token it signed refused."""
    refuse_future(since)
    await keys.lock_registry_keys(session)
    query = select(SigningKey).where(col(SigningKey.kid) == kid).execution_options(populate_existing=True)
    key = (await session.execute(query.with_for_update())).scalar_one_or_none()
    if key is None or key.issuer_id is not None or key.use != KeyUse.access_token:
        raise NotFound(_("no signing key {kid} of the registry", kid=kid))
    return await mark(session, keyring, actor=actor, key=key, since=since, owner={"registry": True}, label="registry")
