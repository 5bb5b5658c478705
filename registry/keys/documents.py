"""PDF-signing keys: the registry's own root CA and, per evaluation body, a document-signing key it certifies.

PDF readers (Adobe Reader, Foxit, WPS, pyHanko) check a PAdES signature against an X.509 chain, not a JWKS, and most of
them verify ECDSA P-256 but not Ed25519: so these keys are P-256 with certificates, unlike the Ed25519 credential keys.
They are stored as the other keys are (a ``SigningKey`` row, the private key wrapped by the master-key box, the row
sealed) and are made on first use: the root when the first PDF is signed, a body's key when its first PDF is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from registry import bulk
from registry.db import utcnow
from registry.keys import service as keys
from registry.keys.models import KeyStatus, KeyUse, SigningKey
from registry.keys.secrets_box import SecretsBox

ROOT_NAME = "Talent Registry PDF Signing Root"
ROOT_KID = "pdf-root-1"
ROOT_VALIDITY = timedelta(days=365 * 30)
# A document certificate outlives its key's active period: readers validate a signature at its signing time, so a
# retired key's PDFs keep validating while its certificate is in date.
DOCUMENT_VALIDITY = timedelta(days=365 * 20)
# Adobe's and RFC 9336's document-signing purposes, and S/MIME protection, which older readers look for.
_ADOBE_AUTHENTIC_DOCUMENTS = x509.ObjectIdentifier("1.2.840.113583.1.1.5")
_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True, slots=True)
class DocumentSigner:
    """What signing one PDF needs: the key, its certificate and the root's certificate."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    root: x509.Certificate


async def root_key(session: AsyncSession, box: SecretsBox) -> SigningKey:
    """The registry's PDF-signing root, created on first use (self-signed, ECDSA P-256, 30 years) — but not as the
    first key of a database whose master key is unproven (``keys.refuse_unproven_first_key``): its anonymous routes
    (``/.well-known/pdf-signing-root.pem``) would bind the database to whatever key the process was started with."""
    key = await keys.active_key(session, use=KeyUse.document_root)
    if key is not None:
        return key
    await keys.refuse_unproven_first_key(session)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Talent Registry"),
            x509.NameAttribute(NameOID.COMMON_NAME, ROOT_NAME),
        ]
    )
    now = utcnow()
    certificate = (
        _builder(subject=name, issuer=name, public_key=private.public_key(), now=now, lifetime=ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
        .sign(private, hashes.SHA256())
    )
    root = _row(box, use=KeyUse.document_root, issuer_id=None, kid=ROOT_KID, private=private, certificate=certificate)
    try:
        # One root only: two processes making it at once collide on the kid, and the loser takes the winner's.
        async with session.begin_nested():
            session.add(root)
    except IntegrityError:
        winner = await keys.active_key(session, use=KeyUse.document_root)
        if winner is None:
            raise
        return winner
    return root


async def document_signer(
    session: AsyncSession,
    box: SecretsBox,
    *,
    issuer_id: int,
    issuer_code: str,
    issuer_name: str,
    crl_url: str | None = None,
) -> DocumentSigner:
    """The body's active document key (made and certified by the root on first use) with its chain; ``crl_url``,
    where the root's revocation list is served, goes into a new certificate so readers can find it."""
    root = await root_key(session, box)
    root_certificate = certificate_of(root)
    key = await keys.active_key(session, use=KeyUse.document, issuer_id=issuer_id)
    if key is None:
        await body_turn(session, issuer_id)
        key = await keys.active_key(session, use=KeyUse.document, issuer_id=issuer_id)  # made while this one waited
    if key is None:
        key = await _certify_new_key(
            session,
            box,
            root=root,
            issuer_id=issuer_id,
            issuer_code=issuer_code,
            issuer_name=issuer_name,
            crl_url=crl_url,
        )
    keys.note_signing_key(session, key.kid)  # re-checked once the answer's audit record holds the chain
    return DocumentSigner(
        kid=key.kid, private_key=private_key_of(box, key), certificate=certificate_of(key), root=root_certificate
    )


async def body_turn(session: AsyncSession, issuer_id: int) -> None:
    """The body's row locked as its rotations and compromises lock it (``registry.issuers.service._turn_of``), so that
    of PDFs asked for at once, and of a rotation beside them, one makes the body's first document key and the others
    use it (eight PDFs at once left eight active keys). Written as SQL: the issuers package imports this one. On SQLite
    every writer already holds the database's write lock. ``registry keys repair`` takes it too."""
    if bulk.is_postgres(session):
        await session.execute(text("SELECT 1 FROM issuers WHERE id = :id FOR NO KEY UPDATE"), {"id": issuer_id})


async def _certify_new_key(
    session: AsyncSession,
    box: SecretsBox,
    *,
    root: SigningKey,
    issuer_id: int,
    issuer_code: str,
    issuer_name: str,
    crl_url: str | None,
) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    root_certificate = certificate_of(root)
    name = _bounded(issuer_name)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _bounded(f"Issuer code {issuer_code}")),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    usages = [_DOCUMENT_SIGNING, _ADOBE_AUTHENTIC_DOCUMENTS, ExtendedKeyUsageOID.EMAIL_PROTECTION]
    builder = (
        _builder(
            subject=subject,
            issuer=root_certificate.subject,
            public_key=private.public_key(),
            now=utcnow(),
            lifetime=DOCUMENT_VALIDITY,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_certificate.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    certificate = builder.sign(private_key_of(box, root), hashes.SHA256())
    return await _store(
        session,
        box,
        use=KeyUse.document,
        issuer_id=issuer_id,
        label=f"{issuer_code}-pdf",
        private=private,
        certificate=certificate,
    )


def _bounded(value: str) -> str:
    """``value`` cut to 64 bytes of UTF-8 (cryptography's reading of RFC 5280's upper bound): a long Chinese body name
    is shortened in the certificate only; the full name is in the signature's /Name and on the page."""
    while len(value.encode()) > 64:
        value = value[:-1]
    return value


def _builder(
    *, subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: datetime, lifetime: timedelta
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))  # a little slack for readers whose clock runs slow
        .not_valid_after(now + lifetime)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


async def _store(
    session: AsyncSession,
    box: SecretsBox,
    *,
    use: KeyUse,
    issuer_id: int | None,
    label: str,
    private: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
) -> SigningKey:
    kid = f"{label}-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    key = _row(box, use=use, issuer_id=issuer_id, kid=kid, private=private, certificate=certificate)
    session.add(key)
    await session.flush()
    return key


def _row(
    box: SecretsBox,
    *,
    use: KeyUse,
    issuer_id: int | None,
    kid: str,
    private: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
) -> SigningKey:
    key = SigningKey(
        kid=kid,
        use=use,
        issuer_id=issuer_id,
        algorithm="ES256",
        public_key=private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        private_key_wrapped=box.wrap_private_key(
            private.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()), kid=kid
        ),
        status=KeyStatus.active,
        valid_from=utcnow(),
        certificate_pem=certificate.public_bytes(Encoding.PEM).decode("ascii"),
    )
    keys.reseal(box, key)
    return key


