"""The phase-diagram rule (no claim of the paper): every method at its best over s × incoherence, measured."""

from __future__ import annotations

from .. import analysis as A
from .common import _edge_note, coarse_rows, pooled, unsettled_note


def claim_phase(df, store=None, sweep=None) -> dict:
    raw = df
    df = coarse_rows(A.settled(df), sweep)  # summaries over the coarse grid (refined s values: the figure, boundary)
    parts = []
    for lab, g in df.groupby("label", sort=False):
        t = A.tune_per_cell(g, ["s", "shared"], "frr_0.9", by="frr_0.9")
        cells = [(k, pooled(c)) for k, c in t.groupby(["s", "shared"])]
        (s_, sh), best = max(cells, key=lambda kv: kv[1][0])
        ev = A.tune_per_cell(g, ["s", "shared"], "frr_0.9", by="explained_variance")
        parts.append(
            f"{lab}: easiest cell (s = {s_:g}, a = {sh:g}) {A.fmt_interval(best)} tuned by FRR (oracle; "
            f"{t[(t.s == s_) & (t.shared == sh)].tuned_choice.iloc[0] or 'one variant'}); mean over cells "
            f"tuned by FRR {A.fmt_interval(pooled(t))}, by EV {A.fmt_interval(pooled(ev))}"
        )
    return {
        "claim": "(design's phase diagram) FRR over sparsity × incoherence for every method, each at its best",
        "paper": "—",
        "rule": "descriptive: each method tuned per cell over its grid (decades and matched L0)",
        "ours": "; ".join(parts) + "." + _edge_note(df, ["s", "shared"]) + unsettled_note(raw),
        "verdict": "measured",
    }
