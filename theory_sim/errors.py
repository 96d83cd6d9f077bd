"""One error type for bad input: the CLI turns it into one line and exit code 2."""


class ConfigError(ValueError):
    """Bad user input. ``field`` names the offending key; the message says what is allowed."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise ConfigError(field, message)


def reject_unknown(d: dict, known, what: str) -> None:
    """ConfigError naming the first key of ``d`` not in ``known`` and listing the allowed ones."""
    for k in d:
        if k not in known:
            raise ConfigError(k, f"unknown {what}; allowed: {', '.join(sorted(known))}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, carrying how far it got (the CLI prints one line from it and exits 130)."""

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total
        super().__init__(f"interrupted: {done} of {total} cells stored; rerun the same command to resume")


class StoreError(Exception):
    """The results store could not be written (disk full, permissions): one line for the CLI, exit 1; a
    rerun of the same command after fixing the cause completes the sweep."""


def normalise_integers(obj) -> None:
    """Turns numpy scalars in a frozen dataclass's fields into Python ints and floats, so ``np.int64(3)``
    is an integer everywhere and hashes and JSON see plain numbers."""
    import dataclasses
    import numbers

    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, int)):
            object.__setattr__(obj, f.name, int(v))
        elif isinstance(v, numbers.Real) and not isinstance(v, (bool, int, float, numbers.Integral)):
            object.__setattr__(obj, f.name, float(v))


#: the longest path and path component this suite writes (Linux's PATH_MAX and NAME_MAX, in bytes)
MAX_PATH_BYTES, MAX_NAME_BYTES = 4096, 255


def check_path_length(path, field: str) -> None:
    """ConfigError naming ``field`` when ``path`` (absolute, in bytes) exceeds MAX_PATH_BYTES or one of its
    components MAX_NAME_BYTES: refused in one line before anything is written (the OS would say Errno 36)."""
    import os

    raw = os.fsencode(os.path.abspath(os.fspath(path)))
    if len(raw) > MAX_PATH_BYTES:
        raise ConfigError(field, f"the path is {len(raw)} bytes long, more than the {MAX_PATH_BYTES} a path may have")
    longest = max((len(part) for part in raw.split(b"/")), default=0)
    if longest > MAX_NAME_BYTES:
        raise ConfigError(
            field, f"a component of the path is {longest} bytes long, more than the {MAX_NAME_BYTES} a name may have"
        )


def check_folder(path, field: str, empty: bool = False):
    """A folder to write into, checked without creating anything: a non-blank path that is not a file, whose
    nearest existing ancestor is a writable folder (missing folders in between are made when writing, like
    ``mkdir -p``), and (``empty``) without files in it yet. Returns it as a Path; ConfigError naming
    ``field`` otherwise."""
    import os
    from pathlib import Path

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ConfigError(field, f"needs a folder path, got {path!r}")
    check_path_length(path, field)
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise ConfigError(field, f"{str(path)!r} is a link to {os.readlink(p)!r}, which does not exist")
    if p.exists() and not p.is_dir():
        raise ConfigError(field, f"{str(path)!r} exists and is not a folder")
    if empty and p.is_dir() and any(p.iterdir()):
        raise ConfigError(field, f"{str(path)!r} is not empty; give a new or empty folder")
    ancestor = p.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(field, f"{str(path)!r} lies under {str(ancestor)!r}, which is a file, not a folder")
    if not os.access(ancestor, os.W_OK):
        raise ConfigError(field, f"cannot write into {str(ancestor)!r}")
    return p


def make_folder(path, field: str):
    """Creates the folder ``path`` (and missing parents) checked by ``check_folder``; a filesystem that refuses
    (``/proc``, a read-only mount, a race with a file of that name) is a ConfigError naming ``field``, with
    nothing created."""
    from pathlib import Path

    check_path_length(path, field)
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(field, f"cannot create the folder {str(path)!r}: {e.strerror or e}") from None
    return p


#: the largest sweep or spec file read (a sweep of many axes is a few KiB)
MAX_TEXT_BYTES = 2**20
#: the deepest nesting of brackets and braces a sweep or spec file may have (a sweep needs 3)
MAX_NESTING = 32


def read_bounded(path, field: str) -> str:
    """A small UTF-8 text file (a sweep or a spec), checked before it is parsed: a regular file of at most
    MAX_TEXT_BYTES (``/dev/zero`` is not one), brackets and braces nested at most MAX_NESTING deep (the
    parsers recurse per level). A UTF-8 byte-order mark is dropped. ConfigError naming ``field`` otherwise."""
    import os

    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(field, f"cannot read {str(path)!r}: {e.strerror}") from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(field, f"{str(path)!r} is not a regular file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TEXT_BYTES + 1)
    except OSError as e:
        raise ConfigError(field, f"cannot read {str(path)!r}: {e.strerror}") from None
    if len(raw) > MAX_TEXT_BYTES:
        raise ConfigError(field, f"{str(path)!r} is larger than {MAX_TEXT_BYTES // 1024} KiB; not a sweep or spec file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(field, f"{str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    text = text.removeprefix("\ufeff")
    check_nesting(text, field, str(path))
    return text


def check_nesting(text: str, field: str, where: str) -> None:
    """ConfigError when brackets/braces nest deeper than MAX_NESTING (counted outside nothing: a bracket
    inside a string also counts, so the bound is a little strict, never loose)."""
    depth = top = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            top = max(top, depth)
            if top > MAX_NESTING:
                raise ConfigError(field, f"{where} nests brackets more than {MAX_NESTING} deep")
        elif ch in "]}":
            depth = max(0, depth - 1)
