"""The noise rule (no claim of the paper): recovery against the signal-to-noise ratio, measured."""

from __future__ import annotations

from .common import _edge_note, describe


def claim_noise(df, store=None, sweep=None) -> dict:
    return {
        "claim": "(no claim in the paper) FRR vs SNR",
        "paper": "—",
        "rule": "descriptive",
        "ours": describe(df, "snr") + "." + _edge_note(df, ["snr"]),
        "verdict": "measured",
    }
