"""Keep the Chinese message catalogue in step with the code (registry.i18n).

``python3 tools/messages.py`` extracts every ``_("...")`` message of registry/, api/ and cli/ with babel, adds the new
ones untranslated, drops the ones no code says any more, and rewrites registry/locale/zh/LC_MESSAGES/messages.po; then
write the Chinese of each new entry (its ``msgstr``). ``--check`` changes nothing and exits 1 when the catalogue lacks
a translation or holds a stale entry (tests/unit/test_i18n.py checks the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("registry", "api", "cli")  # cli/: what the commands say to people
CATALOGUE = ROOT / "registry" / "locale" / "zh" / "LC_MESSAGES" / "messages.po"
HEADER = """\
# Simplified Chinese messages of the talent registry: the msgid is the English template the code says with _()
# (registry/i18n.py), the msgstr what a Chinese reader gets. Kept in step by tools/messages.py."""


def extract() -> dict[str, list[str]]:
    """Every msgid the code marks with ``_()``, with the files that say it, in the order the files are read."""
    found: dict[str, list[str]] = {}
    for source in SOURCES:
        for filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT / source, method_map=[("**.py", "python")], keywords={"_": None}
        ):
            msgid = message[0] if isinstance(message, tuple) else message
            where = f"{source}/{filename}"
            if where not in found.setdefault(msgid, []):
                found[msgid].append(where)
    return found


def read_catalogue(path: Path = CATALOGUE) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale="zh")


def merged(found: dict[str, list[str]], old: Catalog | None) -> Catalog:
    """The catalogue for ``found``: translations kept from ``old``, new messages untranslated, stale ones gone."""
    catalogue = Catalog(
        locale="zh",
        header_comment=HEADER,
        project="talent-registry",
        version="0.1.0",
        language_team="talent-registry",
        last_translator="talent-registry",
        charset="utf-8",
        fuzzy=False,
    )
    if old is not None:  # unchanged dates keep a run that adds nothing from changing the file
        catalogue.creation_date, catalogue.revision_date = old.creation_date, old.revision_date
    for msgid, files in found.items():
        previous = old.get(msgid) if old is not None else None
        string = str(previous.string) if previous is not None and previous.string else ""
        catalogue.add(msgid, string, locations=[(file, 0) for file in files])
    return catalogue


def main(argv: list[str]) -> int:
    found = extract()
    old = read_catalogue() if CATALOGUE.exists() else None
    known = {str(m.id) for m in old if m.id} if old is not None else set()
    untranslated = [msgid for msgid in found if old is None or not (m := old.get(msgid)) or not m.string]
    stale = sorted(known - set(found))
    if "--check" in argv:
        for msgid in untranslated:
            print(f"untranslated: {msgid}")
        for msgid in stale:
            print(f"stale: {msgid}")
        return 1 if untranslated or stale else 0
    CATALOGUE.parent.mkdir(parents=True, exist_ok=True)
    with CATALOGUE.open("wb") as po:
        write_po(po, merged(found, old), width=120, omit_header=False, include_lineno=False)
    print(
        f"{CATALOGUE.relative_to(ROOT)}: {len(found)} messages, {len(untranslated)} to translate, {len(stale)} dropped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
