"""The signed credential: a compact JWS whose payload is a W3C VC 2.0 credential and an Open Badges 3.0
AchievementCredential — it validates against 1EdTech's OB 3.0 JSON schema, and every JSON-LD term it uses is defined
by a published context: VC 2.0, OB 3.0.3, then the registry's own (``registry/credentials/contexts``, served at
``/contexts/talent-registry/v1``) for ``certificateNumber`` and ``level``.

It is what a holder carries away (attached to the PDF) and can be checked offline against the registry's JWKS.

- The holder is an ``IdentityObject`` with a salted ``identityHash`` (``registry.credentials.identity_hash``): never
  the identity number, clear or masked, nor the birth date it contains.
- One ``credentialStatus`` (OB allows at most one): an entry in the two-bit ``message`` status list, which carries
  both revocation and suspension (``registry.credentials.message_list``).
- Dates are China Standard Time, as online verification judges them: ``validFrom`` and ``awardedDate`` are the start
  of the award day, ``validUntil`` the last second of the last valid day.
- The JWT registered claims beside the credential's members (``iss``, ``sub``, ``jti``, ``iat``) belong to the JOSE
  layer (VC-JOSE-COSE), not to the JSON-LD document: a JSON-LD processor ignores them, by design.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from registry.clock import CHINA_STANDARD_TIME
from registry.credentials.identity_hash import HashedIdentity
from registry.credentials.status_list import issuer_url
from registry.keys import jws
from registry.keys.signers import Signer

CREDENTIAL_TYPE = "vc+jwt"  # VC-JOSE-COSE; distinct from access tokens (at+jwt) and holder tokens (holder+jwt)
REGISTRY_CONTEXT_PATH = "/contexts/talent-registry/v1"
STANDARD_CONTEXTS = (
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
)
LAST_SECOND = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class CredentialFacts:
    certificate_id: str
    number: str
    base_url: str
    issuer_code: str
    issuer_name: str
    cert_type: str
    catalogue_code: str
    catalogue_version: int
    series_zh: str | None
    series_en: str | None
    name_zh: str
    name_en: str
    occupation_code: str | None
    level: str
    level_name_zh: str
    level_name_en: str
    holder_name: str
    holder_identity: HashedIdentity
    holder_subject: str  # the JWT's sub, per certificate (identity_hash.subject_for)
    awarded_on: date
    valid_until: date | None
    issued_at: datetime
    status: dict[str, Any] | None = None
    signed_at: datetime | None = None  # when this credential was signed (defaults to the certificate's issuance)


def contexts(base_url: str) -> list[str]:
    return [*STANDARD_CONTEXTS, f"{base_url}{REGISTRY_CONTEXT_PATH}"]


def day_start(day: date) -> str:
    return datetime.combine(day, time.min, tzinfo=CHINA_STANDARD_TIME).isoformat()


def day_end(day: date) -> str:
    """The last second of ``day`` in China Standard Time: online verification counts the whole day as valid."""
    return datetime.combine(day, LAST_SECOND, tzinfo=CHINA_STANDARD_TIME).isoformat()


def _descriptions(facts: CredentialFacts) -> tuple[str, str]:
    """What the achievement is, and how it is earned, each in Chinese then English (OB types both as strings)."""
    if facts.cert_type == "title":
        series_zh = f"{facts.series_zh}系列" if facts.series_zh else ""
        field_en = f"{facts.series_en} — {facts.name_en}" if facts.series_en else facts.name_en
        what_zh = f"{series_zh} {facts.name_zh} {facts.level_name_zh}职称".strip()
        what_en = f"{field_en}, {facts.level_name_en} professional title"
        how_zh = f"经{facts.issuer_name}评审，取得{series_zh}{facts.name_zh}专业{facts.level_name_zh}职称"
        how_en = f"Passed the evaluation by {facts.issuer_name} for the {facts.level_name_en} title in {field_en}"
    else:
        occupation = f"（{facts.occupation_code}）" if facts.occupation_code else ""
        occupation_en = f" ({facts.occupation_code})" if facts.occupation_code else ""
        what_zh = f"职业技能等级 {facts.name_zh}{occupation} {facts.level_name_zh}"
        what_en = f"Vocational skill level — {facts.name_en}{occupation_en}, {facts.level_name_en}"
        how_zh = f"经{facts.issuer_name}按国家职业标准评价，{facts.name_zh}{occupation}达到{facts.level_name_zh}"
        how_en = (
            f"Assessed by {facts.issuer_name} against the national occupational standard for "
            f"{facts.name_en}{occupation_en}: {facts.level_name_en}"
        )
    return f"{what_zh} / {what_en}", f"{how_zh} / {how_en}"


def _achievement(facts: CredentialFacts) -> dict[str, Any]:
    description, narrative = _descriptions(facts)
    return {
        "id": f"{facts.base_url}/v1/catalogue/{facts.catalogue_code}#v{facts.catalogue_version}",
        "type": ["Achievement"],
        "achievementType": "License" if facts.cert_type == "title" else "Certificate",
        "name": facts.name_zh,
        "nameEn": facts.name_en,
        "description": description,
        "humanCode": facts.catalogue_code,
        "criteria": {"narrative": narrative},
    }


def _subject(facts: CredentialFacts) -> dict[str, Any]:
    return {
        "type": ["AchievementSubject"],
        "name": facts.holder_name,
        "identifier": [facts.holder_identity.as_identity_object()],
        "achievement": _achievement(facts),
        "level": {"code": facts.level, "nameZh": facts.level_name_zh, "nameEn": facts.level_name_en},
        "certificateNumber": facts.number,
    }


def credential_claims(facts: CredentialFacts) -> dict[str, Any]:
    issuer_id = issuer_url(facts.base_url, facts.issuer_code)
    credential: dict[str, Any] = {
        "@context": contexts(facts.base_url),
        "id": f"urn:uuid:{facts.certificate_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "职称证书" if facts.cert_type == "title" else "职业技能等级证书",
        "issuer": {"id": issuer_id, "type": ["Profile"], "name": facts.issuer_name},
        "validFrom": day_start(facts.awarded_on),
        "awardedDate": day_start(facts.awarded_on),
        "credentialSubject": _subject(facts),
    }
    if facts.valid_until is not None:
        credential["validUntil"] = day_end(facts.valid_until)
    if facts.status is not None:
        credential["credentialStatus"] = facts.status
    return {
        **credential,
        # The JOSE layer (VC-JOSE-COSE), not JSON-LD terms.
        "iss": issuer_id,
        "sub": facts.holder_subject,
        "jti": credential["id"],
        # iat is when this JWS was made: a credential fetched after a key rotation is signed by the new key, now.
        "iat": int((facts.signed_at or facts.issued_at).timestamp()),
    }


def sign_credential(facts: CredentialFacts, *, signer: Signer) -> str:
    """The compact JWS, its header naming the signer's algorithm (``Ed25519`` or ``ES256``) and its key's URL as
    ``kid`` (``{issuer}/keys/{kid}``, which dereferences to the JWK)."""
    return jws.encode(credential_claims(facts), signer, typ=CREDENTIAL_TYPE)
