"""The numerals a clerk may spell a number with, each read as its digit: the one table purpose masking
(``registry.recognition.purposes``) and refusals' echoes (``registry.errors.said_masked``) read numbers by.

"〇" or "零" (or "○" typed for it), everyday and financial numerals (壹贰叁…, traditional 貳叄陸 too), "幺" as one
is read aloud. "十", "百", "万" are no digits: "十二" stays "十2", so "二〇二六年十二月五日" holds no long run.
"""

from __future__ import annotations

from typing import Final

_BY_DIGIT: Final = ("〇○零", "一幺壹", "二贰貳", "三叁叄", "四肆", "五伍", "六陆陸", "七柒", "八捌", "九玖")
DIGIT_OF: Final[dict[str, str]] = {
    numeral: str(digit) for digit, numerals in enumerate(_BY_DIGIT) for numeral in numerals
}
