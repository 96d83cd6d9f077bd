"""Each report rule held to hand-made results tables: every rule can say "reproduced", "not reproduced"
and (where intervals can straddle its threshold) "inconclusive"."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from theory_sim import report as R


def _rows(cells, seeds=(0, 1, 2), **const):
    """cells: list of (dict of columns, [per-seed metric values] or a scalar) → results rows."""
    out = []
    for cols, vals in cells:
        vals = vals if isinstance(vals, (list, tuple)) else [vals] * len(seeds)
        for sd, v in zip(seeds, vals):
            out.append({"status": "done", "seed": sd, **const, **cols, "frr_0.9": v})
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------- resonance
RES_SWEEP = SimpleNamespace(report={"identifiable_frr": 0.9}, roles={"TopK (k = s)": "identifiability"})


def _resonance(peak_light, width_light, lower_edge=True, noise=0.0, topk_light=1.0):
    """n 256, s 4; d = 8 (heavy) never recovers; d = 96 (light) recovers ``peak_light`` on a band of
    ``width_light`` grid points starting at the 2nd point (or the 1st when there is no lower edge). Every
    run reached its target frequency (L0 = p · width). TopK (k = s), the identifiability reference,
    recovers everything at d = 8 and ``topk_light`` at d = 96."""
    xs = [2.0**k for k in range(-4, 5)]
    rng = np.random.default_rng(0)
    cells = []
    start = 1 if lower_edge else 0
    f = 4 / 256
    for i, x in enumerate(xs):
        inside = start <= i < start + width_light
        cells.append(({"d": 8, "p_over_f": x, "l0": x * f * 512}, [0.0] * 3))
        v = peak_light if inside else 0.0
        cells.append(({"d": 96, "p_over_f": x, "l0": x * f * 512}, list(np.clip(v + rng.normal(0, noise, 3), 0, 1))))
    ba = _rows(cells, n=256, s=4, method="ba", label="BA", width=512)
    ref = _rows(
        [({"d": 8}, 1.0), ({"d": 96}, topk_light)], n=256, s=4, method="topk", label="TopK (k = s)", width=512, l0=4.0
    )
    return pd.concat([ba, ref], ignore_index=True)


def test_resonance_reproduced_with_both_edges_and_a_wider_light_band():
    assert R.claim_resonance(_resonance(1.0, 5), None, RES_SWEEP)["verdict"] == "reproduced"


def test_resonance_partly_when_recovery_persists_below_the_band():
    """No lower edge, and the runs at p/f ≤ 1/8 converged at their target: the lower edge is absent."""
    r = R.claim_resonance(_resonance(1.0, 5, lower_edge=False), None, RES_SWEEP)
    assert r["verdict"] == "partly" and "no lower edge was found" in r["ours"] and "every run converged" in r["ours"]


def test_resonance_lower_edge_undecided_when_low_runs_did_not_converge():
    df = _resonance(1.0, 5, lower_edge=False)
    df["freq_excess_log"] = 0.0
    df.loc[(df.method == "ba") & (df.p_over_f <= 0.125), "freq_excess_log"] = 2.5  # 12x above their cap
    r = R.claim_resonance(df, None, RES_SWEEP)
    assert r["verdict"] == "inconclusive" and "left out of the fits" in r["ours"]


def test_resonance_not_reproduced_without_recovery():
    assert R.claim_resonance(_resonance(0.3, 5), None, RES_SWEEP)["verdict"] == "not reproduced"


def test_resonance_counts_only_identifiable_d():
    """Where TopK (k = s) itself fails, BA's failure there says nothing about the band: that d is left out."""
    r = R.claim_resonance(_resonance(1.0, 5, topk_light=0.2), None, RES_SWEEP)
    assert "d left out (reference below 90%): 96" in r["ours"]
    assert r["verdict"] == "not reproduced"  # only d = 8 is left, and BA recovers nothing there


