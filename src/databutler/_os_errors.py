"""What to do about an operating system's error, by its ``errno``: one table for the
messages of the library (an artifact that cannot be written) and of the command line
(an `OSError` that reached it)."""

from __future__ import annotations

import errno

__all__ = ["os_fix"]

_FIXES = {
    errno.EXDEV: "a hard link cannot cross file systems: use transfer='copy' (or 'symlink')",
    errno.EACCES: "check the permissions of that path and of its directory",
    errno.EPERM: "check the permissions of that path and of its directory",
    errno.ENAMETOOLONG: "shorten the path (a name holds at most 255 bytes)",
    errno.ENOTDIR: "a part of that path is a file, not a directory: give a directory",
    errno.EISDIR: "that path is a directory: give a file",
    errno.ENOENT: "check that the path exists",
    errno.EEXIST: "that path exists already: give another",
    errno.ENOSPC: "free some space there, or choose another place",
    errno.EDQUOT: "free some space there, or choose another place",
    errno.EROFS: "that file system is read-only: choose a place that can be written",
    errno.EIO: "the disk may be failing or gone: check it",
    errno.EFBIG: "the file is larger than this process may write (see 'ulimit -f') or the "
    "file system holds: raise the limit, or choose another place",
}


def os_fix(error: OSError) -> str | None:
    """What to do about ``error`` (its ``errno``), or `None` if that is not known."""
    return _FIXES.get(error.errno or 0)
