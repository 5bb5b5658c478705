"""Certificates begun before they are recorded: everything random of each drawn (id, claim code, verify token, a first
number) and, for a large batch, the signing handed to the worker processes a screened chunk at a time, with the facts
each certificate will most likely be issued with — so the workers sign while the serving process screens the next rows
and records the holders. ``recording.record`` takes what was begun over, and seals again any row whose final facts
differ (``recording._sealed_as_recorded``): what is stored is always signed over what is stored."""

from __future__ import annotations

import base64
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from registry import workers
from registry.auth.claim_codes import new_claim_codes
from registry.certificates import minting, numbering
from registry.certificates.awards import Accepted
from registry.context import RegistryContext
from registry.db import utcnow
from registry.holders.identity import mask_id_number
from registry.issuers.models import Issuer
from registry.keys import service as keys
from registry.keys.models import KeyUse

_TOKEN_BYTES = 18  # of a verify token: 144 random bits


@dataclass(frozen=True, slots=True)
class Drawn:
    """What is drawn for a certificate before anything is looked up: id, claim code, verify token (144 random bits)
    and a first number (which ``recording._fresh_numbers`` replaces if it is taken)."""

    id: uuid.UUID
    claim_code: str = field(repr=False)  # secrets: never in a log line or a traceback's locals
    number: str
    verify_token: str = field(repr=False)


def draw(accepted: Sequence[Accepted], *, issuer: Issuer) -> list[Drawn]:
    """Everything random of each certificate: the numbers, claim codes and verify tokens of a chunk of rows each from
    one call to the system's random source (ten thousand calls of each cost a batch about a tenth of a second; a
    number whose check would be "*" is drawn again on its own); ids stay ``uuid4()``, one per row."""
    count = len(accepted)
    tokens = base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES * count)).decode("ascii")
    step = _TOKEN_BYTES * 4 // 3  # no padding: 18 bytes are 24 characters, as secrets.token_urlsafe(18) makes them
    return [
        Drawn(uuid.uuid4(), claim_code, number, tokens[at : at + step])
        for claim_code, number, at in zip(
            new_claim_codes(count), new_numbers_for(accepted, issuer=issuer), range(0, len(tokens), step), strict=True
        )
    ]


def new_numbers_for(accepted: Sequence[Accepted], *, issuer: Issuer) -> list[str]:
    """A fresh number for each award, of its type and year, in the body's region."""
    kinds: list[tuple[Literal["title", "skill"], int]] = [
        (item.award.cert_type.value, item.award.awarded_on.year) for item in accepted
    ]
    return numbering.new_numbers(region=issuer.region, kinds=kinds)


def facts_of(
    accepted: Accepted, *, certificate_id: uuid.UUID, claim_code: str, number: str, id_type: str, id_masked: str
) -> minting.RowFacts:
    """What a certificate is signed over (``minting.RowFacts``)."""
    award, entry = accepted.award, accepted.entry
    return (
        str(certificate_id),
        number,
        claim_code,
        award.cert_type.value,
        entry.code,
        entry.version,
        award.level,
        award.holder_name,
        award.awarded_on,
        award.valid_until,
        award.evaluation_batch,
        id_type,
        id_masked,
        accepted.holder.index,
    )


def _likely_facts(item: Accepted, drawn: Drawn) -> minting.RowFacts:
    """The facts a certificate will most likely be issued with: its holder masked as masking does today (a holder
    known only by index goes with none: only the database knows it)."""
    holder = item.holder
    masked = mask_id_number(holder.id_type, holder.id_number) if holder.id_number else ""
    return facts_of(
        item,
        certificate_id=drawn.id,
        claim_code=drawn.claim_code,
        number=drawn.number,
        id_type=holder.id_type.value,
        id_masked=masked,
    )


@dataclass(repr=False)  # it holds claim codes and the signer: never in a log line or a traceback's locals
class Begun:
    """Certificates begun for one body (``begin``): what every one of them shares — the body, the signing key's kid,
    the time of issue, the certificate a correction supersedes, the sealing — and, as ``add`` is given awards, what
    was drawn for each and what was handed to the workers."""

    issuer: Issuer
    kid: str
    issued_at: datetime
    supersedes: str | None
    sealing: minting.Sealing
    portable: minting.Sealing | None  # for the workers; None keeps the signing in this process
    pool: ProcessPoolExecutor | None
    accepted: list[Accepted] = field(default_factory=list)
    drawn: list[Drawn] = field(default_factory=list)
    facts: list[minting.RowFacts] = field(default_factory=list)  # as handed over, row by row
    handed: list[minting.Handed] = field(default_factory=list)
    stopped: bool = False

    def add(self, accepted: Sequence[Accepted]) -> None:
        """Begins the next accepted awards (after those already added)."""
        if self.stopped or not accepted:
            return
        drawn = draw(accepted, issuer=self.issuer)
        self.accepted += accepted
        self.drawn += drawn
        if self.pool is None or self.portable is None:
            return
        facts = [_likely_facts(item, item_drawn) for item, item_drawn in zip(accepted, drawn, strict=True)]
        self.facts += facts
        self.handed.append(minting.hand_over(self.pool, self.portable, facts))

    def takes(self, accepted: Sequence[Accepted], *, issuer: Issuer, supersedes: str | None) -> bool:
        """Whether these are exactly the awards begun, in order, for the same body and the same purpose."""
        begun = self.accepted
        if self.stopped or self.issuer is not issuer or self.supersedes != supersedes or len(accepted) != len(begun):
            return False
        return all(a is b for a, b in zip(accepted, begun, strict=True))

    def cancel(self) -> None:
        """Nothing more is begun, and what the workers have not started is dropped."""
        self.stopped = True
        for handed in self.handed:
            handed.cancel()


async def begin(
    ctx: RegistryContext, session: AsyncSession, *, issuer: Issuer, rows: int, supersedes: str | None = None
) -> Begun | None:
    """Ready to begin up to ``rows`` certificates of ``issuer`` (``Begun.add``) with its active signing key, dated
    now; None when it has none (``recording.record`` refuses that). Called once the body's issuance turn is taken
    (``awards.Screener.open``), so the key and the time are those of the turn, as for every other issuance."""
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id or 0)
    if key is None:
        return None
    issued_at = utcnow().replace(microsecond=0)
    sealing = minting.Sealing(ctx.box, ctx.keyring.signer(key), issuer.code, issued_at)
    settings = ctx.settings
    pool = workers.pool_for(rows, count=settings.batch_worker_count, min_rows=settings.batch_parallel_min_rows)
    portable = sealing.portable() if pool is not None else None
    return Begun(issuer, key.kid, issued_at, supersedes, sealing, portable, pool)


@dataclass(repr=False)
class Beginning:
    """A batch's certificates, to be begun while its rows are screened: ``issuance.screen_rows`` begins them
    (``start``) once the body's issuance turn is taken, then a screened chunk at a time; ``recording.record`` takes
    them over (``begun``)."""

    enabled: bool
    begun: Begun | None = None

    async def start(self, ctx: RegistryContext, session: AsyncSession, *, issuer: Issuer, rows: int) -> None:
        if self.enabled and self.begun is None:
            self.begun = await begin(ctx, session, issuer=issuer, rows=rows)


@contextlib.asynccontextmanager
async def beginning(*, enabled: bool = True) -> AsyncIterator[Beginning]:
    """A ``Beginning`` (a dry run's is not ``enabled``: it begins nothing), cancelled however the block ends."""
    started = Beginning(enabled)
    try:
        yield started
    finally:
        if started.begun is not None:
            started.begun.cancel()