def test_resonance_leaves_out_runs_that_missed_their_target_frequency():
    """A lower edge made only of runs whose neurons fire far above their cap is no lower edge."""
    df = _resonance(1.0, 5, lower_edge=True)
    df["freq_excess_log"] = 0.1
    low = (df.method == "ba") & (df.p_over_f == df.p_over_f.min())
    df.loc[low, "freq_excess_log"] = 2.5
    r = R.claim_resonance(df, None, RES_SWEEP)
    assert r["verdict"] != "reproduced" and "left out of the fits" in r["ours"]
    df["freq_excess_log"] = 0.1
    assert R.claim_resonance(df, None, RES_SWEEP)["verdict"] == "reproduced"


# ---------------------------------------------------------------------------------------------- cooccurrence
def _cooc(r50_of_n, broken_n=None, steep=4):
    """BA whose FRR@0.9 falls from 1 to 0 at r₅₀ = r50_of_n(n) (a logistic in log r of slope ``steep``), at
    n = 64, 128, 256 over r from 0.032 to 0.5; ``broken_n``: BA recovers nothing there at any r (a set-up
    failure, not a test of H3)."""
    rs = list(np.geomspace(0.032, 0.5, 6))
    cells = []
    for n in (64, 128, 256):
        for r in rs:
            v = 0.0 if n == broken_n else (1.0 if r50_of_n(n) is None else 1 / (1 + (r / r50_of_n(n)) ** steep))
            cells.append(({"n": n, "cooccurrence": r}, v))
    return _rows(cells, method="ba", label="BA", p_over_f=1.0)


def test_cooccurrence_reads_h3_as_a_sufficient_condition():
    """Reproduced when BA recovers wherever r ≤ n^(−1/2) — whether it falls beyond (r₅₀ = 4·n^(−1/2)) or never
    falls at all (H3 is sufficient, not necessary: no failure beyond it is required); not reproduced when it falls
    well inside (r₅₀ = 0.045 at every n); an n where BA fails even at the lowest r is a set-up failure, not
    counted; with no counted n the verdict is undecided."""
    assert R.claim_cooccurrence(_cooc(lambda n: 4 * n**-0.5))["verdict"] == "reproduced"
    never = R.claim_cooccurrence(_cooc(lambda n: None))
    assert never["verdict"] == "reproduced" and "no fall through 50 %" in never["ours"]
    assert R.claim_cooccurrence(_cooc(lambda n: 0.045, steep=12))["verdict"] == "not reproduced"
    r = R.claim_cooccurrence(_cooc(lambda n: 4 * n**-0.5, broken_n=64))
    assert r["verdict"] == "reproduced" and "n = 64: not counted" in r["ours"]
    assert R.claim_cooccurrence(_cooc(lambda n: None, broken_n=64).assign(**{"frr_0.9": 0.0}))["verdict"] == (
        "inconclusive"
    )


def test_power_law_fit_recovers_a_known_exponent():
    xs = [64, 128, 256]
    a = R.power_law_fit(xs, [0.1 * (x / 64) ** -0.5 for x in xs], [math.nan] * 3, [math.nan] * 3)
    assert a[0] == pytest.approx(-0.5)
    b = R.power_law_fit(xs, [1.0, 0.7, 0.5], [0.5, 0.35, 0.25], [2.0, 1.4, 1.0])
    assert b[1] < b[0] < b[2] and b[2] - b[1] > 0.5  # wide point intervals: a wide exponent interval


# ---------------------------------------------------------------------------------------------- theorem
THM_THEORY = {"eps": 0.02, "varsigma": 0.25, "c_width": 1.0, "require": ["data_model", "band_full", "width", "steps"]}
THM_SWEEP = SimpleNamespace(report={"metric": "frr_0.99", "frr_threshold": 0.9}, theory=THM_THEORY, cells=None)


