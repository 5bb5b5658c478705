"""A peer's answer about LI NA is not passed on as the answer for LIN A: ``registry.federation.answers`` compares the
name asked with the peer's holder name by ``person_name_key``, so a peer still leaving every space out (an older
version of this software) cannot make this node say ``valid`` for another person's name."""

from __future__ import annotations

from datetime import date

import pytest

from registry.catalogue.models import CertType
from registry.certificates.numbering import group_canonical, new_number
from registry.federation import answers
from registry.holders.identity import IdType, mask_id_number
from registry.verification.schemas import VerificationResult, VerifiedCertificate

NUMBER = new_number(region="BJ", cert_type="title", year=2026)


def _certificate(holder_name: str) -> VerifiedCertificate:
    return VerifiedCertificate(
        number=NUMBER,
        number_display=group_canonical(NUMBER),
        holder_name=holder_name,
        holder_id_masked=mask_id_number(IdType.PASSPORT, "E12345678"),
        cert_type=CertType.title,
        catalogue_code="ENG-EAI",
        series_zh=None,
        name_zh="具身智能",
        name_en="Embodied AI",
        level="associate_senior",
        level_name_zh="副高级",
        level_name_en="Associate senior",
        issuer_code="BJ-AI-COMMITTEE",
        issuer_name="评审委员会",
        awarded_on=date(2026, 6, 30),
        valid_until=None,
    )


@pytest.mark.parametrize("asked", ["LI NA", "li na", "Li  Na", "ＬＩ\u3000ＮＡ"])
def test_a_peers_answer_for_the_holders_name_however_typed_agrees(asked: str) -> None:
    assert answers.certificate_agrees(_certificate("LI NA"), VerificationResult.valid, number=NUMBER, holder_name=asked)


@pytest.mark.parametrize("asked", ["LIN A", "Lin A", "LINA", "L INA"])
def test_a_peers_answer_for_a_name_with_the_space_moved_does_not_agree(asked: str) -> None:
    assert not answers.certificate_agrees(
        _certificate("LI NA"), VerificationResult.valid, number=NUMBER, holder_name=asked
    )


@pytest.mark.parametrize("asked", ["张伟", "张 伟"])
def test_a_peers_answer_for_a_chinese_name_typed_with_a_space_still_agrees(asked: str) -> None:
    assert answers.certificate_agrees(_certificate("张伟"), VerificationResult.valid, number=NUMBER, holder_name=asked)
