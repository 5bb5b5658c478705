"""The mutation score of each rule module, from the results ``mutmut run`` left in mutants/ (docs/testing.md).

Modules that mix rules with database code are scored on their rule functions; the mutants of the rest are counted on a
line of their own: no unit test reaches them (the integration tests do), so they say nothing about the unit tests.
Prints a Markdown table, then every surviving mutant of a rule function: the known equivalents with their reasons, then
the rest; exits 1 when a survivor is not a known equivalent.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

# module -> its rule functions, for the modules that are not rules through and through (mutmut's mangled names).
RULE_FUNCTIONS: dict[str, frozenset[str]] = {
    "registry.issuers.service": frozenset({"x_scope_covers"}),
    "registry.verification.judgement": frozenset({"x_judge"}),
    "registry.certificates.lifecycle": frozenset({"x__past"}),
    "registry.certificates.status_lists": frozenset({"x_empty_bits", "x_with_bit", "x_bit", "x_encode", "x_decode"}),
}
# Mutants that survive because no input can tell them from the code: each with the reason (docs/testing.md). The
# numbers are mutmut's, stable while the function is unchanged; a change to one of these functions shows its survivors
# as unexplained until they are looked at again.
_ZIP_LENGTHS = "zip(..., strict=True) -> strict=False/None/omitted: the lengths were checked equal just before"
_SERIAL_COUNT = (
    "zip(kinds, serials, strict=True) -> strict=False/None/omitted: _crockford_serials makes exactly len(kinds) "
    "serials (it refuses any other number of bytes)"
)
_CODEC_CASE = '"ascii" -> "ASCII" as a codec name: the same codec'
EQUIVALENT: dict[str, str] = {
    "registry.certificates.numbering.x_normalize_number__mutmut_75": "str.index -> rindex: _SYMBOLS has no repeats",
    "registry.certificates.numbering.x_new_numbers__mutmut_18": _SERIAL_COUNT,
    "registry.certificates.numbering.x_new_numbers__mutmut_21": _SERIAL_COUNT,
    "registry.certificates.numbering.x_new_numbers__mutmut_22": _SERIAL_COUNT,
    "registry.certificates.status_lists.x_encode__mutmut_13": (
        'rstrip(b"=") -> rstrip(b"XX=XX"): strips "X" too, but a gzip stream ends with its length mod 2**32 '
        '(little-endian), so base64 ends in "X" only for a list of 23 * 2**24 bytes or more; a list is 16 KiB'
    ),
    "registry.certificates.status_lists.x_encode__mutmut_15": 'decode("ascii") -> decode("ASCII"): the same codec',
    "registry.certificates.status_lists.x_decode__mutmut_17": (
        "padding -len % 4 -> +len % 4: differs only for lengths of 1 and 3 mod 4; base64's decoder refuses the "
        "first either way and ignores padding beyond the needed '=' in the second"
    ),
    "registry.gb11643.x_check_char__mutmut_4": _CODEC_CASE,
    "registry.crockford.x_encode__mutmut_5": _CODEC_CASE,
    "registry.issuers.credit_code.x_credit_code_check_char__mutmut_16": "str.index -> rindex: _ALPHABET has no repeats",
    "registry.issuers.credit_code.x_credit_code_check_char__mutmut_19": _ZIP_LENGTHS,
    "registry.issuers.credit_code.x_credit_code_check_char__mutmut_22": _ZIP_LENGTHS,
    "registry.issuers.credit_code.x_credit_code_check_char__mutmut_23": _ZIP_LENGTHS,
    "registry.transparency.merkle.x_root_from_inclusion_proof__mutmut_31": (
        "while ... and fn != 0 -> fn != 1: the loop starts at a non-zero fn and stops at its first odd value, "
        "so fn is never 0 nor 1 while it runs"
    ),
    "registry.transparency.merkle.x_verify_consistency__mutmut_64": (
        "while ... and fn != 0 -> fn != 1: as in root_from_inclusion_proof (sn != 0 there, so fn == sn is non-zero)"
    ),
    "registry.transparency.merkle.x_append__mutmut_9": _ZIP_LENGTHS,
    "registry.transparency.merkle.x_append__mutmut_12": _ZIP_LENGTHS,
    "registry.transparency.merkle.x_append__mutmut_13": _ZIP_LENGTHS,
}
# mutmut's exit codes (mutmut.stats.status_by_exit_code), folded into the columns of the table.
OUTCOME: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
}  # anything else: "other"
TIMEOUTS = {36, 24, -24, 152, 255}
CRASHES = {-9, -11}  # the worker was killed (a mutant that grows without bound) or crashed: detected too
COLUMNS = ("killed", "timeout", "crashed", "survived", "no tests", "other")


def outcome(exit_code: int | None) -> str:
    if exit_code in TIMEOUTS:
        return "timeout"
    if exit_code in CRASHES:
        return "crashed"
    return OUTCOME.get(exit_code, "other")


def main() -> int:
    rules: dict[str, Counter[str]] = {}
    outside: Counter[str] = Counter()
    survivors: list[str] = []
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        exit_codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        for mutant, exit_code in exit_codes.items():
            module, name = mutant.rsplit(".", 1)
            function = name.split("__mutmut_")[0]
            kind = outcome(exit_code)
            if module in RULE_FUNCTIONS and function not in RULE_FUNCTIONS[module]:
                outside[kind] += 1
                continue
            rules.setdefault(module, Counter())[kind] += 1
            if kind == "survived":
                survivors.append(mutant)
    print("| module | mutants | " + " | ".join(COLUMNS) + " | score |")
    print("|---|---:|" + "---:|" * len(COLUMNS) + "---:|")
    total: Counter[str] = Counter()
    for module, counts in sorted(rules.items()):
        total.update(counts)
        print(_row(module, counts))
    print(_row("**all rule functions**", total))
    print(_row("database code in the mixed modules (integration tests)", outside))
    unexplained = [name for name in survivors if name not in EQUIVALENT]
    explained = [name for name in survivors if name in EQUIVALENT]
    if explained:
        print(f"\n{len(explained)} surviving mutants are equivalent to the code (docs/testing.md):")
        print("\n".join(f"- {name}: {EQUIVALENT[name]}" for name in explained))
    if unexplained:
        print(f"\n{len(unexplained)} surviving mutants need a test or a reason (`mutmut show NAME`):")
        print("\n".join(f"- {name}" for name in unexplained))
    return 1 if unexplained else 0


def _row(label: str, counts: Counter[str]) -> str:
    mutants = sum(counts.values())
    detected = counts["killed"] + counts["timeout"] + counts["crashed"]
    score = f"{100 * detected / mutants:.1f}%" if mutants else "-"
    return f"| {label} | {mutants} | " + " | ".join(str(counts[column]) for column in COLUMNS) + f" | {score} |"


if __name__ == "__main__":
    sys.exit(main())
