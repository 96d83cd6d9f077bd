"""Every method's hyperparameters, declared once and importable without torch.

A method's config is a frozen dataclass whose fields are ``param(...)`` declarations (theory_sim/params.py:
accepted values, help text, data scale, per model); ``check`` holds the rules between fields. ``@config(name)``
files it under the method's name: the command line, the sweep parser and docs/parameters.md read
``CONFIGS`` without loading torch or any method's code; ``sae.base.register`` refuses a method whose
``Config`` is not the one filed under its name. Adding a method: its config here, its code in its own file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

from ..errors import ConfigError, normalise_integers, reject_unknown, require
from ..params import Boolean, Interval, Options, check_declared, param

#: method name -> its config class (the torch-free half of the registry; sae.base.REGISTRY holds the code)
CONFIGS: dict[str, type] = {}


#: derived hyperparameter suffixes: ``X_over_f`` is X = value · f (the mean feature frequency), ``X_over_s`` is
#: X = value · s̄ (the data's expected L0, f · n), ``X_over_n`` is X = value · n (the number of features), e.g.
#: ``p_over_f``, ``htf_over_f``, ``target_l0_over_s``, ``width_over_n``
DERIVED = {"_over_f": "f", "_over_s": "s", "_over_n": "n"}


def derived_base(key: str) -> str:
    """The hyperparameter a key sets: ``p_over_f`` → ``p``, ``target_l0_over_s`` → ``target_l0``, ``k`` → ``k``."""
    for suffix in DERIVED:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def config(*names: str):
    """Files a config class under one or more method names; a name filed twice is refused."""

    def add(cls):
        for name in names:
            if name in CONFIGS and CONFIGS[name] is not cls:
                raise ValueError(f"a config is already filed under {name!r} ({CONFIGS[name].__qualname__})")
            CONFIGS[name] = cls
        return cls

    return add


def get_config(method: str) -> type:
    """The config class of ``method``; ConfigError naming ``method`` and the allowed names otherwise."""
    if method not in CONFIGS:
        raise ConfigError("method", f"unknown method {method!r}; allowed: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[method]


def make_config(method: str, params: dict):
    """Validated config of ``method`` from a dict (unknown keys are errors naming the key)."""
    return get_config(method).from_dict(params)


#: the widest SAE a config accepts (2^20 neurons: a (B, M) float32 code at batch 512 is already 2 GiB)
MAX_WIDTH = 2**20


@dataclass(frozen=True)
class MethodConfig:
    """Hyperparameters every method has. Each field is declared once with ``param`` (theory_sim/params.py):
    its accepted values, help text, data scale and whether it may differ inside an ensemble; ``check`` holds
    the rules that relate two fields."""

    width: int = param(512, Interval(int, 1, MAX_WIDTH), "neurons (latents) M", scale="n")
    lr: float = param(1e-3, Interval(float, 0, None, "neither"), "Adam learning rate")

    def validate(self) -> None:
        """Every declared constraint, then ``check``: ConfigError naming the first field that fails."""
        check_declared(self)
        self.check()

    def check(self) -> None:
        """Rules between fields (a subclass extends it and calls ``super().check()``)."""

    def __post_init__(self):
        normalise_integers(self)
        self.validate()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def step_flops(self, batch: int, d: int) -> float:
        """Matmul FLOPs of one training step of one model on ``batch`` rows in R^d (what ``sweep --dry-run``
        estimates time from): five (B, d, M) matmuls, 10·B·d·M."""
        return 10.0 * batch * d * self.width

    def init_flops(self, batch: int, d: int) -> float:
        """Matmul FLOPs spent once before the first step (0 for most methods)."""
        return 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "MethodConfig":
        reject_unknown(d, {f.name for f in fields(cls)}, "hyperparameter for this method")
        return cls(**d)


@dataclass(frozen=True)
class AdaptConfig(MethodConfig):
    """What BA and GBA share: the activation, the output scale and the bias-adaptation rule."""

    lr: float = 3e-3
    activation: str = param(
        "relu", Options(("relu", "jumprelu")), "relu, or jumprelu (bias-free magnitude gated by the bias)"
    )
    train_scale: bool = param(True, Boolean(), "Adam trains the output scale a")
    scale_init: float = param(1.0, Interval(float, 0, None, "neither"), "initial output scale a", per_model=True)
    renorm: bool = param(True, Boolean(), "w back on the unit sphere after each step")
    adapt_every: int = param(20, Interval(int, 1, None), "steps between bias adaptations")
    gamma_minus: float = param(0.01, Interval(float, 0, None), "step γ₋ for over-active neurons", per_model=True)
    gamma_plus: float = param(0.01, Interval(float, 0, None), "step γ₊ for dead neurons", per_model=True)
    dead_eps: float = param(0.0, Interval(float, 0, 1, "left"), "a neuron at or below this frequency is dead")
    bias_init: float = param(0.0, Interval(float, None, 0), "initial bias in [bias_floor, 0]", per_model=True)
    bias_init_quantile: bool = param(
        False, Boolean(), "start each bias at its target's quantile of the first batch (else bias_init)"
    )
    bias_floor: float = param(
        -1.0, Interval(float, None, 0), "lowest bias the rule may set (the paper: -1); <= 0", per_model=True
    )
    pre_bias: str = param("mean", Options(("mean", "zero")), "b_pre: mean (of the first batch) or zero")
    train_pre_bias: bool = param(False, Boolean(), "Adam trains b_pre")

    def check(self) -> None:
        super().check()
        require(
            self.bias_init >= self.bias_floor,
            "bias_init",
            f"must be a number in [bias_floor = {self.bias_floor:g}, 0], got {self.bias_init!r}",
        )

    def targets(self) -> list[float]:
        """Target activation frequency of each neuron, length width."""
        raise NotImplementedError


@config("ba")
@dataclass(frozen=True)
class BAConfig(AdaptConfig):
    p: float = param(
        0.0234,
        Interval(float, 0, 1, "neither"),
        "target activation frequency of every neuron",
        scale="f",
        per_model=True,
    )

    def targets(self) -> list[float]:
        return [self.p] * self.width


@config("gba")
@dataclass(frozen=True)
class GBAConfig(AdaptConfig):
    groups: int = param(10, Interval(int, 1, None), "number of neuron groups K")
    htf: float = param(
        0.1, Interval(float, 0, 1, "neither"), "highest target frequency (group 0)", scale="f", per_model=True
    )
    ltf: float = param(
        1e-3, Interval(float, 0, 1, "neither"), "lowest target frequency (group K-1)", scale="f", per_model=True
    )
    taf_spacing: str = param(
        "geometric",
        Options(("geometric", "data")),
        "TAFs geometric from htf to ltf, or data: group k's TAF the (k + ½)/K quantile of the data's feature "
        "frequencies, highest first (generator data; htf and ltf then unused)",
    )

    def check(self) -> None:
        super().check()
        require(self.groups <= self.width, "groups", f"must be <= width = {self.width}, got {self.groups}")
        require(self.htf >= self.ltf, "htf", f"must be >= ltf (got htf={self.htf}, ltf={self.ltf})")

    def targets(self) -> list[float]:
        K = self.groups
        tafs = [self.htf * (self.ltf / self.htf) ** (k / (K - 1)) if K > 1 else self.htf for k in range(K)]
        return [tafs[m * K // self.width] for m in range(self.width)]

    def group_index(self) -> list[int]:
        return [m * self.groups // self.width for m in range(self.width)]


@config("mba")
@dataclass(frozen=True)
class MBAConfig(MethodConfig):
    p: float = param(
        0.0234,
        Interval(float, 0, 1, "neither"),
        "target frequency; the fixed bias fires each neuron at ≈ p",
        scale="f",
        per_model=True,
    )
    smooth: float = param(0.05, Interval(float, 0, None, "neither"), "knee δ of the smooth ReLU")
    power_step: bool = param(True, Boolean(), "the a → 0 power step (else a Riemannian step)")
    step_size: float = param(1.0, Interval(float, 0, None, "neither"), "η of the Riemannian step", per_model=True)
    start: str = param(
        "random",
        Options(("random", "planted")),
        "random directions, or planted: per_feature neurons per true feature at cosine c₀, the rest random",
    )
    planted_cos: float = param(
        0.0,
        Interval(float, 0, 1, "left"),
        "c₀ of a planted start; 0: the alignment the theorem's width n·p^(−s/(1−ε)²) gives a random start "
        "(theory.planted_cosine, ε = planted_eps)",
        per_model=True,
    )
    planted_eps: float = param(0.02, Interval(float, 0, 0.5, "left"), "ε of the width c₀ is derived from")
    per_feature: int = param(1, Interval(int, 1, None), "planted neurons per true feature (planted start)")
    fire_rows: int = param(
        0,
        Interval(int, 0, None),
        "rows each neuron fires on per step (population-gradient proxy): a step streams ⌈fire_rows / p⌉ rows in "
        "chunks of [train] batch; 0: one batch per step",
    )
    centre: bool = param(False, Boolean(), "subtract the data mean E[x] (the paper's b_pre) before every step")

    def step_rows(self, batch: int) -> int:
        """Rows one step reads: a population batch of ⌈fire_rows / p⌉ rows streamed in chunks of ``batch`` (whole
        chunks), or one batch."""
        if not self.fire_rows:
            return batch
        return batch * max(1, math.ceil(math.ceil(self.fire_rows / self.p) / batch))

    def step_flops(self, batch: int, d: int) -> float:
        """Two (R, d, M) matmuls per step (pre-activations, the Hebbian sum), R = ``step_rows``."""
        return 4.0 * self.step_rows(batch) * d * self.width

    def init_flops(self, batch: int, d: int) -> float:
        """The fixed biases' quantiles: one (R, d, M) matmul over the first rows (at least 4096)."""
        return 2.0 * max(self.step_rows(batch), 4096) * d * self.width


