"""The generator spec: every knob of the statistical model X = H V (+ noise), validated.

Decisions the paper leaves open (docs/science.md §1), each a switch here:
- ``support``: ``exact`` (every row exactly s non-zeros, uniform subsets — the theorem's model),
  ``bernoulli`` (feature i fires independently with frequency f_i: uniform s/n, Zipf, or an explicit list,
  optionally with co-occurrence groups), ``mixture`` (each row draws its sparsity from ``mixture_s`` with
  ``mixture_weights``; the paper's imbalanced set is mixture_s=[3, 20]).
- Co-occurrence (bernoulli, uniform f only): features are split into groups of ``group_size``; a group
  is "on" with probability pi = f / r and, when on, each member fires with probability r = ``cooccurrence``.
  Then P(h_i>0) = f and, within a group, P(h_j>0 | h_i>0) = r, so rho2 ~ r: moving r from f (independent)
  to 1 sweeps rho2 across n^{-1/2}.
- ``magnitude`` of the non-zeros (always >= 0): ``constant`` (mag_value), ``uniform`` [mag_low, mag_high],
  ``lognormal`` (exp(N(log mag_value, mag_sigma^2))), ``per_feature`` (feature i always has magnitude h_i,
  from ``magnitudes`` or log-uniform in [mag_low, mag_high] drawn from the seed).
- Noise: isotropic Gaussian, std ``noise_std``, or ``snr`` = E||HV||^2 / E||noise||^2 (overrides noise_std).
- ``row_norm``: scale every sample x (noise included) to unit norm — an input-scaling reading of the paper
  (rows of very different sparsity otherwise differ in norm by sqrt(s_max / s_min)).
- ``features``: ``gaussian`` (i.i.d., the theorem's), ``orthogonal`` (n <= d), ``low_coherence`` (pushed
  to max |cos| <= ``coherence``, below the Gaussian level), ``shared`` (v_i ∝ sqrt(1-a) g_i + sqrt(a) u,
  raising every cosine toward a = ``shared``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

from ..errors import normalise_integers, reject_unknown, require
from ..theory import welch_bound

# knob -> the default that reproduces the behaviour before the knob existed (see GeneratorSpec.to_dict)
LATER_FIELDS = {
    "row_norm": False,
    "hierarchy_depth": 0,
    "hierarchy_branching": 2,
    "hierarchy_exclusive": False,
    "correlation_rank": 0,
    "correlation_scale": 0.5,
    "mag_spread": 0.0,
    "dictionary_bias": 0.0,
}

FEATURE_KINDS = ("gaussian", "orthogonal", "low_coherence", "shared")
SUPPORT_KINDS = ("exact", "bernoulli", "mixture")
FREQUENCY_KINDS = ("uniform", "zipf", "list")
MAGNITUDE_KINDS = ("constant", "uniform", "lognormal", "per_feature")


def _finite(name: str, v: float) -> None:
    require(isinstance(v, (int, float)) and not isinstance(v, bool), name, f"must be a number, got {v!r}")
    require(math.isfinite(v), name, f"must be finite, got {v!r}")


#: the most entries V (n, d) may have: 2^30 float32 is 4 GiB, beyond any sweep this suite runs on one device
MAX_FEATURE_ENTRIES = 2**30


@dataclass(frozen=True)
class GeneratorSpec:
    """Data model X = H V + noise.  V: (n, d) unit rows; H: (N, n) nonnegative, sparse."""

    n: int = 128
    d: int = 42
    s: float = 3
    features: str = "gaussian"
    coherence: float | None = None
    shared: float = 0.0
    support: str = "exact"
    frequencies: str = "uniform"
    zipf: float = 1.0
    frequency_list: tuple[float, ...] | None = None
    mixture_s: tuple[int, ...] | None = None
    mixture_weights: tuple[float, ...] | None = None
    cooccurrence: float | None = None
    group_size: int = 8
    magnitude: str = "constant"
    mag_value: float = 1.0
    mag_low: float = 0.5
    mag_high: float = 1.5
    mag_sigma: float = 0.5
    magnitudes: tuple[float, ...] | None = None
    noise_std: float = 0.0
    snr: float | None = None
    row_norm: bool = False
    hierarchy_depth: int = 0
    hierarchy_branching: int = 2
    hierarchy_exclusive: bool = False
    correlation_rank: int = 0
    correlation_scale: float = 0.5
    mag_spread: float = 0.0
    dictionary_bias: float = 0.0
    seed: int = 0

    def __post_init__(self):
        normalise_integers(self)
        for name in ("frequency_list", "mixture_s", "mixture_weights", "magnitudes"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, tuple):
                require(isinstance(v, (list, tuple)), name, f"must be a list of numbers, got {v!r}")
                object.__setattr__(self, name, tuple(v))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        for name in ("n", "d", "group_size", "seed"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool), name, f"must be an integer, got {v!r}")
        require(self.n > 0, "n", f"must be a positive integer (n > 0), got {self.n}")
        require(self.d > 0, "d", f"must be a positive integer (d > 0), got {self.d}")
        require(0 <= self.seed < 2**63, "seed", f"must be in [0, 2^63), got {self.seed}")
        require(
            self.n * self.d <= MAX_FEATURE_ENTRIES,
            "n",
            f"n × d = {self.n * self.d} entries of V exceed the limit "
            f"of {MAX_FEATURE_ENTRIES} ({MAX_FEATURE_ENTRIES * 4 / 2**30:.0f} GiB of float32)",
        )
        for name, allowed in (
            ("features", FEATURE_KINDS),
            ("support", SUPPORT_KINDS),
            ("frequencies", FREQUENCY_KINDS),
            ("magnitude", MAGNITUDE_KINDS),
        ):
            require(
                getattr(self, name) in allowed,
                name,
                f"must be one of {', '.join(allowed)}; got {getattr(self, name)!r}",
            )
        for name in ("s", "shared", "zipf", "mag_value", "mag_low", "mag_high", "mag_sigma", "noise_std"):
            _finite(name, getattr(self, name))
        if self.support == "exact":
            require(float(self.s).is_integer(), "s", f"must be an integer for support=exact, got {self.s}")
        require(0 < self.s <= self.n, "s", f"must satisfy 0 < s <= n = {self.n}, got {self.s}")
        if self.features == "orthogonal":
            require(
                self.n <= self.d,
                "features",
                f"orthogonal needs n <= d (got n={self.n}, d={self.d}); use gaussian or low_coherence",
            )
        if self.features == "low_coherence":
            require(
                self.coherence is not None, "coherence", "low_coherence needs a target max |cos| in (welch_bound, 1)"
            )
            _finite("coherence", self.coherence)
            wb = welch_bound(self.n, self.d)
            require(
                wb < self.coherence < 1,
                "coherence",
                f"must lie in (Welch bound {wb:.4f}, 1) for n={self.n}, d={self.d}; got {self.coherence}",
            )
        require(0 <= self.shared < 1, "shared", f"must be in [0, 1), got {self.shared}")
        if self.support == "bernoulli":
            if self.frequencies == "zipf":
                require(self.zipf > 0, "zipf", f"exponent must be > 0, got {self.zipf}")
            if self.frequencies == "list":
                fl = self.frequency_list
                require(
                    fl is not None and len(fl) == self.n,
                    "frequency_list",
                    f"must list n = {self.n} frequencies for frequencies=list",
                )
                for f in fl:
                    _finite("frequency_list", f)
                    require(0 < f <= 1, "frequency_list", f"every frequency must be in (0, 1], got {f}")
            fs = self.feature_frequencies()
            require(
                max(fs) <= 1,
                "zipf" if self.frequencies == "zipf" else "s",
                f"the largest feature frequency is {max(fs):.3g} > 1; lower s or the Zipf exponent",
            )
        if self.support == "mixture":
            ms, mw = self.mixture_s, self.mixture_weights
            require(ms is not None and len(ms) > 0, "mixture_s", "support=mixture needs a non-empty list of sparsities")
            for v in ms:
                require(
                    isinstance(v, int) and 0 < v <= self.n,
                    "mixture_s",
                    f"every sparsity must be an integer in [1, n = {self.n}], got {v!r}",
                )
            mw = mw if mw is not None else tuple(1.0 for _ in ms)
            require(len(mw) == len(ms), "mixture_weights", f"must have {len(ms)} entries, one per mixture_s")
            for w in mw:
                _finite("mixture_weights", w)
                require(w >= 0, "mixture_weights", f"weights must be >= 0, got {w}")
            require(sum(mw) > 0, "mixture_weights", "weights must not all be zero")
        if self.cooccurrence is not None:
            _finite("cooccurrence", self.cooccurrence)
            require(
                self.support == "bernoulli" and self.frequencies == "uniform",
                "cooccurrence",
                "needs support=bernoulli with frequencies=uniform",
            )
            f = self.s / self.n
            require(
                f <= self.cooccurrence <= 1,
                "cooccurrence",
                f"must be in [f = s/n = {f:.4g}, 1], got {self.cooccurrence}",
            )
            require(
                1 <= self.group_size <= self.n, "group_size", f"must be in [1, n = {self.n}], got {self.group_size}"
            )
        require(self.mag_value > 0, "mag_value", f"must be > 0, got {self.mag_value}")
        require(
            0 <= self.mag_low <= self.mag_high,
            "mag_low",
            f"need 0 <= mag_low <= mag_high, got [{self.mag_low}, {self.mag_high}]",
        )
        if self.magnitude == "per_feature" and self.magnitudes is None:
            require(self.mag_low > 0, "mag_low", "must be > 0 for log-uniform per-feature magnitudes")
        require(self.mag_sigma >= 0, "mag_sigma", f"must be >= 0, got {self.mag_sigma}")
        if self.magnitudes is not None:
            require(len(self.magnitudes) == self.n, "magnitudes", f"must list n = {self.n} values")
            for h in self.magnitudes:
                _finite("magnitudes", h)
                require(h >= 0, "magnitudes", f"magnitudes must be >= 0, got {h}")
        require(self.noise_std >= 0, "noise_std", f"must be >= 0, got {self.noise_std}")
        require(isinstance(self.row_norm, bool), "row_norm", f"must be true or false, got {self.row_norm!r}")
        self._validate_world()
        if self.snr is not None:
            _finite("snr", self.snr)
            require(self.snr > 0, "snr", f"must be > 0, got {self.snr}")

    def _validate_world(self) -> None:
        """The SynthSAEBench-style structure: hierarchy, correlated firing, magnitude spread, dictionary bias."""
        for name in ("hierarchy_depth", "hierarchy_branching", "correlation_rank"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool), name, f"must be an integer, got {v!r}")
        require(
            isinstance(self.hierarchy_exclusive, bool),
            "hierarchy_exclusive",
            f"must be true or false, got {self.hierarchy_exclusive!r}",
        )
        for name in ("correlation_scale", "mag_spread", "dictionary_bias"):
            _finite(name, getattr(self, name))
        require(
            0 <= self.hierarchy_depth <= 8, "hierarchy_depth", f"must be in [0, 8] (0: off), got {self.hierarchy_depth}"
        )
        require(self.hierarchy_branching >= 1, "hierarchy_branching", f"must be >= 1, got {self.hierarchy_branching}")
        if self.hierarchy_depth:
            require(
                self.support == "bernoulli",
                "hierarchy_depth",
                "a hierarchy gates independent firings: it needs support=bernoulli",
            )
            size = self.tree_size()
            require(
                size <= self.n,
                "hierarchy_branching",
                f"branching {self.hierarchy_branching} and depth {self.hierarchy_depth} make trees of {size} features, "
                f"more than n = {self.n}",
            )
        require(
            0 <= self.correlation_rank <= self.n,
            "correlation_rank",
            f"must be in [0, n = {self.n}] (0: independent firing), got {self.correlation_rank}",
        )
        if self.correlation_rank:
            require(
                self.support == "bernoulli" and self.cooccurrence is None,
                "correlation_rank",
                "correlated firing needs support=bernoulli without cooccurrence groups",
            )
        require(
            0 <= self.correlation_scale < 1,
            "correlation_scale",
            f"must be in [0, 1) (the firing variables' shared share of variance), got {self.correlation_scale}",
        )
        require(self.mag_spread >= 0, "mag_spread", f"must be >= 0 (a relative std), got {self.mag_spread}")
        if self.mag_spread > 0:
            require(
                self.magnitude == "per_feature",
                "mag_spread",
                "spreads per-feature magnitudes: needs magnitude=per_feature",
            )
        require(
            self.dictionary_bias >= 0,
            "dictionary_bias",
            f"must be >= 0 (the offset's norm), got {self.dictionary_bias}",
        )

    def tree_size(self) -> int:
        """Features in one tree of the hierarchy: 1 + b + … + b^depth."""
        b = self.hierarchy_branching
        return sum(b**level for level in range(self.hierarchy_depth + 1))

    # ------------------------------------------------------------------ derived
    def feature_frequencies(self) -> list[float]:
        """Requested P(h_i > 0) for each feature, length n."""
        n = self.n
        if self.support == "exact":
            return [self.s / n] * n
        if self.support == "mixture":
            ms = self.mixture_s
            mw = self.mixture_weights or tuple(1.0 for _ in ms)
            tot = sum(mw)
            return [sum(w * k for w, k in zip(mw, ms)) / tot / n] * n
        if self.frequencies == "uniform":
            return [self.s / n] * n
        if self.frequencies == "list":
            return list(self.frequency_list)
        raw = [(i + 1) ** -self.zipf for i in range(n)]
        scale = self.s / sum(raw)  # mean frequency s/n, i.e. E[L0] = s
        return [r * scale for r in raw]

    def mean_frequency(self) -> float:
        """f = E[L0] / n; the reference for p/f."""
        fs = self.feature_frequencies()
        return sum(fs) / len(fs)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """All fields, except knobs added after results schema 1 while they sit at the default that
        reproduces the earlier behaviour (``LATER_FIELDS``): so stored cells keep their hashes."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in LATER_FIELDS and v == LATER_FIELDS[f.name]:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorSpec":
        reject_unknown(d, {f.name for f in fields(cls)}, "generator option")
        kwargs = dict(d)
        for k, v in kwargs.items():
            if isinstance(v, list):
                kwargs[k] = tuple(v)
        if "s" in kwargs and isinstance(kwargs["s"], float) and kwargs["s"].is_integer():
            kwargs["s"] = int(kwargs["s"])
        return cls(**kwargs)

    @classmethod
    def for_cell(cls, data: dict, seed: int) -> "GeneratorSpec":
        """The data model of a sweep cell: ``data`` (generator fields) at the cell's ``seed``; a ``seed`` among
        the data fields wins (it fixes the data across cell seeds, which then only change the SAE's init)."""
        return cls.from_dict({"seed": seed, **data})

    def replace(self, **kw) -> "GeneratorSpec":
        return dataclasses.replace(self, **kw)


GENERATOR_FIELDS = tuple(f.name for f in fields(GeneratorSpec))
