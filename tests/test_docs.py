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


def test_every_hyperparameter_has_help_for_the_command_line():
    """``theory-sim train --help`` says what each field means: every Config field has a HELP entry."""
    for name, cls in REGISTRY.items():
        helps = {}
        for klass in cls.Config.__mro__:
            helps.update(getattr(klass, "HELP", {}))
        for f in dataclasses.fields(cls.Config):
            assert helps.get(f.name), f"{name}.{f.name} has no help text"
