"""A counter-based random stream: every draw a pure function of (model seed, step, position), computed with
integer tensor ops on the device. What a CUDA graph can hold (no generator state on the host, no rejection
loop, no host sync) and what ``[train] graph`` trains on.

Why not torch's generators: ``EnsembleSampler`` gives each model its own ``torch.Generator`` (so a model's
stream does not depend on its ensemble) and redraws repeated supports until none is left — E launches per
draw and a data-dependent loop, neither capturable. Here the E models' draws are one tensor op, and the same
(seed, step) gives the same integers on every device (the floats that follow may differ in the last bits).

The hash: murmur3's 32-bit finaliser, keyed by the seed's two halves, the stream and the step, applied to
the position (two rounds). Products are split into 16-bit halves so no int64 product overflows. Uniforms are
the top 24 bits (exact in float32); an index below m is ⌊h·m / 2³²⌋ (bias below m / 2³²).
"""

from __future__ import annotations

import math

import torch

from ..tensor import unit_rows
from .sampler import STREAM_DATA, ModelSampler, derive_seed, sparse_signal
from .spec import GeneratorSpec

MASK32 = 0xFFFFFFFF

#: what the stream draws, each from its own key (a draw's numbers never depend on which other draws exist)
USE_SUPPORT, USE_MAGNITUDE, USE_NOISE_A, USE_NOISE_B, USE_SPREAD = 1, 2, 3, 4, 5


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x · c) mod 2³² for int64 x in [0, 2³²): two products below 2⁴⁸."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + ((x * hi) & 0xFFFF) * 65536) & MASK32


def fmix32(x: torch.Tensor) -> torch.Tensor:
    """murmur3's finaliser on int64 values in [0, 2³²): a bijection of 32-bit words that mixes every bit."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x85EBCA6B)
    x = x ^ (x >> 13)
    x = _mul32(x, 0xC2B2AE35)
    return x ^ (x >> 16)


def _mix_int(x: int) -> int:
    """fmix32 on a Python int (the per-model keys are made on the host once)."""
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & MASK32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & MASK32
    return x ^ (x >> 16)


def model_keys(seeds: list[int], stream: int) -> torch.Tensor:
    """(E,) int64 keys in [0, 2³²), one per model: its root seed's stream seed folded to 32 bits."""
    out = []
    for s in seeds:
        k = derive_seed(s, stream)
        out.append(_mix_int(_mix_int(k & MASK32) ^ (k >> 32)))
    return torch.tensor(out, dtype=torch.int64)


def bits(keys: torch.Tensor, use: int, step: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """(E, *shape) int64 words in [0, 2³²): model e's draw ``use`` at ``step`` (a 0-d int64 tensor on the
    device, so a captured graph reads its current value), positions 0..prod(shape)−1 (below 2³²)."""
    E, count = keys.shape[0], math.prod(shape)
    assert count < 2**32, "one draw holds fewer than 2^32 words"
    pos = torch.arange(count, device=keys.device, dtype=torch.int64).view(1, -1)
    key = fmix32((fmix32(keys ^ ((use * 0x9E3779B9) & MASK32)) + step) & MASK32).view(E, 1)
    return fmix32((fmix32(pos ^ key) + (key ^ 0x632BE5AB)) & MASK32).view(E, *shape)


def uniform(keys, use, step, shape) -> torch.Tensor:
    """(E, *shape) float32 in [0, 1), multiples of 2⁻²⁴."""
    return (bits(keys, use, step, shape) >> 8).to(torch.float32) * (1.0 / 2**24)


def below(words: torch.Tensor, m) -> torch.Tensor:
    """Words in [0, 2³²) → integers in [0, m) (m an int or an int64 tensor broadcasting with words)."""
    return (words * m) >> 32


def normal(keys, use_a, use_b, step, shape) -> torch.Tensor:
    """(E, *shape) standard normals (Box–Muller on two independent uniforms)."""
    u1 = 1.0 - uniform(keys, use_a, step, shape)  # (0, 1]: the log is finite
    u2 = uniform(keys, use_b, step, shape)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2 * math.pi) * u2)


def distinct_indices(keys, step, B: int, S: int, n: int) -> torch.Tensor:
    """(E, B, S) int64: per row a uniformly random S-subset of [0, n) (Floyd's algorithm: S draws, none
    rejected, no loop on the data). The subset is uniform; the order within a row is not (a row's last
    entries lean to large indices), so a caller must not read a row's prefix as a smaller subset."""
    words = bits(keys, USE_SUPPORT, step, (B, S))
    idx = torch.empty_like(words)
    for k, j in enumerate(range(n - S, n)):
        r = below(words[..., k], j + 1)  # uniform in [0, j]
        if k:
            taken = (idx[..., :k] == r.unsqueeze(-1)).any(-1)
            r = torch.where(taken, torch.full_like(r, j), r)
        idx[..., k] = r
    return idx


