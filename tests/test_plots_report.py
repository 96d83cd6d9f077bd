"""Figures hold exactly the stored numbers; the bench reports its keys; reproduce runs end to end."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import cli_inprocess

from theory_sim import load_results
from theory_sim.plots import plot_sweep
from theory_sim.sweep import load_sweep, run_sweep

PHASE = """
name = "ph"
[data]
n = 24
s = 2
seed = 5
[grid]
d = [8, 12]
[[methods]]
name = "ba"
label = "BA"
width = 32
p_over_f = [0.5, 2]
[[methods]]
name = "topk"
label = "TopK"
width = 32
k = 2
[train]
steps = 40
batch = 64
eval_samples = 512
seeds = [0, 1]
save_decoder = true
[plot]
x = "p_over_f"
y = "d"
curve = ["frr_vs_tau", "frontier", "consistency"]
"""


def test_phase_diagram_files_and_csv_match_store(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text(textwrap.dedent(PHASE))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    pngs = plot_sweep(str(out))
    assert len(pngs) == 4
    for p in pngs:
        stem = p[:-4]
        for ext in (".png", ".pdf", ".csv"):
            assert (tmp_path / stem).with_name((tmp_path / stem).name + ext).exists() or __import__("os").path.exists(
                stem + ext
            )
    drawn = pd.read_csv(pngs[0][:-4] + ".csv")
    df = load_results(out)
    ba = df[df.label == "BA"].groupby(["d", "p_over_f"])["frr_0.9"].mean()
    for _, r in drawn[drawn.label == "BA"].iterrows():
        assert r["frr_0.9_mean"] == pytest.approx(ba[(r.d, r.p_over_f)])
        assert r.seeds == 2
    cons = pd.read_csv([p for p in pngs if "consistency" in p][0][:-4] + ".csv")
    # one series per variant *and* per d: consistency is never pooled over a data axis
    assert set(cons.series) >= {
        f"{v}, d = {d}" for v in ("BA (p_over_f=0.5)", "BA (p_over_f=2)", "TopK") for d in (8, 12)
    }
    assert ((cons.consistency >= 0) & (cons.consistency <= 1)).all()


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plotbad")
    f = tmp / "p.toml"
    f.write_text(textwrap.dedent(PHASE).replace("seeds = [0, 1]", "seeds = [0]"))
    run_sweep(load_sweep(f), str(tmp / "o"), progress=False)
    return tmp / "o"


@pytest.mark.parametrize(
    "args,field",
    [
        (["--metric", "bogus"], "metric"),
        (["--metric", "status"], "metric"),
        (["--metric", "label"], "metric"),
        (["--x", "d", "--y", "d"], "y"),
        (["--x", "d", "--y", "p_over_f"], "y"),  # TopK has no p_over_f
        (["--x", "nope"], "x"),
        (["--x", "label"], "x"),
        (["--x", "d", "--y", "k"], "y"),  # BA has no k
    ],
)
def test_plot_cli_bad_arguments_one_line_exit_2_nothing_written(small_store, args, field):
    figs = small_store / "figures"
    before = sorted(figs.rglob("*")) if figs.exists() else []
    r = cli_inprocess("plot", str(small_store), *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"error: {field}:" in r.stderr, r.stderr
    assert (sorted(figs.rglob("*")) if figs.exists() else []) == before


@pytest.mark.slow
def test_bench_json_keys():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "theory_sim.cli",
            "bench",
            "--json",
            "--methods",
            "ba,topk",
            "--sizes",
            "1,2",
            "--seconds",
            "0.2",
            "--no-grid",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["peak_gflops"] > 0 and b["device"] == "cpu" and len(b["results"]) == 4
    for row in b["results"]:
        for k in ("method", "E", "steps_per_second", "achieved_gflops", "fraction_of_peak", "peak_rss_mb"):
            assert k in row
        assert row["fraction_of_peak"] == pytest.approx(row["achieved_gflops"] / b["peak_gflops"])
        # the dense step's rate in its own FLOPs (10·B·d·M, plus the data's row sums); TopK's sparse step in those
        dense = row["fraction_of_peak_dense"] * row["flops_over_BdM"] / 10
        if row["method"] == "ba":
            assert dense == pytest.approx(row["fraction_of_peak"], rel=1e-6)
        else:  # k 4 of width 512: the sparse step, fewer FLOPs than the dense one
            assert row["flops_over_BdM"] < 5 and row["fraction_of_peak_dense"] > 2 * row["fraction_of_peak"]


@pytest.mark.slow
def test_reproduce_tiny_end_to_end(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "theory_sim.cli",
            "reproduce",
            "--budget",
            "tiny",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = (tmp_path / "figures" / "REPORT.md").read_text()
    for exp in ("theorem", "resonance", "cooccurrence", "width_magnitude", "imbalanced", "phase", "noise", "frontier"):
        assert f"## {exp}" in report
        # a first reader's order: the verdict with its deciding numbers, a small table, then the detail
        section = report.split(f"## {exp}\n")[1].split("\n## ")[0]
        lines = [ln for ln in section.splitlines() if ln.strip()]
        assert lines[0].startswith("**") and " — " in lines[0] and "Deciding:" in lines[0], lines[0]
        assert lines[1] == "| | |" and any(ln.startswith("| paper |") for ln in lines[:6])
        assert section.index("| paper |") < section.index("**Detail.**") < section.index("*Rule")
    for line in report.splitlines():
        if line.startswith("!["):
            assert (tmp_path / "figures" / line.split("(")[1].rstrip(")")).exists()
    assert "TopK K=20: ours" in report and "vs paper 100.0 / 98.4 %" in report
    # machine-readable verdicts: one object per experiment, every key; the budget check ran where declared
    import json

    from theory_sim.report import EXPERIMENTS, VERDICT_KEYS

    objs = json.loads((tmp_path / "figures" / "verdicts.json").read_text())
    assert [o["experiment"] for o in objs] == list(EXPERIMENTS)
    for o in objs:
        assert set(VERDICT_KEYS) <= set(o), o["experiment"]
        assert (
            o["cells_inside_hypotheses"] + o["cells_outside_hypotheses"] + o["cells_hypotheses_unevaluable"]
            == o["cells"]
        )
        # every sweep file declares its deciding cells, and the budget check ran on them, cell by cell
        assert o["budget_check"]["run"] is True and o["budget_check"]["steps_factor"] == 2, o
        assert isinstance(o["budget_check"]["stable"], bool)
        assert o["budget_check"]["compared"] >= 1 and isinstance(o["budget_check"]["moved"], list), o["experiment"]
        assert "| budget check |" in report
    res = next(o for o in objs if o["experiment"] == "resonance")
    assert set(res["switches_tried"]) == {"bias_floor=-1.0", "bias_init_quantile=False", "width=1024"}


@pytest.mark.parametrize("method,extra", [("ba", 0.0), ("gba", 0.0), ("l1", 2.0), ("topk", 2.0)])
def test_bench_counts_the_matmuls_the_step_runs(method, extra):
    """Five (B, d, M) matmuls of 2·B·d·M each per model-step, the data's 2·B·s·d, and for the untied SAEs
    b_dec's (1, M)·(M, d) encoder term (2·M·d): by hand, 10 + 2s/M + extra/B in units of B·d·M."""
    from theory_sim.bench import flops_per_model_step
    from theory_sim.model.spec import GeneratorSpec
    from theory_sim.sae import get_method, make_config
    from theory_sim.training import GeneratorData

    B, d, M, s, E = 32, 8, 16, 2, 3
    spec = GeneratorSpec(n=32, d=d, s=s)
    data = GeneratorData([spec.replace(seed=i) for i in range(E)], torch.device("cpu"))
    params = {"width": M, **({"k": 2} if method == "topk" else {})}
    sae = get_method(method)([make_config(method, params)] * E, d, list(range(E)), "cpu", data.sample(B))
    flops = flops_per_model_step(sae, data, B, s)
    assert flops / (B * d * M) == pytest.approx(10 + 2 * s / M + extra / B)


