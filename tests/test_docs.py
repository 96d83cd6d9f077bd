"""The docs a user writes sweeps from name everything the code accepts."""

import dataclasses
from pathlib import Path

from theory_sim.sae import REGISTRY
from theory_sim.sweep.spec import PLOT_KEYS, TOP_KEYS, TRAIN_KEYS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_method_and_hyperparameter_is_documented():
    text = (DOCS / "methods.md").read_text()
    for name, cls in REGISTRY.items():
        assert f"`{name}`" in text, name
        for f in dataclasses.fields(cls.Config):
            assert f"`{f.name}`" in text, f"{name}.{f.name}"


def test_every_sweep_key_is_documented():
    text = (DOCS / "sweeps.md").read_text()
    for k in (*TOP_KEYS, *TRAIN_KEYS, *PLOT_KEYS, "linspace", "logspace", "geomspace", "range", "zip", "all_methods"):
        assert f"`{k}`" in text, k


def test_no_doc_or_docstring_points_outside_the_repository():
    root = DOCS.parent
    for p in [*root.glob("theory_sim/**/*.py"), *root.glob("docs/*.md"), root / "README.md"]:
        assert "shared/" not in p.read_text().replace("shared/ component", ""), p


def test_every_declared_field_has_help_for_the_command_line():
    """``theory-sim train --help`` / ``sample --help`` say what each field means: every field of every config is
    declared (params.param) with a help text."""
    from theory_sim.params import declared, undeclared
    from theory_sim.reference import sections

    for title, cls in sections():
        assert undeclared(cls) == [], f"{title}: fields without a declaration"
        for name, d in declared(cls).items():
            assert d.help.strip(), f"{title}.{name} has no help text"


def test_the_parameter_reference_is_the_generated_one():
    """docs/parameters.md is `theory-sim params --markdown`: a field added, renamed or re-ranged without
    regenerating it fails here."""
    from theory_sim.reference import markdown

    assert (DOCS / "parameters.md").read_text() == markdown(), (
        "regenerate: theory-sim params --markdown > docs/parameters.md"
    )


def _all_docs() -> str:
    root = DOCS.parent
    return "\n".join(p.read_text() for p in [root / "README.md", *sorted(DOCS.glob("*.md"))])


def test_every_cli_option_is_documented():
    """Each option of each command is named in the README or docs/ as `--option`, or (the generated options
    of data-model fields and hyperparameters) its field is documented as `field`."""
    import argparse

    from theory_sim.cli import build_parser

    text = _all_docs()
    missing = []
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd, p in sub.choices.items():
        assert f"theory-sim {cmd}" in text, cmd
        for a in p._actions:
            for opt in a.option_strings:
                if not opt.startswith("--") or opt == "--help":
                    continue
                field = opt[2:].replace("-", "_")
                base = field.split("_over_")[0]
                if (
                    f"`{opt}" not in text
                    and f"{opt}" not in text
                    and f"`{field}`" not in text
                    and f"`{base}`" not in text
                ):
                    missing.append(f"{cmd} {opt}")
    assert not missing, missing


def test_every_api_argument_is_documented():
    import inspect

    import theory_sim
    from theory_sim.sweep import run_sweep

    text = _all_docs()
    missing = []
    for fn in (theory_sim.train, theory_sim.load_results, theory_sim.load_boundaries, run_sweep):
        for name, prm in inspect.signature(fn).parameters.items():
            if prm.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            if not any(f"{pre}{name}{post}" in text for pre in ("`", "(", " ") for post in ("`", "=", ",", ")")):
                missing.append(f"{fn.__name__}({name})")
    assert not missing, missing


def test_role_refine_and_mixture_keys_are_documented():
    from theory_sim.model.spec import GENERATOR_FIELDS

    text = (DOCS / "sweeps.md").read_text()
    for k in ("role", "axis", "metric", "level", "scale", "tolerance", "max_rounds", "max_seeds"):
        assert f"`{k}`" in text or f"{k} =" in text, k
    everything = _all_docs()
    for k in GENERATOR_FIELDS:
        assert f"`{k}`" in everything, k
