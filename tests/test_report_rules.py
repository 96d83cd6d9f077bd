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
def _resonance(peak_light, width_light, lower_edge=True, noise=0.0):
    """n 256, s 4; d = 8 (heavy) never recovers; d = 96 (light) recovers ``peak_light`` on a band of
    ``width_light`` grid points starting at the 2nd point (or the 1st when there is no lower edge)."""
    xs = [2.0**k for k in range(-4, 5)]
    rng = np.random.default_rng(0)
    cells = []
    start = 1 if lower_edge else 0
    for i, x in enumerate(xs):
        inside = start <= i < start + width_light
        cells.append(({"d": 8, "p_over_f": x}, [0.0] * 3))
        v = peak_light if inside else 0.0
        cells.append(({"d": 96, "p_over_f": x}, list(np.clip(v + rng.normal(0, noise, 3), 0, 1))))
    return _rows(cells, n=256, s=4, method="ba", label="BA")


def test_resonance_reproduced_with_both_edges_and_a_wider_light_band():
    assert R.claim_resonance(_resonance(1.0, 5))["verdict"] == "reproduced"


def test_resonance_partly_without_a_lower_edge():
    r = R.claim_resonance(_resonance(1.0, 5, lower_edge=False))
    assert r["verdict"] == "partly" and "lower edge was not found" in r["ours"]


def test_resonance_not_reproduced_without_recovery():
    assert R.claim_resonance(_resonance(0.3, 5))["verdict"] == "not reproduced"


# ---------------------------------------------------------------------------------------------- cooccurrence
def _cooc(lo_vals, hi_vals):
    cells = []
    for r, rho, vals in [(0.03, 0.03, lo_vals), (0.05, 0.05, lo_vals), (0.5, 0.5, hi_vals), (1.0, 1.0, hi_vals)]:
        cells.append(({"cooccurrence": r, "data_rho2": rho}, vals))
    return _rows(cells, n=128, method="ba", label="BA", p_over_f=1.0)


def test_cooccurrence_verdicts():
    assert R.claim_cooccurrence(_cooc([1.0, 1.0, 1.0], [0.2, 0.25, 0.3]))["verdict"] == "reproduced"
    assert R.claim_cooccurrence(_cooc([1.0, 1.0, 1.0], [0.95, 0.97, 0.99]))["verdict"] == "not reproduced"
    # a drop of ≈ 30 points with seeds that disagree: the interval straddles the threshold
    assert R.claim_cooccurrence(_cooc([1.0, 0.7, 1.0], [0.9, 0.4, 0.8]))["verdict"] == "inconclusive"


# ---------------------------------------------------------------------------------------------- theorem
def _theorem(at_f, init=0.0, p_values=(0.5, 1.0, 2.0), override=None):
    cells = []
    for d in (24, 48):
        for pf in p_values:
            v = (override or {}).get((d, pf), at_f)
            cells.append(({"d": d, "p_over_f": pf, "frr_0.9_by_step": [init, v]}, v))
    return _rows(cells, n=48, s=2, method="mba", label="MBA")


def test_theorem_verdicts():
    assert R.claim_theorem(_theorem(1.0))["verdict"] == "reproduced"
    assert R.claim_theorem(_theorem(0.3))["verdict"] == "not reproduced"
    # one in-band cell failing: (2) fails cell by cell, however many passing cells a refined grid adds
    assert R.claim_theorem(_theorem(1.0, override={(48, 2.0): 0.3}))["verdict"] == "partly"
    dense = (0.5, 1.0, 1.19, 1.41, 1.68, 2.0, 2.38)
    assert R.claim_theorem(_theorem(1.0, p_values=dense, override={(48, 2.0): 0.3}))["verdict"] == "partly"


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
    # GBA as consistent as TopK (not more): condition (1) fails → not reproduced whatever its FVU
    assert R.claim_frontier(*_frontier(True, 0.11))["verdict"] == "not reproduced"
    df, st = _frontier(False, 0.11)
    assert R.claim_frontier(df, st)["verdict"] == "not reproduced"