def test_a_first_reader_can_read_the_phase_diagram(small_store, monkeypatch):
    """No panel for a method without the x axis (TopK has no p/f: named in the title instead), no "n/a"
    tick, tick labels only at the grid's values (no overlapping minor labels), a legend entry for the
    hatching worded by its reason, the mixture named when the data is one."""
    import theory_sim.plots.common as P
    import theory_sim.plots.phase as PP

    figs = []
    real = PP._save

    def keep(fig, path_base, table):
        figs.append(fig)
        return real(fig, path_base, table)

    monkeypatch.setattr(PP, "_save", keep)
    df = load_results(small_store, current_only=True)
    # one BA cell not converged for a stated reason, so the hatching shows
    df.loc[df.label == "BA", "converged"] = False
    df.loc[df.label == "BA", "not_converged_because"] = "neuron frequencies 3x off their targets on average"
    PP.phase_diagram(df, "p_over_f", "d", "frr_0.9", small_store / "figures" / "t")
    fig = figs[-1]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split()[0] for ax in panels] == ["BA"]
    assert "not drawn: TopK" in fig._suptitle.get_text()
    ax = panels[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["1/2", "2"] and not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("hatched, n.c.: did not converge (neuron frequencies off target)") for t in legend), legend
    mix = df.assign(support="mixture", mixture_s=[(3, 20)] * len(df))
    assert "mixture" in P._context(mix, ["p_over_f", "d"]) and "s = " not in P._context(mix, ["p_over_f", "d"])


