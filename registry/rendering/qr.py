"""QR codes for verification URLs: the module matrix, a 1-bit PNG and a standalone SVG, cheap enough for batch work."""

from __future__ import annotations

import functools
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Final

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError
from qrcode.util import mask_func

QUIET_ZONE: Final = 4  # modules of light border on every side, as ISO/IEC 18004 requires for QR Code
MIN_SIZE: Final = 64
MAX_SIZE: Final = 2048
# M restores up to ~15% damage: enough for screens and office printers while keeping a typical verify URL at
# version 4 (33x33), so the modules stay large when the code is printed small on the certificate.
ERROR_CORRECTION: Final = ERROR_CORRECT_M

_TO_DIGITS: Final = bytes.maketrans(b"\x00\x01", b"01")
# Penalty rule N1 (runs of five or more same-coloured modules) and N3 (1:1:3:1:1 finder look-alikes next to four
# light modules), matched on the rows and columns written out as "0"/"1" text; the lookahead counts overlapping hits.
_RUNS: Final = re.compile(r"0{5,}|1{5,}")
_FINDER_LIKE: Final = re.compile(r"(?=10111010000|00001011101)")
_DARK_RUN: Final = re.compile(r"1+")


@dataclass(frozen=True, slots=True)
class QrMatrix:
    """A QR symbol without its quiet zone: ``rows[r][c]`` is "1" for a dark module and "0" for a light one."""

    rows: tuple[str, ...]

    @property
    def modules(self) -> int:
        return len(self.rows)

    def dark_runs(self) -> list[tuple[int, int, int]]:
        """(row, first column, length) of every horizontal run of dark modules: what the vector renderings draw."""
        return [
            (r, match.start(), match.end() - match.start())
            for r, row in enumerate(self.rows)
            for match in _DARK_RUN.finditer(row)
        ]


@dataclass(frozen=True, slots=True)
class _Layout:
    """What depends only on the version: one bit per module, row-major, most significant bit = top-left module."""

    modules: int
    data: int  # modules that carry codewords (everything the mask applies to)
    function_blank: int  # dark function-pattern modules, format and version areas left light
    masks: tuple[int, ...]  # the eight mask patterns, restricted to data modules
    function_final: tuple[int, ...]  # dark function-pattern modules with the real format/version info, per mask
    two_by_two: int  # top-left corners of every 2x2 block (all but the last row and column)


def qr_matrix(url: str) -> QrMatrix:
    """Encode ``url`` as one byte-mode segment at error correction M: exactly qrcode's symbol for it, found faster.

    qrcode does the data encoding, Reed-Solomon and module placement. Choosing the mask is done here: qrcode lays the
    symbol out eight times and scores each with per-module Python loops, which is ~90% of its run time. Here the
    codewords are placed once, every mask is one big-integer XOR, and the ISO/IEC 18004 penalties (N1-N4, scored
    exactly as ``qrcode.util.lost_point`` does, so the same mask wins) use regexes and bit counts: 2-3x faster overall.
    This drives qrcode's internals, so pyproject.toml bounds qrcode to the minor version that
    ``tests/unit/test_rendering.py`` proves gives the identical symbol for every URL length.
    """
    if not isinstance(url, str) or not url:
        raise ValueError("a QR code needs a non-empty URL")
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, border=0)
    # One byte-mode segment: URLs have lower-case letters, so qrcode's mode optimisation could only add headers.
    code.add_data(url, optimize=0)
    try:
        code.best_fit()
    except (DataOverflowError, ValueError) as exc:  # qrcode 8.2 raises ValueError("Invalid version ...") for some
        raise ValueError(f"URL too long for a QR code ({len(url.encode())} bytes)") from exc
    layout = _layout(code.version)
    code.makeImpl(True, 0)  # codewords placed under mask 0; format/version areas blank, as in qrcode's own scoring
    codewords = (_to_int(code.modules) ^ layout.masks[0]) & layout.data
    penalties = [_penalty(layout.function_blank | (codewords ^ mask), layout) for mask in layout.masks]
    best = penalties.index(min(penalties))  # first of equals, like qrcode
    symbol = layout.function_final[best] | (codewords ^ layout.masks[best])
    bits = format(symbol, f"0{layout.modules * layout.modules}b")
    n = layout.modules
    return QrMatrix(tuple(bits[i : i + n] for i in range(0, n * n, n)))


def qr_png(url: str, *, size: int = 512) -> bytes:
    """A 1-bit greyscale PNG of the QR code for ``url`` with a 4-module quiet zone, at most ``size`` px wide.

    The module size is the largest whole number of pixels that fits (never below 1 px, so a symbol wider than
    ``size`` modules comes out wider than ``size``). The PNG is written directly with zlib rather than through
    Pillow: the symbol is already a bit matrix, so each scanline is one int conversion and the file is ~600 bytes.
    Measured with ``python benchmarks/render.py``: 0.4 ms to encode against 1.1 ms for a Pillow image scaled from the
    matrix, and 2.2 ms end to end against 8.2 ms for qrcode with its PIL image factory. (qrcode's other route, pypng,
    is not installed here and builds every pixel in pure Python.)
    """
    _check_size(size)
    matrix = qr_matrix(url)
    return _png(matrix, _scale(matrix, size))


