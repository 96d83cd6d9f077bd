"""``theory-sim reproduce``: run the paper's experiments, draw their figures, write REPORT.md.

Every verdict is computed from the stored results by a rule stated next to it in the report (no number is
typed in by hand except the paper's own, which live in the sweep files' ``[report.paper]`` tables). Each
experiment's rule is a module of this package, filed by name in ``claims.CLAIMS``; ``driver`` runs them,
``markdown`` writes REPORT.md and verdicts.json, ``common`` holds what the rules share.
"""

from .claims import CLAIMS  # noqa: F401
from .common import (  # noqa: F401
    _within,  # noqa: F401
    band_edges,
    coarse_rows,
    describe,
    edge_flags,
    exponent,
    first_crossing,
    pooled,
    power_law_fit,
)
from .cooccurrence import claim_cooccurrence  # noqa: F401
from .driver import EXPERIMENTS, SWEEP_DIR, hypotheses_summary, reproduce, run_checks  # noqa: F401
from .frontier import claim_frontier  # noqa: F401
from .imbalanced import claim_imbalanced  # noqa: F401
from .markdown import VERDICT_KEYS, verdict_objects, write_verdicts  # noqa: F401
from .noise import claim_noise  # noqa: F401
from .phase import claim_phase  # noqa: F401
from .resonance import claim_resonance  # noqa: F401
from .synthbench import claim_synthbench  # noqa: F401
from .theorem import claim_theorem  # noqa: F401
from .theorem_scaling import claim_theorem_scaling  # noqa: F401
from .width_magnitude import claim_width_magnitude, magnitude_width_table  # noqa: F401
