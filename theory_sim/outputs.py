"""Writing outputs (exports, figures, reports, saved samples) so that they can never hit a results store and
are never left half-written.

* ``check_output``: a target path is resolved (links followed, hard links found by inode) and refused if it
  is, or lies inside, a store's database, its -wal / -shm / lock files or its arrays folder, or is any SQLite
  database.
* ``atomic_file`` / ``atomic_folder``: written under a temporary name beside the target and renamed into place
  at the end, so a crash, Ctrl-C or SIGKILL leaves either the old target or the new one.
* a full disk (ENOSPC, EDQUOT), a read-only filesystem (EROFS), a permission refusal or a closed pipe (EPIPE)
  is an ``OutputError``: one line, exit 1, the temporary removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path

from .errors import ConfigError, StoreError

#: errors of the filesystem or the reader, not of the input: one line, exit 1
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EPIPE, errno.EIO)
SQLITE_MAGIC = b"SQLite format 3\x00"


class OutputError(StoreError):
    """An output could not be written (disk full, read-only, closed pipe); nothing partial is left."""


def describe(e: OSError, path) -> OutputError:
    from .store import free_space

    where = Path(path).parent if path else Path(".")
    extra = f" ({free_space(where)})" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return OutputError(f"cannot write {path}: {e.strerror or e}{extra}; nothing was written")


def _protected(folder: Path) -> list[Path]:
    from .store import STORE_FILES

    return [folder / f for f in STORE_FILES] + [folder / "arrays"]


def _inode(p) -> tuple[int, int] | None:
    try:
        st = os.stat(p)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


@contextlib.contextmanager
def output_errors(path):
    """Inside the block, an OSError of the filesystem or the reader (OUTPUT_ERRNOS) becomes one OutputError
    naming ``path``; any other error passes unchanged."""
    try:
        yield
    except OSError as e:
        if e.errno in OUTPUT_ERRNOS:
            raise describe(e, path) from None
        raise


def check_output(path, field: str, stores=()) -> Path:
    """``path`` as a file to write, or ConfigError naming ``field``: a non-blank path that is not a folder,
    in an existing folder, and not (through any symbolic or hard link) a file of the results stores
    ``stores`` (folders) nor any SQLite database."""
    if path is None or not str(path).strip():
        raise ConfigError(field, f"needs a file path, got {path!r}")
    from .errors import check_path_length

    check_path_length(path, field)
    p = Path(path)
    if p.is_dir():
        raise ConfigError(field, f"{str(path)!r} is a folder; give a file path")
    if not p.parent.resolve().is_dir():
        raise ConfigError(field, f"the folder of {str(path)!r} does not exist")
    real = Path(os.path.realpath(p))
    target = _inode(p)
    for store in stores:
        protected = _protected(Path(os.path.realpath(store)))
        for q in protected:
            if real == q or q in real.parents:
                raise ConfigError(field, f"{str(path)!r} is part of the results store {store}; write it elsewhere")
        if target is not None:  # a hard link has its own path: compare inodes with every file of the store
            arrays = protected[-1]
            inodes = {_inode(q) for q in protected[:-1]}
            inodes |= {_inode(q) for q in arrays.iterdir()} if arrays.is_dir() else set()
            if target in inodes:
                raise ConfigError(
                    field, f"{str(path)!r} is a link to a file of the results store {store}; write elsewhere"
                )
    if p.exists():
        with contextlib.suppress(OSError), open(p, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                raise ConfigError(field, f"{str(path)!r} is an SQLite database (a results store?); write elsewhere")
    return p


@contextlib.contextmanager
def atomic_file(path):
    """Yields a temporary path beside ``path`` (same suffix, so writers that look at it choose the same
    format); renamed onto ``path`` when the block succeeds, removed otherwise. A target that exists and is not
    a regular file (a device such as /dev/stdout, a pipe) is written in place: renaming onto it would replace
    the device. OSErrors of the filesystem become OutputError."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a device or pipe (/dev/stdout, a FIFO): written in place
        with output_errors(path):
            yield str(path)
        return
    tmp = None
    try:
        with output_errors(path):
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
            os.close(fd)
            yield tmp
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600: the output follows the umask like any file
            os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(path, field: str = "save", replace: bool = False):
    """Yields a temporary folder beside ``path`` (new or empty, or any folder with ``replace``: then the old
    one is removed only once the new one is complete); renamed onto ``path`` when the block succeeds, removed
    otherwise. A ``path`` that is a link to a folder is written where the link points (the link stays). Leftovers
    of a killed writer (``.NAME.partial-PID-*`` whose process is gone) are removed first. The new folder gets the
    permissions a ``mkdir`` would (the umask), not mkdtemp's 0700."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # check_folder refused a dangling link
    parent = path.parent
    for old in parent.glob(f".{path.name}.partial-*"):
        try:
            pid = int(old.name.rsplit(".partial-", 1)[1].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            pass
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.partial-{os.getpid()}-")
    except OSError as e:  # a filesystem that refuses folders (/proc, read-only): nothing was made
        raise ConfigError(field, f"cannot create a folder in {str(parent)!r}: {e.strerror or e}") from None
    try:
        with output_errors(path):
            os.chmod(tmp, 0o777 & ~umask())
            yield Path(tmp)
            if replace and path.is_dir() and any(path.iterdir()):  # --force: the old folder goes only now
                old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.replaced-"))
                os.rename(path, old / "x")
                os.rename(tmp, path)
                tmp = None
                shutil.rmtree(old, ignore_errors=True)
                return
            if path.is_dir():
                path.rmdir()  # empty (checked before drawing); a file put there meanwhile makes this fail
            os.rename(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