@config("mp")
@dataclass(frozen=True)
class MPConfig(MethodConfig):
    k: int = param(3, Interval(int, 1, None), "matching-pursuit steps: atoms chosen per row", scale="s", per_model=True)

    def check(self):
        super().check()
        require(self.k <= self.width, "k", f"must be an integer in [1, width = {self.width}], got {self.k!r}")


@dataclass(frozen=True)
class TargetL0Config(MethodConfig):
    """Matched sparsity for penalty methods: with ``target_l0`` > 0 the penalty coefficient is a state,
    not a constant — every ``control_every`` steps it is multiplied by
    ``exp(control_gain · clip(log((L0 + ½) / (target_l0 + ½)), −1, 1))``, L0 the mean active latents per row
    since the last update. The configured coefficient is the controller's starting value."""

    target_l0: float = param(
        0.0,
        Interval(float, 0, None),
        "hold L0 at this value by feedback on the penalty (0: off)",
        scale="s",
        per_model=True,
    )
    control_every: int = param(10, Interval(int, 1, None), "steps between L0-controller updates")
    control_gain: float = param(0.1, Interval(float, 0, 10, "right"), "L0-controller gain per update (log scale)")

    def check(self):
        super().check()
        require(
            self.target_l0 <= self.width,
            "target_l0",
            f"must be a number in [0, width = {self.width}], got {self.target_l0!r}",
        )


