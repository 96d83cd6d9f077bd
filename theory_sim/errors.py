"""One error type for bad input: the CLI turns it into one line and exit code 2."""


class ConfigError(ValueError):
    """Bad user input. ``field`` names the offending key; the message says what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
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
