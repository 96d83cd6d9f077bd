"""A counter-based random stream: every draw a pure function of (model seed, step, position), computed with
integer tensor ops on the device. What a CUDA graph can hold (no generator state on the host, no rejection
loop, no host sync) and what ``[train] graph`` trains on.

Why not torch's generators: ``EnsembleSampler`` gives each model its own ``torch.Generator`` (so a model's
stream does not depend on its ensemble) and redraws repeated supports until none is left — E launches per
draw and a data-dependent loop, neither capturable. Here the E models' draws are one tensor op, and the same
(seed, step) gives the same integers on every device (the floats that follow may differ in the last bits).

The hash: murmur3's 32-bit finaliser, keyed by the seed's two halves and the stream (``model_keys``), the use
(``use_keys``, once per sampler) and the step (``Draw``, once per step); two rounds over the positions.
Products are split so no int64 product overflows. Uniforms are the top 24 bits (exact in float32); an index
below m is ⌊h·m / 2³²⌋ (bias below m / 2³²).
"""

from __future__ import annotations

import math

import torch

from ..tensor import unit_rows
from .sampler import STREAM_DATA, ModelSampler, derive_seed
from .spec import GeneratorSpec

MASK32 = 0xFFFFFFFF

#: what the stream draws, each from its own key (a draw's numbers never depend on which other draws exist)
USE_SUPPORT, USE_MAGNITUDE, USE_NOISE_A, USE_NOISE_B, USE_SPREAD, USE_ORDER, USE_LEVEL, USE_GROUP = range(1, 9)
USE_COPULA_A, USE_COPULA_B, USE_COPULA_C, USE_COPULA_D = range(9, 13)
USE_HIERARCHY = 16  # + the level (at most 8 levels)
N_USES = USE_HIERARCHY + 8


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x · c) mod 2³² for int64 x in [0, 2³²): x·c_lo plus (x mod 2¹⁶)·(c_hi·2¹⁶) — the rest of x·c_hi·2¹⁶ is a
    multiple of 2³² — so no product reaches 2⁴⁸ and none overflows int64."""
    return (x * (c & 0xFFFF) + (x & 0xFFFF) * ((c >> 16) << 16)) & MASK32


def fmix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's finaliser on int64 values in [0, 2³²): a bijection of 32-bit words that mixes every bit."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def model_keys(seeds: list[int], stream: int) -> torch.Tensor:
    """(E,) int64 keys in [0, 2³²), one per model: its root seed's stream seed (< 2⁶³) folded to 32 bits."""
    k = torch.tensor([derive_seed(s, stream) for s in seeds], dtype=torch.int64)
    return fmix32(fmix32(k & MASK32) ^ (k >> 32))


def use_keys(keys: torch.Tensor) -> torch.Tensor:
    """(N_USES, E): each model's key of every use, mixed once (on the host, when a sampler is made)."""
    return torch.stack([fmix32(keys ^ ((u * 0x9E3779B9) & MASK32)) for u in range(N_USES)])


