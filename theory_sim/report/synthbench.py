"""The synthbench rule: GBA against the baselines at matched L0 on a SynthSAEBench-style world."""

from __future__ import annotations

from .. import analysis as A
from .common import _edge_note, unsettled_note


def claim_synthbench(df, store=None, sweep=None) -> dict:
    """GBA against every baseline on a SynthSAEBench-style world, each at its best at matched L0 (the sweep's
    [report] metric and l0_window, fixed before the run)."""
    raw = df
    rep = getattr(sweep, "report", None) or {}
    metric = rep.get("metric", "mcc")
    lo_f, hi_f = rep.get("l0_window", [0.5, 2.0])
    roles = getattr(sweep, "roles", None) or {}
    df = A.settled(df).copy()
    df["series"] = A.variant_labels(df)
    l0_data = float(df["data_s_mean"].mean()) if "data_s_mean" in df.columns else float(df["s"].iloc[0])
    lo, hi = lo_f * l0_data, hi_f * l0_data
    best = {}  # label → (series, per-seed rows)
    for lab, g in df.groupby("label"):
        m = g.groupby("series")[["l0", metric]].mean()
        m = m[(m.l0 >= lo) & (m.l0 <= hi)]
        if len(m):
            ser = m[metric].idxmax()
            best[lab] = (ser, g[g.series == ser])
    gba = [lab for lab, r in roles.items() if r == "paper_gba"]
    base = [lab for lab, r in roles.items() if r == "baseline"]
    conds = []
    if gba and gba[0] in best:
        g_vals = best[gba[0]][1][metric].to_numpy(float)
        for b in base:
            if b in best:
                conds.append(A.at_least(A.difference_interval(g_vals, best[b][1][metric].to_numpy(float)), 1e-9))
    else:
        conds.append(False)  # GBA has no variant at matched L0: it cannot win there
    rows = []
    for lab, (ser, g) in best.items():
        n_feat = int(g["n"].iloc[0])
        cols = []
        for k in ("mcc", "f1", "f1_alive", "frr_0.9", "l0"):
            if k in g.columns:  # a recovery fraction's interval is Wilson-widened over the n features
                iv = A.seed_interval(g[k].to_numpy(float), n_feat if k == "frr_0.9" else None)
                cols.append(f"{k} {A.fmt_interval(iv, pct=k != 'l0')}")
        rows.append(f"{ser}: " + ", ".join(cols))
    missing = sorted(set(df.label) - set(best))
    return {
        "claim": "GBA recovers features better than the baselines on realistic data (hierarchical, correlated, "
        "Zipf-firing features), each method at matched sparsity",
        "paper": "GBA beats TopK and L1 on LLM activations (the paper's experiments; not reproducible here)",
        "rule": f"each method's best variant by {metric} among those whose mean L0 lies in [{lo_f:g}, {hi_f:g}] × the "
        f"data's achieved L0 ({l0_data:.2f}: [{lo:.2f}, {hi:.2f}]), on held-out rows; reproduced if GBA's best "
        f"beats every baseline's best (Welch interval of the per-seed {metric} difference above 0), not "
        "reproduced if none is beaten (or GBA has no variant at matched L0), partly otherwise; undecided "
        "intervals make it inconclusive",
        "ours": "; ".join(rows)
        + (f"; no variant at matched L0: {', '.join(missing)}" if missing else "")
        + "; F1 as SynthSAEBench defines it (all latents) and over alive latents"
        + _edge_note(df, [], by=metric)
        + unsettled_note(raw),
        "verdict": A.verdict(conds),
    }
