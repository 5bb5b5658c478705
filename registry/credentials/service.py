"""Signing what the registry publishes: a certificate's credential (for its body and its holder) and a body's status
lists (for everyone), each with the body's current key."""

from __future__ import annotations

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from registry.certificates.records import CertificateRecord
from registry.certificates.status_lists import get_list
from registry.context import RegistryContext
from registry.credentials import credential, status_list
from registry.db import utcnow
from registry.errors import Forbidden, NotFound, NotVouchedFor
from registry.issuers import service as issuers
from registry.keys import service as keys
from registry.keys.models import KeyUse
from registry.verification.schemas import VerificationResult
from registry.verification.verifier import Verifier


async def signed_credential(
    ctx: RegistryContext, session: AsyncSession, verifier: Verifier, record: CertificateRecord
) -> str:
    """The certificate as a compact JWS credential, signed with its issuing body's current key — but only for what
    the registry can vouch for: a row whose stored signature, key or filing does not check out is never re-signed."""
    checked = await verifier.of_record(session, record, channel="credential")
    if checked.result is VerificationResult.unknown:
        raise NotVouchedFor(
            f"certificate {record.certificate.number} cannot be confirmed ({checked.reason}); no credential is issued"
        )
    cert, issuer, base_url = record.certificate, record.issuer, ctx.settings.public_base_url
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    if key is None:
        raise Forbidden(f"evaluation body {issuer.code} has no active signing key")
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
        name_zh=record.entry.name_zh,
        name_en=record.entry.name_en,
        occupation_code=record.entry.occupation_code,
        level=cert.level,
        level_name_zh=record.level.name_zh,
        level_name_en=record.level.name_en,
        holder_name=cert.holder_name,
        holder_id_type=record.holder.id_type,
        holder_id_masked=record.holder.id_masked,
        holder_ref=record.holder.id_index,
        awarded_on=cert.awarded_on,
        valid_until=cert.valid_until,
        issued_at=cert.issued_at,
        signed_at=utcnow(),
        status_list=(
            status_list.entries_for(
                base_url=base_url, issuer_code=issuer.code, list_id=cert.status_list_id, index=cert.status_index
            )
            if cert.status_list_id is not None and cert.status_index is not None
            else None
        ),
    )
    return credential.sign_credential(facts, key=ctx.keyring.private_key(key), kid=key.kid)


async def status_list_credential(ctx: RegistryContext, session: AsyncSession, *, issuer_code: str, name: str) -> str:
    """A body's status list as a signed BitstringStatusListCredential (compact JWS, typ vc+jwt)."""
    parsed = status_list.parse_list_name(name)
    issuer = await issuers.get_by_code(session, issuer_code)
    if parsed is None or issuer is None:
        raise NotFound(f"no status list {issuer_code}/{name}")
    list_id, purpose = parsed
    row = await get_list(session, issuer_id=issuer.id or 0, list_id=list_id, purpose=purpose)
    key = await keys.active_key(session, use=KeyUse.certificate, issuer_id=issuer.id)
    if row is None or key is None:
        raise NotFound(f"no status list {issuer_code}/{name}")
    base_url = ctx.settings.public_base_url
    claims = status_list.list_credential_claims(
        url=status_list.list_url(base_url, issuer.code, list_id, purpose),
        issuer_id=status_list.issuer_url(base_url, issuer.code),
        purpose=purpose,
        row=row,
    )
    return jwt.encode(
        claims,
        ctx.keyring.private_key(key),
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": credential.CREDENTIAL_TYPE},
    )
