"""Samplers for V (features) and H (coefficients); batches drawn on the device, on the fly.

Seeds: one root seed per spec; every random stream derives from it with a fixed offset
(``derive_seed``), so data, initialisation and batch order are reproducible and independent of how many
models share an ensemble: each model owns its own ``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..tensor import unit_rows
from .spec import GeneratorSpec

# Fixed stream offsets (shared with sae/ and train.py).
STREAM_FEATURES = 1
STREAM_MAGNITUDES = 2
STREAM_DATA = 3
STREAM_INIT = 4
STREAM_EVAL = 5
STREAM_PILOT = 6
STREAM_WORLD = 7  # the world's fixed structure: copula loadings, dictionary bias


def derive_seed(seed: int, stream: int) -> int:
    """The torch seed of one random stream of a root seed; reduced mod 2^63 so every root seed in [0, 2^63)
    gives a seed torch accepts (unchanged below 9.2e15, where the product fits)."""
    return (int(seed) * 1000 + int(stream)) % 2**63


def cpu_generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def make_features(spec: GeneratorSpec) -> torch.Tensor:
    """V: (n, d) float32 on CPU with unit rows; identical on every machine for a given spec."""
    g = cpu_generator(spec.seed, STREAM_FEATURES)
    n, d = spec.n, spec.d
    if spec.features == "orthogonal":
        q, _ = torch.linalg.qr(torch.randn(d, n, generator=g, dtype=torch.float64))
        return q.T.contiguous().float()
    if spec.features == "rademacher":
        v = (torch.randint(0, 2, (n, d), generator=g) * 2 - 1).double() / math.sqrt(d)
    elif spec.features == "sparse":
        q = spec.feature_nnz or math.ceil(d / 4)
        idx = torch.rand(n, d, generator=g, dtype=torch.float64).argsort(dim=1)[:, :q]  # q distinct coordinates
        v = unit_rows(
            torch.zeros(n, d, dtype=torch.float64).scatter_(1, idx, torch.randn(n, q, generator=g, dtype=torch.float64))
        )
    else:
        v = unit_rows(torch.randn(n, d, generator=g, dtype=torch.float64))
    if spec.features == "shared" or spec.shared > 0:
        u = unit_rows(torch.randn(1, d, generator=g, dtype=torch.float64))
        v = unit_rows(math.sqrt(1 - spec.shared) * v + math.sqrt(spec.shared) * u)
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
        v = unit_rows(v - 0.5 * excess @ v / max(1.0, excess.ne(0).sum(1).max().item() ** 0.5))
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


def hierarchy_levels(spec: GeneratorSpec) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The forest of ``spec``'s hierarchy as, per level below the roots, (children, parents) index tensors:
    R = n // tree_size trees, roots first (features 0..R−1), then level 1 (the b children of each root, a
    contiguous block each), level 2, …; the features left over after R whole trees are roots without
    children. So with Zipf frequencies a parent is more frequent than its children."""
    if not spec.hierarchy_depth:
        return []
    b, R = spec.hierarchy_branching, spec.n // spec.tree_size()
    levels, start, count = [], 0, R
    for _ in range(spec.hierarchy_depth):
        children = torch.arange(start + count, start + count + count * b)
        parents = torch.arange(start, start + count).repeat_interleave(b)
        levels.append((children, parents))
        start, count = start + count, count * b
    return levels


def world_bias(spec: GeneratorSpec) -> torch.Tensor | None:
    """The dictionary bias (d,): a fixed direction from the seed, of norm ``dictionary_bias``; None when 0."""
    if spec.dictionary_bias <= 0:
        return None
    g = cpu_generator(spec.seed, STREAM_WORLD)
    return (spec.dictionary_bias * unit_rows(torch.randn(1, spec.d, generator=g, dtype=torch.float64))[0]).float()


def copula_loadings(spec: GeneratorSpec) -> torch.Tensor | None:
    """(n, r) loadings F of the low-rank Gaussian copula over the firing variables, from the seed, as SAELens's
    synthetic generator (6.54) builds its low-rank correlation: entries N(0, correlation_scale²), and each row whose
    shared variance ‖F_i‖² exceeds 0.99 scaled back to 0.99 (its own row only). The latent
    z_i = F_i·u + √(1 − ‖F_i‖²) ε_i is N(0, 1) per feature (so each f_i is kept), and corr(z_i, z_j) = F_i·F_j."""
    if not spec.correlation_rank:
        return None
    g = cpu_generator(spec.seed, STREAM_WORLD + 1)
    F = torch.randn(spec.n, spec.correlation_rank, generator=g, dtype=torch.float64) * spec.correlation_scale
    sq = F.pow(2).sum(1, keepdim=True)
    F = torch.where(sq > 0.99, F * (0.99 / sq.clamp_min(1e-300)).sqrt(), F)
    return F.float()