def certificate_of(key: SigningKey) -> x509.Certificate:
    if key.certificate_pem is None:
        raise ValueError(f"key {key.kid} has no certificate")
    return x509.load_pem_x509_certificate(key.certificate_pem.encode("ascii"))


def private_key_of(box: SecretsBox, key: SigningKey) -> ec.EllipticCurvePrivateKey:
    private = load_der_private_key(box.unwrap_private_key(key.private_key_wrapped, kid=key.kid), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise TypeError(f"key {key.kid} is not an ECDSA key")
    return private


async def root_certificate_pem(session: AsyncSession, box: SecretsBox) -> str:
    """The root's certificate, for readers to add as a trust anchor (served at /.well-known/pdf-signing-root.pem)."""
    pem = (await root_key(session, box)).certificate_pem
    assert pem is not None  # every root is stored with its certificate
    return pem


async def revocation_list(session: AsyncSession, box: SecretsBox) -> bytes:
    """The root's CRL (DER): every document certificate whose key was marked compromised, from the compromise on.

    Readers that check revocation then reject PDFs signed with such a key; valid for a day, re-made on each request.
    """
    root = await root_key(session, box)
    root_certificate = certificate_of(root)
    now = utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_certificate.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=1))
    )
    query = select(SigningKey).where(
        col(SigningKey.use) == KeyUse.document, col(SigningKey.status) == KeyStatus.compromised
    )
    for key in (await session.execute(query.order_by(col(SigningKey.id)))).scalars():
        if key.certificate_pem is None or not keys.seal_intact(box, key):
            continue
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(certificate_of(key).serial_number)
            .revocation_date(key.compromised_from or key.retired_at or now)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(private_key_of(box, root), hashes.SHA256())
    return crl.public_bytes(Encoding.DER)