class Draw:
    """One step's draws: ``ukeys`` (N_USES, E) from ``use_keys``; ``step`` a 0-d int64 tensor (on the device, so a
    captured graph reads its current value), hashed once here. The word of (model, use, step, position) is
    fmix32(fmix32(position ^ use key) ^ fmix32(step)): the step enters through a hash, so two models' or uses'
    streams never repeat each other shifted in steps (an additive step would let key₁ + t₁ = key₂ + t₂ repeat a
    whole stream), and it costs one hash per step, not one per draw."""

    def __init__(self, ukeys: torch.Tensor, step: torch.Tensor):
        self.ukeys, self.tkey = ukeys, fmix32((step & MASK32) ^ 0x5BD1E995)

    def words(self, use: int, pos: torch.Tensor) -> torch.Tensor:
        """(E, ...) int64 words in [0, 2³²) of ``use`` at positions ``pos`` (E, ...) (integers in [0, 2³²))."""
        E = self.ukeys.shape[1]
        k = self.ukeys[use].view(E, *[1] * (pos.dim() - 1))
        return fmix32(fmix32(pos ^ k) ^ self.tkey)

    def bits(self, use: int, shape: tuple[int, ...]) -> torch.Tensor:
        """(E, *shape) words at positions 0..prod(shape)−1 in row-major order (the same for every model)."""
        count = math.prod(shape)
        assert count < 2**32, "one draw holds fewer than 2^32 words"
        pos = torch.arange(count, device=self.ukeys.device, dtype=torch.int64).view(1, *shape)
        return self.words(use, pos)

    def uniform(self, use: int, shape=None, pos=None) -> torch.Tensor:
        """(E, *shape) float32 in [0, 1), multiples of 2⁻²⁴ (at positions ``pos`` instead, when given)."""
        w = self.bits(use, shape) if pos is None else self.words(use, pos)
        return (w >> 8).to(torch.float32) * (1.0 / 2**24)

    def normal(self, use_a: int, use_b: int, shape=None, pos=None) -> torch.Tensor:
        """(E, *shape) standard normals (Box–Muller on two independent uniforms)."""
        u1 = 1.0 - self.uniform(use_a, shape, pos)  # (0, 1]: the log is finite
        u2 = self.uniform(use_b, shape, pos)
        return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi) * u2)

    def distinct(self, B: int, S: int, n: int, pos: torch.Tensor | None = None) -> torch.Tensor:
        """(E, B, S) int64: per row of model e a uniformly random subset of [0, n) in the slots where ``pos``
        (slot_positions; default every slot, at position k·B + b) is ≥ 0, −1 in the others. Floyd's algorithm:
        one draw per slot, none rejected, no loop on the data; at slot k every model draws below n − S + k + 1,
        which is its own Floyd step, so a model's subset is the one it draws alone. The subset is uniform; the
        order within a row is not."""
        E = self.ukeys.shape[1]
        full = pos is None
        if full:
            k = torch.arange(S, device=self.ukeys.device).view(1, 1, S)
            pos = (k * B + torch.arange(B, device=self.ukeys.device).view(1, B, 1)).expand(E, B, S)
        words = self.words(USE_SUPPORT, pos.clamp_min(0))
        idx = torch.full_like(words, -1)
        for k, j in enumerate(range(n - S, n)):
            r = below(words[..., k], j + 1)  # uniform in [0, j]
            if k:
                r.masked_fill_((idx[..., :k] == r.unsqueeze(-1)).any(-1), j)
            idx[..., k] = r if full else r.masked_fill_(pos[..., k] < 0, -1)
        return idx


def below(words: torch.Tensor, m) -> torch.Tensor:
    """Words in [0, 2³²) → integers in [0, m) (m an int or an int64 tensor broadcasting with words)."""
    return (words * m) >> 32


def slot_positions(sizes: torch.Tensor, S: int, B: int) -> torch.Tensor:
    """(E, B, S) positions of the draws of slot k of row b: model e's sizes[e] draws sit in the last sizes[e]
    slots (the leading S − sizes[e] are unused: −1), at position i·B + b for its i-th draw, so a model's words do
    not depend on the ensemble's largest S."""
    E = sizes.shape[0]
    i = torch.arange(S, device=sizes.device).view(1, 1, S) - (S - sizes).view(E, 1, 1)  # draw number, < 0: unused
    b = torch.arange(B, device=sizes.device).view(1, B, 1)
    return torch.where(i >= 0, i * B + b, torch.full_like(i * B + b, -1))


