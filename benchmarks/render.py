"""Rendering throughput on one core: QR PNG/s, QR SVG/s and e-certificate PDF/s, plus the PNG approaches compared.

The PDF is measured three ways in the same run: the former page (base-14 fonts named, nothing embedded, unsigned), the
page with the shipped font embedded as a subset, and that page sealed and signed (PAdES B-B, ECDSA P-256) as served.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version

import qrcode
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from registry.rendering import signing, stamps, typefaces
from registry.rendering.pdf import SEAL_BOX, CertificateDocument, certificate_pdf
from registry.rendering.qr import QUIET_ZONE, QrMatrix, _png, qr_matrix, qr_png, qr_svg

BASE = "https://registry.example.gov.cn/v/"
SIZE = 512
DOCUMENT = CertificateDocument(
    cert_type="title",
    number_display="BJ-T-2026-7K3M9Q2X-4",
    holder_name="张三丰",
    holder_id_masked="11**************3X",
    series_zh="工程技术",
    name_zh="具身智能",
    name_en="Embodied Intelligence",
    occupation_code=None,
    level_name_zh="副高级",
    level_name_en="Deputy Senior",
    issuer_name="北京市人力资源和社会保障局",
    issuer_code="BJ-HRSS",
    awarded_on=date(2026, 11, 20),
    valid_until=None,
    status_zh="有效",
    status_en="Valid",
    verify_url=BASE + "Ab3dEf6hIj9kLm2nOp5qRs8t",
    issued_at=datetime(2026, 11, 22, 8, 5, tzinfo=UTC),
)


def verify_urls(count: int) -> list[str]:
    # Distinct URLs of the production shape (24 base64url characters), so no cache can flatter the figures.
    chooser = random.Random(20261122)  # noqa: S311 - reproducible test data, not secrets
    return [BASE + base64.urlsafe_b64encode(chooser.randbytes(18)).decode() for _ in range(count)]


def rate(label: str, seconds: float, work: Callable[[int], object]) -> float:
    """Call ``work(i)`` for i = 0, 1, ... for about ``seconds`` and print and return the calls per second."""
    work(0)  # warm caches (per-version QR layout, fonts) as a long-running service would have them
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(10):
            work(calls)
            calls += 1
    per_second = calls / elapsed
    print(f"  {label:<52} {per_second:>9,.0f}/s  {1000 / per_second:7.2f} ms")
    return per_second


def png_via_qrcode_pil(url: str) -> bytes:
    """The textbook way: qrcode's own mask search and its PIL image factory drawing every module."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=12, border=QUIET_ZONE)
    code.add_data(url, optimize=0)
    buffer = io.BytesIO()
    code.make_image().save(buffer, format="PNG")
    return buffer.getvalue()


def png_via_pillow_scale(matrix: QrMatrix) -> bytes:
    """Pillow from our matrix: a 1 px/module 1-bit image, scaled with NEAREST, saved as PNG."""
    total = matrix.modules + 2 * QUIET_ZONE
    light = "1" * QUIET_ZONE
    rows = ["1" * total] * QUIET_ZONE
    rows += [light + row.translate(str.maketrans("01", "10")) + light for row in matrix.rows]
    rows += ["1" * total] * QUIET_ZONE
    pad = -total % 8
    raw = b"".join(int(row + "1" * pad, 2).to_bytes((total + pad) // 8, "big") for row in rows)
    scale = SIZE // total
    image = Image.frombytes("1", (total, total), raw).resize((total * scale, total * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="how long to run each measurement")
    args = parser.parse_args()
    seconds: float = args.seconds

    print(f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs (one process, one core)")
    names = ("qrcode", "pillow", "reportlab", "pypdf", "pyhanko")
    libraries = ", ".join(f"{name} {version(name)}" for name in names)
    print(f"python {platform.python_version()}, {libraries}")
    urls = verify_urls(50_000)
    matrices = [qr_matrix(url) for url in urls[:500]]
    credential = b"eyJhbGciOiJFZERTQSIsInR5cCI6InZjK2p3dCJ9." + b"x" * 900 + b".signature"

    print("render")
    rate(f"QR PNG ({SIZE} px): qr_png", seconds, lambda i: qr_png(urls[i % len(urls)], size=SIZE))
    rate(f"QR SVG ({SIZE} px): qr_svg", seconds, lambda i: qr_svg(urls[i % len(urls)], size=SIZE))
    pdf_rates(seconds, urls, credential)

    print("how the PNG is made (same URLs)")
    rate("matrix: qrcode QRCode.make (8 layouts, mask)", seconds, lambda i: _qrcode_make(urls[i % len(urls)]))
    rate("matrix: qr_matrix (one layout, bitwise masks)", seconds, lambda i: qr_matrix(urls[i % len(urls)]))
    rate("PNG end to end: qrcode + PIL image factory", seconds, lambda i: png_via_qrcode_pil(urls[i % len(urls)]))
    rate("PNG encode only: Pillow scaled from matrix", seconds, lambda i: png_via_pillow_scale(matrices[i % 500]))
    rate("PNG encode only: zlib 1-bit (qr_png's way)", seconds, lambda i: _zlib_png(matrices[i % 500]))


def pdf_rates(seconds: float, urls: list[str], credential: bytes) -> None:
    base14, embedded = typefaces.base14(), typefaces.embedded()

    def page(i: int, faces: typefaces.Typefaces) -> bytes:
        doc = replace(DOCUMENT, verify_url=urls[i % len(urls)])
        return certificate_pdf(doc, credential=credential, credential_filename="x.vc.jwt", faces=faces)

    seal = _bench_seal(stamps.seal_pdf(DOCUMENT.issuer_name, embedded))
    loop = asyncio.new_event_loop()

    def signed(i: int) -> bytes:
        return loop.run_until_complete(signing.sign(page(i, embedded), seal, reason="benchmark", location="bench"))

    old = rate("PDF: base-14 fonts, unembedded, unsigned (former)", seconds, lambda i: page(i, base14))
    rate("PDF: embedded font subset, unsigned", seconds, lambda i: page(i, embedded))
    new = rate("PDF: embedded font, sealed and signed (served)", seconds, signed)
    loop.close()
    print(f"  signed embedded PDF / former PDF: {new / old:.2f}x the rate")


def _bench_seal(seal_pdf: bytes) -> signing.SealSignature:
    """A throwaway root and document key (the service keeps its own in the database)."""
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def certificate(subject: str, public: ec.EllipticCurvePublicKey, *, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )

    root = certificate("bench root", root_key.public_key(), ca=True)
    return signing.SealSignature(
        private_key=key,
        certificate=certificate(DOCUMENT.issuer_name, key.public_key(), ca=False),
        chain=(root,),
        signer_name=DOCUMENT.issuer_name,
        seal_pdf=seal_pdf,
        box=SEAL_BOX,
    )


def _qrcode_make(url: str) -> None:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0)
    code.add_data(url, optimize=0)
    code.make()


def _zlib_png(matrix: QrMatrix) -> bytes:
    return _png(matrix, SIZE // (matrix.modules + 2 * QUIET_ZONE))


if __name__ == "__main__":
    main()
