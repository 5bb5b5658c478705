"""The message catalogue and the words of errors: every message the code says has its Chinese, with the same
placeholders; the language of a request is the reader's; validation errors say what is expected, never a pattern."""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from registry.errors import InvalidInput, NotFound, field_errors
from registry.i18n import PATTERNS, Listing, Message, _, catalogue, negotiate, translate, validation_message
from tools import messages

ROOT = Path(__file__).resolve().parents[2]


def placeholders(template: str) -> set[str]:
    return {name for _text, name, _spec, _conversion in string.Formatter().parse(template) if name is not None}


def test_every_message_the_code_says_has_its_chinese_with_the_same_placeholders() -> None:
    found = messages.extract()
    zh = catalogue("zh")
    untranslated = [msgid for msgid in found if not zh.get(msgid)]
    assert not untranslated, f"run python3 tools/messages.py and translate: {untranslated}"
    for msgid in found:
        assert placeholders(zh[msgid]) == placeholders(msgid), (msgid, zh[msgid])


def test_the_catalogue_holds_no_message_the_code_no_longer_says() -> None:
    stale = set(catalogue("zh")) - set(messages.extract())
    assert not stale, f"run python3 tools/messages.py to drop: {sorted(stale)}"


def test_the_catalogue_ships_with_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"locale/*/LC_MESSAGES/*.po"' in pyproject
    assert messages.CATALOGUE.is_file()


@pytest.mark.parametrize(
    ("accept_language", "query_lang", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("zh-CN", None, "zh"),
        ("zh", None, "zh"),
        ("zh-Hans-CN,zh;q=0.9", None, "zh"),
        ("zh_TW", None, "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", None, "en"),
        ("fr-FR,zh;q=0.5", None, "zh"),
        ("zh;q=0.1,en;q=0.5", None, "en"),
        ("zh;q=0,en;q=0.1", None, "en"),
        ("de,fr", None, "en"),
        ("*", None, "en"),
        ("zh;q=oops,en;q=0.5", None, "en"),
        ("en", "zh", "zh"),
        ("zh-CN", "en", "en"),
        ("zh-CN", "fr", "zh"),
        (None, "ZH-cn", "zh"),
    ],
)
def test_the_language_of_a_request(accept_language: str | None, query_lang: str | None, expected: str) -> None:
    assert negotiate(accept_language, query_lang) == expected


def test_a_message_is_said_again_in_chinese_with_its_values_said_too() -> None:
    status = _("revoked")
    refused = _("a {status} certificate cannot be suspended", status=status)
    assert refused == "a revoked certificate cannot be suspended"  # English where it is used as text
    assert translate(refused, "en") == "a revoked certificate cannot be suspended"
    assert translate(refused, "zh") == "已吊销的证书不能暂停"
    assert translate("plain text", "zh") == "plain text"
    assert translate(refused, None) is refused
    both = Listing([_("{field}: {message}", field="level", message=_("is required")), _("unknown field")])
    assert both == "level: is required; unknown field"
    assert translate(both, "zh") == "level：为必填项；未知字段"


def test_a_domain_error_is_said_in_the_language_asked_for() -> None:
    error = NotFound(_("no evaluation body {code}", code="BJ-X"))
    assert error.problem(lang="zh")["title"] == "未找到"
    assert error.problem(lang="zh")["detail"] == "没有评价机构 BJ-X"
    assert error.problem()["detail"] == "no evaluation body BJ-X"
    invalid = InvalidInput.field("cursor", _("is not a cursor this service returned"))
    assert invalid.problem(lang="zh")["errors"] == [{"field": "cursor", "message": "不是本服务返回的游标"}]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{2,31}$")]
    other: Annotated[str, Field(pattern=r"^x+$")] = "x"
    day: date
    kind: Literal["title", "skill"] = "title"
    name: Annotated[str, Field(min_length=1, max_length=4)] = "n"
    count: Annotated[int, Field(ge=1)] = 1


def _messages(raw: dict[str, object], lang: str = "en") -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        _Form.model_validate(raw)
    return {error.field: translate(error.message, lang) for error in field_errors(caught.value.errors())}


def test_validation_errors_say_what_is_expected() -> None:
    said = _messages(
        {"code": "a b", "other": "y", "day": "30/06/2026", "kind": "x", "name": "", "count": 0, "extra": 1}
    )
    assert said == {
        "code": "must be capital letters, digits and hyphens, 3–32 characters, not starting with a hyphen",
        "other": "is not in the expected format",  # a pattern without a description is not shown either
        "day": "use YYYY-MM-DD, a real calendar date (e.g. 2026-06-30)",
        "kind": "must be one of: title, skill",
        "name": "must not be empty",
        "count": "must be at least 1",
        "extra": "unknown field",
    }
    assert _messages({"day": "2026-02-30", "name": "12345"}) == {
        "code": "is required",
        "day": "use YYYY-MM-DD, a real calendar date (e.g. 2026-06-30)",
        "name": "at most 4 characters",
    }


def test_validation_errors_in_chinese() -> None:
    said = _messages({"code": "a b", "day": "30/06/2026"}, "zh")
    assert said["day"].startswith("日期格式应为 YYYY-MM-DD")
    assert said["code"] == "应为大写字母、数字和连字符（-），3–32 个字符，不能以连字符开头"


def test_every_pattern_of_the_schemas_is_described_in_words() -> None:
    """A new ``pattern=`` in a schema needs its description in registry.i18n.PATTERNS (else it says only "is not in
    the expected format")."""
    used: set[str] = set()
    for folder in ("registry", "api"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r'pattern=r"([^"]+)"', path.read_text(encoding="utf-8")))
    assert used, "no pattern found: the scan is broken"
    assert used <= set(PATTERNS), sorted(used - set(PATTERNS))


def test_an_unexpected_pydantic_error_keeps_its_own_words_without_the_value() -> None:
    said = validation_message({"type": "made_up", "msg": "Input should be shiny", "input": "110105198807120016"})
    assert isinstance(said, Message)
    assert said == "is not valid: Input should be shiny"


def test_text_measured_after_a_validator_of_ours_is_counted_in_characters_not_items() -> None:
    """Pydantic reports a length checked after a BeforeValidator (a round label, a rule's conditions) as ``too_long``,
    the error for lists: it said "at most 64 items" of a 65-character label."""
    from registry.certificates.schemas import EvaluationBatch
    from registry.recognition.schemas import RuleCreate

    class Labelled(BaseModel):
        label: EvaluationBatch

    for model, data, field, words in (
        (Labelled, {"label": "B" * 65}, "label", "at most 64 characters"),
        (RuleCreate, {"conditions_zh": "条" * 501}, "conditions_zh", "at most 500 characters"),
    ):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(data)
        named = {error.field: str(error.message) for error in field_errors(refused.value.errors())}
        assert named[field] == words, named