class CounterSampler:
    """E specs of equal (n, d) drawn from the counter stream; ``sample(B)`` -> x (E, B, d), each call the
    next step of every model's stream (``step``: a device counter, advanced in place, so a captured call
    draws fresh rows on each replay). Same features V, magnitudes, noise level and bias as ``ModelSampler``
    (built from it)."""

    def __init__(self, specs: list[GeneratorSpec], device, stream: int = STREAM_DATA, features=None):
        why = {s.counter_refusal() for s in specs} - {None}
        if why:
            raise ValueError(f"the counter stream cannot draw these specs: {sorted(why)[0]}")
        if len({(s.n, s.d) for s in specs}) != 1:
            raise ValueError("an ensemble needs equal (n, d)")
        self.device = torch.device(device)
        self.models = [
            ModelSampler(s, self.device, stream, None if features is None else features[e]) for e, s in enumerate(specs)
        ]
        ms = self.models
        self.specs = specs
        self.V = torch.stack([m.V for m in ms])  # (E, n, d)
        E, self.n, self.d = self.V.shape
        self.keys = model_keys([s.seed for s in specs], stream).to(self.device)
        self.step = torch.zeros((), dtype=torch.int64, device=self.device)
        col = lambda vals: torch.tensor(vals, dtype=torch.float32, device=self.device).view(E, 1, 1)  # noqa: E731
        self.noise = col([m.noise_std for m in ms])
        self.has_noise = any(m.noise_std > 0 for m in ms)
        self.bias = None
        if any(m.bias is not None for m in ms):
            self.bias = torch.stack([torch.zeros(self.d, device=self.device) if m.bias is None else m.bias for m in ms])
        self.row_norm = col([float(s.row_norm) for s in specs])
        self.any_row_norm = any(s.row_norm for s in specs)
        kinds = {(s.support, s.magnitude, int(s.s) if s.support == "exact" else 0) for s in specs}
        if len(kinds) != 1:
            raise ValueError("a counter ensemble needs one support, magnitude law and s")
        self.support, self.magnitude, self.S = next(iter(kinds))
        self.mag_value = col([s.mag_value for s in specs])
        self.mag_low, self.mag_high = col([s.mag_low for s in specs]), col([s.mag_high for s in specs])
        self.mag_sigma = col([s.mag_sigma for s in specs])
        self.spread = col([s.mag_spread for s in specs])
        self.any_spread = any(s.mag_spread > 0 for s in specs)
        if self.magnitude == "per_feature":
            self.h = torch.stack([m.h for m in ms])  # (E, n)
        if self.support == "bernoulli":
            self.freqs = torch.stack([m.freqs for m in ms]).unsqueeze(1)  # (E, 1, n)

    def _magnitudes(self, shape, idx=None) -> torch.Tensor:
        """(E, *shape) magnitudes; ``idx`` (E, *shape) the features they belong to (per_feature)."""
        k, t, E = self.keys, self.step, self.V.shape[0]
        if self.magnitude == "constant":
            return self.mag_value.expand(E, *shape)
        if self.magnitude == "uniform":
            return self.mag_low + (self.mag_high - self.mag_low) * uniform(k, USE_MAGNITUDE, t, shape)
        if self.magnitude == "lognormal":
            return self.mag_value * torch.exp(self.mag_sigma * normal(k, USE_MAGNITUDE, USE_SPREAD, t, shape))
        h = self.h.unsqueeze(1).expand(E, *shape) if idx is None else torch.gather(self.h, 1, idx.view(E, -1))
        h = h.view(E, *shape)
        if self.any_spread:  # h_i · exp(σ N − σ²/2), as ModelSampler
            sig = self.spread
            h = h * torch.exp(sig * normal(k, USE_MAGNITUDE, USE_SPREAD, t, shape) - sig * sig / 2)
        return h

    def sample(self, B: int) -> torch.Tensor:
        """x (E, B, d): the next step's rows of every model."""
        self.step.add_(1)
        E, n, d = self.V.shape
        if self.support == "exact":
            S = self.S
            idx = distinct_indices(self.keys, self.step, B, S, n)  # (E, B, S)
            vals = self._magnitudes((B, S), idx)
            offset = (torch.arange(E, device=self.device) * n).view(E, 1, 1)
            x = sparse_signal((idx + offset).view(E * B, S), vals.reshape(E * B, S), self.V.view(E * n, d))
            x = x.view(E, B, d)
        else:
            fired = uniform(self.keys, USE_SUPPORT, self.step, (B, n)) < self.freqs
            x = torch.bmm(fired * self._magnitudes((B, n)), self.V)
        if self.bias is not None:
            x = x + self.bias.unsqueeze(1)
        if self.has_noise:
            x = x + self.noise * normal(self.keys, USE_NOISE_A, USE_NOISE_B, self.step, (B, d))
        if self.any_row_norm:
            x = torch.where(self.row_norm > 0, unit_rows(x), x)
        return x
