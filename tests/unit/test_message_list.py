"""The two-bit message list composed from the revocation and suspension lists, bit for bit as the W3C Bitstring
Status List lays out a ``statusSize`` 2 entry."""

from __future__ import annotations

import secrets

import pytest

from registry.certificates.status_lists import LIST_SIZE, bit, empty_bits, with_bit
from registry.credentials.message_list import compose, status_value


def _naive(revocation: bytes, suspension: bytes) -> bytes:
    composed = empty_bits(2 * 8 * len(revocation))
    for index in range(8 * len(revocation)):
        composed = with_bit(composed, 2 * index, bit(revocation, index))
        composed = with_bit(composed, 2 * index + 1, bit(suspension, index))
    return composed


def test_composing_matches_setting_each_entry_by_hand() -> None:
    revocation, suspension = secrets.token_bytes(64), secrets.token_bytes(64)
    assert compose(revocation, suspension) == _naive(revocation, suspension)


def test_each_entry_reads_revoked_then_suspended() -> None:
    revocation, suspension = empty_bits(), empty_bits()
    revocation = with_bit(revocation, 7, True)
    suspension = with_bit(suspension, 8, True)
    revocation, suspension = with_bit(revocation, LIST_SIZE - 1, True), with_bit(suspension, LIST_SIZE - 1, True)
    composed = compose(revocation, suspension)
    assert len(composed) * 8 == 2 * LIST_SIZE
    assert [status_value(composed, index) for index in (0, 7, 8, LIST_SIZE - 1)] == [0b00, 0b10, 0b01, 0b11]
    assert composed[1] == 0b00000010  # entry 7: its two bits are bits 14, 15 — the last two of the second byte
    with pytest.raises(IndexError):
        status_value(composed, LIST_SIZE)


def test_lists_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        compose(empty_bits(16), empty_bits(8))
