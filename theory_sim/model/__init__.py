"""The statistical model X = H V (+ noise): spec, samplers, measured statistics (imported on first use)."""

from ..lazy import exports

_NAMES = {
    "GeneratorSpec": ".spec",
    "GENERATOR_FIELDS": ".spec",
    "welch_bound": ".spec",
    "ModelSampler": ".sampler",
    "EnsembleSampler": ".sampler",
    "make_features": ".sampler",
    "feature_magnitudes": ".sampler",
    "derive_seed": ".sampler",
    "measure": ".stats",
    "coherence": ".stats",
    "data_conditions": ".stats",
}
__getattr__ = exports(__name__, _NAMES)
__all__ = list(_NAMES)
