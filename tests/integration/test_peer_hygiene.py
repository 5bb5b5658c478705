"""What this node takes from its peers. In production a peer is asked over https only (its answers are checked against
the keys its URL publishes). And a peer's text — names, titles, a rule's basis and conditions, reasons — is shown to
this node's clients only when it holds to the rule for text a person reads (registry.schemas): a control, invisible or
text-direction character, or text longer than this registry would store, makes the answer untrusted (``unknown``,
``peer_answer_not_trusted``), never relayed and never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app, dispose
from registry.auth.scopes import Role
from registry.certificates import numbering
from registry.config import Region, Settings
from registry.errors import ConfigurationError
from tests.conftest import POSTGRES_URL
from tests.factories import bearer, create_client, token_for
from tests.integration.federation_support import (
    HOLDER,
    Tianjin,
    fake_recognition,
    fake_verification,
    tianjin_with_fake_beijing,
)

# --- in production, https peers only -------------------------------------------------------------------------------


def production(tmp_path: Path, peers: dict[str, str]) -> Settings:
    return Settings(
        env="production",
        region=Region.TJ,
        database_url=POSTGRES_URL,  # never connected to: the app is only made
        master_key="3c9f7a1e" * 8,  # production refuses a key of one repeated byte, as the test key is
        public_base_url="https://tj-node.example",
        data_dir=tmp_path,
        peers=peers,
    )


def test_production_refuses_a_peer_reached_over_plain_http(tmp_path: Path) -> None:
    peers = {"BJ": "https://bj-node.example", "HE": "http://user:secret@10.0.0.3:8000"}

    with pytest.raises(ConfigurationError) as refused:
        create_app(production(tmp_path, peers))

    message = str(refused.value)
    assert "REGISTRY_PEERS" in message
    assert "https://" in message
    assert "HE" in message
    assert "BJ" not in message
    for value in ("secret", "10.0.0.3"):  # the setting is named, its value never shown
        assert value not in message


async def test_production_serves_with_https_peers(tmp_path: Path) -> None:
    settings = production(tmp_path, {"BJ": "https://bj-node.example", "HE": "https://10.0.0.3:8443"})
    settings.check_production()
    app = create_app(settings)
    await dispose(app)


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_tests_may_name_http_peers(env: str, tmp_path: Path) -> None:
    settings = Settings(env=env, region=Region.TJ, data_dir=tmp_path, peers={"BJ": "http://127.0.0.1:8001"})
    settings.check_production()


# --- a peer's text is held to the rule for text a person reads -----------------------------------------------------


@pytest.fixture
async def tianjin(settings: Settings) -> AsyncIterator[Tianjin]:
    async with tianjin_with_fake_beijing(settings) as node:
        yield node


async def partner(tianjin: Tianjin) -> dict[str, str]:
    client = await create_client(tianjin.app, role=Role.partner, region="TJ")
    return bearer(await token_for(tianjin.http, *client))


def recognised(number: str, to_region: str, **change: Any) -> dict[str, Any]:
    """An honest Beijing judgement that recognises a valid certificate, with its basis and conditions."""
    answer = {
        **fake_recognition(number, to_region),
        "result": "valid",
        "reason": None,
        "decision": "conditional",
        "decision_reason": None,
        "rule_id": 7,
        "equivalent": {
            "cert_type": "title",
            "series_code": "ENG",
            "catalogue_code": "ENG-AI",
            "name_zh": "人工智能",
            "name_en": "Artificial intelligence",
            "level": "senior",
        },
        "conditions": {"zh": "须在天津市人社局备案", "en": "Filed with the Tianjin HR bureau"},
        "basis": [{"code": "京津冀人社发〔2026〕3号", "title": "京津冀职称互认办法"}],
    }
    for field, value in change.items():
        part, _dot, inner = field.partition(".")
        if inner:
            answer[part] = {**answer[part], inner: value}
        else:
            answer[part] = value
    return answer


def recognition_answers(**change: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda question: [
        {"index": index, "status": 200, "answer": recognised(item["number"], question["to_region"], **change)}
        for index, item in enumerate(question["items"])
    ]


TOO_LONG_NAME = "工" * 129  # longer than an evaluation body's name may be (128)
RECOGNITION_TEXT = {
    "a text-direction override in the basis": {
        "basis": [{"code": "京津冀人社发〔2026〕3号", "title": "互认\u202e办法"}]
    },
    "a terminal escape in the conditions": {"conditions.en": "Filed \x1b[2J with the Tianjin HR bureau"},
    "a line break in the conditions": {"conditions.zh": "须在天津\n备案"},
    "a zero-width space in the equivalent's name": {"equivalent.name_zh": "人工\u200b智能"},
    "a private-use character in the body's name": {"certificate.issuer_name": "北京市评审委员会\ue000"},
    "a body's name longer than a name may be": {"certificate.issuer_name": TOO_LONG_NAME},
    "a blank series": {"certificate.series_zh": " "},
    "a NUL in the result's reason": {"decision_reason": "no\x00rule"},
    "text-direction isolates in the level name": {"certificate.level_name_en": "\u2067Senior\u2069"},
}


def changed_certificate(answer: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "certificate": {**answer["certificate"], **change}}


@pytest.mark.parametrize("change", RECOGNITION_TEXT.values(), ids=RECOGNITION_TEXT.keys())
async def test_a_recognition_answer_with_text_unfit_to_read_is_not_passed_on(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    certificate = {key.partition(".")[2]: value for key, value in change.items() if key.startswith("certificate.")}
    rest = {key: value for key, value in change.items() if not key.startswith("certificate.")}

    def answer(question: dict[str, Any]) -> Any:
        items = recognition_answers(**rest)(question)
        return [{**item, "answer": changed_certificate(item["answer"], certificate)} for item in items]

    tianjin.peer.recognition_answer = answer
    headers = await partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    single = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=headers)
    bulk = await tianjin.http.post(
        "/v1/recognition/queries",
        json={"purpose": "hiring", "items": [{"number": tianjin.peer.number, "holder_name": HOLDER}]},
        headers=headers,
    )

    assert single.status_code == bulk.status_code == 200, (single.text, bulk.text)
    (result,) = bulk.json()["results"]
    for said in (single.json(), result["answer"]):
        assert (said["result"], said["decision"]) == ("unknown", "not_recognised")
        assert said["decision_reason"] == "peer_answer_not_trusted"
        assert said["certificate"] is None
        assert (said["basis"], said["conditions"]) == ([], None)
    for text in ("互认", "Filed", "天津", "人工", "北京市评审委员会", TOO_LONG_NAME):
        assert text not in single.text + bulk.text


async def test_an_honest_recognition_answer_keeps_its_basis_and_conditions(tianjin: Tianjin) -> None:
    tianjin.peer.recognition_answer = recognition_answers()
    headers = await partner(tianjin)
    params = {"holder_name": HOLDER, "purpose": "hiring"}

    response = await tianjin.http.get(f"/v1/recognition/{tianjin.peer.number}", params=params, headers=headers)

    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["decision"], said["answered_by"]) == ("valid", "conditional", "BJ")
    assert said["basis"] == [{"code": "京津冀人社发〔2026〕3号", "title": "京津冀职称互认办法"}]
    assert said["conditions"] == {"zh": "须在天津市人社局备案", "en": "Filed with the Tianjin HR bureau"}
    assert said["equivalent"]["name_zh"] == "人工智能"


VERIFICATION_TEXT = {
    "a right-to-left override in the body's name": {"issuer_name": "北京市\u202e会员委审评"},
    "a line break in the entry's English name": {"name_en": "Artificial\nintelligence"},
    "a soft hyphen in the series": {"series_zh": "工程\u00adtechnology"},
    "an entry name longer than a name may be": {"name_zh": "人" * 65},
    "an escape in the series' English name": {"series_en": "\x1b]8;;https://evil.example\x07Engineering"},
}


@pytest.mark.parametrize("change", VERIFICATION_TEXT.values(), ids=VERIFICATION_TEXT.keys())
async def test_a_verification_answer_with_text_unfit_to_read_is_unknown(
    tianjin: Tianjin, change: dict[str, Any]
) -> None:
    def answer(question: dict[str, Any]) -> Any:
        return {"status": 200, "body": changed_certificate(fake_verification(question["number"]), change)}

    tianjin.peer.verify_answer = answer

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["reason"], said["answered_by"]) == ("unknown", "peer_answer_not_trusted", "TJ")
    assert said["certificate"] is None
    for text in change.values():
        assert text not in response.text


async def test_a_verification_reason_with_a_control_character_is_unknown(tianjin: Tianjin) -> None:
    tianjin.peer.verify_answer = lambda question: {
        "status": 200,
        "body": {**fake_verification(question["number"]), "status_reason": "fraud\r\nX-Injected: 1"},
    }

    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    assert (response.json()["result"], response.json()["reason"]) == ("unknown", "peer_answer_not_trusted")
    assert "Injected" not in response.text


async def test_an_honest_verification_answer_is_still_passed_on(tianjin: Tianjin) -> None:
    response = await tianjin.http.post("/v1/verify", json={"number": tianjin.peer.number, "holder_name": HOLDER})

    assert response.status_code == 200, response.text
    said = response.json()
    assert (said["result"], said["answered_by"]) == ("revoked", "BJ")
    assert said["certificate"]["issuer_name"] == "北京市工程技术系列人工智能专业高级职称评审委员会"


async def test_one_unreadable_item_spoils_only_itself_in_a_bulk_answer(tianjin: Tianjin) -> None:
    """A peer whose records hold one name stored before a text rule tightened answers every other item still: the
    statement's signature covers the whole answer, so its readable items are the peer's as much as the bad one."""
    spoiled = numbering.new_number(region="BJ", cert_type="title", year=2026)
    honest = recognition_answers()
    bad = recognition_answers(**{"conditions.en": "Filed \u202ewith the Tianjin HR bureau"})

    def answer(question: dict[str, Any]) -> Any:
        good, unfit = honest(question), bad(question)
        return [unfit[i] if item["number"] == spoiled else good[i] for i, item in enumerate(question["items"])]

    tianjin.peer.recognition_answer = answer
    items = [{"number": tianjin.peer.number, "holder_name": HOLDER}, {"number": spoiled, "holder_name": HOLDER}]

    bulk = await tianjin.http.post(
        "/v1/recognition/queries", json={"purpose": "hiring", "items": items}, headers=await partner(tianjin)
    )

    assert bulk.status_code == 200, bulk.text
    first, second = (result["answer"] for result in bulk.json()["results"])
    assert (first["number"], first["result"], first["decision"]) == (tianjin.peer.number, "valid", "conditional")
    assert first["conditions"] == {"zh": "须在天津市人社局备案", "en": "Filed with the Tianjin HR bureau"}
    assert (second["number"], second["result"], second["decision"]) == (spoiled, "unknown", "not_recognised")
    assert second["decision_reason"] == "peer_answer_not_trusted"
    assert "\u202e" not in bulk.text
