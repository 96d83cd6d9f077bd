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
  raising every cosine toward a = ``shared``), ``rademacher`` (entries ±1/√d with random signs: not Gaussian, the
  same incoherence scale), ``sparse`` (each row ``feature_nnz`` Gaussian entries at random coordinates: overlapping
  supports make it more coherent). ``shared`` > 0 adds the shared component to any kind but orthogonal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from ..errors import normalise_integers, reject_unknown, require
from ..params import Boolean, Interval, ListOf, Maybe, Options, check_declared, param
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
    "feature_nnz": 0,
}

FEATURE_KINDS = ("gaussian", "orthogonal", "low_coherence", "shared", "rademacher", "sparse")
SUPPORT_KINDS = ("exact", "bernoulli", "mixture")
FREQUENCY_KINDS = ("uniform", "zipf", "list")
MAGNITUDE_KINDS = ("constant", "uniform", "lognormal", "per_feature")


#: the most entries V (n, d) may have: 2^30 float32 is 4 GiB, beyond any sweep this suite runs on one device
MAX_FEATURE_ENTRIES = 2**30


@dataclass(frozen=True)
class GeneratorSpec:
    """Data model X = H V + noise.  V: (n, d) unit rows; H: (N, n) nonnegative, sparse."""

    n: int = param(128, Interval(int, 1, None), "number of features (rows of V)")
    d: int = param(42, Interval(int, 1, None), "ambient dimension")
    s: float = param(
        3, Interval(float, 0, None, "neither"), "non-zeros per row (exact) or expected L0 (bernoulli), s <= n"
    )
    features: str = param(
        "gaussian",
        Options(FEATURE_KINDS),
        "V: gaussian | orthogonal (n<=d) | low_coherence | shared | rademacher (entries ±1/√d) | sparse (feature_nnz "
        "Gaussian entries per row)",
    )
    coherence: float | None = param(
        None, Maybe(Interval(float)), "target max |cos| for features=low_coherence, in (Welch bound, 1)"
    )
    shared: float = param(
        0.0, Interval(float, 0, 1, "left"), "weight a of a shared component (raises every cosine toward a)"
    )
    support: str = param(
        "exact",
        Options(SUPPORT_KINDS),
        "H support: exact (s per row) | bernoulli (independent, f_i) | mixture (mixture_s)",
    )
    frequencies: str = param("uniform", Options(FREQUENCY_KINDS), "bernoulli frequencies: uniform (s/n) | zipf | list")
    zipf: float = param(1.0, Interval(float), "Zipf exponent (frequencies=zipf), > 0")
    frequency_list: tuple[float, ...] | None = param(
        None, Maybe(ListOf(Interval(float, 0, 1, "right"))), "comma list of n frequencies (frequencies=list)"
    )
    mixture_s: tuple[int, ...] | None = param(
        None, Maybe(ListOf(Interval(int, 1, None))), "comma list of row sparsities (support=mixture), e.g. 3,20"
    )
    mixture_weights: tuple[float, ...] | None = param(
        None, Maybe(ListOf(Interval(float, 0, None))), "comma list of weights for mixture_s (default equal)"
    )
    cooccurrence: float | None = param(
        None,
        Maybe(Interval(float, 0, 1)),
        "within-group P(h_j>0 | h_i>0) in [s/n, 1] (bernoulli, uniform f); moves rho2",
    )
    group_size: int = param(8, Interval(int), "features per co-occurrence group, in [1, n]")
    magnitude: str = param(
        "constant", Options(MAGNITUDE_KINDS), "non-zero magnitudes: constant | uniform | lognormal | per_feature"
    )
    mag_value: float = param(1.0, Interval(float, 0, None, "neither"), "constant magnitude / lognormal median")
    mag_low: float = param(0.5, Interval(float, 0, None), "uniform / per_feature low end")
    mag_high: float = param(1.5, Interval(float), "uniform / per_feature high end, >= mag_low")
    mag_sigma: float = param(0.5, Interval(float, 0, None), "lognormal sigma")
    magnitudes: tuple[float, ...] | None = param(
        None, Maybe(ListOf(Interval(float, 0, None))), "comma list of n per-feature magnitudes (per_feature)"
    )
    noise_std: float = param(0.0, Interval(float, 0, None), "isotropic Gaussian noise std")
    snr: float | None = param(
        None, Maybe(Interval(float, 0, None, "neither")), "target E||HV||^2/E||noise||^2 (overrides noise_std)"
    )
    row_norm: bool = param(False, Boolean(), "true: scale every sample to unit norm (input-scaling reading)")
    hierarchy_depth: int = param(
        0,
        Interval(int, 0, 8),
        "levels of a feature hierarchy below its roots (0: none; support=bernoulli): a child fires only with its "
        "parent",
    )
    hierarchy_branching: int = param(2, Interval(int, 1, None), "children per parent in the hierarchy")
    hierarchy_exclusive: bool = param(
        False, Boolean(), "true: at most one child of a parent fires (siblings mutually exclusive)"
    )
    correlation_rank: int = param(
        0,
        Interval(int, 0, None),
        "rank of a Gaussian copula over the firing variables (0: independent; keeps each f_i), <= n",
    )
    correlation_scale: float = param(
        0.5,
        Interval(float, 0, 1, "left"),
        "SAELens's correlation_scale: each copula loading N(0, scale²), a row's shared variance rank·scale² on "
        "average (capped at 0.99)",
    )
    correlation_model: str = param(
        "saelens",
        Options(("saelens",)),
        "how correlation_scale is read (stored with every correlated world: worlds of the earlier 'share of "
        "variance' reading have other hashes)",
    )
    mag_spread: float = param(
        0.0,
        Interval(float, 0, 8),
        "relative spread of per-feature magnitudes (magnitude=per_feature): h_i exp(σN − σ²/2)",
    )
    feature_nnz: int = param(
        0, Interval(int, 0, None), "non-zero entries per feature row for features=sparse (0: ⌈d/4⌉), <= d"
    )
    dictionary_bias: float = param(
        0.0, Interval(float, 0, None), "norm of a fixed offset added to every sample (a dictionary bias)"
    )
    seed: int = param(0, Interval(int, 0, 2**63, "left"), "root seed")

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
        """Every declared constraint (``params.check_declared``), then the rules that relate fields."""
        check_declared(self)
        require(
            self.n * self.d <= MAX_FEATURE_ENTRIES,
            "n",
            f"n × d = {self.n * self.d} entries of V exceed the limit "
            f"of {MAX_FEATURE_ENTRIES} ({MAX_FEATURE_ENTRIES * 4 / 2**30:.0f} GiB of float32)",
        )
        if self.support == "exact":
            require(float(self.s).is_integer(), "s", f"must be an integer for support=exact, got {self.s}")
        require(0 < self.s <= self.n, "s", f"must satisfy 0 < s <= n = {self.n}, got {self.s}")
        if self.features == "orthogonal":
            require(
                self.n <= self.d,
                "features",
                f"orthogonal needs n <= d (got n={self.n}, d={self.d}); use gaussian or low_coherence",
            )
        require(
            self.feature_nnz == 0 or self.features == "sparse",
            "feature_nnz",
            f"only with features=sparse (got features={self.features})",
        )
        require(
            self.feature_nnz <= self.d,
            "feature_nnz",
            f"must be an integer in [0, d = {self.d}], got {self.feature_nnz}",
        )
        if self.features == "low_coherence":
            require(
                self.coherence is not None, "coherence", "low_coherence needs a target max |cos| in (welch_bound, 1)"
            )
            wb = welch_bound(self.n, self.d)
            require(
                wb < self.coherence < 1,
                "coherence",
                f"must lie in (Welch bound {wb:.4f}, 1) for n={self.n}, d={self.d}; got {self.coherence}",
            )
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
                require(v <= self.n, "mixture_s", f"every sparsity must be an integer in [1, n = {self.n}], got {v!r}")
            mw = mw if mw is not None else tuple(1.0 for _ in ms)
            require(len(mw) == len(ms), "mixture_weights", f"must have {len(ms)} entries, one per mixture_s")
            require(sum(mw) > 0, "mixture_weights", "weights must not all be zero")
        if self.cooccurrence is not None:
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
        require(
            self.mag_low <= self.mag_high,
            "mag_low",
            f"need 0 <= mag_low <= mag_high, got [{self.mag_low}, {self.mag_high}]",
        )
        if self.magnitude == "per_feature" and self.magnitudes is None:
            require(self.mag_low > 0, "mag_low", "must be > 0 for log-uniform per-feature magnitudes")
        if self.magnitudes is not None:
            require(len(self.magnitudes) == self.n, "magnitudes", f"must list n = {self.n} values")
        self._validate_world()

    def _validate_world(self) -> None:
        """The SynthSAEBench-style structure: hierarchy, correlated firing, magnitude spread, dictionary bias."""
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
            self.correlation_rank <= self.n,
            "correlation_rank",
            f"must be in [0, n = {self.n}] (0: independent firing), got {self.correlation_rank}",
        )
        if self.correlation_rank:
            require(
                self.support == "bernoulli" and self.cooccurrence is None,
                "correlation_rank",
                "correlated firing needs support=bernoulli without cooccurrence groups",
            )
        if self.mag_spread > 0:
            require(
                self.magnitude == "per_feature",
                "mag_spread",
                "spreads per-feature magnitudes: needs magnitude=per_feature",
            )
        self._validate_context()
        self._validate_scale()

    #: the largest coefficient, noise level or bias a world may have: beyond it squared norms overflow float32
    MAX_SCALE = 1e6

    def _validate_scale(self) -> None:
        """Worlds that degenerate are refused before anything is drawn: every magnitude zero (X all zero), or a
        magnitude, noise level or dictionary bias so large that squared row norms overflow."""
        import math

        big = self.MAX_SCALE
        top = {
            "constant": self.mag_value,
            "uniform": self.mag_high,
            "lognormal": self.mag_value * math.exp(min(50.0, 6 * self.mag_sigma)),
            "per_feature": max(self.magnitudes) if self.magnitudes else self.mag_high,
        }[self.magnitude]
        field = {"constant": "mag_value", "uniform": "mag_high", "lognormal": "mag_value", "per_feature": "mag_high"}
        name = "magnitudes" if self.magnitude == "per_feature" and self.magnitudes else field[self.magnitude]
        require(top > 0, name, "every magnitude is 0: X would be all zero; give magnitudes > 0")
        require(top <= big, name, f"magnitudes up to {top:.3g} exceed {big:g}: squared norms would overflow float32")
        require(self.noise_std <= big, "noise_std", f"must be at most {big:g}, got {self.noise_std:g}")
        require(
            self.dictionary_bias <= big, "dictionary_bias", f"must be at most {big:g}, got {self.dictionary_bias:g}"
        )

    #: knob -> (its default, the condition under which it acts, the context it needs, in words): a knob moved off
    #: its default where it does nothing is refused (it would be ignored without a word)
    def _validate_context(self) -> None:
        bern = self.support == "bernoulli"
        rules = (
            ("zipf", 1.0, bern and self.frequencies == "zipf", "support=bernoulli and frequencies=zipf"),
            ("frequencies", "uniform", bern, "support=bernoulli"),
            ("frequency_list", None, bern and self.frequencies == "list", "support=bernoulli and frequencies=list"),
            ("mixture_s", None, self.support == "mixture", "support=mixture"),
            ("mixture_weights", None, self.support == "mixture", "support=mixture"),
            ("group_size", 8, self.cooccurrence is not None, "cooccurrence"),
            ("coherence", None, self.features == "low_coherence", "features=low_coherence"),
            ("hierarchy_branching", 2, self.hierarchy_depth > 0, "hierarchy_depth > 0"),
            ("hierarchy_exclusive", False, self.hierarchy_depth > 0, "hierarchy_depth > 0"),
            ("correlation_scale", 0.5, self.correlation_rank > 0, "correlation_rank > 0"),
            ("mag_sigma", 0.5, self.magnitude == "lognormal", "magnitude=lognormal"),
            ("magnitudes", None, self.magnitude == "per_feature", "magnitude=per_feature"),
        )
        for name, default, acts, needs in rules:
            v = getattr(self, name)
            require(
                acts or v == default or v is None and default is None,
                name,
                f"does nothing without {needs} (got {name}={v!r}); remove it or set {needs}",
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

    def counter_structure(self) -> tuple:
        """What must be equal for specs to share one counter-stream ensemble (model/counter.py): the support's and
        the magnitude law's kinds and the shape of their structure (mixture levels, groups, hierarchy, copula
        rank). The numbers (s, frequencies, magnitudes, noise, …) may differ per model. Graph cells batch by it."""
        grouped = self.support == "bernoulli" and self.cooccurrence is not None
        tree = self.support == "bernoulli" and self.hierarchy_depth > 0
        return (
            self.support,
            self.magnitude,
            len(self.mixture_s) if self.support == "mixture" else 0,
            self.group_size if grouped else 0,
            (self.hierarchy_depth, self.hierarchy_branching, self.hierarchy_exclusive) if tree else (),
            self.correlation_rank if self.support == "bernoulli" else 0,
        )

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
            if f.name == "correlation_model" and not self.correlation_rank:
                continue  # only a correlated world carries it (its loadings follow it)
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
