"""Intervals, tri-state rules, verdicts, boundary crossings and grid-edge checks on hand-made tables."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from theory_sim import analysis as A


def test_wilson_by_hand():
    # k = 8 of n = 10, z = 1.96: the textbook interval (0.4902, 0.9433)
    lo, hi = A.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)


def test_seed_interval_t_over_seeds():
    m, lo, hi = A.seed_interval([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)  # t(0.975, 2) · sd / √S
    assert (m, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-5)


def test_seed_interval_of_a_fraction_never_collapses():
    """Three seeds that all recover 100 % of 128 features: the t interval is a point, the Wilson interval
    of 384 of 384 is not."""
    m, lo, hi = A.seed_interval([1.0, 1.0, 1.0], n_items=128)
    assert m == 1.0 and hi == 1.0 and 0.98 < lo < 1.0


@given(st.lists(st.floats(0, 1), min_size=1, max_size=6), st.integers(1, 500))
def test_seed_interval_contains_the_mean_and_stays_in_range(vals, n):
    m, lo, hi = A.seed_interval(vals, n_items=n)
    assert 0 <= lo <= m + 1e-12 and m - 1e-12 <= hi <= 1


@pytest.mark.parametrize(
    "iv,thr,want",
    [
        ((0.9, 0.85, 0.95), 0.8, True),
        ((0.6, 0.5, 0.7), 0.8, False),
        ((0.8, 0.7, 0.9), 0.8, None),
        ((0.9, math.nan, math.nan), 0.8, True),
    ],
)
def test_at_least_is_tri_state(iv, thr, want):
    assert A.at_least(iv, thr) is want


@pytest.mark.parametrize(
    "iv,thr,want", [((0.2, 0.1, 0.3), 0.35, True), ((0.5, 0.4, 0.6), 0.35, False), ((0.3, 0.2, 0.4), 0.35, None)]
)
def test_at_most_is_tri_state(iv, thr, want):
    assert A.at_most(iv, thr) is want


@pytest.mark.parametrize(
    "conds,primary,want",
    [
        ([True, True], True, "reproduced"),
        ([True, False], True, "partly"),
        ([False, True], True, "not reproduced"),
        ([False, False], False, "not reproduced"),
        ([False, True], False, "partly"),
        ([None, True], True, "inconclusive"),
        ([False, None], True, "not reproduced"),  # the primary failed: the other cannot change it
        ([True, None], True, "inconclusive"),
        ([], True, "not run"),
        ([None], True, "inconclusive"),
    ],
)
def test_verdict_table(conds, primary, want):
    assert A.verdict(conds, primary) == want


def test_every_verdict_is_reachable():
    """A rule that cannot return "not reproduced" (or any other verdict) is a defect."""
    seen = {A.verdict(c, p) for p in (True, False) for c in ([True], [False], [None], [True, False], [None, True], [])}
    assert seen == set(A.VERDICTS)


def test_difference_interval_welch():
    d, lo, hi = A.difference_interval([1.0, 1.0, 1.0], [0.0, 0.2, 0.4])
    assert d == pytest.approx(0.8) and lo < 0.8 < hi and lo > 0.2


def _band(xs, centre_lo, centre_hi, seeds=3, noise=0.03, seed=0):
    rng = np.random.default_rng(seed)
    t = np.log(xs)
    m = 1 / (1 + np.exp(-4 * (t - np.log(centre_lo)))) * 1 / (1 + np.exp(4 * (t - np.log(centre_hi))))
    return [np.clip(v + rng.normal(0, noise, seeds), 0, 1) for v in m]


def test_crossings_find_both_edges_of_a_band():
    xs = np.geomspace(1 / 16, 64, 11)
    found = A.crossings(xs, _band(xs, 0.25, 8.0))
    assert [c["direction"] for c in found] == ["rising", "falling"]
    lo_edge, hi_edge = found
    assert lo_edge["lower"] <= 0.25 * 1.3 and lo_edge["estimate"] == pytest.approx(0.25, rel=0.25)
    assert hi_edge["estimate"] == pytest.approx(8.0, rel=0.25)
    for c in found:
        assert c["lower"] <= c["estimate"] <= c["upper"] or abs(math.log(c["estimate"] / c["lower"])) < 1
        assert c["low"] <= c["estimate"] <= c["high"] and c["seeds"] == 3


def test_crossings_none_when_the_curve_never_crosses():
    xs = np.geomspace(1, 8, 4)
    assert A.crossings(xs, [np.array([0.9, 0.95])] * 4) == []


def test_grid_edge():
    assert A.grid_edge([0.01, 0.1, 1.0], 1.0) == "high"
    assert A.grid_edge([0.01, 0.1, 1.0], 0.01) == "low"
    assert A.grid_edge([0.01, 0.1, 1.0], 0.1) is None
    assert A.grid_edge([0.1], 0.1) is None


def test_converged_flags_missed_targets():
    df = pd.DataFrame(
        {
            "freq_log_error": [0.1, 1.5, np.nan, np.nan],
            "l0_target": [np.nan, np.nan, 6.0, 6.0],
            "l0": [10.0, 10.0, 6.5, 9.0],
        }
    )
    assert A.converged(df).tolist() == [True, False, True, False]


def test_stored_cells_are_judged_by_todays_rule():
    """A row whose stored flag says converged (set by an older rule) but whose readings fail today's rule is not
    converged; a stored False whose readings pass is converged: the flag is never reused."""
    df = pd.DataFrame(
        {"converged": [True, False], "frr_rise_last_fifth": [0.3, 0.0], "l0_drift_last_fifth": [0.01, 0.02]}
    )
    assert A.converged(df).tolist() == [False, True]


def test_cell_summary_counts_seeds_not_rows():
    df = pd.DataFrame({"label": ["a"] * 4, "x": [1, 1, 1, 1], "seed": [0, 1, 0, 1], "frr_0.9": [1, 1, 0, 0], "n": 10})
    s = A.cell_summary(df, ["label", "x"], "frr_0.9")
    assert s.seeds.iloc[0] == 2 and s.runs.iloc[0] == 4


def test_a_tie_between_an_edge_and_the_interior_is_no_edge_flag():
    """Three λ all at 100 %: the optimum is not beyond the grid, so the interior choice wins and nothing is
    flagged; a strictly best edge value is flagged."""
    rows = [{"label": "L1", "x": 1, "l1": v, "seed": 0, "frr_0.9": f} for v, f in ((0.1, 1.0), (0.3, 1.0), (1.0, 1.0))]
    t = A.tune_per_cell(pd.DataFrame(rows), ["x"], "frr_0.9", by="frr_0.9")
    assert t.l1.iloc[0] == 0.3 and t.tuned_edge.iloc[0] == ""
    rows[2]["frr_0.9"] = 1.1
    t = A.tune_per_cell(pd.DataFrame(rows), ["x"], "frr_0.9", by="frr_0.9")
    assert t.l1.iloc[0] == 1.0 and "high edge" in t.tuned_edge.iloc[0]


def test_tuning_follows_the_metric_registry_direction():
    """Tuned by a lower-is-better metric (fvu: measures.METRICS declares it so) the lowest mean wins; by a
    higher-is-better one the highest. Before the registry carried a direction, tuning by fvu kept the worst."""
    rows = [
        {"label": "L1", "x": 1, "l1": v, "seed": 0, "frr_0.9": f, "fvu": u}
        for v, f, u in ((0.1, 0.2, 0.05), (0.3, 0.9, 0.2), (1.0, 0.5, 0.6))
    ]
    assert A.tune_per_cell(pd.DataFrame(rows), ["x"], "frr_0.9", by="fvu").l1.iloc[0] == 0.1
    assert A.tune_per_cell(pd.DataFrame(rows), ["x"], "frr_0.9", by="frr_0.9").l1.iloc[0] == 0.3


def test_row_spec_is_the_spec_the_cell_trained_on():
    """A results row's spec uses the row's own seed: per-feature magnitudes of seed 2 are seed 2's."""
    from theory_sim.analysis import row_spec
    from theory_sim.model.sampler import feature_magnitudes
    from theory_sim.sweep.spec import make_cell

    data = {"n": 32, "d": 16, "s": 2, "magnitude": "per_feature", "mag_low": 0.5, "mag_high": 2.0}
    for seed in (0, 2):
        cell = make_cell(data, "ba", {"width": 16}, {"steps": 1}, seed, "BA")
        row = pd.Series({**cell.data, "seed": seed})
        assert row_spec(row) == cell.spec()
    h0 = feature_magnitudes(row_spec(pd.Series({**data, "seed": 0})))
    h2 = feature_magnitudes(row_spec(pd.Series({**data, "seed": 2})))
    assert not torch.equal(h0, h2)
    fixed = pd.Series({**data, "seed": 2, "data_seed": 7})  # a [data] seed fixes the data across cell seeds
    assert row_spec(fixed).seed == 7


