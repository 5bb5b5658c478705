"""How ``registry verify-credential`` shows and compares a registry's address: its host in ASCII — IDNA (UTS #46,
as browsers and httpx map it), ``xn--…`` for a host in another script — so a look-alike host (``bеijing`` with a
Cyrillic ``е``) never reads as the registry it imitates, and the host compared is the host printed and fetched.

A host IDNA refuses (a control, a bidi override, a symbol) is shown with each non-ASCII character percent-encoded:
ASCII too, and plainly not the registry's. The report (registry.credentials.report) puts every value it prints and
then every line through ``ascii_hosts``.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

import idna

_SCHEME = re.compile(r"https?://", re.IGNORECASE)
# Where an address's authority (user@host:port) ends: ASCII that no host holds, or a space. In a sentence, also the
# Chinese punctuation a translation writes right after an address ("{registry}，…"); never a full stop UTS #46 reads
# as "." (。 ． ｡), which a look-alike host may use. A value alone (``prose=False``) ends only at ASCII or a space.
_ASCII_ENDS = frozenset(" \t\r\n/\\?#'\"<>()[]{},;!`|")
_PROSE_ENDS = frozenset("，；：、（）！？「」『』【】《》〈〉")


def ascii_host(host: str) -> str:
    """``host`` as an address bar shows it: unchanged if ASCII, else its IDNA form (lower case, ``xn--`` labels)."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return "".join(char if char.isascii() else quote(char, safe="") for char in host)


def _ascii_authority(authority: str) -> str:
    """``user@host:port`` with the host in ASCII (``ascii_host``) and any non-ASCII of the user part percent-encoded."""
    user, at, host_port = authority.rpartition("@")
    host, colon, port = host_port.rpartition(":")
    if not (colon and port.isascii() and port.isdigit()):
        host, colon, port = host_port, "", ""
    shown_user = "".join(char if char.isascii() else quote(char, safe="") for char in user)
    return f"{shown_user}{at}{ascii_host(host)}{colon}{port}"


def _authority_end(text: str, start: int, *, prose: bool) -> int:
    end = start
    while end < len(text):
        char = text[end]
        if char.isascii():
            if char in _ASCII_ENDS:
                break
        elif unicodedata.category(char).startswith("Z") or (prose and char in _PROSE_ENDS):
            break
        end += 1
    return end


def ascii_hosts(text: str, *, prose: bool = True) -> str:
    """``text`` with the host of every http(s) address in it shown in ASCII (``ascii_host``). ``prose``: a sentence,
    whose Chinese punctuation may follow an address; else one value (a URL, a reason), read to the next space."""
    if text.isascii():
        return text
    shown: list[str] = []
    done = 0
    for scheme in _SCHEME.finditer(text):
        if scheme.start() < done:
            continue
        end = _authority_end(text, scheme.end(), prose=prose)
        shown += [text[done : scheme.end()], _ascii_authority(text[scheme.end() : end])]
        done = end
    shown.append(text[done:])
    return "".join(shown)
