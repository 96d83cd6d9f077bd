"""Adaptive refinement (sweep/refine.py): validation of [refine], the bisection rule on hand-made metric
values, a simulated refinement against a known crossing, and a real tiny sweep refined, resumed and read
back with `theory-sim boundary`."""

import json
import math

import pytest
from conftest import cli_inprocess
from hypothesis import given, settings
from hypothesis import strategies as st

from theory_sim import load_boundaries
from theory_sim.errors import ConfigError
from theory_sim.store import Store
from theory_sim.sweep import parse_sweep, run_sweep
from theory_sim.sweep.refine import boundaries, propose, rows

SWEEP = """
name = "r"
[data]
n = 256
s = 2
[grid]
d = [8, 12]
[[methods]]
name = "ba"
label = "BA"
width = 16
p_over_f = {{geomspace = [0.25, 16, 4]}}
[[methods]]
name = "topk"
label = "TopK"
width = 16
k = [1, 2]
[train]
steps = 20
batch = 32
eval_samples = 256
seeds = [0, 1]
{refine}
"""


def sweep_with(refine: str):
    return parse_sweep(SWEEP.format(refine=refine), "r.toml")


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "table, key",
    [
        ('[refine]\naxis = "width"', "refine.axis"),  # one value only
        ('[refine]\naxis = "nope"', "refine.axis"),  # not an axis
        ('[refine]\naxis = "p_over_f"\nlevel = 1.5', "refine.level"),  # outside frr's range
        ('[refine]\naxis = "p_over_f"\nlevel = 0', "refine.level"),
        ('[refine]\naxis = "p_over_f"\nlevel = "half"', "refine.level"),
        ('[refine]\naxis = "p_over_f"\ntolerance = 1.0', "refine.tolerance"),  # a ratio must exceed 1
        ('[refine]\naxis = "p_over_f"\ntolerance = 0.5', "refine.tolerance"),
        ('[refine]\naxis = "d"\nscale = "linear"\ntolerance = 0', "refine.tolerance"),
        ('[refine]\naxis = "d"\nscale = "linear"', "refine.tolerance"),  # linear: required
        ('[refine]\naxis = "p_over_f"\nmax_rounds = 0', "refine.max_rounds"),
        ('[refine]\naxis = "p_over_f"\nmax_rounds = 1.5', "refine.max_rounds"),
        ('[refine]\naxis = "p_over_f"\nmax_seeds = 1', "refine.max_seeds"),  # fewer than train.seeds
        ('[refine]\naxis = "p_over_f"\nmetric = "status"', "refine.metric"),
        ('[refine]\naxis = "p_over_f"\nbogus = 1', "refine.bogus"),
        ('[refine]\naxis = "p_over_f"\nscale = "cubic"', "refine.scale"),
        ("refine = 3", "refine"),
        ('[[refine]]\naxis = "p_over_f"\n[[refine]]\naxis = "p_over_f"', "refine"),
    ],
)
def test_bad_refine_tables_name_the_key(table, key):
    with pytest.raises(ConfigError) as e:
        sweep_with(table)
    assert e.value.field.endswith(key), e.value


