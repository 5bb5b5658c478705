"""The PDF signature (电子签章): PAdES baseline B-B by the body's document key, its seal as the field's appearance.

It is a *certification* signature (the document's first and only one) that permits no changes (DocMDP P=1). An
approval signature alone would only cover its own bytes: a later incremental update (a form field, an annotation, a
new page content stream) leaves those intact, and readers accept what counts as "form filling" or "commenting", so
an opaque widget could paint over the revocation stamp, the level or the name while the seal still shows valid.
With P=1 every update after the seal, whatever it draws, makes readers that check DocMDP (pyHanko, Acrobat) call
the signature invalid; poppler-based viewers do not check it and only say the document is not wholly signed.
Changing a signed byte breaks it anyway; the chain ends at the registry's PDF root
(``/.well-known/pdf-signing-root.pem``), which a reader must trust for the signature to show as valid.
"""

from __future__ import annotations

import binascii
import io
import uuid
from dataclasses import dataclass
from typing import Final

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pyhanko.pdf_utils.content import ImportedPdfPage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

FIELD_NAME: Final = "RegistrySeal"


@dataclass(frozen=True, slots=True)
class SealSignature:
    """Who signs and how the signature looks: the key, its certificate, the chain above it and the seal's PDF."""

    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signer_name: str
    seal_pdf: bytes
    box: tuple[int, int, int, int]  # the signature field's rectangle on page 1, in points


async def sign(pdf: bytes, seal: SealSignature, *, reason: str, location: str) -> bytes:
    """``pdf`` with one incremental update: a visible signature field over ``seal.box``, signed PAdES B-B, certifying
    the document with no changes allowed after it."""
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(seal.certificate.public_bytes(Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            seal.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        ),
        # Embedded in the CMS so that a reader can build the path to the root it has been told to trust.
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)) for cert in seal.chain]
        ),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=seal.signer_name,
        # Certify, allowing nothing after: see the module docstring. pyHanko refuses to certify a PDF that already
        # carries a signature (a certification signature must come first) and to add any signature after this one.
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
    )
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=signer,
        stamp_style=StaticStampStyle(background=_PdfPageBytes(seal.seal_pdf), border_width=0),
        new_field_spec=fields.SigFieldSpec(FIELD_NAME, on_page=0, box=seal.box),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    output = await pdf_signer.async_sign_pdf(writer, output=io.BytesIO())
    return bytes(output.getvalue())


class _PdfPageBytes(ImportedPdfPage):
    """pyHanko's imported page, read from bytes in memory rather than from a file."""

    def __init__(self, pdf: bytes) -> None:
        super().__init__(file_name="<memory>", page_ix=0)  # type: ignore[no-untyped-call]
        self.pdf = pdf

    def render(self) -> bytes:
        writer = self._ensure_writer
        xobject = writer.import_page_as_xobject(PdfFileReader(io.BytesIO(self.pdf)), page_ix=0)
        name = b"/Import" + binascii.hexlify(uuid.uuid4().bytes)
        self.resources.xobject[name.decode("ascii")] = xobject
        x1, y1, x2, y2 = xobject.get_object()["/BBox"]
        self.box = BoxConstraints(width=abs(x1 - x2), height=abs(y1 - y2))
        return name + b" Do"
