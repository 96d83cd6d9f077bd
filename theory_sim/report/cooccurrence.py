"""The co-occurrence rule: recovery degrades past ρ₂ ≈ n^{−1/2}; r₅₀ ∝ n^α against α = −½."""

from __future__ import annotations

from .. import analysis as A
from .. import theory
from .common import _edge_note, _fmt, exponent, first_crossing, pooled, unsettled_note


def claim_cooccurrence(df, store=None, sweep=None) -> dict:
    """H3 (ρ₂ ≪ n^{−1/2}) read as the sufficient condition the theory states: where the co-occurrence lies at or
    below n^{−1/2}, the paper's BA recovers as it does on independent data. Whether and where recovery falls
    beyond it (r₅₀ and its exponent in n) is measured and shown, never required."""
    rep = getattr(sweep, "report", None) or {}
    need = float(rep.get("frr_threshold", 0.9))
    roles = getattr(sweep, "roles", None) or {}
    judged = [lab for lab, r in roles.items() if r == "paper_ba"] or ["BA"]
    raw = df
    df = A.inside_rows(A.settled(df))  # identifiable co-occurrence only (r ≤ theory.IDENTIFIABLE_MAX_R), converged
    df = df.assign(variant=A.variant_labels(df, ["cooccurrence", "n", "d"]))
    rows, ok, fits, h3 = [], [], [], []
    for lab, g in df.groupby("variant", sort=False):
        pts = []
        for n, gn in g.groupby("n"):
            thr = theory.cooccurrence_threshold(int(n))
            c = first_crossing(gn, "cooccurrence", "falling")
            if c:
                pts.append((n, c["estimate"], c["low"], c["high"]))
                rows.append(
                    f"{lab}, n = {int(n)}: r₅₀ = {c['estimate']:.3g} [{c['low']:.3g}, {c['high']:.3g}] "
                    f"(bracket {c['lower']:.3g}–{c['upper']:.3g}) = {c['estimate'] / thr:.2g} × n^(−1/2)"
                )
            else:
                top = gn.groupby("cooccurrence")["frr_0.9"].mean()
                rows.append(
                    f"{lab}, n = {int(n)}: no fall through 50 % (FRR@0.9 {_fmt(top.iloc[0], True)} at r = "
                    f"{top.index[0]:.3g} → {_fmt(top.iloc[-1], True)} at r = {top.index[-1]:.3g})"
                )
            if g.label.iloc[0] in judged:
                inside = gn[gn.cooccurrence <= thr * (1 + 1e-9)]
                lowest = gn[gn.cooccurrence == gn.cooccurrence.min()]
                base_ok = A.at_least(pooled(lowest), need)
                if inside.empty:
                    h3.append(f"n = {int(n)}: no cell at r ≤ n^(−1/2) = {thr:.3g}")
                elif base_ok is not True:
                    # the set-up fails even at the lowest co-occurrence: not a test of H3 (resonance, width, steps)
                    h3.append(
                        f"n = {int(n)}: not counted — FRR@0.9 {A.fmt_interval(pooled(lowest))} already at the lowest "
                        f"r = {lowest.cooccurrence.iloc[0]:.3g}"
                    )
                else:
                    iv = pooled(inside)
                    ok.append(A.at_least(iv, need))
                    h3.append(
                        f"n = {int(n)}: FRR@0.9 {A.fmt_interval(iv)} over r ≤ {thr:.3g} "
                        f"({', '.join(f'{r:.3g}' for r in sorted(inside.cooccurrence.unique()))})"
                    )
        alpha = exponent(pts)
        fits.append(f"{lab}: α = {A.fmt_interval(alpha, pct=False)} from {len(pts)} n")
    conditions = {f"BA recovers ≥ {need:.0%} wherever r ≤ n^(−1/2)": A.all_true(ok) if ok else None}
    return {
        "claim": "H3: low co-occurrence (ρ₂ ≪ n^{-1/2}) suffices for recovery — where features co-occur at most at "
        "n^{-1/2}, recovery holds",
        "paper": "FRR holds below ρ₂ ≈ n^{-1/2} and degrades past it (H3 is stated as sufficient)",
        "rule": f"identifiable cells only (r ≤ 0.5), converged runs only. For the paper's BA, per n: the cells with "
        f"co-occurrence r ≤ n^(−1/2), pooled over r and seeds, recover FRR@0.9 ≥ {need:.0%} (seed interval, "
        "Wilson-widened). An n where BA misses that already at the grid's lowest r is a set-up failure, not a test "
        "of H3, and is not counted. Reproduced if every counted n passes, not reproduced if every counted n fails, "
        "partly otherwise; no counted n leaves it undecided. Whether recovery falls beyond n^(−1/2) is not required "
        "(H3 is sufficient, not necessary): r₅₀ per n and its exponent α in r₅₀ ∝ n^α (log–log fit, parametric "
        "bootstrap) are reported for every method",
        "ours": "H3 for BA: "
        + ("; ".join(h3) or "no BA cell")
        + " | Where recovery halves: "
        + "; ".join(rows)
        + " | Exponents: "
        + "; ".join(fits)
        + "."
        + _edge_note(df.drop(columns="variant"), [])
        + unsettled_note(raw),
        "verdict": A.verdict(ok, primary=False) if ok else "inconclusive",
        "conditions": conditions,
    }
