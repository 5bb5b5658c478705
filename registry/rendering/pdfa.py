"""PDF/A-3b packaging of a rendered page: XMP metadata that matches the document information, an sRGB output intent,
and the signed credential as an associated file (``/AF``, ``AFRelationship /Data``).

What is checked here is structure, not full conformance: see the README (no veraPDF run in CI).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Final, cast
from xml.sax.saxutils import escape

from PIL import ImageCms
from pyhanko.pdf_utils.metadata.model import VENDOR
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

CREDENTIAL_MEDIA_TYPE: Final = "application/vc+jwt"
SRGB: Final = "sRGB IEC61966-2.1"
SIGNING_PRODUCER: Final = VENDOR


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """The document information, written both as the /Info dictionary and as XMP (PDF/A wants them to agree)."""

    title: str
    author: str
    subject: str
    keywords: str
    creator: str
    created: datetime  # aware


def package(page_pdf: bytes, *, info: DocumentInfo, credential: bytes, credential_filename: str) -> bytes:
    """``page_pdf`` (reportlab's output) with metadata, output intent and the credential attached."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(page_pdf)))
    _attach(writer, info=info, credential=credential, credential_filename=credential_filename)
    # reportlab's invariant mode gives every PDF the same /ID; the file identifier should tell documents apart, so
    # derive it from what this one contains (pypdf has no public setter; it would otherwise keep reportlab's).
    fingerprint = hashlib.sha256(page_pdf + credential_filename.encode() + b"\0" + credential).digest()[:16]
    writer._ID = ArrayObject((ByteStringObject(fingerprint), ByteStringObject(fingerprint)))
    pdf_date = _pdf_date(info.created)
    writer.add_metadata(
        {
            "/Title": info.title,
            "/Author": info.author,
            "/Subject": info.subject,
            "/Keywords": info.keywords,
            "/Creator": info.creator,
            # pyHanko's name, as it writes into the XMP when it signs: it leaves an /Info producer that already
            # names it alone (else it appends), and PDF/A wants /Info and XMP to agree.
            "/Producer": SIGNING_PRODUCER,
            "/CreationDate": pdf_date,
            "/ModDate": pdf_date,
        }
    )
    writer.xmp_metadata = xmp(info)
    metadata = cast(DictionaryObject, writer.root_object["/Metadata"].get_object())
    metadata[NameObject("/Type")] = NameObject("/Metadata")
    metadata[NameObject("/Subtype")] = NameObject("/XML")
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject([writer._add_object(_output_intent(writer))])
    writer.root_object[NameObject("/Lang")] = TextStringObject("zh-CN")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _attach(writer: PdfWriter, *, info: DocumentInfo, credential: bytes, credential_filename: str) -> None:
    # reportlab cannot embed files; pypdf adds the EmbeddedFiles name tree to the finished page.
    attachment = writer.add_attachment(credential_filename, credential)
    attachment.subtype = NameObject("/" + CREDENTIAL_MEDIA_TYPE)  # pypdf writes the "/" inside as #2F
    attachment.description = TextStringObject("W3C verifiable credential (JWT) for this certificate")
    attachment.size = NumberObject(len(credential))
    # /CheckSum is MD5 by definition (ISO 32000 7.11.4); it detects corruption, the JWS signature does the rest.
    attachment.checksum = ByteStringObject(hashlib.md5(credential, usedforsecurity=False).digest())
    attachment.creation_date = info.created
    attachment.modification_date = info.created
    filespec = attachment.pdf_object
    filespec[NameObject("/UF")] = TextStringObject(credential_filename)
    # The credential states the same facts as the page in machine-readable form (PDF/A-3 associated file).
    attachment.associated_file_relationship = NameObject("/Data")
    assert filespec.indirect_reference is not None  # pypdf adds every file specification as an indirect object
    writer.root_object[NameObject("/AF")] = ArrayObject([filespec.indirect_reference])


def _output_intent(writer: PdfWriter) -> DictionaryObject:
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject()
    intent.update(
        {
            NameObject("/Type"): NameObject("/OutputIntent"),
            NameObject("/S"): NameObject("/GTS_PDFA1"),
            NameObject("/OutputConditionIdentifier"): TextStringObject(SRGB),
            NameObject("/Info"): TextStringObject(SRGB),
            NameObject("/DestOutputProfile"): writer._add_object(profile),
        }
    )
    return intent


@cache
def _srgb_profile() -> bytes:
    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def xmp(info: DocumentInfo) -> bytes:
    """The XMP packet: PDF/A-3b identification and the same facts as the /Info dictionary."""
    created = info.created.isoformat(timespec="seconds")
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(info.title)}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{escape(info.author)}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(info.subject)}</rdf:li></rdf:Alt></dc:description>
   <pdf:Keywords>{escape(info.keywords)}</pdf:Keywords>
   <pdf:Producer>{escape(SIGNING_PRODUCER)}</pdf:Producer>
   <xmp:CreatorTool>{escape(info.creator)}</xmp:CreatorTool>
   <xmp:CreateDate>{created}</xmp:CreateDate>
   <xmp:ModifyDate>{created}</xmp:ModifyDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def _pdf_date(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
