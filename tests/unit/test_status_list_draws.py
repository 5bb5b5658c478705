"""Random status-list indexes drawn many at a time: each below the list's size and uniformly likely, as
``secrets.randbelow`` would draw them one at a time (an index must say nothing about who holds it)."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from registry.certificates.status_lists import LIST_SIZE, random_indexes


def test_indexes_of_a_full_size_list_are_all_kept_and_all_in_range() -> None:
    drawn = random_indexes(LIST_SIZE, 20_000)
    assert len(drawn) == 20_000  # 131,072 is a power of two: no draw is thrown away
    assert all(0 <= index < LIST_SIZE for index in drawn)
    assert len(set(drawn)) > 18_000  # ~1,400 repeats are expected among 20,000 of 131,072; a stuck source has more


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1000, 131_071, 2**32])
def test_every_index_is_below_the_size_and_few_draws_are_lost(size: int) -> None:
    drawn = random_indexes(size, 4000)
    assert all(0 <= index < size for index in drawn)
    assert len(drawn) > 2000  # masked to the bits the size needs, at most half is rejected


def test_each_index_is_equally_likely() -> None:
    # 10 is not a power of two: values 10-15 of the 4 masked bits must be thrown away, not folded onto 0-5.
    counts = Counter(random_indexes(10, 200_000))
    assert set(counts) == set(range(10))
    expected = sum(counts.values()) / 10
    chi_square = sum((count - expected) ** 2 / expected for count in counts.values())
    assert chi_square < 40  # 9 degrees of freedom: p < 1e-5 for a fair source; folding 10-15 onto 0-5 gives ~8,000


def test_the_draws_come_from_the_systems_random_source(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def token_bytes(count: int) -> bytes:
        calls.append(count)
        return bytes(range(count % 256)) + bytes(count - count % 256)

    monkeypatch.setattr(secrets, "token_bytes", token_bytes)  # the module status_lists calls
    random_indexes(LIST_SIZE, 100)
    assert len(calls) == 1  # one call for all of them


@pytest.mark.parametrize("size", [0, -1, 2**32 + 1])
def test_a_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        random_indexes(size, 1)