def test_dry_run_counts_and_writes_nothing(tmp_path, capsys):
    from theory_sim import cli

    out = tmp_path / "o"
    code = cli.main(["sweep", "sweeps/resonance.toml", "--budget", "quick", "--out", str(out), "--dry-run", "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and not out.exists()
    assert plan["cells"] == len(load_sweep("sweeps/resonance.toml", "quick").cells) and plan["stored"] == 0
    assert plan["per_label"]["BA"]["model_steps"] > 0 and plan["seconds"] > 0 and plan["refine_rounds"] >= 1
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 3\n")
    assert cli.main(["sweep", str(bad), "--out", str(out), "--dry-run"]) == 2
    assert len([ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]) == 1 and not out.exists()


def test_record_every_gives_the_trajectory_and_is_bounded(capsys):
    from theory_sim import cli

    base = ["train", "--method", "topk", "--n", "16", "--d", "8", "--s", "2", "--width", "16", "--steps", "40"]
    assert cli.main([*base, "--record-every", "20", "--json", "--no-progress"]) == 0
    traj = json.loads(capsys.readouterr().out)["trajectory"]
    assert traj["step"] == [0, 20, 40] and len(traj["l0"]) == 3 and traj["l0"][0] is None
    assert traj["loss"][1] > 0 and all(0 <= v <= 1 for v in traj["frr_0.9"])
    for bad in ("0", "-5", "41"):
        assert cli.main([*base, "--record-every", bad]) == 2
        assert "record_every" in capsys.readouterr().err


def test_the_api_sets_threads_for_the_work_and_restores_them(monkeypatch):
    """theory_sim.train trains under the one thread policy (here threads=1) and leaves torch's setting as it
    found it (2), so an API call has no global side effect."""
    import theory_sim
    import theory_sim.training as T
    from theory_sim.model import GeneratorSpec

    seen, real = [], T.train_ensemble

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(T, "train_ensemble", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        theory_sim.train("topk", GeneratorSpec(n=16, d=8, s=2), steps=3, width=8, k=1, threads=1, progress=False)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_frr_by_step_csv_holds_the_stored_trajectories(tmp_path):
    from theory_sim.plots.curves import frr_by_step

    df = pd.DataFrame(
        {
            "status": ["done"] * 4,
            "label": ["MBA"] * 4,
            "method": ["mba"] * 4,
            "seed": [0, 1, 0, 1],
            "d": [8, 8, 12, 12],
            "p_over_f": [0.7] * 4,
            "frr_0.9_by_step": [(1.0, 0.5, 0.25), (1.0, 0.7, 0.35), (0.4, 0.6, 0.9), (0.6, 0.8, 1.0)],
        }
    )
    paths = frr_by_step(df, tmp_path / "t", steps_needed=2)
    assert paths and all(Path(p).exists() for p in paths)
    table = pd.read_csv(str(tmp_path / "t") + ".csv")
    d12 = table[table.series.str.contains("d = 12")].sort_values("step")["frr_0.9_mean"].tolist()
    d8 = table[table.series.str.contains("d = 8")].sort_values("step")["frr_0.9_mean"].tolist()
    assert d12 == pytest.approx([0.5, 0.7, 0.95]) and d8 == pytest.approx([1.0, 0.6, 0.3])


def test_a_zipped_data_axis_draws_one_line_named_once(tmp_path):
    """theorem_scaling's grid zips d = n/4 with n: its curves along n are one line per method labelled
    "d = n/4", not one single-point series per d; an unzipped extra field still splits the lines."""
    from theory_sim.plots.curves import alignment, frr_by_step

    ns = [128, 256, 512, 1024]
    df = pd.DataFrame(
        {
            "status": "done",
            "label": "MBA",
            "method": "mba",
            "seed": [0, 1] * 4,
            "n": [n for n in ns for _ in range(2)],
            "d": [n // 4 for n in ns for _ in range(2)],
            "align_error": [0.2, 0.18, 0.05, 0.06, 0.015, 0.014, 0.006, 0.007],
            "frr_0.9_by_step": [(0.0, 1.0)] * 8,
        }
    )
    alignment(df, "n", tmp_path / "a")
    table = pd.read_csv(str(tmp_path / "a") + ".csv")
    assert table.label.unique().tolist() == ["MBA, d = n/4"] and len(table) == 4
    two = pd.concat([df, df.assign(s=3)]).assign(s=lambda t: t.get("s", 4).fillna(4))
    alignment(two, "n", tmp_path / "b")
    assert pd.read_csv(str(tmp_path / "b") + ".csv").label.nunique() == 2  # s is not zipped with n: two lines
    frr_by_step(df.iloc[::-1], tmp_path / "s")  # rows in any order
    order = pd.read_csv(str(tmp_path / "s") + ".csv").drop_duplicates("series").series.tolist()
    assert [int(x.split("n = ")[1].split(",")[0]) for x in order] == ns  # numeric, not lexical, order


def test_a_long_legend_does_not_squeeze_a_one_panel_phase_diagram(small_store, monkeypatch):
    """The quickstart's figure (one panel, every non-convergence reason in the hatching's legend entry) once drew
    its heat map as a sliver: constrained_layout shrank the axes to fit a legend wider than the figure. Long legend
    labels are wrapped; the panel keeps most of the figure's width."""
    import theory_sim.plots.phase as PP

    figs = []
    real = PP._save
    monkeypatch.setattr(PP, "_save", lambda fig, path_base, table: figs.append(fig) or real(fig, path_base, table))
    df = load_results(small_store, current_only=True)
    ba = df[df.label == "BA"]  # six p/f columns, as the quickstart has: the legend then takes two columns
    df = pd.concat([df, ba.assign(p_over_f=ba.p_over_f / 8), ba.assign(p_over_f=ba.p_over_f * 8)], ignore_index=True)
    df.loc[df.label == "BA", "converged"] = False
    df.loc[df.label == "BA", "not_converged_because"] = (
        "neuron frequencies 3x off their targets on average; recovery still rising at the end (FRR@0.9 +0.2 over "
        "the last fifth); loss still falling at the end"
    )
    PP.phase_diagram(df, "p_over_f", "d", "frr_0.9", small_store / "figures" / "long")
    fig = figs[-1]
    fig.canvas.draw()
    panel = [ax for ax in fig.axes if ax.get_title()][0]
    assert panel.get_position().width > 0.5, panel.get_position()


def test_a_figure_title_is_its_descriptions_headline():
    """A paragraph-long description would bury the figure under its title: the first sentence, or its first
    clause, or a word-boundary cut; a short description whole."""
    from theory_sim.plots.common import headline

    assert headline("FRR vs SNR.") == "FRR vs SNR."
    assert headline("R2: is recovery robust? More words follow here.") == "R2: is recovery robust?"
    long = "Neuron resonance where it counts: " + "n = 2,048, s = 3, " * 20 + "the rest. Second sentence."
    assert headline(long) == "Neuron resonance where it counts"
    t = headline("word " * 100)
    assert t.endswith(" …") and len(t) <= 162 and "wor …" not in t


def test_a_report_on_a_subset_names_what_it_leaves_out():
    """A report written by ``--only`` says which experiments it does not hold and how to run them; a report
    of every experiment says nothing."""
    from theory_sim.report import EXPERIMENTS
    from theory_sim.report.markdown import not_in_report

    line = not_in_report(["theorem", "phase"], "quick", EXPERIMENTS)
    rest = [e for e in EXPERIMENTS if e not in ("theorem", "phase")]
    assert line.startswith("**Not in this report** (") and f"{len(rest)} of {len(EXPERIMENTS)}" in line
    assert f"--only {','.join(rest)}`" in line and "--budget quick" in line
    assert not_in_report(list(EXPERIMENTS), "quick", EXPERIMENTS) == ""


def test_even_scale_maps_each_cell_edge_to_its_index_and_back():
    """Hand-checked: resonance_heavy's rows d = 40, 44, 96 have edges 38, 42, 70, 122 (cells 4, 28, 52 wide); the
    scale puts edge i at i, a value halfway along a cell halfway between, and runs straight on past the ends."""
    from theory_sim.plots.common import even_scale

    fwd, inv = even_scale([38, 42, 70, 122], log=False)
    assert fwd(np.array([38, 42, 70, 122, 56, 40])).tolist() == [0, 1, 2, 3, 1.5, 0.5]
    assert fwd(np.array([34.0, 174.0])).tolist() == [-1, 4]  # one first-cell width below, one last-cell above
    v = np.linspace(20, 200, 37)
    assert np.allclose(inv(fwd(v)), v)
    assert even_scale([10, 20, 30, 40], log=False) is None  # a regular grid keeps its linear axis
    assert even_scale([1, 4, 16, 64], log=True) is None  # and a geometric one its log axis
    assert even_scale([1, 2, 4, 64], log=True) is not None


def test_an_irregular_grid_of_rows_draws_rows_of_equal_height(small_store, monkeypatch):
    """Rows d = 40, 44, 96 (as resonance_heavy's) once drew as two slivers under one tall row, their labels on top
    of each other: each row now takes the same height, ticked at its value, and the axis label says so."""
    import theory_sim.plots.phase as PP

    figs = []
    real = PP._save
    monkeypatch.setattr(PP, "_save", lambda fig, path_base, table: figs.append(fig) or real(fig, path_base, table))
    df = load_results(small_store, current_only=True)
    df = df[df.label == "BA"]
    df = pd.concat([df.assign(d=df.d.map({8: 40, 12: 44})), df[df.d == 12].assign(d=96)], ignore_index=True)
    PP.phase_diagram(df, "p_over_f", "d", "frr_0.9", small_store / "figures" / "even")
    fig = figs[-1]
    fig.canvas.draw()
    ax = [a for a in fig.axes if a.get_title()][0]
    heights = np.diff(ax.transData.transform([(1, v) for v in (38, 42, 70, 122)])[:, 1])
    assert np.allclose(heights, heights[0], rtol=1e-6), heights
    assert [t.get_text() for t in ax.get_yticklabels() if t.get_text()] == ["40", "44", "96"]
    assert "not to scale" in ax.get_ylabel()