def _theorem(inside_vals, outside_val=0.0, chance=0.0, width=32768, steps=4):
    """n 16, s 4, d 8: p/f 0.707 (inside the full band, width 32,768 meets the bound) and 0.68 (inside) with
    per-seed FRR@0.99 ``inside_vals`` (one list per cell, or one list for both), p/f 1.0 (above the full
    band: outside) at ``outside_val``."""
    from theory_sim.analysis import with_hypotheses

    vals = inside_vals if isinstance(inside_vals[0], list) else [inside_vals, inside_vals]
    cells = [({"p_over_f": 0.707}, vals[0]), ({"p_over_f": 0.68}, vals[1]), ({"p_over_f": 1.0}, outside_val)]
    df = _rows(cells, n=16, s=4, d=8, method="mba", label="MBA", width=width, train_steps=steps)
    df["frr_0.99"] = df["frr_0.9"]
    df["chance_frr_0.99"] = chance
    return with_hypotheses(df, THM_THEORY)


def test_theorem_hypotheses_per_cell():
    df = _theorem([1.0] * 3)
    assert df.groupby("p_over_f")["inside"].first().to_dict() == {0.68: True, 0.707: True, 1.0: False}
    assert _theorem([1.0] * 3, width=4096)["inside"].map(lambda v: v is True).sum() == 0  # width bound fails
    assert _theorem([1.0] * 3, steps=3)["inside"].map(lambda v: v is True).sum() == 0  # fewer than T = 4 steps


def test_theorem_verdicts():
    assert R.claim_theorem(_theorem([1.0] * 3), None, THM_SWEEP)["verdict"] == "reproduced"
    assert R.claim_theorem(_theorem([0.3] * 3), None, THM_SWEEP)["verdict"] == "not reproduced"
    assert R.claim_theorem(_theorem([[1.0] * 3, [0.3] * 3]), None, THM_SWEEP)["verdict"] == "partly"
    assert R.claim_theorem(_theorem([1.0, 0.6, 1.0]), None, THM_SWEEP)["verdict"] == "inconclusive"
    # recovery a random dictionary already has is no recovery
    assert R.claim_theorem(_theorem([1.0] * 3, chance=0.9), None, THM_SWEEP)["verdict"] == "not reproduced"


def test_theorem_never_counts_cells_outside_its_hypotheses():
    # the outside cell (p above the full band) fails badly: the verdict does not move
    assert R.claim_theorem(_theorem([1.0] * 3, outside_val=0.0), None, THM_SWEEP)["verdict"] == "reproduced"
    r = R.claim_theorem(_theorem([1.0] * 3, width=4096), None, THM_SWEEP)
    assert r["verdict"].startswith("not testable")


# ---------------------------------------------------------------------------------------------- imbalanced
def _imbalanced(gba, topk30):
    cells = [
        ({"label": "GBA (0.5 → 1e-3, ICLR; covers f)", "method": "gba", "row_norm": True, "frr_0.8": gba}, gba),
        ({"label": "TopK K=30", "method": "topk", "k": 30, "row_norm": True, "frr_0.8": 0.984}, topk30),
    ]
    return _rows(cells, n=128)


PAPER = {"GBA (0.5 → 1e-3, ICLR; covers f)": [100.0, 100.0], "TopK K=30": [98.4, 24.2]}
# the sweep file's [report.paper] and roles (label text plays no part in the rule)
SWEEP = SimpleNamespace(report={"paper": PAPER}, roles={"GBA (0.5 → 1e-3, ICLR; covers f)": "gba_covers_f"})


def test_the_shipped_imbalanced_sweep_gives_its_roles_to_the_rule():
    from theory_sim.sweep import load_sweep

    sw = load_sweep(R.SWEEP_DIR / "imbalanced.toml", "quick")
    covers = sorted(lab for lab, role in sw.roles.items() if role == "gba_covers_f")
    assert covers == ["GBA (0.1 → 1e-3, v1; covers f)", "GBA (0.5 → 1e-3, ICLR; covers f)"]
    assert set(covers) <= set(sw.report["paper"])


