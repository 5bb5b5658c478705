"""A recognition question's stated purpose is kept with identity numbers masked, however they were typed, and with
everything else as typed."""

from __future__ import annotations

import pytest

from registry.recognition.purposes import masked
from registry.recognition.queries import Question
from registry.recognition.schemas import Purpose

IDENTITY = "11010519491231002X"
FULL_WIDTH = IDENTITY.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        (f"核验持证人{IDENTITY}的职称", "核验持证人11**************2X的职称"),
        (f"核验持证人{FULL_WIDTH}的职称", "核验持证人11**************2X的职称"),
        (f"核验持证人{IDENTITY.lower()}", "核验持证人11**************2x"),
        ("持证人 110105 19491231 002X 入职", "持证人 11****************2X 入职"),
        ("持证人110105－19491231－002X", "持证人11****************2X"),  # full-width hyphens
        ("护照E12345678复核", "护照E1*****78复核"),
        ("港澳通行证 H1234567890", "港澳通行证 H1*******90"),
        ("台胞证12345678", "台胞证********"),
    ],
    ids=["ascii", "full-width", "small x", "spaced", "full-width dashes", "passport", "hk permit", "8 digits"],
)
def test_an_identity_number_typed_into_a_purpose_is_masked_keeping_the_rest(typed: str, kept: str) -> None:
    assert masked(typed) == kept
    assert len(masked(typed)) == len(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "2026年度人才引进",
        "依据津人社发〔2026〕12号文件办理职称认定",
        "hiring for project ENG-AI 2026, 3 posts",
        "第1234567号",  # seven digits: shorter than any identity document
    ],
)
def test_a_purpose_without_an_identity_number_is_kept_as_typed(typed: str) -> None:
    assert masked(typed) == typed


def test_a_question_keeps_only_the_masked_purpose_whoever_builds_it() -> None:
    # Built by a partner's route and by the peer-facing route alike: neither can hold the clear form.
    question = Question(to_region="TJ", purpose=Purpose.other, purpose_text=f"核验{FULL_WIDTH}")

    assert question.purpose_text == "核验11**************2X"
    assert question.purpose_label() == "other: 核验11**************2X"
    assert Question(to_region="TJ", purpose=Purpose.hiring, purpose_text=None).purpose_label() == "hiring"
