"""The noise rule (no claim of the paper): recovery against the signal-to-noise ratio, measured."""

from __future__ import annotations

from .. import analysis as A
from .common import _edge_note, describe, unsettled_note


def claim_noise(df, store=None, sweep=None) -> dict:
    return {
        "claim": "(no claim in the paper) FRR vs SNR",
        "paper": "—",
        "rule": "descriptive (converged runs only)",
        "ours": describe(A.settled(df), "snr") + "." + _edge_note(A.settled(df), ["snr"]) + unsettled_note(df),
        "verdict": "measured",
    }