def test_imbalanced_verdicts():
    assert R.claim_imbalanced(_imbalanced(1.0, 0.242), None, SWEEP)["verdict"].startswith("reproduced")
    assert R.claim_imbalanced(_imbalanced(1.0, 0.9), None, SWEEP)["verdict"].startswith("partly")
    assert R.claim_imbalanced(_imbalanced(0.1, 0.9), None, SWEEP)["verdict"].startswith("not reproduced")
    # without the role, the GBA row is just another row: a mismatch elsewhere is no longer "partly"
    no_role = SimpleNamespace(report={"paper": PAPER}, roles={})
    assert R.claim_imbalanced(_imbalanced(1.0, 0.9), None, no_role)["verdict"].startswith("not reproduced")


def test_imbalanced_is_set_up_not_matched_when_the_papers_own_baseline_misses():
    """TopK K = 20 (role setup_reference) needs no DECIDE choice of ours: where it misses the paper's 100 / 98.4 %,
    our set-up is not the paper's and no claim is judged on it; where it matches, the rule goes on as before."""
    base = _imbalanced(1.0, 0.242)
    paper = {**PAPER, "TopK K=20": [100.0, 98.4]}
    roles = {**SWEEP.roles, "TopK K=20": "setup_reference"}
    sw = SimpleNamespace(report={"paper": paper}, roles=roles)
    k20 = {"label": "TopK K=20", "method": "topk", "k": 20, "row_norm": True}
    missed = pd.concat([base, _rows([({**k20, "frr_0.8": 0.0}, 0.0)], n=128)], ignore_index=True)
    r = R.claim_imbalanced(missed, None, sw)
    assert r["verdict"] == "set-up not matched" and r["conditions"]["the set-up reference matches the paper"] is False
    matched = pd.concat([base, _rows([({**k20, "frr_0.8": 1.0}, 0.984)], n=128)], ignore_index=True)
    assert R.claim_imbalanced(matched, None, sw)["verdict"].startswith("reproduced")


# ---------------------------------------------------------------------------------------------- within / pooled
def test_within_is_tri_state():
    assert R._within((0.95, 0.92, 0.98), 1.0, 0.10) is True
    assert R._within((0.5, 0.4, 0.6), 1.0, 0.10) is False
    assert R._within((0.9, 0.85, 0.95), 1.0, 0.10) is None


def test_pooled_interval_over_seed_means():
    df = _rows([({"x": 1}, [1.0, 0.5, 0.0]), ({"x": 2}, [1.0, 0.5, 0.0])], n=100)
    m, lo, hi = R.pooled(df)
    assert m == pytest.approx(0.5) and lo < 0.0 + 1e-9 and hi > 0.99  # three seeds 1, .5, 0: a wide t interval
    assert math.isnan(R.pooled(df.iloc[:0])[0])


def test_every_claim_has_a_rule():
    assert set(R.CLAIMS) == set(R.EXPERIMENTS)


# ---------------------------------------------------------------------------------------------- frontier
class FakeStore:
    """load_arrays(hash) from a dict: what the rules read of a cell's arrays."""

    def __init__(self, arrays):
        self.arrays = arrays

    def load_arrays(self, h):
        return self.arrays.get(h, {})


def _frontier(gba_consistent: bool, gba_fvu: float):
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(16, 8)).astype(np.float32)
    rows, arrays = [], {}
    for lab, method, l0, fvu, consistent in [
        ("GBA", "gba", 5.0, gba_fvu, gba_consistent),
        ("TopK", "topk", 3.0, 0.10, True),
        ("L1", "l1", 4.0, 0.30, False),
    ]:
        for seed in range(3):
            h = f"{lab}{seed}"
            dec = shared if consistent else rng.normal(size=(16, 8)).astype(np.float32)
            arrays[h] = {"decoder": dec, "neuron_freq": np.ones(16)}
            rows.append(
                {
                    "status": "done",
                    "label": lab,
                    "method": method,
                    "seed": seed,
                    "cell_hash": h,
                    "n": 32,
                    "d": 8,
                    "s": 3,
                    "l0": l0,
                    "fvu": fvu * (1 + 0.01 * seed),
                    "frr_0.9": 1.0,
                }
            )
    return pd.DataFrame(rows), FakeStore(arrays)


