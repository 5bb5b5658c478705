"""The check character of a resident identity number (GB 11643-1999, ISO 7064 MOD 11-2) and the province codes its
region begins with: one home, a leaf module that imports nothing of the registry, so both the identity rules
(``registry.holders.identity``) and the text rules (``registry.schemas``, which the holders package cannot be imported
from) use them."""

from __future__ import annotations

import operator
from typing import Final

# The weights are 2**17 .. 2**1 mod 11, the map turns "sum + c ≡ 1" into a char.
WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS: Final = "10X98765432"
_ZERO_SHARE: Final = ord("0") * sum(WEIGHTS)

# Province-level codes of GB/T 2260. 71 (Taiwan) is deliberately absent: Taiwan residents hold 83xxxx permits.
PROVINCE_CODES: Final = frozenset(
    [*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66)]
)
# 港澳台居民居住证 numbers carry only the province part: 810000 (HK), 820000 (Macao), 830000 (Taiwan).
RESIDENCE_PERMIT_CODES: Final = frozenset({81, 82, 83})


def check_char(first17: str) -> str:
    """The check character of 17 ASCII digits (ValueError for anything else). Summed over the digits' bytes, with the
    share of ``ord("0")`` taken off once: the same total as over ``int(digit)``, for a third of the time (it runs for
    every row of a batch)."""
    digits = first17.encode("ascii")  # UnicodeEncodeError (a ValueError) for anything else, as int() would raise
    if len(digits) != len(WEIGHTS) or not digits.isdigit():
        raise ValueError(f"need {len(WEIGHTS)} digits 0-9")
    total = sum(map(operator.mul, digits, WEIGHTS)) - _ZERO_SHARE
    return CHECK_CHARS[total % 11]
