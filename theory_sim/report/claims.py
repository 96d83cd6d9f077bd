"""Experiment name → its rule, one per module of this package: rule(df, store, sweep) →
{claim, paper, rule, ours, verdict, conditions}. A new experiment is a sweep file in sweeps/, a rule module here
and one entry below."""

from __future__ import annotations

from .cooccurrence import claim_cooccurrence
from .dictionary import claim_dictionary
from .frequency_match import claim_frequency_match
from .frontier import claim_frontier
from .imbalanced import claim_imbalanced
from .noise import claim_noise
from .phase import claim_phase
from .resonance import claim_resonance
from .resonance_peak import claim_resonance_peak
from .spectrum import claim_spectrum
from .synthbench import claim_synthbench
from .theorem import claim_theorem
from .theorem_scaling import claim_theorem_scaling
from .width_magnitude import claim_width_magnitude

#: experiment name → its rule (one signature: the rows, the store, the sweep's [report.paper] table)
#: one rule per experiment, one signature: rule(df, store, sweep) → {claim, paper, rule, ours, verdict}; df: the
#: experiment's current rows (load_results), store: its results store (arrays), sweep: its validated sweep
#: file (``sweep.report["paper"]``: the paper's numbers; ``sweep.roles``: label → role, e.g. "gba_covers_f").
#: A new experiment is a sweep file in sweeps/ plus one entry here.
CLAIMS = {
    "theorem": claim_theorem,
    "theorem_scaling": claim_theorem_scaling,
    "resonance": claim_resonance,
    "resonance_heavy": claim_resonance,  # the same rule where heavy superposition is identifiable
    "cooccurrence": claim_cooccurrence,
    "width_magnitude": claim_width_magnitude,
    "imbalanced": claim_imbalanced,
    "phase": claim_phase,
    "noise": claim_noise,
    "frontier": claim_frontier,
    "synthbench": claim_synthbench,
    "frequency_match": claim_frequency_match,
    "resonance_peak": claim_resonance_peak,
    "spectrum": claim_spectrum,
    "dictionary": claim_dictionary,
}
