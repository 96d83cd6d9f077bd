"""Samplers for V (features) and H (coefficients); batches drawn on the device, on the fly.

Seeds: one root seed per spec; every random stream derives from it with a fixed offset
(``derive_seed``), so data, initialisation and batch order are reproducible and independent of how many
models share an ensemble: each model owns its own ``torch.Generator``.
"""
from __future__ import annotations

import math

import torch

from .spec import GeneratorSpec

# Fixed stream offsets (shared with sae/ and train.py).
STREAM_FEATURES = 1
STREAM_MAGNITUDES = 2
STREAM_DATA = 3
STREAM_INIT = 4
STREAM_EVAL = 5
STREAM_PILOT = 6


def derive_seed(seed: int, stream: int) -> int:
    return int(seed) * 1000 + int(stream)


def cpu_generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def make_features(spec: GeneratorSpec) -> torch.Tensor:
    """V: (n, d) float32 on CPU with unit rows; identical on every machine for a given spec."""
    g = cpu_generator(spec.seed, STREAM_FEATURES)
    n, d = spec.n, spec.d
    if spec.features == "orthogonal":
        q, _ = torch.linalg.qr(torch.randn(d, n, generator=g, dtype=torch.float64))
        return q.T.contiguous().float()
    v = _unit_rows(torch.randn(n, d, generator=g, dtype=torch.float64))
    if spec.features == "shared" or spec.shared > 0:
        u = _unit_rows(torch.randn(1, d, generator=g, dtype=torch.float64))
        v = _unit_rows(math.sqrt(1 - spec.shared) * v + math.sqrt(spec.shared) * u)
    if spec.features == "low_coherence":
        v = _push_coherence(v, spec.coherence)
    return v.float()


def _push_coherence(v: torch.Tensor, target: float, iters: int = 3000) -> torch.Tensor:
    """Projected gradient descent on sum_{i != j} relu(|cos_ij| - target)^2 over the sphere."""
    eye = torch.eye(v.shape[0], dtype=v.dtype)
    goal = 0.97 * target  # aim a little below so the renormalisation does not overshoot
    for _ in range(iters):
        off = v @ v.T - eye
        if off.abs().max() <= target:
            break
        excess = torch.relu(off.abs() - goal) * off.sign()
        v = _unit_rows(v - 0.5 * excess @ v / max(1.0, excess.ne(0).sum(1).max().item() ** 0.5))
    return v


def feature_magnitudes(spec: GeneratorSpec) -> torch.Tensor | None:
    """Per-feature magnitudes h_i (n,) for magnitude=per_feature, else None."""
    if spec.magnitude != "per_feature":
        return None
    if spec.magnitudes is not None:
        return torch.tensor(spec.magnitudes, dtype=torch.float32)
    g = cpu_generator(spec.seed, STREAM_MAGNITUDES)
    lo, hi = math.log(spec.mag_low), math.log(spec.mag_high)
    return torch.exp(lo + (hi - lo) * torch.rand(spec.n, generator=g)).float()


class ModelSampler:
    """Draws batches of one spec on ``device`` from its own generator.  h: (B, n), x: (B, d)."""

    def __init__(self, spec: GeneratorSpec, device: torch.device | str = "cpu", stream: int = STREAM_DATA,
                 features: torch.Tensor | None = None):
        self.spec = spec
        self.device = torch.device(device)
        self.V = (make_features(spec) if features is None else features).to(self.device)
        self.freqs = torch.tensor(spec.feature_frequencies(), dtype=torch.float32, device=self.device)
        h = feature_magnitudes(spec)
        self.h = None if h is None else h.to(self.device)
        if spec.support == "mixture":
            w = torch.tensor(spec.mixture_weights or [1.0] * len(spec.mixture_s), dtype=torch.float32)
            self.mix_w = (w / w.sum()).to(self.device)
            self.mix_s = torch.tensor(spec.mixture_s, device=self.device)
        if spec.cooccurrence is not None:
            groups = -(-spec.n // spec.group_size)
            self.group_of = torch.arange(spec.n, device=self.device) // spec.group_size
            self.group_on = spec.mean_frequency() / spec.cooccurrence  # pi = f / r
            self.n_groups = groups
        self.gen = torch.Generator(device=self.device).manual_seed(derive_seed(spec.seed, stream))
        self.noise_std = spec.noise_std
        if spec.snr is not None:
            pilot = ModelSampler(spec.replace(snr=None, noise_std=0.0), "cpu", STREAM_PILOT, features=self.V.cpu())
            power = pilot.sample(8192)[1].pow(2).sum(1).mean().item()
            self.noise_std = math.sqrt(power / (spec.snr * spec.d))

    def _support(self, B: int) -> torch.Tensor:
        spec, dev, g = self.spec, self.device, self.gen
        n = spec.n
        if spec.support == "bernoulli":
            if spec.cooccurrence is None:
                return torch.rand(B, n, generator=g, device=dev) < self.freqs
            on = torch.rand(B, self.n_groups, generator=g, device=dev) < self.group_on
            member = torch.rand(B, n, generator=g, device=dev) < spec.cooccurrence
            return member & on[:, self.group_of]
        # exact / mixture: a uniformly random subset of size s_row is the top-s_row of i.i.d. uniforms
        if spec.support == "exact":
            k = int(spec.s)
            idx = torch.rand(B, n, generator=g, device=dev).topk(k, dim=1).indices
            return torch.zeros(B, n, dtype=torch.bool, device=dev).scatter_(1, idx, True)
        level = torch.multinomial(self.mix_w, B, replacement=True, generator=g)
        s_row = self.mix_s[level]
        kmax = int(self.mix_s.max())
        idx = torch.rand(B, n, generator=g, device=dev).topk(kmax, dim=1).indices
        keep = torch.arange(kmax, device=dev) < s_row[:, None]
        return torch.zeros(B, n, dtype=torch.bool, device=dev).scatter_(1, idx, keep)

    def _magnitudes(self, B: int) -> torch.Tensor | float:
        spec, dev, g = self.spec, self.device, self.gen
        if spec.magnitude == "constant":
            return spec.mag_value
        if spec.magnitude == "uniform":
            return spec.mag_low + (spec.mag_high - spec.mag_low) * torch.rand(B, spec.n, generator=g, device=dev)
        if spec.magnitude == "lognormal":
            return spec.mag_value * torch.exp(spec.mag_sigma * torch.randn(B, spec.n, generator=g, device=dev))
        return self.h

    def sample(self, B: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x, signal, h): x = h V + noise (B, d), signal = h V (B, d), h (B, n) >= 0."""
        h = self._support(B).float() * self._magnitudes(B)
        signal = h @ self.V
        x = signal
        if self.noise_std > 0:
            x = signal + self.noise_std * torch.randn(B, self.spec.d, generator=self.gen, device=self.device)
        return x, signal, h


class EnsembleSampler:
    """E independent samplers of specs with equal (n, d); ``sample(B)`` -> x (E, B, d).

    Each model draws from its own generator, so model e's stream is the same whatever E is.
    """

    def __init__(self, specs: list[GeneratorSpec], device: torch.device | str = "cpu", stream: int = STREAM_DATA):
        dims = {(s.n, s.d) for s in specs}
        if len(dims) != 1:
            raise ValueError(f"an ensemble needs equal (n, d); got {sorted(dims)}")
        self.models = [ModelSampler(s, device, stream) for s in specs]
        self.V = torch.stack([m.V for m in self.models])  # (E, n, d)

    def sample(self, B: int) -> torch.Tensor:
        return torch.stack([m.sample(B)[0] for m in self.models])
