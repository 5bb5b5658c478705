"""Every table model, imported in one place so the metadata Alembic compares against is complete."""

from __future__ import annotations

from registry.audit.models import AuditRecord
from registry.auth.models import ApiClient, EndedToken
from registry.catalogue.models import BasisDocument, CatalogueEntry, Level, Series
from registry.certificates.models import Certificate, CertificateEvent, IdempotencyRecord, StatusList
from registry.holder_access.models import ShareLink
from registry.holders.models import Holder, HolderLoginThrottle
from registry.issuers.models import FiledScope, Issuer
from registry.keys.models import SigningKey
from registry.recognition.models import RecognitionRule
from registry.transparency.models import TransparencyHead, TransparencyLeaf, TransparencyNode
from registry.verification.models import VerificationVisit

__all__ = [
    "ApiClient",
    "AuditRecord",
    "BasisDocument",
    "CatalogueEntry",
    "Certificate",
    "CertificateEvent",
    "EndedToken",
    "FiledScope",
    "Holder",
    "HolderLoginThrottle",
    "IdempotencyRecord",
    "Issuer",
    "Level",
    "RecognitionRule",
    "Series",
    "ShareLink",
    "SigningKey",
    "StatusList",
    "TransparencyHead",
    "TransparencyLeaf",
    "TransparencyNode",
    "VerificationVisit",
]
