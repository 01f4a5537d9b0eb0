"""The errors a user acts on, and the one sentence a job ends with for each.

A UserError's message is a whole sentence naming the file or key and the way out (a bad setting, a damaged log,
another run's checkpoint, a lease taken over). A filesystem error that no retry fixes by itself (a full disk, a
read-only or forbidden folder, a directory where a file belongs, a file removed while a job read it) is said the
same way, naming its file. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sys
from types import TracebackType

# the way out of a filesystem error, by errno; the sentence names the file and ends with "then run it again"
OS_FIXES = {
    errno.ENOSPC: "no space is left on its filesystem: free some there",
    errno.EDQUOT: "your disk quota on its filesystem is used up: free some or ask for more",
    errno.EROFS: "its filesystem is read-only: point `results` (config.yaml) at a writable folder",
    errno.EACCES: "permission denied: make its folder writable by you, or point `results` elsewhere",
    errno.EPERM: "operation not permitted: make its folder writable by you, or point `results` elsewhere",
    errno.EISDIR: "it is a directory where a file belongs: remove it (rm -r)",
    errno.ENOTDIR: "a file stands where a folder belongs on its path: remove that file",
    errno.ENOENT: ("it vanished while this job ran (another snakemake writing the same outputs, e.g. under "
                   "--nolock, or a file removed by hand): let the other one finish"),
}


class UserError(Exception):
    """An error whose message is the whole sentence a user needs: a job ends with it alone."""


def sentence(err: BaseException) -> str | None:
    """The one sentence a job ends with for `err`; None for a bug, whose traceback is wanted."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.errno in OS_FIXES:
        where = err.filename if err.filename is not None else "a file it was writing"
        return (f"{where}: {err.strerror or errno.errorcode[err.errno]}; {OS_FIXES[err.errno]}, then run it again "
                f"(finished runs and checkpoints are kept).")
    return None


def excepthook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
    """sys.excepthook of a job: a UserError or a known filesystem error as `error: <sentence>`, any other error with
    its traceback, as Python prints it."""
    text = sentence(err)
    if text is None:
        sys.__excepthook__(kind, err, tb)
    else:
        print(f"error: {text}", file=sys.stderr, flush=True)


def naming(path: object, err: OSError) -> OSError:
    """`err` (raised by a write or fsync, which name no file) naming `path`, for sentence."""
    if err.filename is None and err.errno is not None:
        return type(err)(err.errno, err.strerror, str(path))
    return err
