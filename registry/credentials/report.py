"""What ``registry verify-credential`` prints: each step of the offline check with its outcome and why, and the
verdict, in the reader's language. Each line is a label in a column, then the words; English keeps the form scripts
read (``signature  PASS     …``, ``RESULT     NOT VALID``), Chinese pads its labels by the width a terminal gives them.
Every address a line names shows its host in ASCII (registry.credentials.hosts), as a browser's address bar does.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from registry.credentials.hosts import ascii_hosts
from registry.i18n import Listing, Message, _, translate

STEPS = ("format", "signature", "key", "dates", "status")
_STEP_WORDS: dict[str, Message] = {
    "format": _("format"),
    "signature": _("signature"),
    "key": _("key"),
    "dates": _("dates"),
    "status": _("status"),
}
_OUTCOME_WORDS: dict[str, Message] = {
    "pass": _("PASS"),
    "fail": _("FAIL"),
    "unknown": _("UNKNOWN"),
    "skipped": _("SKIPPED"),
}
_VERDICT_WORDS: dict[str, Message] = {"VALID": _("VALID"), "NOT VALID": _("NOT VALID"), "UNKNOWN": _("UNKNOWN")}
_RESULT = _("RESULT")
_CLAIMS = _("claims")
_NOT_REACHED = _("not reached")
_LABEL, _OUTCOME = 10, 8  # the columns' widths, in a terminal's cells


@dataclass
class Step:
    name: str
    outcome: str  # "pass" | "fail" | "unknown"
    detail: str


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return len(self.steps) == len(STEPS) and all(step.outcome == "pass" for step in self.steps)

    @property
    def verdict(self) -> str:
        """VALID, NOT VALID (a step failed) or UNKNOWN (a step could not be decided: something was unreadable)."""
        if self.valid:
            return "VALID"
        return "UNKNOWN" if not any(step.outcome == "fail" for step in self.steps) else "NOT VALID"

    def add(self, name: str, outcome: str, detail: str) -> bool:
        self.steps.append(Step(name, outcome, detail))
        return outcome == "pass"

    def render(self, lang: str | None = None) -> str:
        """The report's lines in ``lang`` (None: as written, in English)."""
        done = {step.name for step in self.steps}
        shown = [(step.name, step.outcome, step.detail) for step in self.steps]
        shown += [(name, "skipped", _NOT_REACHED) for name in STEPS if name not in done]
        lines = [
            _padded(translate(_STEP_WORDS.get(name, name), lang), _LABEL)
            + " "
            + _padded(translate(_OUTCOME_WORDS.get(outcome, outcome.upper()), lang), _OUTCOME)
            + " "
            + _said(detail, lang)
            for name, outcome, detail in shown
        ]
        undecided = [step.detail for step in self.steps if step.outcome == "unknown"]
        reason = f" — {_said(undecided[0], lang)}" if self.verdict == "UNKNOWN" and undecided else ""
        verdict = translate(_VERDICT_WORDS[self.verdict], lang)
        lines.append(f"{_padded(translate(_RESULT, lang), _LABEL)} {verdict}{reason}")
        return "\n".join(lines)


def claims_line(claims: str, lang: str | None = None) -> str:
    """The line before the steps: what the credential says it is, unchecked, in ``lang``."""
    said = _("{claims} (as the credential says; the steps check them)", claims=claims)
    return f"{_padded(translate(_CLAIMS, lang), _LABEL)} {_said(said, lang)}"


def _said(detail: str, lang: str | None) -> str:
    """A detail in ``lang`` with every address's host in ASCII: first in each value it carries (read to the next
    space: a look-alike host cannot end an address early with punctuation of its own), then in the sentence."""
    return ascii_hosts(translate(_ascii_values(detail), lang))


def _ascii_values(text: str) -> str:
    if isinstance(text, Listing):
        return Listing([_ascii_values(item) for item in text.items], text.separator)
    if isinstance(text, Message):
        if not text.values:
            return text  # the registry's own words
        values = {key: _ascii_values(value) if isinstance(value, str) else value for key, value in text.values.items()}
        return Message(text.template, **values)
    return ascii_hosts(text, prose=False)


def _padded(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` terminal cells: a Chinese character takes two."""
    cells = sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
    return text + " " * max(width - cells, 0)
