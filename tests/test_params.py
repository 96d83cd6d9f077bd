"""Constraints declared once (theory_sim/params.py): the vocabulary on hand-checkable cases, every declared field
of every registered method, the data model and [train] refusing the values its constraint names (booleans for
integers included), and the command line refusing without importing torch."""

import dataclasses
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory_sim.errors import ConfigError
from theory_sim.params import Boolean, Interval, ListOf, Maybe, Options, declared, per_model, scales
from theory_sim.reference import sections


# ------------------------------------------------------------------------------------------ the vocabulary
def test_interval_by_hand():
    unit_open = Interval(float, 0, 1, "neither")
    assert unit_open.accepts(0.5) and unit_open.accepts(1e-9)
    assert not unit_open.accepts(0) and not unit_open.accepts(1) and not unit_open.accepts(True)
    assert not unit_open.accepts(float("nan")) and not unit_open.accepts("0.5")
    assert unit_open.describe() == "a number in (0, 1)"
    count = Interval(int, 1, None)
    assert count.accepts(1) and count.accepts(10**12)
    assert not count.accepts(0) and not count.accepts(1.0) and not count.accepts(True) and not count.accepts(2.5)
    assert count.describe() == "an integer in [1, inf)"
    assert Interval(float, None, 0).describe() == "a number in (-inf, 0]"
    assert Interval(float, 0, 10, "right").describe() == "a number in (0, 10]"
    assert Interval(float).accepts(-1e300) and not Interval(float).accepts(math.inf)


def test_options_boolean_list_maybe_by_hand():
    o = Options(("relu", "jumprelu"))
    assert o.accepts("relu") and not o.accepts("ReLU") and not o.accepts(True)
    assert o.describe() == "one of relu, jumprelu"
    b = Boolean()
    assert b.accepts(False) and not b.accepts(0) and not b.accepts("true")
    lst = ListOf(Interval(int, 1, None))
    assert lst.accepts([3, 20]) and lst.accepts(()) and not lst.accepts([3, 0]) and not lst.accepts("3,20")
    assert not lst.accepts([True])
    m = Maybe(Interval(float, 0, None, "neither"))
    assert m.accepts(None) and m.accepts(2.0) and not m.accepts(0.0)


@given(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["both", "left", "right", "neither"]))
def test_interval_accepts_exactly_its_set(x, closed):
    """Property: accepts(x) iff x is finite and inside [lo, hi] with the declared ends."""
    iv = Interval(float, -1.0, 2.0, closed)
    inside = math.isfinite(x) and (
        -1.0 < x < 2.0 or (x == -1.0 and closed in ("both", "left")) or (x == 2.0 and closed in ("both", "right"))
    )
    assert iv.accepts(x) == inside


@given(
    st.sampled_from(
        [
            Interval(int, 1, None),
            Interval(int, 0, 8),
            Interval(float, 0, 1, "neither"),
            Interval(float, None, 0),
            Interval(float, 0, 10, "right"),
            Options(("a", "b")),
            Boolean(),
            ListOf(Interval(float, 0, None)),
            Maybe(Interval(int, 1, None)),
        ]
    )
)
def test_every_invalid_example_is_refused(c):
    """What ``invalid`` offers the field test below is really outside the constraint."""
    assert c.invalid()
    for v in c.invalid():
        assert not c.accepts(v), (c, v)


# ------------------------------------------------------------------------------------------ every declared field
def _cases():
    for title, cls in sections():
        for name, d in declared(cls).items():
            for v in d.constraint.invalid():
                yield pytest.param(cls, name, v, id=f"{cls.__name__}.{name}={v!r}")


@pytest.mark.parametrize("cls, name, value", list(_cases()))
def test_every_declared_field_refuses_what_its_constraint_refuses(cls, name, value):
    """One line naming the field and what it accepts, for every declared field of every config (the defaults
    elsewhere): ``adapt_every = true`` used to be accepted while ``k = true`` was refused."""
    with pytest.raises(ConfigError) as e:
        cls(**{name: value})
    assert e.value.field == name, (e.value.field, str(e.value))
    assert "\n" not in str(e.value)


