"""The rules of the scaling path and of the reviewers' experiments held to hand-made results: each can say
"reproduced" and "not reproduced" (or its own outcome), on tables whose answer is known."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from theory_sim import report as R
from theory_sim.report.dictionary import claim_dictionary
from theory_sim.report.frequency_match import claim_frequency_match
from theory_sim.report.resonance_peak import peak_of, rise_width
from theory_sim.report.spectrum import R3_CONDITION, claim_spectrum
from theory_sim.report.theorem_scaling import claim_theorem_scaling


class FakeStore:
    def __init__(self, arrays: dict):
        self.arrays = arrays

    def load_arrays(self, h):
        return self.arrays.get(h, {})


# ---------------------------------------------------------------------------------------------- theorem_scaling
TS_SWEEP = SimpleNamespace(
    report={"error_slope_below": 0.0, "frr_metric": "frr_0.9", "frr_threshold": 0.9},
    theory={"eps": 0.02, "varsigma": 0.25, "require": []},
)


def _scaling(exponent: float, frr_largest: float):
    rows = []
    for n in (128, 256, 512, 1024):
        for seed, wobble in zip((0, 1, 2), (0.95, 1.0, 1.05)):
            rows.append(
                {
                    "status": "done",
                    "label": "MBA",
                    "seed": seed,
                    "n": n,
                    "d": n // 4,
                    "s": 4,
                    "train_steps": 4,
                    "align_error": 0.05 * (n / 128) ** exponent * wobble,
                    "frr_0.9": frr_largest if n == 1024 else 0.5,
                    "frr_0.99": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_theorem_scaling_reads_the_trend_in_n():
    """An alignment error falling as n^−0.7 with every feature recovered at the largest n reproduces the theorem's
    shape; a rising error with nothing recovered does not; falling but recovering nothing is partly."""
    r = claim_theorem_scaling(_scaling(-0.7, 1.0), None, TS_SWEEP)
    assert r["verdict"] == "reproduced" and r["slope"][2] < 0 and r["slope"][0] == pytest.approx(-0.7, abs=0.01)
    assert claim_theorem_scaling(_scaling(0.7, 0.0), None, TS_SWEEP)["verdict"] == "not reproduced"
    assert claim_theorem_scaling(_scaling(-0.7, 0.0), None, TS_SWEEP)["verdict"] == "partly"
    flat = claim_theorem_scaling(_scaling(0.0, 1.0), None, TS_SWEEP)  # no trend: the first condition fails
    assert flat["conditions"]["alignment error falls with n"] in (False, None) and flat["verdict"] != "reproduced"


# ---------------------------------------------------------------------------------------------- frequency_match
def _fm(ratio: float):
    """TopK (baseline) and BA (paper) on uniform data, 16 features, every one recovered; TopK's matched latents fire
    at ``ratio`` × their feature's frequency (with a little spread), BA's at exactly it."""
    rows, arrays = [], {}
    f = np.full(16, 0.05)
    for lab, method, role_ratio in (("TopK", "topk", ratio), ("BA", "ba", 1.0)):
        for seed in range(3):
            h = f"{lab}{seed}"
            nf = f * role_ratio * (1 + 0.02 * np.arange(16) / 16)
            arrays[h] = {
                "feature_best": np.full(16, 0.99),
                "feature_arg": np.arange(16),
                "feature_matched": np.arange(16),
                "feature_matched_cos": np.full(16, 0.99),
                "neuron_freq": nf,
                "feature_freq": f,
            }
            rows.append(
                {
                    "status": "done",
                    "label": lab,
                    "method": method,
                    "seed": seed,
                    "cell_hash": h,
                    "n": 16,
                    "frequencies": "uniform",
                    "frr_0.9": 1.0,
                }
            )
    sweep = SimpleNamespace(
        report={"premise_log2": 0.5, "recovered_cos": 0.9}, roles={"TopK": "baseline", "BA": "paper"}
    )
    return pd.DataFrame(rows), FakeStore(arrays), sweep


def test_frequency_match_premise_and_r1():
    """TopK's recovered latents firing at 4× their features' frequencies (|log2| = 2 > 0.5): the paper's premise
    holds; firing at them (|log2| ≈ 0): R1 is right, not reproduced."""
    df, store, sw = _fm(4.0)
    r = claim_frequency_match(df, store, sw)
    assert r["verdict"] == "reproduced" and "|log2(p̂/f)| of recovered features 2" in r["ours"]
    df, store, sw = _fm(1.0)
    assert claim_frequency_match(df, store, sw)["verdict"] == "not reproduced"


# ---------------------------------------------------------------------------------------------- spectrum
def _spectrum(ba_rare: float, geo_rare: float, data_all_gain: float, matryoshka_rare: float | None = None):
    """30 features, frequencies descending; every method recovers the frequent and middle thirds; the rare third at
    ``ba_rare`` (BA), ``geo_rare`` (geometric GBA) and the data-spaced GBA at the geometric one's plus
    ``data_all_gain`` of the rare third; a Matryoshka (R3) at ``matryoshka_rare`` where given."""
    rows, arrays = [], {}
    f = np.geomspace(0.5, 0.005, 30)
    spec = {
        "BA": ("ba", "ba", ba_rare),
        "G": ("gba", "gba_geometric", geo_rare),
        "Q": ("gba", "gba_data", geo_rare + data_all_gain),
    }
    if matryoshka_rare is not None:
        spec["MT"] = ("matryoshka", "matryoshka", matryoshka_rare)
    for lab, (method, _, rare) in spec.items():
        for seed in range(3):
            h = f"{lab}{seed}"
            k = int(round(min(1.0, rare + 0.1 * (seed - 1) * (rare not in (0.0, 1.0))) * 10))
            best = np.r_[np.full(20, 0.99), np.full(k, 0.99), np.full(10 - k, 0.3)]
            arrays[h] = {"feature_best": best, "feature_arg": np.arange(30), "feature_freq": f}
            rows.append(
                {
                    "status": "done",
                    "label": lab,
                    "method": method,
                    "seed": seed,
                    "cell_hash": h,
                    "n": 30,
                    "frr_0.9": float((best >= 0.9).mean()),
                }
            )
    sweep = SimpleNamespace(report={"recovered_cos": 0.9, "thirds": 3}, roles={k: v[1] for k, v in spec.items()})
    return pd.DataFrame(rows), FakeStore(arrays), sweep


def test_spectrum_rare_third_and_spacing():
    df, store, sw = _spectrum(ba_rare=0.2, geo_rare=0.9, data_all_gain=0.0)
    r = claim_spectrum(df, store, sw)
    assert r["conditions"]["GBA (geometric) recovers more rare features than BA"] is True
    assert r["verdict"] in ("reproduced", "inconclusive")  # the spacing difference is 0: met or undecided
    df, store, sw = _spectrum(ba_rare=0.9, geo_rare=0.2, data_all_gain=0.7)
    r = claim_spectrum(df, store, sw)
    assert r["verdict"] == "not reproduced"
    assert r["conditions"]["data-spaced TAFs no better than geometric (geometric justified)"] is False
    assert R3_CONDITION not in r["conditions"]  # no Matryoshka in the sweep: no R3 reading


def test_spectrum_fractions_stay_inside_0_and_100():
    """Per-slice recoveries are fractions: three seeds at 80 / 90 / 100 % of the rare slice give a Student-t
    interval reaching 114.8 %, which the slice's Wilson widening clips to 100 %."""
    df, store, sw = _spectrum(ba_rare=0.2, geo_rare=0.9, data_all_gain=0.0)
    r = claim_spectrum(df, store, sw)
    fractions = r["ours"].split(" | GBA geometric −")[0]  # the differences after it may be negative
    bounds = [float(x) for pair in re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", fractions) for x in pair]
    assert bounds and all(0.0 <= b <= 100.0 for b in bounds), r["ours"]


def test_spectrum_r3_reads_gba_against_matryoshka():
    """R3: a Matryoshka recovering less of the rare third than the geometric GBA leaves the TAFs earning their
    burden (met); one recovering more fails it, and the verdict cannot then be "reproduced"."""
    df, store, sw = _spectrum(ba_rare=0.2, geo_rare=0.9, data_all_gain=-0.3, matryoshka_rare=0.2)
    r = claim_spectrum(df, store, sw)
    assert r["conditions"][R3_CONDITION] is True and r["verdict"] == "reproduced", r
    assert "Matryoshka (R3), all features: 23.3 % [15.8, 30.9]" in r["ours"], r["ours"]
    df, store, sw = _spectrum(ba_rare=0.2, geo_rare=0.5, data_all_gain=-0.3, matryoshka_rare=1.0)
    r = claim_spectrum(df, store, sw)
    assert r["conditions"][R3_CONDITION] is False and r["verdict"] == "partly", r


# ---------------------------------------------------------------------------------------------- resonance_peak
def test_the_peak_of_a_parabola_in_log_p_over_f():
    """Cell means 1 − (log2(p/f) − 1)²/10 peak at p/f = 2 (R1's reading), with a small seed spread; a monotone
    curve peaks on the grid's edge and carries no interval."""
    xs = [0.25, 0.5, 1, 2, 4, 8]
    per = [np.array([1 - (math.log2(x) - 1) ** 2 / 10 + e for e in (-0.002, 0.0, 0.002)]) for x in xs]
    pk = peak_of(xs, per)
    assert pk[0] == pytest.approx(2.0, rel=0.05) and pk[1] < 2 < pk[2] and pk[3] == ""
    edge = peak_of(xs, [np.array([x, x]) for x in range(6)])
    assert edge[0] == 8 and math.isnan(edge[1]) and "edge" in edge[3]


def test_the_width_of_a_rise_along_d():
    """FRR@0.9 = logistic in ln d with slope 8 rises from 10 to 90 % over a factor exp(2 ln 9 / 8) = 1.73 in d;
    the resolution is the ratio of the d values around the 50 % crossing."""
    ds = [8, 12, 16, 19, 22.6, 27, 32, 48]
    rows = [
        {"d": d, "seed": s, "frr_0.9": float(1 / (1 + math.exp(-8 * (math.log(d) - math.log(20)))))}
        for d in ds
        for s in range(3)
    ]
    w = rise_width(pd.DataFrame(rows))
    assert w[0] == pytest.approx(math.exp(2 * math.log(9) / 8), rel=0.02)
    assert w[3] == pytest.approx(22.6 / 19)


# ---------------------------------------------------------------------------------------------- dictionary
def _dictionary(shift: float):
    """BA's FRR@0.9 falls at μ = 0.6 on the Gaussian dictionary and at 0.6 + ``shift`` on the random-sign one."""
    rows = []
    for kind, mu50 in (("gaussian", 0.6), ("rademacher", 0.6 + shift)):
        for k, a in enumerate((0.0, 0.2, 0.4, 0.6, 0.8)):
            mu = 0.45 + 0.1 * k
            for seed, e in zip(range(3), (-0.01, 0.0, 0.01)):
                rows.append(
                    {
                        "status": "done",
                        "label": "BA",
                        "method": "ba",
                        "features": kind,
                        "shared": a,
                        "seed": seed,
                        "mu_max": mu + e / 10,
                        "n": 64,
                        "frr_0.9": float(np.clip(1 / (1 + math.exp(40 * (mu - mu50))) + e, 0, 1)),
                    }
                )
    return pd.DataFrame(rows)


def test_dictionary_compares_kinds_at_matched_incoherence():
    sw = SimpleNamespace(report={"mu_tol": 0.1}, roles={"BA": "paper_ba"})
    assert claim_dictionary(_dictionary(0.0), None, sw)["verdict"] == "reproduced"
    assert claim_dictionary(_dictionary(0.2), None, sw)["verdict"] == "not reproduced"


def test_every_new_experiment_has_its_rule_and_sweep_file():
    for name in ("theorem_scaling", "resonance_heavy", "frequency_match", "resonance_peak", "spectrum", "dictionary"):
        assert name in R.EXPERIMENTS and name in R.CLAIMS and (R.SWEEP_DIR / f"{name}.toml").exists()
