"""How ``registry verify-credential`` shows and compares a registry's address: its host in ASCII — IDNA (UTS #46,
as browsers and httpx map it), ``xn--…`` for a host in another script — so a look-alike host (``bеijing`` with a
Cyrillic ``е``) never reads as the registry it imitates, and the host compared is the host printed and fetched.

A host IDNA refuses (a control, a bidi override, a symbol) is shown with each non-ASCII character percent-encoded:
ASCII too, and plainly not the registry's. An address need not start with ``http(s)://``: in a value (an ``iss``, a
``kid``, a URL) any word that reads as one — a host with a dot (``rcrs.hrss.bеijing.gov.cn/v1/…``), ``did:web:…``,
``host:port`` — has each part of its authority in ASCII and the rest of its non-ASCII percent-encoded. The report
(registry.credentials.report) puts every value it prints and then every line through ``ascii_hosts``.
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
# A value's words: what spaces, quotes and brackets part. A word whose authority (up to the first / ? # or \\) holds a
# dot — one UTS #46 reads as "." too — or a colon reads as an address (a host, did:web:host, host:port).
_WORDS = re.compile(r"([\s'\"<>()\[\]{},;`|]+)")
_AUTHORITY_ENDS = re.compile(r"[/?#\\]")
_ADDRESS_MARKS = frozenset(".:\u3002\uff0e\uff61")


def ascii_host(host: str) -> str:
    """``host`` as an address bar shows it: unchanged if ASCII, else its IDNA form (lower case, ``xn--`` labels)."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return _percent_encoded(host)


def _percent_encoded(text: str) -> str:
    return "".join(char if char.isascii() else quote(char, safe="") for char in text)


def _ascii_address(word: str) -> str:
    """A word of a value that reads as an address, whatever its scheme (``did:web:host``, a bare ``host/path``), in
    ASCII: each ``:``-part of its authority as ``ascii_host`` shows it, any other non-ASCII character percent-encoded.
    Any other word (a name, a level) as written."""
    if word.isascii():
        return word
    end = _AUTHORITY_ENDS.search(word)
    authority, rest = (word[: end.start()], word[end.start() :]) if end else (word, "")
    if not any(char in _ADDRESS_MARKS for char in authority):
        return word
    # A did:web host writes its port as %3A: the host is what comes before the first %.
    parts = (part.partition("%") for part in authority.split(":"))
    return ":".join(ascii_host(host) + _percent_encoded(pct + more) for host, pct, more in parts) + _percent_encoded(
        rest
    )


def _ascii_authority(authority: str) -> str:
    """``user@host:port`` with the host in ASCII (``ascii_host``) and any non-ASCII of the user part percent-encoded."""
    user, at, host_port = authority.rpartition("@")
    host, colon, port = host_port.rpartition(":")
    if not (colon and port.isascii() and port.isdigit()):
        host, colon, port = host_port, "", ""
    shown_user = _percent_encoded(user)
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
    whose Chinese punctuation may follow an address; else one value (a URL, a reason), read to the next space, in
    which any other word that reads as an address is shown in ASCII too (``_ascii_address``)."""
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
    said = "".join(shown)
    return said if prose else "".join(_ascii_address(word) for word in _WORDS.split(said))