def test_frontier_verdicts():
    # GBA as consistent as TopK (not more) but on the frontier: (1) fails, (2) holds → partly
    assert R.claim_frontier(*_frontier(True, 0.11))["verdict"] == "partly"
    assert R.claim_frontier(*_frontier(False, 0.11))["verdict"] == "partly"
    assert R.claim_frontier(*_frontier(False, 0.5))["verdict"] == "not reproduced"


def test_frontier_reproduced_when_gba_is_more_consistent_and_on_the_frontier():
    df, st = _frontier(True, 0.11)
    # TopK made inconsistent: GBA now beats it on consistency, and its FVU is within 20 % of TopK's
    rng = np.random.default_rng(1)
    for seed in range(3):
        st.arrays[f"TopK{seed}"]["decoder"] = rng.normal(size=(16, 8)).astype(np.float32)
    assert R.claim_frontier(df, st)["verdict"] == "reproduced"
    df.loc[df.label == "GBA", "fvu"] = 0.5  # off the frontier: partly
    assert R.claim_frontier(df, st)["verdict"] == "partly"


# ---------------------------------------------------------------------------------------------- width / magnitude
def _width(kind: str):
    """BA at p = f over widths 32 … 1024 with per-feature magnitudes h ∈ [0.2, 1]; feature i is recovered
    (stored best cosine 1) when width ≥ 32 / h_i² ("theory": M₅₀ ∝ h^-2), when width ≥ 128 whatever h is
    ("flat"), or always ("always")."""
    from theory_sim.analysis import row_spec
    from theory_sim.model.sampler import feature_magnitudes

    rows, arrays = [], {}
    for w in (32, 64, 128, 256, 512, 1024):
        for seed in range(3):
            h = f"w{w}s{seed}"
            r = {
                "status": "done",
                "label": "BA",
                "method": "ba",
                "p_over_f": 1.0,
                "width": w,
                "seed": seed,
                "cell_hash": h,
                "n": 64,
                "d": 16,
                "s": 2,
                "magnitude": "per_feature",
                "mag_low": 0.2,
                "mag_high": 1.0,
            }
            hs = feature_magnitudes(row_spec(pd.Series(r))).numpy()
            need = {"theory": 32 / hs**2, "flat": np.full_like(hs, 128.0), "always": np.zeros_like(hs)}[kind]
            best = (w >= need).astype(float)
            arrays[h] = {"feature_best": best}
            rows.append({**r, "frr_0.9": float(best.mean())})
    return pd.DataFrame(rows), FakeStore(arrays)


def test_width_magnitude_verdicts():
    r = R.claim_width_magnitude(*_width("theory"))
    assert r["verdict"] == "reproduced", r["ours"]
    assert R.claim_width_magnitude(*_width("flat"))["verdict"] == "partly"  # width helps, h does not matter
    assert R.claim_width_magnitude(*_width("always"))["verdict"] == "inconclusive"  # nothing crosses: no slope


def test_coarse_rows_keep_the_coarse_grid():
    """Refinement adds cells near a boundary; a pooled number reads the coarse grid's cells only."""
    df = _rows([({"x": 1}, 1.0), ({"x": 2}, 0.0)], n=16)
    df["cell_hash"] = [f"h{i}" for i in range(len(df))]
    coarse = SimpleNamespace(cells=[SimpleNamespace(hash=h) for h in df.cell_hash[:3]])
    assert R.coarse_rows(df, coarse).cell_hash.tolist() == ["h0", "h1", "h2"]
    assert len(R.coarse_rows(df, None)) == len(df)