@config("l1")
@dataclass(frozen=True)
class L1Config(TargetL0Config):
    """Defaults from a measured sweep (n 128, d 42, s 3, width 512, 3000 steps, target L0 3/6/12): lr 1e-2
    recovers FRR@0.9 = 100 % at every target (at width 256, 1500 steps: 98–100 %); lr 1e-3 — the old default —
    37–84 %; lr 3e-3 80–100 %."""

    lr: float = 1e-2
    l1: float = param(
        0.1, Interval(float, 0, None), "L1 penalty λ (the controller's start with target_l0)", per_model=True
    )


@config("topk")
@dataclass(frozen=True)
class TopKConfig(MethodConfig):
    k: int = param(3, Interval(int, 1, None), "active latents per row", scale="s", per_model=True)
    auxk: float = param(0.0, Interval(float, 0, None), "AuxK loss weight on dead latents (0: off)")
    dead_steps: int = param(200, Interval(int, 1, None), "steps without firing before a latent is dead (AuxK)")

    def check(self):
        super().check()
        require(self.k <= self.width, "k", f"must be an integer in [1, width = {self.width}], got {self.k!r}")

    def step_flops(self, batch: int, d: int) -> float:
        """The dense step's 10·B·d·M, or where TopK's sparse step runs (no AuxK, k·TOPK_SPARSE_RATIO <= M) 5·B·d·M:
        its one dense matmul (2·B·d·M) plus the top-k selection and the gathers, which took about as long as
        another 3·B·d·M of GEMM at resonance_heavy's cell (bench --scaling, 2 threads: E = 8 336 model-steps/s
        against BA's dense 157)."""
        if self.SPARSE_STEP and self.auxk == 0 and self.k * TOPK_SPARSE_RATIO <= self.width:
            return 5.0 * batch * d * self.width
        return super().step_flops(batch, d)

    #: whether the method trains through TopK's hand-written (and, where k is small, sparse) step
    SPARSE_STEP: ClassVar[bool] = True


@config("random_decoder")
@dataclass(frozen=True)
class RandomDecoderConfig(TopKConfig):
    """TopK's hyperparameters; the frozen decoder trains through autograd (the dense estimate)."""

    SPARSE_STEP: ClassVar[bool] = False


#: TopK's sparse step runs when k · this <= M (sae/topk.py: its gathers and scatter-adds cost, per element, about
#: this many GEMM multiply-adds)
TOPK_SPARSE_RATIO = 32