def test_bad_refine_from_the_cli_is_one_line_exit_2_and_writes_nothing(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text(SWEEP.format(refine='[refine]\naxis = "p_over_f"\ntolerance = 1'))
    out = tmp_path / "out"
    r = cli_inprocess("sweep", str(f), "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "refine.tolerance" in r.stderr and "> 1" in r.stderr
    assert not out.exists()


def test_a_valid_table_resolves_its_defaults():
    (ref,) = sweep_with('[refine]\naxis = "p_over_f"').refine
    assert (ref.metric, ref.level, ref.log, ref.tolerance, ref.max_rounds, ref.max_seeds) == (
        "frr_0.9",
        0.5,
        True,
        1.25,
        3,
        2,
    )
    (ref,) = sweep_with('[refine]\naxis = "d"\ntolerance = 1.5').refine
    assert ref.integer and ref.log


# ------------------------------------------------------------------------------------------ the rule
def fake_values(cells, f):
    """metric_of for every cell from f(cell) (hand-made results)."""
    return {c.hash: f(c) for c in cells}


def test_a_bracket_gets_its_geometric_midpoint_at_every_seed():
    sw = sweep_with('[refine]\naxis = "p_over_f"\ntolerance = 1.25')
    # p/f grid 1/4, 1, 4, 16: recovery up to 1, none from 4 on (a falling edge in [1, 4]); seeds agree exactly
    vals = fake_values(sw.cells, lambda c: 1.0 if c.params.get("p_over_f", 0) <= 1 else 0.0)
    new = propose(sw.refine[0], sw.cells, vals, list(sw.seeds), sw.derive)
    assert sorted({c.params["p_over_f"] for c in new}) == [2.0]  # √(1·4), not the arithmetic 2.5
    assert {(c.data["d"], c.seed) for c in new} == {(8, 0), (8, 1), (12, 0), (12, 1)}
    assert all(c.method == "ba" for c in new)  # TopK has no p/f axis: not refined


def test_a_band_has_two_brackets_and_a_fine_bracket_none():
    sw = sweep_with('[refine]\naxis = "p_over_f"\ntolerance = 4.5')
    vals = fake_values(sw.cells, lambda c: 1.0 if c.params.get("p_over_f", 0) == 1 else 0.0)
    # brackets [1/4, 1] and [1, 4], each a factor 4 ≤ 4.5: fine already, and every end decided (n·S = 512 features)
    assert propose(sw.refine[0], sw.cells, vals, list(sw.seeds), sw.derive) == []
    sw = sweep_with('[refine]\naxis = "p_over_f"\ntolerance = 1.25')
    new = propose(sw.refine[0], sw.cells, vals, list(sw.seeds), sw.derive)
    assert sorted({c.params["p_over_f"] for c in new}) == [0.5, 2.0]
    found = boundaries(sw.refine[0], sw.cells, vals)
    assert sorted(b["direction"] for b in found if b["row"]["d"] == 8) == ["falling", "rising"]


def test_straddling_end_cells_get_seeds_up_to_max_seeds():
    sw = sweep_with('[refine]\naxis = "p_over_f"\ntolerance = 4.5\nmax_seeds = 4')
    # seeds disagree at p/f = 1 (0.9 and 0.3: mean 0.6, interval straddles 0.5); 4 is decided at 0
    vals = fake_values(
        sw.cells,
        lambda c: (
            (0.9 if c.seed == 0 else 0.3)
            if c.params.get("p_over_f") == 1
            else (1.0 if c.params.get("p_over_f", 9) < 1 else 0.0)
        ),
    )
    new = propose(sw.refine[0], sw.cells, vals, list(sw.seeds), sw.derive)
    assert {(c.params["p_over_f"], c.seed) for c in new if c.data["d"] == 8} == {(1.0, 2), (1.0, 3)}


def test_an_integer_axis_rounds_and_stops_at_neighbours():
    sw = sweep_with('[refine]\naxis = "d"\ntolerance = 1.01')
    vals = fake_values(sw.cells, lambda c: 1.0 if c.data["d"] >= 12 else 0.0)
    ref = sw.refine[0]
    new = propose(ref, sw.cells, vals, list(sw.seeds), sw.derive)
    assert {c.data["d"] for c in new} == {10}  # round(√96) = 10
    assert ref.midpoint(10, 11) is None and ref.done(10, 11)


def simulate(ref_table: str, threshold: float, rounds_cap: int = 20):
    """Refinement against a known falling edge at p/f = threshold (every seed exact), without training."""
    sw = sweep_with(ref_table)
    cells = list(sw.cells)
    f = lambda c: 1.0 if c.params.get("p_over_f", 0) < threshold else 0.0  # noqa: E731
    for _ in range(rounds_cap):
        new = propose(sw.refine[0], cells, fake_values(cells, f), list(sw.seeds), sw.derive)
        if not new:
            break
        cells += new
    return sw, cells, boundaries(sw.refine[0], cells, fake_values(cells, f))


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.floats(0.3, 15.0))
def test_refinement_brackets_any_edge_within_tolerance(threshold):
    sw, cells, found = simulate('[refine]\naxis = "p_over_f"\ntolerance = 1.1\nmax_rounds = 20', threshold)
    for d in (8, 12):
        (b,) = [b for b in found if b["row"]["d"] == d]
        assert b["lower"] < threshold <= b["upper"] or math.isclose(b["upper"], threshold)
        assert b["upper"] / b["lower"] <= 1.1 + 1e-9
    ba = [c for c in cells if c.method == "ba"]
    uniform_points = math.ceil(math.log(64) / math.log(1.1)) + 1  # the same resolution on a uniform grid
    assert len({c.params["p_over_f"] for c in ba if c.data["d"] == 8}) * 4 <= uniform_points


# ------------------------------------------------------------------------------------------ end to end
TINY = """
name = "tiny_refine"
[data]
n = 64
s = 2
[grid]
d = [32]
[[methods]]
name = "ba"
label = "BA"
width = 128
p_over_f = [1, 16]
[train]
steps = 1500
seeds = [0, 1]
eval_samples = 2048
[plot]
x = "p_over_f"
y = "d"
[refine]
axis = "p_over_f"
tolerance = 2
max_rounds = 3
"""


@pytest.mark.slow
def test_a_refined_sweep_resumes_and_reports_its_boundary(tmp_path):
    f = tmp_path / "t.toml"
    f.write_text(TINY)
    out = tmp_path / "out"
    sw = parse_sweep(TINY, str(f))
    s = run_sweep(sw, str(out), device="cpu", progress=False)
    assert s.refined > 0 and s.total == 4 + s.refined
    first = load_boundaries(str(out))
    (b,) = first
    assert b["direction"] == "falling" and b["upper"] / b["lower"] <= 2 + 1e-9
    assert b["lower"] <= b["estimate"] <= b["upper"] or not b["decided"]
    # a kill after the last round: its cells lose their results; a rerun replays the rounds and trains only them
    con = Store(out).connect()
    last = [h for (h,) in con.execute("SELECT cell_hash FROM cells ORDER BY rowid DESC LIMIT 2")]
    con.executemany("UPDATE cells SET status='pending', metrics=NULL WHERE cell_hash=?", [(h,) for h in last])
    con.close()
    s2 = run_sweep(parse_sweep(TINY, str(f)), str(out), device="cpu", progress=False)
    assert (s2.ran, s2.total) == (2, s.total)
    assert load_boundaries(str(out)) == first  # the same cells, the same numbers (training is deterministic)
    r = cli_inprocess("boundary", str(out), "--json")
    assert r.returncode == 0, r.stderr
    (j,) = json.loads(r.stdout)
    for opt, field in ((["--level", "2"], "level"), (["--axis", "width"], "axis"), (["--tolerance", "1"], "tolerance")):
        bad = cli_inprocess("boundary", str(out), *opt)
        assert bad.returncode == 2 and bad.stderr.startswith(f"theory-sim: error: {field}: "), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    for key in (
        "label",
        "row",
        "axis",
        "level",
        "lower",
        "upper",
        "estimate",
        "low",
        "high",
        "direction",
        "cells",
        "seeds",
    ):
        assert key in j
    # every refined cell is current: status counts and the figure include them
    r = cli_inprocess("status", str(out))
    assert f" {s.total} " in r.stdout.splitlines()[-1] + " "
    r = cli_inprocess("plot", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "figures" / "tiny_refine_phase_frr_0.9_boundaries.csv").exists()


def test_rows_group_by_everything_but_the_axis_and_the_seed():
    sw = sweep_with('[refine]\naxis = "p_over_f"')
    rs = rows(sw.cells, "p_over_f")
    assert len(rs) == 2 and all(len(r.xs) == 4 for r in rs)  # BA at d 8 and 12; TopK has no p/f
    assert sorted(r.coords["d"] for r in rs) == [8, 12]
    assert all(len(cs) == 2 for r in rs for cs in r.cells.values())  # two seeds per point


@pytest.mark.slow
def test_bench_refine_compares_both_ways_in_one_run():
    import torch

    from theory_sim.bench import refine_vs_uniform

    r = refine_vs_uniform(
        torch.device("cpu"), {"steps": 300, "seeds": [0], "coarse": 3, "tolerance": 2.0, "lo": 0.25, "hi": 16}
    )
    assert r["uniform_points"] == 7 and r["uniform_models"] == 7  # 0.25 … 16 at factor 2
    assert 3 <= r["refine_models"] < r["uniform_models"]
    for k in ("uniform_seconds", "refine_seconds", "max_disagreement", "uniform_boundaries", "refine_boundaries"):
        assert k in r


@pytest.mark.slow
def test_refinement_rounds_run_on_dask_with_the_same_cells_and_numbers(tmp_path):
    """Rounds go through the executor like any cells: a Dask LocalCluster (kept across rounds) refines to the
    same cells and the same boundary as the in-process run."""
    f = tmp_path / "t.toml"
    f.write_text(TINY)
    local, dask = tmp_path / "local", tmp_path / "dask"
    run_sweep(parse_sweep(TINY, str(f)), str(local), device="cpu", progress=False)
    s = run_sweep(parse_sweep(TINY, str(f)), str(dask), device="cpu", executor="dask", workers=1, progress=False)
    assert s.refined > 0
    cells = {
        str(d): sorted(h for (h,) in Store(d).connect().execute("SELECT cell_hash FROM cells")) for d in (local, dask)
    }
    assert cells[str(local)] == cells[str(dask)]
    assert load_boundaries(str(dask)) == load_boundaries(str(local))


def test_a_best_variant_on_a_grid_edge_gets_the_next_value():
    """[extend]: GBA's best htf_over_f (by MCC) is the grid's top value 2 → one geometric step past it, 4, at each of
    its seeds; an interior best moves nothing; the L0 window (× s) keeps a variant outside it from competing."""
    from types import SimpleNamespace

    from theory_sim.sweep.extend import propose_extensions

    def cell(h, htf, seed, label="GBA"):
        return SimpleNamespace(hash=h, label=label, data={"n": 64, "s": 4, "seed": seed}, params={"htf_over_f": htf})

    cells = [cell(f"{v}-{s}", v, s) for v in (0.5, 1.0, 2.0) for s in (0, 1)]
    made = []

    def make(c, axis, value):
        d = cell(f"{value}-{c.data['seed']}", value, c.data["seed"])
        made.append((c.params[axis], value))
        return d

    ext = {"axes": ["htf_over_f"], "metric": "mcc", "l0_window": None, "rounds": 1}
    mcc = {"0.5-0": 0.5, "0.5-1": 0.5, "1.0-0": 0.6, "1.0-1": 0.6, "2.0-0": 0.7, "2.0-1": 0.7}
    new = propose_extensions(ext, cells, mcc, {}, make)
    assert sorted(c.hash for c in new) == ["4.0-0", "4.0-1"] and set(made) == {(2.0, 4.0)}
    interior = {**mcc, "1.0-0": 0.9, "1.0-1": 0.9}
    assert propose_extensions(ext, cells, interior, {}, make) == []
    # the top variant's L0 lies outside [0.5, 2] × s = [2, 8]: the best inside the window is interior (1.0)
    l0 = {h: (20.0 if h.startswith("2.0") else 5.0) for h in mcc}
    assert propose_extensions({**ext, "l0_window": [0.5, 2.0]}, cells, mcc, l0, make) == []
    low = {"0.5-0": 0.9, "0.5-1": 0.9, "1.0-0": 0.6, "1.0-1": 0.6, "2.0-0": 0.7, "2.0-1": 0.7}
    assert sorted(c.hash for c in propose_extensions(ext, cells, low, {}, make)) == ["0.25-0", "0.25-1"]


def test_a_sweep_extends_its_grid_edge_before_anything_reads_it(tmp_path):
    """[extend] through the runner: TopK's k over s·{1, 2} ranked by L0 (lower is better, so the best, k = s, is the
    grid's low edge): one round adds k_over_s = 0.5 at every seed as current cells of the design."""
    from theory_sim import load_results
    from theory_sim.sweep import load_sweep, run_sweep

    f = tmp_path / "e.toml"
    f.write_text(
        'name = "e"\n[data]\nn = 16\nd = 8\ns = 4\n[[methods]]\nname = "topk"\nwidth = 16\nk_over_s = [1.0, 2.0]\n'
        "[train]\nsteps = 5\nbatch = 32\neval_samples = 64\nseeds = [0, 1]\n"
        '[extend]\naxes = ["k_over_s"]\nmetric = "l0"\n'
    )
    summary = run_sweep(load_sweep(f), str(tmp_path / "o"), progress=False)
    df = load_results(tmp_path / "o", current_only=True)
    assert summary.refined == 2 and sorted(df.k_over_s.unique()) == [0.5, 1.0, 2.0]
    assert sorted(df[df.k_over_s == 0.5].seed) == [0, 1] and (df[df.k_over_s == 0.5].l0 == 2).all()