def reject_repeats(idx: torch.Tensor, n: int, gens: list) -> torch.Tensor:
    """Redraw, in place, every row of idx (E, B, S) that repeats an index, from its model's generator,
    until none does: rows of S i.i.d. uniform indices conditioned on being distinct = uniform S-subsets.
    Each generator sees the same calls whatever E is (model e alone draws exactly this); after the first
    round only redrawn rows can repeat, so only they are checked again."""
    E, B, S = idx.shape
    flat = idx.view(E * B, S)
    rows = None  # all of them, in the first round
    while True:
        repeats = _has_repeat(flat if rows is None else flat[rows])  # (R,)
        rows = repeats.nonzero().flatten() if rows is None else rows[repeats]
        if rows.numel() == 0:
            return idx
        counts = torch.bincount(rows // B, minlength=E).tolist()  # rows ascend, so grouped by model
        flat[rows] = torch.cat(
            [torch.randint(n, (k, S), generator=gens[e], device=idx.device) for e, k in enumerate(counts) if k]
        )


def exact_supports(gens: list, B: int, S: int, n: int, device) -> torch.Tensor:
    """(E, B, S): per model (one generator each) B rows of S distinct feature indices, uniform over
    S-subsets (S i.i.d. draws, rows with a repeat redrawn: use while S² <= n). The one draw of exact
    supports: a model alone and the same model inside a stacked ensemble get the same indices."""
    idx = torch.stack([torch.randint(n, (B, S), generator=g, device=device) for g in gens])
    return reject_repeats(idx, n, gens)


def _has_repeat(rows: torch.Tensor) -> torch.Tensor:
    """(R, S) ints -> (R,) bool: does the row hold an index twice.  Measured on CPU (S = 4): for many rows,
    column-pair comparisons (57 µs for 4096 rows vs 117 all-pairs, 191 sorted); for the few redrawn rows,
    one all-pairs comparison (13 µs vs 38 by columns); a sort for large S."""
    R, S = rows.shape
    if S > 6:
        srt = rows.sort(dim=1).values
        return (srt[:, 1:] == srt[:, :-1]).any(dim=1)
    if R <= 512:
        return (rows.unsqueeze(1) == rows.unsqueeze(2)).sum((1, 2)) > S
    rep = torch.zeros(R, dtype=torch.bool, device=rows.device)
    for i in range(S):
        for j in range(i + 1, S):
            rep |= rows[:, i] == rows[:, j]
    return rep


def sparse_signal(idx: torch.Tensor, vals: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Σ_j vals[b, j] · V[idx[b, j]]: idx, vals (B, S), V (n, d) -> (B, d); one weighted bag per row, so a
    row's arithmetic does not depend on how many rows (or models, stacked into V) share the call."""
    return F.embedding_bag(idx, V, per_sample_weights=vals.contiguous(), mode="sum")


class ModelSampler:
    """Draws batches of one spec on ``device`` from its own generator.  h: (B, n), x: (B, d)."""

    def __init__(
        self,
        spec: GeneratorSpec,
        device: torch.device | str = "cpu",
        stream: int = STREAM_DATA,
        features: torch.Tensor | None = None,
    ):
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
        self.levels = [(c.to(self.device), p.to(self.device)) for c, p in hierarchy_levels(spec)]
        bias = world_bias(spec)
        self.bias = None if bias is None else bias.to(self.device)
        load = copula_loadings(spec)
        if load is not None:  # z = F u + √(1 − ‖F_i‖²) ε is N(0, 1) per feature: fire when z < Φ⁻¹(f_i)
            self.loadings = load.to(self.device)
            self.idio = (1 - load.double().pow(2).sum(1)).clamp_min(0).sqrt().float().to(self.device)
            self.z_cut = torch.special.ndtri(self.freqs.double().clamp(1e-12, 1 - 1e-12)).float()
        self.gen = torch.Generator(device=self.device).manual_seed(derive_seed(spec.seed, stream))
        self.noise_std = spec.noise_std
        if spec.snr is not None:
            pilot = ModelSampler(spec.replace(snr=None, noise_std=0.0), "cpu", STREAM_PILOT, features=self.V.cpu())
            power = pilot.sample_x(8192).pow(2).sum(1).mean().item()
            self.noise_std = math.sqrt(power / (spec.snr * spec.d))

    # ---- exact / mixture supports: index sets, O(B·s) work instead of O(B·n)
    def _index_support(self, B: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(idx (B, S) feature indices, keep (B, S) bool) with S = the largest row sparsity.

        Row sets are drawn as S i.i.d. uniform indices and rows with a repeat are redrawn whole
        (rejection, used while S² <= n so a row is accepted with probability >= ~0.6), which is exactly
        uniform over S-subsets; a mixture row keeps its first s_row (the draw order is random, so the
        kept prefix is a uniform s_row-subset too)."""
        spec, dev, g = self.spec, self.device, self.gen
        n = spec.n
        if spec.support == "exact":
            S = int(spec.s)
            keep = None
        else:
            S = int(self.mix_s.max())
            level = torch.multinomial(self.mix_w, B, replacement=True, generator=g)
            keep = torch.arange(S, device=dev) < self.mix_s[level][:, None]
        if S * S > n:  # a row is repeat-free with probability ~exp(-S²/2n): use a random subset instead
            idx = torch.rand(B, n, generator=g, device=dev).topk(S, dim=1).indices
        else:
            idx = exact_supports([g], B, S, n, dev)[0]
        if keep is None:
            keep = torch.ones(B, S, dtype=torch.bool, device=dev)
        return idx, keep

    def _bernoulli_support(self, B: int) -> torch.Tensor:
        spec, dev, g = self.spec, self.device, self.gen
        if spec.correlation_rank:
            u = torch.randn(B, spec.correlation_rank, generator=g, device=dev)
            z = u @ self.loadings.T + self.idio * torch.randn(B, spec.n, generator=g, device=dev)
            mask = z < self.z_cut
        elif spec.cooccurrence is None:
            mask = torch.rand(B, spec.n, generator=g, device=dev) < self.freqs
        else:
            on = torch.rand(B, self.n_groups, generator=g, device=dev) < self.group_on
            member = torch.rand(B, spec.n, generator=g, device=dev) < spec.cooccurrence
            mask = member & on[:, self.group_of]
        return self._gate(mask) if self.levels else mask

    def _gate(self, mask: torch.Tensor) -> torch.Tensor:
        """The hierarchy, level by level: a child fires only with its parent; with ``hierarchy_exclusive`` at
        most one child of a parent fires (a uniformly chosen one among those drawn)."""
        b, g = self.spec.hierarchy_branching, self.gen
        for children, parents in self.levels:
            fired = mask[:, children] & mask[:, parents]
            if self.spec.hierarchy_exclusive and b > 1:
                B = mask.shape[0]
                blocks = fired.view(B, -1, b)
                score = torch.rand(blocks.shape, generator=g, device=mask.device).masked_fill(~blocks, -1.0)
                one = torch.zeros_like(blocks).scatter_(-1, score.argmax(-1, keepdim=True), True)
                fired = (one & blocks).view(B, -1)
            mask[:, children] = fired
        return mask

    def _magnitudes(self, shape, idx=None):
        """Magnitudes for entries of ``shape``; ``idx`` gives feature indices for per_feature."""
        spec, dev, g = self.spec, self.device, self.gen
        if spec.magnitude == "constant":
            return torch.full(shape, spec.mag_value, device=dev)
        if spec.magnitude == "uniform":
            return spec.mag_low + (spec.mag_high - spec.mag_low) * torch.rand(shape, generator=g, device=dev)
        if spec.magnitude == "lognormal":
            return spec.mag_value * torch.exp(spec.mag_sigma * torch.randn(shape, generator=g, device=dev))
        h = self.h.expand(shape) if idx is None else self.h[idx]
        if spec.mag_spread > 0:  # h_i · exp(σ N − σ²/2): mean h_i, relative spread ≈ σ, never 0 or negative
            sig = spec.mag_spread
            h = h * torch.exp(sig * torch.randn(shape, generator=g, device=dev) - sig * sig / 2)
        return h

    def _draw(self, B: int):
        """One batch as either ('sparse', idx, vals) or ('dense', h)."""
        if self.spec.support == "bernoulli":
            mask = self._bernoulli_support(B)
            return "dense", mask * self._magnitudes((B, self.spec.n))
        idx, keep = self._index_support(B)
        return "sparse", idx, self._magnitudes(idx.shape, idx) * keep

    def _signal(self, draw) -> torch.Tensor:
        if draw[0] == "dense":
            out = draw[1] @ self.V
        else:
            _, idx, vals = draw
            out = sparse_signal(idx, vals, self.V)
        return out if self.bias is None else out + self.bias

    def _add_noise(self, signal):
        x = signal
        if self.noise_std > 0:
            x = signal + self.noise_std * torch.randn(signal.shape, generator=self.gen, device=self.device)
        if self.spec.row_norm:
            x = unit_rows(x)
        return x

    def sample_x(self, B: int) -> torch.Tensor:
        """x (B, d) only: the training path (never builds the dense (B, n) H for exact/mixture)."""
        return self._add_noise(self._signal(self._draw(B)))

    def sample_with_support(self, B: int, values: bool = False):
        """(x (B, d), rows (K,), cols (K,)): x exactly as ``sample_x`` gives it (same stream) and the K
        non-zero coefficients of H as coordinates, without forming the dense (B, n) H; ``values``: their
        magnitudes (K,) as a fourth element."""
        draw = self._draw(B)
        x = self._add_noise(self._signal(draw))
        if draw[0] == "dense":
            rows, cols = draw[1].nonzero(as_tuple=True)
            vals = draw[1][rows, cols]
        else:
            _, idx, v = draw
            nz = v > 0
            rows = torch.arange(B, device=idx.device).view(B, 1).expand_as(idx)[nz]
            cols, vals = idx[nz], v[nz]
        return (x, rows, cols, vals) if values else (x, rows, cols)

    def sample(self, B: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x, signal, h): x = h V + noise (B, d), signal = h V (B, d), h (B, n) >= 0.
        Same random stream as ``sample_x``: x is identical to what ``sample_x`` gives."""
        draw = self._draw(B)
        signal = self._signal(draw)
        if draw[0] == "dense":
            h = draw[1]
        else:
            _, idx, vals = draw
            h = torch.zeros(B, self.spec.n, device=self.device).scatter_(1, idx, vals)
        return self._add_noise(signal), signal, h


class EnsembleSampler:
    """E independent samplers of specs with equal (n, d); ``sample(B)`` -> x (E, B, d).

    Each model draws from its own generator, so model e's stream is the same whatever E is.
    """

    def __init__(
        self,
        specs: list[GeneratorSpec],
        device: torch.device | str = "cpu",
        stream: int = STREAM_DATA,
        features: torch.Tensor | None = None,
    ):
        """features: (E, n, d) the specs' V when already built (V is deterministic in the spec)."""
        dims = {(s.n, s.d) for s in specs}
        if len(dims) != 1:
            raise ValueError(f"an ensemble needs equal (n, d); got {sorted(dims)}")
        self.models = [
            ModelSampler(s, device, stream, None if features is None else features[e]) for e, s in enumerate(specs)
        ]
        self.V = torch.stack([m.V for m in self.models])  # (E, n, d)

        sp = [m.spec for m in self.models]
        # the common case, drawn for all models at once: exact supports of one size S with S² <= n
        self._stacked = (
            all(s.support == "exact" and s.dictionary_bias == 0 for s in sp)
            and len({s.s for s in sp}) == 1
            and sp[0].s ** 2 <= sp[0].n
        )

    def sample(self, B: int) -> torch.Tensor:
        if self._stacked:
            return self._sample_exact(B)
        out = torch.empty(len(self.models), B, self.V.shape[2], device=self.V.device)
        for e, m in enumerate(self.models):
            out[e] = m.sample_x(B)
        return out

    def _sample_exact(self, B: int) -> torch.Tensor:
        """What the loop gives, bitwise (each generator sees the same calls), with the per-row work
        (repeat checks, magnitudes, the weighted sum of feature rows) done once for all E models."""
        ms, (E, n, d) = self.models, self.V.shape
        S, dev = int(ms[0].spec.s), self.V.device
        idx = exact_supports([m.gen for m in ms], B, S, n, dev)
        if all(m.spec.magnitude == "constant" for m in ms):
            vals = torch.tensor([m.spec.mag_value for m in ms], device=dev).view(E, 1, 1).expand(E, B, S)
        else:
            vals = torch.stack([m._magnitudes((B, S), idx[e]) for e, m in enumerate(ms)])
        offset = (torch.arange(E, device=dev) * n).view(E, 1, 1)
        x = sparse_signal((idx + offset).view(E * B, S), vals.reshape(E * B, S), self.V.view(E * n, d)).view(E, B, d)
        for e, m in enumerate(ms):
            if m.noise_std > 0 or m.spec.row_norm:
                x[e] = m._add_noise(x[e])
        return x