def qr_svg(url: str, *, size: int = 512) -> bytes:
    """A standalone SVG of the QR code for ``url``: width/height as for :func:`qr_png`, a viewBox in modules, and a
    white background under the quiet zone so the code also scans when the SVG is placed on a dark page."""
    _check_size(size)
    matrix = qr_matrix(url)
    scale = _scale(matrix, size)
    total = matrix.modules + 2 * QUIET_ZONE
    pixels = total * scale
    # One path of horizontal runs: one element however many modules, and crispEdges keeps abutting runs seamless.
    path = "".join(f"M{c + QUIET_ZONE} {r + QUIET_ZONE}h{n}v1h-{n}z" for r, c, n in matrix.dark_runs())
    svg = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{pixels}" height="{pixels}" '
        f'viewBox="0 0 {total} {total}" shape-rendering="crispEdges">'
        f'<rect width="{total}" height="{total}" fill="#fff"/>'
        f'<path fill="#000" d="{path}"/>'
        "</svg>\n"
    )
    return svg.encode()


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}")


def _scale(matrix: QrMatrix, size: int) -> int:
    """Whole pixels per module: the most that fit in ``size`` with the quiet zone, and never less than one."""
    return max(1, size // (matrix.modules + 2 * QUIET_ZONE))


def _png(matrix: QrMatrix, scale: int) -> bytes:
    width = (matrix.modules + 2 * QUIET_ZONE) * scale
    pad = -width % 8
    row_bytes = (width + pad) // 8
    # In a 1-bit greyscale PNG 1 is white: each dark module becomes `scale` zero bits, each light one `scale` ones.
    widen = str.maketrans({"0": "1" * scale, "1": "0" * scale})
    margin = "1" * (QUIET_ZONE * scale)

    def scanline(bits: str) -> bytes:
        return b"\x00" + int(bits + "1" * pad, 2).to_bytes(row_bytes, "big")  # filter type 0: zlib finds the repeats

    blank = scanline("1" * width)
    lines = [blank] * (QUIET_ZONE * scale)
    for row in matrix.rows:
        lines.extend([scanline(margin + row.translate(widen) + margin)] * scale)
    lines.extend([blank] * (QUIET_ZONE * scale))
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # bit depth 1, greyscale, deflate, no interlace
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            # Level 6: on these highly repetitive rows level 9 is ~8x slower for a PNG under 1% smaller.
            _chunk(b"IDAT", zlib.compress(b"".join(lines), 6)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _to_int(modules: list[list[bool]]) -> int:
    return int(b"".join(bytes(row) for row in modules).translate(_TO_DIGITS), 2)


def _penalty(symbol: int, layout: _Layout) -> int:
    """ISO/IEC 18004 mask penalty N1+N2+N3+N4, equal to ``qrcode.util.lost_point`` for the same modules."""
    n = layout.modules
    bits = format(symbol, f"0{n * n}b")
    # Rows then columns, separated so no run or pattern spans two lines.
    lines = "|".join([bits[i : i + n] for i in range(0, n * n, n)] + [bits[c::n] for c in range(n)])
    runs = _RUNS.findall(lines)
    score = len("".join(runs)) - 2 * len(runs)  # N1: 3 + (length - 5) per run
    # N2: a 2x2 block is same-coloured where the module equals its right, lower and lower-right neighbours.
    right, below = symbol << 1, symbol << n
    differs = (symbol ^ right) | (symbol ^ below) | (symbol ^ (below << 1))
    score += 3 * (~differs & layout.two_by_two).bit_count()
    score += 40 * len(_FINDER_LIKE.findall(lines))  # N3
    dark_percent = float(symbol.bit_count()) / (n * n) * 100  # N4, in qrcode's float arithmetic
    score += int(abs(dark_percent - 50) / 5) * 10
    return score


@functools.lru_cache(maxsize=40)
def _layout(version: int) -> _Layout:
    n = version * 4 + 17
    code = qrcode.QRCode(version=version, error_correction=ERROR_CORRECTION, border=0)

    def function_patterns(*, test: bool, mask: int) -> list[list[bool | None]]:
        # The same calls, in the same order, as qrcode's makeImpl before it places the data (None = data module).
        code.modules_count = n
        code.modules = [[None] * n for _ in range(n)]
        code.setup_position_probe_pattern(0, 0)
        code.setup_position_probe_pattern(n - 7, 0)
        code.setup_position_probe_pattern(0, n - 7)
        code.setup_position_adjust_pattern()
        code.setup_timing_pattern()
        code.setup_type_info(test, mask)
        if version >= 7:
            code.setup_type_number(test)
        modules: list[list[bool | None]] = code.modules
        return modules

    def as_int(cells: list[bool]) -> int:
        return int("".join("1" if cell else "0" for cell in cells), 2)

    blank = [cell for row in function_patterns(test=True, mask=0) for cell in row]
    positions = [(i // n, i % n) for i in range(n * n)]
    masks = []
    for pattern in range(8):
        flips = mask_func(pattern)
        masks.append(
            as_int([cell is None and bool(flips(r, c)) for cell, (r, c) in zip(blank, positions, strict=True)])
        )
    finals = tuple(
        as_int([bool(cell) for row in function_patterns(test=False, mask=pattern) for cell in row])
        for pattern in range(8)
    )
    not_last_column = ((1 << (n - 1)) - 1) << 1
    two_by_two = sum(not_last_column << (r * n) for r in range(1, n))  # row 0 in the low bits is the last row
    return _Layout(
        modules=n,
        data=as_int([cell is None for cell in blank]),
        function_blank=as_int([bool(cell) for cell in blank]),
        masks=tuple(masks),
        function_final=finals,
        two_by_two=two_by_two,
    )