@config("topk_saelens")
@dataclass(frozen=True)
class TopKSAELensConfig(TopKConfig):
    """TopK as SAELens 6's synthetic trainer (train_toy_sae → SAETrainer, TopKTrainingSAE) trains it: its defaults."""

    SPARSE_STEP: ClassVar[bool] = False  # autograd (its code is rescaled by the decoder's norms)

    lr: float = 3e-4
    auxk: float = 1.0
    dead_steps: int = 1000
    decoder_init_norm: float = param(
        0.1, Interval(float, 0, None, "neither"), "norm of the decoder rows at initialisation (SAELens: 0.1)"
    )
    grad_clip: float = param(
        1.0, Interval(float, 0, None, "left"), "clip each model's gradient to this global norm (0: off; SAELens: 1)"
    )


@config("batchtopk")
@dataclass(frozen=True)
class BatchTopKConfig(TopKConfig):
    SPARSE_STEP: ClassVar[bool] = False  # autograd (its code ranks the whole batch)

    eval_code: str = param(
        "threshold",
        Options(("threshold", "batch")),
        "the code at evaluation: threshold (as SAELens: z = pre where pre > θ, θ a running mean of the smallest "
        "activation each training batch kept) | batch (the training code on the evaluation rows)",
    )
    threshold_lr: float = param(
        0.01, Interval(float, 0, 1, "right"), "the running mean's rate for θ (SAELens' topk_threshold_lr)"
    )


@config("matryoshka")
@dataclass(frozen=True)
class MatryoshkaConfig(BatchTopKConfig):
    """BatchTopK trained with nested reconstruction losses (Bussmann et al. 2025; SAELens's
    ``matryoshka_batchtopk``): the first M / r^(L−1) latents, the first M / r^(L−2), …, all M each reconstruct x
    on their own, and the loss is the sum. Scalars, not a list of widths, so a sweep can grid them."""

    levels: int = param(3, Interval(int, 1, None), "nested levels L, the widest all M latents (1: plain BatchTopK)")
    level_ratio: float = param(
        4.0, Interval(float, 1, None, "neither"), "each level's width over the next smaller one's (r)"
    )

    def level_widths(self) -> list[int]:
        """The levels' widths, smallest first, the last = width: round(M / r^(L−1−i))."""
        return [round(self.width / self.level_ratio ** (self.levels - 1 - i)) for i in range(self.levels)]

    def check(self):
        super().check()
        w = self.level_widths()
        require(
            w[0] >= 1 and all(a < b for a, b in zip(w, w[1:])),
            "levels",
            f"the levels' widths must rise strictly from at least 1: width {self.width}, levels {self.levels}, "
            f"level_ratio {self.level_ratio:g} give {w}",
        )


@config("jumprelu")
@dataclass(frozen=True)
class JumpReLUConfig(TargetL0Config):
    """lr 3e-3 from a measured sweep (n 128, d 42, s 3, width 512, 3000 steps): FRR@0.9 = 100 % at target L0 3,
    6 and 12 (lr 1e-3: 98–99 %, 1e-2: 98–100 %, 3e-2: 95–99 %). On exactly s-sparse data JumpReLU's L0 settles
    near s by reconstruction alone: targets above that are out of the controller's reach (it can only add
    sparsity), and such runs are flagged as not converged."""

    lr: float = 3e-3
    l0_coef: float = param(
        0.1, Interval(float, 0, None), "L0 penalty λ (the controller's start with target_l0)", per_model=True
    )
    bandwidth: float = param(0.05, Interval(float, 0, None, "neither"), "straight-through kernel width ε")
    threshold_init: float = param(0.1, Interval(float, 0, None, "neither"), "initial threshold θ")


def capture_refusal(method: str, cfg) -> str | None:
    """Why ``method`` with config ``cfg`` cannot train with ``graph = true`` (one sentence), or None when it can:
    every method's step is captured (its state updated in place, its host-side decisions declared by
    ``Method.phase``), except with AuxK, whose step asks the host every step whether any latent is dead.
    Torch-free, so a sweep is refused before anything is written."""
    get_config(method)
    if getattr(cfg, "auxk", 0) > 0:
        return f"{method} with auxk > 0 reads on the host, every step, whether a latent is dead: not captured"
    return None


def check_capturable(method: str, cfg) -> None:
    """ConfigError naming ``graph`` with ``capture_refusal``'s reason, if there is one."""
    why = capture_refusal(method, cfg)
    if why:
        raise ConfigError("graph", why)