# ---------------------------------------------------------------------------------------------- budget check
def test_a_verdict_that_moves_at_twice_the_steps_is_budget_limited(monkeypatch, tmp_path):
    """run_checks applies the experiment's rule to the rows with the deciding cells re-trained: a verdict
    that changes there is reported "budget-limited", one that holds is "stable"; each switch gets its own."""
    from theory_sim import checks

    sweep = SimpleNamespace(
        check={"steps_factor": 2, "width_factor": 1, "switches": {"gamma_minus": [0.05]}}, theory={}, cells=[]
    )
    at_double = {"verdict": "not reproduced"}

    def fake_run_check(sw, out, name, key, value, sf, wf, **kw):
        df = pd.DataFrame({"status": ["done"], "steps": [100 * sf], "key": [key]})
        return df, SimpleNamespace(cells=[SimpleNamespace(hash="new")], theory={}), {}, df

    def rule(df, store, sw):
        if df.key.iloc[0] is None:  # the budget check's rows
            return {"verdict": at_double["verdict"]}
        return {"verdict": "reproduced"}

    monkeypatch.setattr(checks, "run_check", fake_run_check)
    monkeypatch.setitem(R.CLAIMS, "fake", rule)
    monkeypatch.setattr(R.driver, "Store", lambda p: None)
    out = R.run_checks("fake", sweep, tmp_path, None, "reproduced", "cpu", None, False, 1)
    assert out["budget_check"]["stable"] is False and out["verdict"] == "budget-limited"
    assert out["budget_check"]["verdict_at_double"] == "not reproduced" and out["verdict_at_base"] == "reproduced"
    assert out["switches_tried"] == {"gamma_minus=0.05": "reproduced"}
    at_double["verdict"] = "reproduced"
    out = R.run_checks("fake", sweep, tmp_path, None, "reproduced", "cpu", None, False, 1)
    assert out["budget_check"]["stable"] is True and "verdict" not in out


def _cell(label, data, params, seed, h):
    return SimpleNamespace(label=label, data={**data, "seed": seed}, params=params, hash=h)


def test_the_budget_check_lists_the_cells_that_moved():
    """A deciding cell whose interval at twice the steps lies wholly outside its base interval is moved (BA 29 % →
    100 %, three seeds, n = 128 features); one whose intervals overlap is compared but not moved."""
    from theory_sim.checks import moved_cells

    base = pd.DataFrame(
        {
            "cell_hash": ["a0", "a1", "a2", "b0", "b1", "b2"],
            "frr_0.9": [0.25, 0.30, 0.32, 0.95, 0.97, 0.96],
            "n": 128,
        }
    )
    new = pd.DataFrame(
        {"cell_hash": ["A0", "A1", "A2", "B0", "B1", "B2"], "frr_0.9": [1.0, 1.0, 1.0, 0.96, 0.98, 0.97], "n": 128}
    )
    mapping = {}
    for s in range(3):
        mapping[f"a{s}"] = _cell("BA", {"s": 2}, {"p_over_f": 1.0}, s, f"A{s}")
        mapping[f"b{s}"] = _cell("BA", {"s": 4}, {"p_over_f": 1.0}, s, f"B{s}")
    compared, moved = moved_cells(base, new, mapping, ["frr_0.9"])
    assert compared == 2 and len(moved) == 1
    m = moved[0]
    assert m["cell"] == "BA (s = 2)" and m["metric"] == "frr_0.9" and sorted(m["hashes"]) == ["a0", "a1", "a2"]
    assert m["base"][0] == pytest.approx(0.29) and m["double"][0] == 1.0 and m["double"][1] > m["base"][2]
    # the same values at twice the steps: nothing moved
    same = new.assign(**{"frr_0.9": base["frr_0.9"].to_numpy()})
    assert moved_cells(base, same, mapping, ["frr_0.9"]) == (2, [])


