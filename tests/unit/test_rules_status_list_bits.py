"""Status-list bits as the W3C Bitstring Status List recommendation lays them out: index 0 is the most significant bit
of the first byte, and ``encodedList`` is multibase base64url (``u``, no padding) of the GZIP-compressed bitstring."""

from __future__ import annotations

import base64
import gzip
import string
from datetime import UTC, datetime, timedelta

import pytest

from registry import clock
from registry.certificates.status_lists import LIST_SIZE, bit, decode, empty_bits, encode, with_bit
from registry.credentials import status_list

# The recommendation's own example of an empty list of 131,072 entries (its "encodedList" in the examples).
W3C_EMPTY_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"
LAST = LIST_SIZE - 1


def test_an_empty_list_has_131072_entries_all_clear() -> None:
    bits = empty_bits()
    assert len(bits) == LIST_SIZE // 8 == 16_384
    assert set(bits) == {0}


def test_an_empty_list_of_another_size_has_one_byte_per_eight_entries() -> None:
    assert empty_bits(16) == b"\x00\x00"


@pytest.mark.parametrize(
    ("index", "byte", "value"),
    [
        pytest.param(0, 0, 0b1000_0000, id="index 0 is the first byte's most significant bit"),
        pytest.param(1, 0, 0b0100_0000, id="index 1 is the next bit"),
        pytest.param(7, 0, 0b0000_0001, id="index 7 is the first byte's least significant bit"),
        pytest.param(8, 1, 0b1000_0000, id="index 8 starts the second byte"),
        pytest.param(LAST, LIST_SIZE // 8 - 1, 0b0000_0001, id="the last index is the last bit"),
    ],
)
def test_setting_an_index_sets_exactly_its_bit_in_w3c_order(index: int, byte: int, value: int) -> None:
    bits = with_bit(empty_bits(), index, True)
    expected = bytearray(LIST_SIZE // 8)
    expected[byte] = value
    assert bits == bytes(expected)
    assert bit(bits, index)
    assert [i for i in (0, 1, 7, 8, LAST) if bit(bits, i)] == [index]


@pytest.mark.parametrize("index", [0, 1, 7, 8, LAST])
def test_clearing_an_index_clears_only_its_bit(index: int) -> None:
    full = bytes([0xFF]) * (LIST_SIZE // 8)
    cleared = with_bit(full, index, False)
    assert not bit(cleared, index)
    assert sum(bin(byte).count("1") for byte in cleared) == LIST_SIZE - 1


def test_setting_a_bit_twice_or_clearing_a_clear_bit_changes_nothing() -> None:
    once = with_bit(empty_bits(16), 9, True)
    assert with_bit(once, 9, True) == once == b"\x00\x40"
    assert with_bit(empty_bits(16), 9, False) == b"\x00\x00"


def test_neighbouring_bits_keep_their_values() -> None:
    bits = with_bit(with_bit(empty_bits(16), 6, True), 8, True)
    assert bits == b"\x02\x80"
    bits = with_bit(bits, 7, True)
    assert bits == b"\x03\x80"
    assert with_bit(bits, 7, False) == b"\x02\x80"


def test_the_recommendations_example_of_an_empty_list_decodes_to_131072_clear_entries() -> None:
    assert decode(W3C_EMPTY_LIST) == empty_bits()


def test_an_encoded_list_is_multibase_base64url_without_padding() -> None:
    bits = with_bit(with_bit(empty_bits(), 0, True), LAST, True)
    encoded = encode(bits)
    assert encoded.startswith("u")
    assert set(encoded[1:]) <= set(string.ascii_letters + string.digits + "-_")  # base64url, and no "=" padding
    payload = encoded[1:]
    assert gzip.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == bits


def test_the_same_list_always_encodes_to_the_same_text_because_the_gzip_time_is_zero() -> None:
    payload = encode(empty_bits())[1:]
    gzipped = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert gzipped[:4] == b"\x1f\x8b\x08\x00"  # GZIP, deflate, no flags
    assert gzipped[4:8] == b"\x00\x00\x00\x00"  # MTIME
    assert encode(empty_bits()) == encode(empty_bits())


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6, 7, 8, 9])
def test_a_list_survives_encoding_whatever_padding_its_base64_would_need(length: int) -> None:
    bits = bytes(range(1, length + 1))
    encoded = encode(bits)
    assert decode(encoded) == bits


def test_decoding_pads_the_base64_to_a_multiple_of_four_for_each_residue() -> None:
    residues = {len(encode(bytes(range(1, length + 1)))[1:]) % 4 for length in range(1, 10)}
    assert residues == {0, 2, 3}


def test_a_list_without_the_multibase_prefix_is_refused() -> None:
    payload = encode(empty_bits())[1:]
    with pytest.raises(ValueError, match=r"^encodedList must be multibase base64url \('u' prefix\)$"):
        decode(payload)
    with pytest.raises(ValueError, match="'u' prefix"):
        decode("U" + payload)


@pytest.mark.parametrize("validity", [60, 61, 90, 120, 3_600])
@pytest.mark.parametrize("second", [0, 1, 30, 59])
def test_no_cache_keeps_a_list_past_its_valid_until_whatever_second_it_is_served(
    monkeypatch: pytest.MonkeyPatch, validity: int, second: int
) -> None:
    served = datetime(2026, 12, 4, 8, 15, second, 999_999, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: served)
    lasts = timedelta(seconds=validity)
    claims = status_list.list_credential_claims(url="u", issuer_id="i", purpose="revocation", bits=b"", validity=lasts)
    kept = status_list.cache_seconds(lasts)
    assert served + timedelta(seconds=kept) <= datetime.fromisoformat(claims["validUntil"])
    assert claims["credentialSubject"]["ttl"] == kept * 1000
    assert kept == min(status_list.CACHE_SECONDS, validity - 60)  # as long as that allows, no shorter
