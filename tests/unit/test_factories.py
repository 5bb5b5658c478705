"""The test factories' own promise: an automatic identity number is never handed out twice in a run, and never equals
one a test names with an explicit sequence (an order-dependent collision once failed a full run)."""

from __future__ import annotations

from registry.holders.identity import IdType, normalize_id_number
from tests.factories import resident_id


async def test_automatic_identity_numbers_never_repeat_and_never_meet_explicit_ones() -> None:
    explicit = {resident_id(sequence=n) for n in range(1000)}
    automatic = [resident_id() for _ in range(2500)]  # more than the 1,000 three-digit sequences

    assert len(set(automatic)) == len(automatic)
    assert not explicit & set(automatic)
    for number in automatic[::250]:
        assert normalize_id_number(IdType.RESIDENT_ID, number) == number  # well-formed, real date, right check char


async def test_an_explicit_sequence_names_the_same_number_every_time() -> None:
    assert resident_id(sequence=9) == resident_id(sequence=9) == "11010519880712009" + resident_id(sequence=9)[-1]