def test_frontier_reproduced_when_gba_is_more_consistent_and_on_the_frontier():
    df, st = _frontier(True, 0.11)
    # TopK made inconsistent: GBA now beats it on consistency, and its FVU is within 20 % of TopK's
    rng = np.random.default_rng(1)
    for seed in range(3):
        st.arrays[f"TopK{seed}"]["decoder"] = rng.normal(size=(16, 8)).astype(np.float32)
    assert R.claim_frontier(df, st)["verdict"] == "reproduced"
    df.loc[df.label == "GBA", "fvu"] = 0.5  # off the frontier: partly
    assert R.claim_frontier(df, st)["verdict"] == "partly"


def test_resonance_leaves_out_runs_that_missed_their_target_frequency():
    """A lower edge made only of runs whose neurons never reached their target frequency is no lower edge."""
    df = _resonance(1.0, 5, lower_edge=True)
    df["freq_log_error"] = 0.1
    low = df.p_over_f == df.p_over_f.min()
    df.loc[low, "freq_log_error"] = 2.5  # 12x off target: not run at the p/f it is filed under
    r = R.claim_resonance(df)
    assert r["verdict"] == "partly" and "left out of the fits" in r["ours"]
    df["freq_log_error"] = 0.1
    assert R.claim_resonance(df)["verdict"] == "reproduced"


# ---------------------------------------------------------------------------------------------- width / magnitude
def _width(frr_small, frr_large, balance: bool):
    """BA at p = f over two widths with per-feature magnitudes; at the largest width the stored per-feature
    best cosines recover the strong half only (``balance``) or every feature."""
    from theory_sim.analysis import row_spec
    from theory_sim.model.sampler import feature_magnitudes

    rows, arrays = [], {}
    for w, v in ((64, frr_small), (512, frr_large)):
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
                "n": 32,
                "d": 16,
                "s": 2,
                "magnitude": "per_feature",
                "mag_low": 0.2,
                "mag_high": 2.0,
                "frr_0.9": v,
            }
            hs = feature_magnitudes(row_spec(pd.Series(r))).numpy()
            best = np.where(hs >= np.median(hs), 1.0, 0.0) if balance else np.ones_like(hs)
            arrays[h] = {"feature_best": best}
            rows.append(r)
    return pd.DataFrame(rows), FakeStore(arrays)


def test_width_magnitude_verdicts():
    assert R.claim_width_magnitude(*_width(0.3, 0.8, True))["verdict"] == "reproduced"
    assert R.claim_width_magnitude(*_width(0.5, 0.4, True))["verdict"] == "partly"
    assert R.claim_width_magnitude(*_width(0.5, 0.4, False))["verdict"] == "not reproduced"


def test_pooled_numbers_come_from_the_coarse_grid():
    """Refinement adds cells near a boundary; a pooled number must not move with them."""
    df = _theorem(1.0, override={(48, 2.0): 0.3})
    df["cell_hash"] = [f"h{i}" for i in range(len(df))]
    coarse = SimpleNamespace(cells=[SimpleNamespace(hash=h) for h in df.cell_hash])
    extra = _theorem(0.0, p_values=(1.5, 1.7)).assign(cell_hash=lambda d: [f"x{i}" for i in range(len(d))])
    both = pd.concat([df, extra], ignore_index=True)
    a = R.claim_theorem(df, None, coarse)["ours"].split(";")[0]
    b = R.claim_theorem(both, None, coarse)["ours"].split(";")[0]
    assert a == b  # the pooled in-band number is the coarse grid's
    assert R.coarse_rows(both, coarse).cell_hash.tolist() == df.cell_hash.tolist()
    assert len(R.coarse_rows(both, None)) == len(both)