def test_a_description_whose_cells_moved_is_budget_limited(monkeypatch, tmp_path):
    """A descriptive experiment ("measured") cannot change its verdict, so its budget check could never fail; a
    moved deciding cell now makes it "measured — budget-limited", stated in the report's verdict line."""
    from theory_sim import checks
    from theory_sim.report.markdown import _moved_line

    sweep = SimpleNamespace(
        check={"steps_factor": 2, "width_factor": 1, "switches": {}},
        theory={},
        cells=[],
        report={},
        plot={"metric": "frr_0.9"},
    )
    base = pd.DataFrame({"cell_hash": ["a0", "a1", "a2"], "frr_0.9": [0.25, 0.30, 0.32], "n": 128, "status": "done"})
    new = pd.DataFrame({"cell_hash": ["A0", "A1", "A2"], "frr_0.9": [1.0, 1.0, 1.0], "n": 128, "status": "done"})
    mapping = {f"a{s}": _cell("BA", {"s": 2}, {}, s, f"A{s}") for s in range(3)}

    def fake_run_check(sw, out, name, key, value, sf, wf, **kw):
        return new, SimpleNamespace(cells=[], theory={}), mapping, new

    monkeypatch.setattr(checks, "run_check", fake_run_check)
    monkeypatch.setitem(R.CLAIMS, "fake", lambda df, store, sw: {"verdict": "measured"})
    monkeypatch.setattr(R.driver, "Store", lambda p: None)
    out = R.run_checks("fake", sweep, tmp_path, None, "measured", "cpu", None, False, 1, base=base)
    assert out["verdict"] == "measured — budget-limited" and out["budget_check"]["compared"] == 1
    assert "hashes" not in out["budget_check"]["moved"][0]
    assert checks.read_moved(tmp_path) == {"a0", "a1", "a2"}
    line = _moved_line({"budget_check": out["budget_check"]})
    assert "BA frr_0.9 29.0 % → 100.0 %" in line


def test_a_switch_with_its_own_deciding_cells_is_judged_on_them_alone(monkeypatch, tmp_path):
    """[check] switch_grid: the switch's verdict comes from the cells trained under the switch, never from base
    cells beside them (theorem_scaling's largest n is not in its switch grid: a random start or a random-sign
    dictionary must not borrow the planted Gaussian run's FRR there); the budget check still reads every cell."""
    from theory_sim import checks

    sweep = SimpleNamespace(
        check={"steps_factor": 2, "width_factor": 1, "switches": {"start": ["random"]}, "switch_grid": {"n": [256]}},
        theory={},
        cells=[],
    )
    seen = {}

    def fake_run_check(sw, out, name, key, value, sf, wf, **kw):
        new = pd.DataFrame({"status": ["done"], "n": [256], "trained_under": [key or "budget"]})
        kept = pd.DataFrame({"status": ["done"], "n": [2048], "trained_under": ["base"]})
        return pd.concat([kept, new], ignore_index=True), SimpleNamespace(cells=[], theory={}), {}, new

    def rule(df, store, sw):
        seen[df.trained_under.iloc[-1]] = sorted(df.n)
        return {"verdict": "reproduced" if 2048 in set(df.n) else "not testable", "ours": "x"}

    monkeypatch.setattr(checks, "run_check", fake_run_check)
    monkeypatch.setitem(R.CLAIMS, "fake", rule)
    monkeypatch.setattr(R.driver, "Store", lambda p: None)
    out = R.run_checks("fake", sweep, tmp_path, None, "reproduced", "cpu", None, False, 1)
    assert seen == {"budget": [256, 2048], "start": [256]}
    assert out["switches_tried"] == {"start=random": "not testable"} and out["budget_check"]["stable"] is True
    assert out["ours_under_checks"]["check_start_random"] == "x"
