"""Constraints declared once: each config field says, where it is defined, what it accepts, what it means,
whether it scales with the data and whether it may differ inside one ensemble.

In the style of scikit-learn's ``Interval`` / ``StrOptions`` (sklearn/utils/_param_validation.py): a field is
``param(default, Interval(int, 1, None), "help text", scale="f", per_model=True)``. Validation
(``check_declared``), ``theory-sim train``'s options and ``--help``, the sweep parser's derived keys
(``X_over_f``), the ensemble key (``per_model``), the docs' field tables (``markdown_table``) and the test
that feeds every field values it must refuse (``Constraint.invalid``) all read the same declaration.

A constraint that depends on another field (``k <= width``, ``bias_init >= bias_floor``) stays a line of the
config's ``check()``, which runs after every declared constraint has held.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from .errors import ConfigError


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _fmt(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (int or float; bools are neither) in [lo, hi] (None: unbounded); ``closed`` says
    which ends belong: "both", "left", "right" or "neither"."""

    kind: type
    lo: float | None = None
    hi: float | None = None
    closed: str = "both"

    def accepts(self, v) -> bool:
        if self.kind is int:
            if not isinstance(v, numbers.Integral) or isinstance(v, bool):
                return False
        elif not _is_number(v):
            return False
        lo_in = self.closed in ("both", "left")
        hi_in = self.closed in ("both", "right")
        if self.lo is not None and not (v >= self.lo if lo_in else v > self.lo):
            return False
        return self.hi is None or (v <= self.hi if hi_in else v < self.hi)

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        if self.lo is None and self.hi is None:
            return what
        left = "[" if self.closed in ("both", "left") and self.lo is not None else "("
        right = "]" if self.closed in ("both", "right") and self.hi is not None else ")"
        lo = "-inf" if self.lo is None else _fmt(self.lo)
        hi = "inf" if self.hi is None else _fmt(self.hi)
        return f"{what} in {left}{lo}, {hi}{right}"

    def invalid(self) -> list:
        """Values this constraint must refuse: a bool, a string, NaN, and each bound crossed."""
        out = [True, "1", float("nan")]
        if self.kind is int:
            out.append(1.5 if self.lo is None or self.lo < 1.5 else self.lo + 0.5)
        step = 1 if self.kind is int else 1e-9
        if self.lo is not None:
            out.append(self.lo - step if self.closed in ("both", "left") else self.lo)
        if self.hi is not None:
            out.append(self.hi + step if self.closed in ("both", "right") else self.hi)
        if self.kind is float:
            out.append(float("inf"))
        return out


@dataclasses.dataclass(frozen=True)
class Options:
    """One of ``values`` (compared with ==; a bool never matches a string option)."""

    values: tuple

    def accepts(self, v) -> bool:
        return not isinstance(v, bool) and v in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(map(str, self.values))

    def invalid(self) -> list:
        return [True, "no-such-option", 1]


@dataclasses.dataclass(frozen=True)
class Boolean:
    """true or false (not 0 / 1, not "yes")."""

    def accepts(self, v) -> bool:
        return isinstance(v, bool)

    def describe(self) -> str:
        return "true or false"

    def invalid(self) -> list:
        return [1, 0, "true"]


@dataclasses.dataclass(frozen=True)
class ListOf:
    """A list (or tuple) of values ``inner`` accepts (lengths that depend on another field are ``check``'s)."""

    inner: object

    def accepts(self, v) -> bool:
        return isinstance(v, (list, tuple)) and all(self.inner.accepts(x) for x in v)

    def describe(self) -> str:
        return f"a list, each entry {self.inner.describe()}"

    def invalid(self) -> list:
        return ["1,2", 3] + [[x] for x in self.inner.invalid()]


@dataclasses.dataclass(frozen=True)
class Maybe:
    """None (the field's "not set") or a value ``inner`` accepts."""

    inner: object

    def accepts(self, v) -> bool:
        return v is None or self.inner.accepts(v)

    def describe(self) -> str:
        return f"{self.inner.describe()}, or unset"

    def invalid(self) -> list:
        return self.inner.invalid()


@dataclasses.dataclass(frozen=True)
class Declared:
    """What a field declares: its constraint, help text, data scale ("f": a frequency, ``X_over_f`` sets it as a
    multiple of f; "s": a count of active latents, ``X_over_s``; None) and whether it may differ between the
    models of one ensemble."""

    constraint: object
    help: str
    scale: str | None = None
    per_model: bool = False


def param(default, constraint, help: str, *, scale: str | None = None, per_model: bool = False):
    """A dataclass field with its declaration in the metadata (``declared`` reads it)."""
    return dataclasses.field(default=default, metadata={"declared": Declared(constraint, help, scale, per_model)})


def declared(cls) -> dict[str, Declared]:
    """Field name -> Declared, merged along the class hierarchy: a subclass that only changes a default
    (``lr: float = 3e-3``) keeps its parent's declaration; one that declares again replaces it."""
    out: dict[str, Declared] = {}
    for klass in reversed(getattr(cls, "__mro__", (type(cls),))):
        for f in vars(klass).get("__dataclass_fields__", {}).values():
            if "declared" in f.metadata:
                out[f.name] = f.metadata["declared"]
    return out


def check_declared(obj) -> None:
    """ConfigError naming the first field whose value its declared constraint refuses (one line: the field,
    what it accepts, what it got). Fields are checked in definition order."""
    decl = declared(type(obj))
    for f in dataclasses.fields(obj):
        d = decl.get(f.name)
        if d is None:
            continue
        v = getattr(obj, f.name)
        if not d.constraint.accepts(v):
            raise ConfigError(f.name, f"must be {d.constraint.describe()}, got {v!r}")


def undeclared(cls) -> list[str]:
    """Fields of a dataclass with no declaration (a test keeps this empty for every config)."""
    decl = declared(cls)
    return [f.name for f in dataclasses.fields(cls) if f.name not in decl]


def scales(cls) -> dict[str, str]:
    return {k: d.scale for k, d in declared(cls).items() if d.scale}


def per_model(cls) -> tuple[str, ...]:
    return tuple(k for k, d in declared(cls).items() if d.per_model)


def markdown_table(cls) -> str:
    """The docs' table of a config's fields: name, default, accepted values, per-model, meaning."""
    rows = ["| field | default | accepts | per model | meaning |", "|---|---|---|---|---|"]
    decl = declared(cls)
    for f in dataclasses.fields(cls):
        d = decl[f.name]
        scale = f" (`{f.name}_over_{d.scale}`: a multiple of {d.scale})" if d.scale else ""
        accepts, text = (s.replace("|", "\\|") for s in (d.constraint.describe(), d.help + scale))
        rows.append(f"| `{f.name}` | {f.default!r} | {accepts} | {'yes' if d.per_model else ''} | {text} |")
    return "\n".join(rows)
