"""The e-certificate as handed out: rendered on demand, sealed and signed by the body's document key, and kept in a
small per-process cache so that repeated downloads of an unchanged certificate cost a dictionary look-up.

Nothing here runs on the issuance path: a batch of ten thousand certificates renders no PDF until one is asked for.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import astuple
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from registry.keys import documents
from registry.keys.secrets_box import SecretsBox
from registry.rendering import pdf, signing, stamps, typefaces
from registry.rendering.pdf import CertificateDocument
from registry.rendering.stamps import StatusMark

CACHE_ENTRIES: Final = 128  # a signed page is 60-100 kB: at most about 13 MB per process
SIGNING_LOCATION: Final = "Talent Registry"


class SignedPdfCache:
    """Least-recently-used signed PDFs by everything that goes into them (so a status change or a new document key
    is a miss, never a stale hit)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._pdfs: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        hit = self._pdfs.get(key)
        if hit is not None:
            self._pdfs.move_to_end(key)
        return hit

    def put(self, key: str, pdf_bytes: bytes) -> None:
        self._pdfs[key] = pdf_bytes
        self._pdfs.move_to_end(key)
        while len(self._pdfs) > self.entries:
            self._pdfs.popitem(last=False)

    def clear(self) -> None:
        self._pdfs.clear()


CACHE: Final = SignedPdfCache()


async def signed_certificate_pdf(
    session: AsyncSession,
    box: SecretsBox,
    *,
    doc: CertificateDocument,
    issuer_id: int,
    credential: bytes,
    credential_filename: str,
    status_mark: StatusMark | None,
    crl_url: str | None = None,
    cache: SignedPdfCache = CACHE,
) -> bytes:
    """The PDF/A-3b page of ``doc``, stamped with ``status_mark`` if any, signed with the body's document key."""
    signer = await documents.document_signer(
        session, box, issuer_id=issuer_id, issuer_code=doc.issuer_code, issuer_name=doc.issuer_name, crl_url=crl_url
    )
    key = _cache_key(doc, signer.kid, credential, credential_filename, status_mark)
    cached = cache.get(key)
    if cached is not None:
        return cached
    faces = typefaces.embedded()
    page = pdf.certificate_pdf(
        doc, credential=credential, credential_filename=credential_filename, status_mark=status_mark, faces=faces
    )
    seal = signing.SealSignature(
        private_key=signer.private_key,
        certificate=signer.certificate,
        chain=(signer.root,),
        signer_name=doc.issuer_name,
        seal_pdf=stamps.seal_pdf(doc.issuer_name, faces),
        box=pdf.SEAL_BOX,
    )
    reason = f"{doc.issuer_name} 签发电子证书 {doc.number_display}"
    signed = await signing.sign(page, seal, reason=reason, location=SIGNING_LOCATION)
    cache.put(key, signed)
    return signed


def _cache_key(
    doc: CertificateDocument, kid: str, credential: bytes, credential_filename: str, mark: StatusMark | None
) -> str:
    digest = hashlib.sha256()
    for part in (*astuple(doc), kid, credential_filename, *(astuple(mark) if mark else ())):
        digest.update(repr(part).encode() + b"\0")
    digest.update(credential)
    return digest.hexdigest()