def test_defaults_satisfy_their_declarations():
    for title, cls in sections():
        cls()  # validates every declared constraint and check()


def test_per_model_and_scales_come_from_the_declarations():
    from theory_sim.sae import REGISTRY

    for name, cls in REGISTRY.items():
        assert cls.PER_MODEL == per_model(cls.Config)
    assert set(REGISTRY["ba"].PER_MODEL) == {"p", "gamma_minus", "gamma_plus", "scale_init", "bias_init", "bias_floor"}
    assert "p" not in REGISTRY["gba"].PER_MODEL and {"htf", "ltf"} <= set(REGISTRY["gba"].PER_MODEL)
    assert scales(REGISTRY["topk"].Config) == {"k": "s", "width": "n"}
    assert scales(REGISTRY["gba"].Config) == {"htf": "f", "ltf": "f", "width": "n"}


def test_a_subclass_that_changes_a_default_keeps_the_declaration():
    from theory_sim.sae.configs import AdaptConfig, MethodConfig

    assert declared(AdaptConfig)["lr"] is declared(MethodConfig)["lr"]
    assert AdaptConfig.__dataclass_fields__["lr"].default == 3e-3
    with pytest.raises(ConfigError, match="lr"):
        AdaptConfig(lr=0)


def test_register_refuses_a_method_whose_config_is_not_filed_under_its_name():
    from theory_sim.sae import REGISTRY
    from theory_sim.sae.base import register
    from theory_sim.sae.configs import CONFIGS

    Stray = type("Stray", (REGISTRY["topk"],), {"name": "stray", "Config": CONFIGS["topk"]})
    with pytest.raises(ValueError, match="not filed"):
        register(Stray)
    assert "stray" not in REGISTRY


def test_cross_field_rules_still_hold():
    from theory_sim.sae.configs import make_config

    with pytest.raises(ConfigError, match="width = 8"):
        make_config("topk", {"width": 8, "k": 9})
    with pytest.raises(ConfigError) as e:
        make_config("ba", {"bias_floor": -0.5, "bias_init": -0.75})
    assert e.value.field == "bias_init"
    with pytest.raises(ConfigError) as e:
        make_config("gba", {"htf": 0.01, "ltf": 0.1})
    assert e.value.field == "htf"


# ------------------------------------------------------------------------------------------ the light front door
REFUSALS = [
    ["--help"],
    ["sweep", "--bogus"],
    ["train", "--p", "2"],
    ["train", "--adapt-every", "0"],
    ["train", "--method", "nope"],
    ["train", "--steps", "0"],
    ["sample", "--n", "0"],
    ["sweep", "/dev/null", "--out", "OUT"],
    ["sweep", "sweeps/phase.toml", "--out", "OUT", "--threads", "0"],
    ["plot", "OUT"],
    ["status", "OUT"],
    ["bench", "--device", "tpu"],
    ["params"],
]


def test_refusals_and_help_do_not_import_torch(tmp_path):
    """`theory-sim --help` and every one-line refusal of bad input return without importing torch, scipy or
    pandas (one process runs them all, each in-process, and reports what got imported)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    calls = [[a.replace("OUT", str(tmp_path / "none")) for a in argv] for argv in REFUSALS]
    code = (
        "import io, json, sys, contextlib\n"
        "from theory_sim.cli import main\n"
        "out = []\n"
        f"for argv in {calls!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "        try:\n"
        "            rc = main(argv)\n"
        "        except SystemExit as e:\n"
        "            rc = e.code\n"
        "    heavy = ('torch', 'scipy', 'pandas', 'matplotlib')\n"
        "    out.append([argv, rc, sorted(m for m in heavy if m in sys.modules)])\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for argv, rc, heavy in json.loads(res.stdout):
        assert rc == (0 if argv[0] in ("--help", "params") else 2), (argv, rc)
        assert heavy == [], f"{argv} imported {heavy}"


def test_every_config_field_is_a_dataclass_field_with_a_declaration():
    for title, cls in sections():
        names = [f.name for f in dataclasses.fields(cls)]
        assert names and set(declared(cls)) == set(names), title
