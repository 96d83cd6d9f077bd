"""The statistical model X = H V (+ noise): spec, samplers, measured statistics."""

from .sampler import EnsembleSampler, ModelSampler, derive_seed, feature_magnitudes, make_features
from .spec import GENERATOR_FIELDS, GeneratorSpec, welch_bound
from .stats import coherence, data_conditions, measure

__all__ = [
    "GeneratorSpec",
    "GENERATOR_FIELDS",
    "ModelSampler",
    "EnsembleSampler",
    "make_features",
    "feature_magnitudes",
    "derive_seed",
    "measure",
    "coherence",
    "data_conditions",
    "welch_bound",
]
