"""Checks of an output path before the work that ends in writing it (a training run that
could only fail at its last step is lost time)."""

from __future__ import annotations

import os
from pathlib import Path

from explorer.errors import UsageError

__all__ = ["check_writable"]

_NAME_MAX = 255  # bytes in one path component on ext4, XFS, APFS and NTFS


def check_writable(path: Path, *, option: str = "--out") -> None:
    """Refuse ``path`` unless a file could be written there now.

    The nearest existing ancestor must be a directory this user may write in (missing
    directories below it are created at write time), the name must fit the file system and
    ``path`` must not be an existing directory.

    Raises:
        UsageError: one line naming the option, the path and the fix.
    """
    text = str(path)
    # the length first: stat() of a name longer than the file system allows raises
    longest = max((len(os.fsencode(p)) for p in path.parts), default=0)
    if longest > _NAME_MAX:
        raise UsageError(
            f"{option}: a name in {text[:60]!r}... is {longest} bytes, more than the "
            f"{_NAME_MAX} a file system allows: choose a shorter name"
        )
    if path.name in ("", ".", "..") or path.is_dir():
        raise UsageError(f"{option} {text!r} is a directory: give a file name, e.g. model.pt")
    ancestor = path.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {text!r} is under {str(ancestor)!r}, which is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {text!r}: {str(ancestor)!r} is not writable by this user")