# ---------------------------------------------------------------------------------------------- honest intervals
def test_crossing_estimate_stays_in_its_bracket_and_one_seed_gives_the_bracket():
    from theory_sim.analysis import crossings

    xs = [1.0, 2.0, 4.0, 8.0]
    one = crossings(xs, [np.array([1.0]), np.array([0.9]), np.array([0.2]), np.array([0.0])])
    (c,) = one
    assert c["interval"] == "bracket" and (c["low"], c["high"]) == pytest.approx((2.0, 4.0))
    assert 2.0 <= c["estimate"] <= 4.0
    rng = np.random.default_rng(0)
    many = [np.clip(m + rng.normal(0, 0.05, 5), 0, 1) for m in (1.0, 0.9, 0.2, 0.0)]
    (c,) = crossings(xs, many)
    assert c["interval"] == "seeds+form" and 2.0 <= c["low"] <= c["estimate"] <= c["high"] <= 4.0


def test_crossing_interval_covers_the_fit_form():
    """A bracket with no data inside: the logistic and the interpolation may disagree, and the interval
    must hold both (seen before: 48.8 [48.6, 49.0] in a 48–57 bracket)."""
    from theory_sim.analysis import crossings

    xs = [12.0, 24.0, 48.0, 57.0, 96.0]
    per = [np.array([v, v, v]) for v in (1.0, 1.0, 0.95, 0.3, 0.0)]  # seeds agree: no seed spread at all
    (c,) = crossings(xs, per)
    lin = math.exp(math.log(48) + (math.log(57) - math.log(48)) * (0.5 - 0.95) / (0.3 - 0.95))
    assert abs(c["estimate"] - lin) > 0.1  # the logistic and the interpolation disagree here
    assert c["low"] <= lin <= c["high"] and c["low"] <= c["estimate"] <= c["high"]


def test_consistency_interval_bootstraps_seeds_not_pairs():
    from theory_sim.analysis import consistency_interval

    # three seeds; seed 2 disagrees with both others: pairs are not independent, the interval must be wide
    pairs = [(i, j, 1.0 if 2 not in (i, j) else 0.0) for i in range(3) for j in range(3) if i != j]
    m, lo, hi = consistency_interval(pairs)
    assert m == pytest.approx(1 / 3) and lo <= 0.0 + 1e-9 and hi >= 0.99
    assert math.isnan(consistency_interval([(0, 1, 0.5), (1, 0, 0.5)])[1])  # two seeds: no interval