class CounterSampler:
    """E specs of equal (n, d) and equal ``GeneratorSpec.counter_structure`` drawn from the counter stream;
    ``sample(B)`` -> x (E, B, d), each call the next step of every model's stream (``step``: a device counter,
    advanced in place, so a captured call draws fresh rows on each replay). The numbers of each model's spec
    (s, frequencies, co-occurrence, magnitude parameters, noise level, bias, copula loadings) may differ; V,
    magnitudes, noise levels (SNR's pilot included), biases, loadings and hierarchy come from ``ModelSampler``,
    so both samplers draw the same law. Every support the generator has is drawn:

    - exact / mixture: each model's own s-subset (mixture: of its largest sparsity) by Floyd's algorithm, its
      draws at positions that do not depend on the ensemble (a model's rows are those it draws alone); a
      mixture's subset is put in uniform order by random keys and the row's level keeps a prefix, a uniform
      subset of that size;
    - bernoulli: independent (uniform(n) < f_i), co-occurrence groups (a group on with f / r, each member with
      r), or the Gaussian copula (z = F u + √(1 − ‖F_i‖²) ε < Φ⁻¹(f_i)); then the hierarchy's gate, level by level.
    """

    def __init__(self, specs: list[GeneratorSpec], device, stream: int = STREAM_DATA, features=None):
        if len({(s.n, s.d) for s in specs}) != 1:
            raise ValueError("an ensemble needs equal (n, d)")
        if len({s.counter_structure() for s in specs}) != 1:
            raise ValueError(
                f"a counter ensemble needs one structure, got {sorted({s.counter_structure() for s in specs})}"
            )
        self.device = dev = torch.device(device)
        ms = [ModelSampler(s, dev, stream, None if features is None else features[e]) for e, s in enumerate(specs)]
        self.models, self.specs, sp = ms, specs, specs[0]
        self.V = torch.stack([m.V for m in ms])  # (E, n, d)
        E, self.n, self.d = self.V.shape
        self.keys = model_keys([s.seed for s in specs], stream)
        self.ukeys = use_keys(self.keys).to(dev)  # (N_USES, E)
        self.step = torch.zeros((), dtype=torch.int64, device=dev)
        col = lambda vals: torch.tensor(vals, dtype=torch.float32, device=dev).view(E, 1, 1)  # noqa: E731
        self.support, self.magnitude = sp.support, sp.magnitude
        # noise, unit rows, bias, magnitude laws: per model (0 / False where a model has none)
        self.noise, self.has_noise = col([m.noise_std for m in ms]), any(m.noise_std > 0 for m in ms)
        self.row_norm, self.any_row_norm = col([float(s.row_norm) for s in specs]), any(s.row_norm for s in specs)
        self.bias = None
        if any(m.bias is not None for m in ms):
            self.bias = torch.stack([torch.zeros(self.d, device=dev) if m.bias is None else m.bias for m in ms])
        self.mag_value, self.mag_sigma = col([s.mag_value for s in specs]), col([s.mag_sigma for s in specs])
        self.mag_low, self.mag_high = col([s.mag_low for s in specs]), col([s.mag_high for s in specs])
        self.spread, self.any_spread = col([s.mag_spread for s in specs]), any(s.mag_spread > 0 for s in specs)
        if self.magnitude == "per_feature":
            self.h = torch.stack([m.h for m in ms])  # (E, n)
        if self.support == "exact":
            self.sizes = torch.tensor([int(s.s) for s in specs], device=dev)  # (E,)
        elif self.support == "mixture":
            self.mix_s = torch.tensor([s.mixture_s for s in specs], device=dev)  # (E, L)
            w = torch.tensor([s.mixture_weights or [1.0] * len(s.mixture_s) for s in specs], dtype=torch.float64)
            self.mix_cum = (w.cumsum(1) / w.sum(1, keepdim=True)).float().to(dev)  # (E, L)
            self.sizes = self.mix_s.max(1).values  # (E,): each model draws its own largest sparsity
        else:
            self.freqs = torch.stack([m.freqs for m in ms]).unsqueeze(1)  # (E, 1, n)
            if sp.correlation_rank:
                self.loadings = torch.stack([m.loadings for m in ms])  # (E, n, r)
                self.z_cut = torch.stack([m.z_cut for m in ms]).unsqueeze(1)  # (E, 1, n)
                self.idio = torch.stack([m.idio for m in ms]).unsqueeze(1)  # (E, 1, n): √(1 − ‖F_i‖²)
            elif sp.cooccurrence is not None:
                self.group_of, self.n_groups = ms[0].group_of, ms[0].n_groups
                self.group_on, self.member = col([m.group_on for m in ms]), col([s.cooccurrence for s in specs])
            self.levels = ms[0].levels
            self.branching, self.exclusive = sp.hierarchy_branching, sp.hierarchy_exclusive
        if self.support != "bernoulli":
            self.S = int(self.sizes.max())
            self.equal_sizes = self.support == "exact" and bool((self.sizes == self.S).all())
        self.model_index = torch.arange(E, device=dev).view(E, 1, 1)

    def _magnitudes(self, draw: Draw, shape, idx=None, pos=None) -> torch.Tensor:
        """(E, *shape) magnitudes; ``idx`` (E, *shape) the features they belong to (per_feature, ≥ 0), ``pos`` the
        positions of their draws (default: row-major over ``shape``)."""
        E = self.V.shape[0]
        if self.magnitude == "constant":
            return self.mag_value.expand(E, *shape)
        if self.magnitude == "uniform":
            return self.mag_low + (self.mag_high - self.mag_low) * draw.uniform(USE_MAGNITUDE, shape, pos)
        if self.magnitude == "lognormal":
            return self.mag_value * torch.exp(self.mag_sigma * draw.normal(USE_MAGNITUDE, USE_SPREAD, shape, pos))
        h = self.h.unsqueeze(1).expand(E, *shape) if idx is None else torch.gather(self.h, 1, idx.view(E, -1))
        h = h.view(E, *shape)
        if self.any_spread:  # h_i · exp(σ N − σ²/2), as ModelSampler
            sig = self.spread
            h = h * torch.exp(sig * draw.normal(USE_MAGNITUDE, USE_SPREAD, shape, pos) - sig * sig / 2)
        return h

    def _index_rows(self, draw: Draw, B: int) -> torch.Tensor:
        """x (E, B, d) of exact or mixture supports."""
        E, n, d = self.V.shape
        S = self.S
        pos = None if self.equal_sizes else slot_positions(self.sizes, S, B)
        idx = draw.distinct(B, S, n, pos)  # (E, B, S), −1 in a model's unused leading slots
        if self.support == "mixture":  # a uniform order (unused slots last), then the row's level keeps a prefix
            if pos is None:
                pos = slot_positions(self.sizes, S, B)
            order = draw.uniform(USE_ORDER, pos=pos.clamp_min(0)).masked_fill(pos < 0, 2.0).argsort(-1)
            idx, pos = idx.gather(-1, order), pos.gather(-1, order)
            level = (draw.uniform(USE_LEVEL, (B, 1)) >= self.mix_cum.unsqueeze(1)).sum(-1)  # (E, B)
            count = self.mix_s.gather(1, level.clamp_max(self.mix_s.shape[1] - 1)).unsqueeze(-1)  # (E, B, 1)
            keep = torch.arange(S, device=self.device) < count
        else:
            keep = None if pos is None else idx >= 0
        if keep is not None:
            idx = idx.clamp_min(0)  # unused slots weigh 0 (adding an exact zero leaves each row's sum as it was)
        vals = self._magnitudes(draw, (B, S), idx, None if pos is None else pos.clamp_min(0))
        if keep is not None:
            vals = vals * keep
        # Σ_j vals[e, b, j] · V[e, idx[e, b, j]] by indexing, not embedding_bag: plain gathers and a sum, the
        # kernels a captured step can hold whatever the torch version
        rows = self.V[self.model_index, idx]  # (E, B, S, d)
        return (vals.unsqueeze(-1) * rows).sum(2)

    def _bernoulli_rows(self, draw: Draw, B: int) -> torch.Tensor:
        """x (E, B, d) of Bernoulli supports (independent, grouped or copula; then the hierarchy)."""
        n = self.n
        if hasattr(self, "loadings"):
            r = self.loadings.shape[2]
            u = draw.normal(USE_COPULA_A, USE_COPULA_B, (B, r))
            eps = draw.normal(USE_COPULA_C, USE_COPULA_D, (B, n))
            mask = torch.bmm(u, self.loadings.transpose(1, 2)) + self.idio * eps < self.z_cut
        elif hasattr(self, "group_of"):
            on = draw.uniform(USE_GROUP, (B, self.n_groups)) < self.group_on
            mask = (draw.uniform(USE_SUPPORT, (B, n)) < self.member) & on[..., self.group_of]
        else:
            mask = draw.uniform(USE_SUPPORT, (B, n)) < self.freqs
        for i, (children, parents) in enumerate(self.levels):
            fired = mask[..., children] & mask[..., parents]
            if self.exclusive and self.branching > 1:  # one uniformly chosen child among those drawn
                E = fired.shape[0]
                blocks = fired.view(E, B, -1, self.branching)
                score = draw.uniform(USE_HIERARCHY + i, blocks.shape[1:]).masked_fill(~blocks, -1.0)
                one = torch.zeros_like(blocks).scatter_(-1, score.argmax(-1, keepdim=True), True)
                fired = (one & blocks).view(E, B, -1)
            mask[..., children] = fired
        return torch.bmm(mask * self._magnitudes(draw, (B, n)), self.V)

    def sample(self, B: int) -> torch.Tensor:
        """x (E, B, d): the next step's rows of every model."""
        self.step.add_(1)
        draw = Draw(self.ukeys, self.step)
        x = self._bernoulli_rows(draw, B) if self.support == "bernoulli" else self._index_rows(draw, B)
        if self.bias is not None:
            x = x + self.bias.unsqueeze(1)
        if self.has_noise:
            x = x + self.noise * draw.normal(USE_NOISE_A, USE_NOISE_B, x.shape[1:])
        if self.any_row_norm:
            x = torch.where(self.row_norm > 0, unit_rows(x), x)
        return x
