"""Why the operating system refused to open, read or write a file, said as a message in the reader's language: the
common errno cases each have one (``_()``), any other keeps the system's own words. The one place the command line
(``registry import``, ``registry verify-credential``) and the domain's file readers and writers turn an ``OSError``
into a reason."""

from __future__ import annotations

import errno

from registry.i18n import Message, _

_REASONS: dict[int, Message] = {
    errno.ENOENT: _("no such file or directory"),
    errno.EACCES: _("permission denied"),
    errno.EPERM: _("permission denied"),
    errno.EISDIR: _("is a directory"),
    errno.ENOTDIR: _("a part of the path is not a directory"),
    errno.ELOOP: _("too many levels of symbolic links"),
    errno.ENAMETOOLONG: _("file name too long"),
    errno.ENOSPC: _("no space left on the device"),
    errno.EDQUOT: _("no space left on the device"),
    errno.EROFS: _("read-only file system"),
    errno.EEXIST: _("the file already exists"),
    errno.EIO: _("input/output error"),
    errno.EMFILE: _("too many open files"),
    errno.ENFILE: _("too many open files"),
}


def os_reason(error: OSError) -> str:
    """The reason ``error`` gives, a Message for the common errno cases, else the system's words (one line)."""
    known = _REASONS.get(error.errno) if error.errno is not None else None
    if known is not None:
        return known
    return " ".join((error.strerror or str(error)).split())
