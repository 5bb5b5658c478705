"""The signed credential: a compact JWS whose payload is a W3C VC 2.0 / Open Badges 3.0 shaped credential.

It is what a holder carries away (attached to the PDF) and can be checked offline against the registry's JWKS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.credentials.status_list import issuer_url

CREDENTIAL_TYPE = "vc+jwt"  # VC-JOSE-COSE; distinct from access tokens (at+jwt) and holder tokens (holder+jwt)
CONTEXTS = ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]


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
    name_zh: str
    name_en: str
    occupation_code: str | None
    level: str
    level_name_zh: str
    level_name_en: str
    holder_name: str
    holder_id_type: str
    holder_id_masked: str
    holder_ref: str
    awarded_on: date
    valid_until: date | None
    issued_at: datetime
    status_list: list[dict[str, Any]] | None = None
    signed_at: datetime | None = None  # when this credential was signed (defaults to the certificate's issuance)


def _day_start(day: date) -> str:
    return f"{day.isoformat()}T00:00:00+08:00"


def credential_claims(facts: CredentialFacts) -> dict[str, Any]:
    issuer_id = issuer_url(facts.base_url, facts.issuer_code)
    achievement: dict[str, Any] = {
        "id": f"{facts.base_url}/v1/catalogue/{facts.catalogue_code}#v{facts.catalogue_version}",
        "type": ["Achievement"],
        "achievementType": "License" if facts.cert_type == "title" else "Certificate",
        "name": facts.name_zh,
        "name_en": facts.name_en,
        "catalogue_code": facts.catalogue_code,
        "criteria": {"narrative": f"{facts.series_zh or facts.occupation_code or ''} {facts.name_zh}".strip()},
    }
    credential: dict[str, Any] = {
        "@context": CONTEXTS,
        "id": f"urn:uuid:{facts.certificate_id}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "职称证书" if facts.cert_type == "title" else "职业技能等级证书",
        "issuer": {"id": issuer_id, "type": ["Profile"], "name": facts.issuer_name},
        "validFrom": _day_start(facts.awarded_on),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "name": facts.holder_name,
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": facts.holder_id_type,
                    "identityMasked": facts.holder_id_masked,
                }
            ],
            "achievement": achievement,
            "level": {"code": facts.level, "name_zh": facts.level_name_zh, "name_en": facts.level_name_en},
            "awardedDate": facts.awarded_on.isoformat(),
            "certificateNumber": facts.number,
        },
    }
    if facts.valid_until is not None:
        credential["validUntil"] = _day_start(facts.valid_until)
    if facts.status_list is not None:
        credential["credentialStatus"] = facts.status_list
    claims: dict[str, Any] = {
        **credential,
        "iss": issuer_id,
        "sub": f"urn:talent-registry:holder:{facts.holder_ref[:32]}",
        "jti": credential["id"],
        # iat is when this JWS was made: a credential fetched after a key rotation is signed by the new key, now.
        "iat": int((facts.signed_at or facts.issued_at).timestamp()),
    }
    return claims


def sign_credential(facts: CredentialFacts, *, key: Ed25519PrivateKey, kid: str) -> str:
    return jwt.encode(credential_claims(facts), key, algorithm="EdDSA", headers={"kid": kid, "typ": CREDENTIAL_TYPE})
