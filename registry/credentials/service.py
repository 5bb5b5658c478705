"""Signing what the registry publishes: a certificate's credential (for its body and its holder) and a body's status
lists (for everyone), each with the body's current key."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry.certificates.models import StatusList
from registry.certificates.records import CertificateRecord
from registry.certificates.status_lists import Purpose, checked_bits, get_list
from registry.context import RegistryContext
from registry.credentials import credential, message_list, status_list
from registry.credentials.identity_hash import hashed_identity, subject_for
from registry.db import utcnow
from registry.errors import Forbidden, NotFound, NotVouchedFor, ServiceUnavailable
from registry.holders.service import reveal_id_number
from registry.i18n import _
from registry.issuers import service as issuers
from registry.keys import jws
from registry.keys import service as keys
from registry.keys.models import KeyUse, SigningKey
from registry.keys.secrets_box import SecretsBox
from registry.keys.signers import KeySigner
from registry.verification.schemas import VerificationResult
from registry.verification.verifier import Verifier

# What a request for a status list whose seal is broken is told to wait: it stays broken until a status change in the
# list rebuilds it from its certificates (status_lists.set_status), which may be a while.
UNSERVED_LIST_RETRY_AFTER = 300


async def vouched_for(session: AsyncSession, verifier: Verifier, record: CertificateRecord) -> SigningKey:
    """The key a credential for ``record`` would be signed with, if the registry can vouch for the certificate (409
    if its row does not check out, 403 if its body has no active key): what a credential or a PDF is refused for,
    also asked by a HEAD of either, which makes neither."""
    checked = await verifier.of_record(session, record, channel="credential")
    if checked.result is VerificationResult.unknown:
        raise NotVouchedFor(
            _(
                "certificate {number} cannot be confirmed ({reason}); no credential is issued",
                number=record.certificate.number,
                reason=checked.reason,
            )
        )
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=record.issuer.id)
    if key is None:
        raise Forbidden(_("evaluation body {code} has no active signing key", code=record.issuer.code))
    return key


async def signed_credential(
    ctx: RegistryContext, session: AsyncSession, verifier: Verifier, record: CertificateRecord
) -> str:
    """The certificate as a compact JWS credential, signed with its issuing body's current key — but only for what
    the registry can vouch for: a row whose stored signature, key or filing does not check out is never re-signed."""
    key = await vouched_for(session, verifier, record)
    cert, issuer, base_url = record.certificate, record.issuer, ctx.settings.public_base_url
    facts = credential.CredentialFacts(
        certificate_id=str(cert.id),
        number=cert.number,
        base_url=base_url,
        issuer_code=issuer.code,
        issuer_name=issuer.name,
        cert_type=cert.cert_type,
        catalogue_code=cert.catalogue_code,
        catalogue_version=cert.catalogue_version,
        series_zh=record.entry.series_zh,
        series_en=record.entry.series_en,
        name_zh=record.entry.name_zh,
        name_en=record.entry.name_en,
        occupation_code=record.entry.occupation_code,
        level=cert.level,
        level_name_zh=record.level.name_zh,
        level_name_en=record.level.name_en,
        holder_name=cert.holder_name,
        # The clear number is only hashed (salted, per certificate), never put in the credential.
        holder_identity=hashed_identity(
            ctx.box,
            certificate_id=str(cert.id),
            id_type=record.holder.id_type,
            id_number=reveal_id_number(ctx, record.holder),
        ),
        holder_subject=subject_for(ctx.box, str(cert.id)),
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        issued_at=cert.issued_at,
        signed_at=utcnow(),
        status=(
            status_list.entry_for(
                base_url=base_url, issuer_code=issuer.code, list_id=cert.status_list_id, index=cert.status_index
            )
            if cert.status_list_id is not None and cert.status_index is not None
            else None
        ),
    )
    return credential.sign_credential(facts, signer=_signer(ctx, key, issuer_code=issuer.code))


def _signer(ctx: RegistryContext, key: SigningKey, *, issuer_code: str) -> KeySigner:
    """The body's key, naming itself by its URL (which dereferences to its JWK) rather than its short kid."""
    issuer_id = status_list.issuer_url(ctx.settings.public_base_url, issuer_code)
    return ctx.keyring.signer(key).named(keys.key_url(issuer_id, key.kid))


async def status_list_credential(ctx: RegistryContext, session: AsyncSession, *, issuer_code: str, name: str) -> str:
    """A body's status list as a signed BitstringStatusListCredential (compact JWS, typ vc+jwt): a stored one-bit
    list (``{list_id}-revocation``, ``{list_id}-suspension``) or the two-bit ``{list_id}-message`` list composed from
    them."""
    parsed = status_list.parse_list_name(name)
    issuer = await issuers.get_by_code(session, issuer_code)
    if parsed is None or issuer is None:
        raise NotFound(_("no status list {issuer}/{name}", issuer=issuer_code, name=name))
    bits = await _list_bits(session, ctx.box, issuer_id=issuer.id or 0, name=parsed)
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    if bits is None or key is None:
        raise NotFound(_("no status list {issuer}/{name}", issuer=issuer_code, name=name))
    base_url = ctx.settings.public_base_url
    claims = status_list.list_credential_claims(
        url=status_list.list_url(base_url, issuer.code, parsed),
        issuer_id=status_list.issuer_url(base_url, issuer.code),
        purpose=parsed.purpose,
        bits=bits,
        validity=timedelta(seconds=ctx.settings.status_list_validity_seconds),
    )
    return jws.encode(claims, _signer(ctx, key, issuer_code=issuer.code), typ=credential.CREDENTIAL_TYPE)


async def _list_bits(
    session: AsyncSession, box: SecretsBox, *, issuer_id: int, name: status_list.ListName
) -> bytes | None:
    """The bits to sign for ``name``, as ``status_lists.checked_bits`` vouches for them: stored ones under an intact
    seal. A list whose seal is missing or broken is never signed, as found or rebuilt: 503 with Retry-After (an
    offline verifier keeps its cached list or fails closed), and an ERROR names the list."""
    if name.stored is not None:
        row = await get_list(session, issuer_id=issuer_id, list_id=name.list_id, purpose=name.stored)
        return _vouched(checked_bits(box, [row]))[name.stored] if row is not None else None
    # Both rows in one statement, so from one snapshot: read one at a time (READ COMMITTED), a revocation committing
    # between them showed a suspended-then-revoked certificate as neither, that is valid.
    query = select(StatusList).where(
        col(StatusList.issuer_id) == issuer_id,
        col(StatusList.list_id) == name.list_id,
        col(StatusList.purpose).in_([Purpose.revocation, Purpose.suspension]),
    )
    rows = list((await session.execute(query)).scalars())
    if len(rows) != len(Purpose):
        return None
    bits = _vouched(checked_bits(box, rows))
    return message_list.compose(bits[Purpose.revocation], bits[Purpose.suspension])


def _vouched(bits: dict[Purpose, bytes] | None) -> dict[Purpose, bytes]:
    if bits is None:
        raise ServiceUnavailable(_("Temporarily unavailable"), retry_after=UNSERVED_LIST_RETRY_AFTER)
    return bits
