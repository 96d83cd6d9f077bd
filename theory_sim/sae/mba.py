"""Modified BA — the algorithm the recovery theorem (Thm 6.1) analyses; docs/science.md §2.

Tied unit-norm weights, one target frequency p, biases held fixed, output scale a → 0, a smooth ReLU,
spherical gradient descent. In the a → 0 limit the loss gradient of neuron m is
    −∂L/∂w_m ∝ E[(φ(y_m) + φ'(y_m) u_m) x],   u_m = w_mᵀx,  y_m = u_m + b_m,
a Hebbian step weighted by how strongly the neuron fires (it is zero where y_m ≤ 0): w moves toward the
mean of the inputs on which it fires. ``power_step`` (default) takes the η → ∞ limit, w ← normalise(g);
otherwise w ← normalise(w + step_size · (g − (gᵀw) w)) (a Riemannian step).

Decisions: φ is the C¹ "smooth ReLU" 0 (y ≤ 0), y²/(2δ) (0 < y < δ), y − δ/2 (y ≥ δ), δ = ``smooth``;
the fixed bias b_m = −(1−p)-quantile of u_m over the first rows (at least ``INIT_ROWS``, and a whole population
batch with ``fire_rows``), so each neuron starts firing at frequency p; no pre-bias unless ``centre`` (the
theorem's data are uncentred, X = HV; ``centre`` subtracts E[x], estimated on the same first rows — the paper's
b_pre). No Adam: each step uses one batch, or with ``fire_rows`` a population batch of ⌈fire_rows / p⌉ rows
streamed in chunks of the [train] batch (the gradient summed over the chunks, so memory stays that of a chunk)
— a proxy for the population gradient the theorem uses, each neuron seeing about ``fire_rows`` firing rows.

The start: ``random`` (unit Gaussian directions: the theorem's width lottery), or ``planted`` — each true
feature v_i gets ``per_feature`` neurons w = c₀ v_i + √(1 − c₀²) r, r a random unit vector orthogonal to v_i,
and the remaining width − per_feature·n neurons are random. c₀ = ``planted_cos``, or where that is 0 the
alignment a random start of the theorem's width M* = n·p^(−s/(1−ε)²) gives every feature with probability 0.9
(theory.planted_cosine): what the width buys, without paying for it. Neurons are independent at a → 0, so the
background neurons change nothing for the planted ones.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..model.sampler import STREAM_INIT, cpu_generator
from .base import Method, register, unit_rows
from .configs import MBAConfig

#: δ of the planted start: c₀ is what a random start reaches for every feature with probability 1 − δ
PLANTED_DELTA = 0.1


def smooth_relu(y: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """φ(y) and φ'(y) of the C¹ smooth ReLU with knee width delta."""
    yc = y.clamp(0, delta)
    phi = torch.where(y >= delta, y - delta / 2, yc * yc / (2 * delta))
    dphi = yc / delta
    return phi, dphi


def planted_directions(V: torch.Tensor, c0: float, per_feature: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """(width, d) unit rows: rows i·per_feature … (i+1)·per_feature − 1 at cosine exactly c0 with feature i (V (n, d)
    unit rows), their remaining direction random and orthogonal to v_i; the last width − n·per_feature rows random."""
    n, d = V.shape
    k = n * per_feature
    r = torch.randn(width, d, generator=gen)
    v = V.repeat_interleave(per_feature, 0)  # (k, d)
    perp = r[:k] - (r[:k] * v).sum(-1, keepdim=True) * v
    planted = c0 * v + math.sqrt(max(0.0, 1 - c0 * c0)) * unit_rows(perp)
    return unit_rows(torch.cat([planted, r[k:]]))


@register
class MBA(Method):
    name = "mba"
    Config = MBAConfig
    INIT_ROWS = 4096  # the bias is set from the first rows' pre-activation quantiles: at least this many rows
    RECORD_EVERY = 1  # the theorem is about the first steps: record FRR@0.9 after every one
    uses_adam = False

    #: neurons per pass of the step: the neurons are independent (a → 0), so a wide model is stepped in
    #: blocks whose (B, block) intermediates the allocator reuses (measured: width 65,536, batch 4096, one
    #: step 15 s unblocked, most of it page faults of fresh 1 GiB tensors)
    block = 4096

    def init(self, x0):
        cfg = self.cfgs[0]
        self.c0 = [0.0] * self.E
        self.theorem_width = [math.nan] * self.E
        if cfg.start == "planted":
            self.W = self._planted()
        else:
            self.W = self.random_directions(self.M)  # (E, M, d)
        # the fixed biases (and E[x] with ``centre``) from the first rows: x0, then with a population batch further
        # chunks until one population batch has been read, each chunk seen once and dropped (memory of a chunk)
        B0 = x0.shape[1]
        streamed = bool(self.cfgs[0].fire_rows) and self.draw is not None
        final = B0 * math.ceil(max(self.population_rows(), self.INIT_ROWS) / B0) if streamed else B0
        tops = [[None] * len(range(0, self.M, self.block)) for _ in range(self.E)]
        total = torch.zeros(self.E, 1, self.d, device=self.device)
        have, x = 0, x0
        while True:
            have += x.shape[1]
            total += x.sum(1, keepdim=True)
            for e in range(self.E):
                for j, a in enumerate(range(0, self.M, self.block)):
                    u = x[e] @ self.W[e, a : a + self.block].T  # (B_c, block)
                    t = u if tops[e][j] is None else torch.cat([tops[e][j], u])
                    cap = self._k_top(self.cfgs[e].p, final)
                    tops[e][j] = t.topk(cap, dim=0).values if t.shape[0] > cap else t
            if have >= final:
                break
            x = self.draw(B0)
        self.mu = total / have if self.cfgs[0].centre else torch.zeros(self.E, 1, self.d, device=self.device)
        q = torch.empty(self.E, self.M, device=self.device)
        for e in range(self.E):
            k = self._k_top(self.cfgs[e].p, have)
            for j, a in enumerate(range(0, self.M, self.block)):
                q[e, a : a + self.block] = tops[e][j].topk(k, dim=0).values[-1]
        # the order statistic of u − μ·w is that of u shifted by μ·w (a per-neuron constant)
        self.b = -(q - (self.mu @ self.W.transpose(1, 2)).squeeze(1)).view(self.E, 1, self.M)
        self.eta = self.per_model("step_size")
        self.fired_rows = torch.zeros(self.E, self.M, device=self.device)

    def _planted(self) -> torch.Tensor:
        cfg = self.cfgs[0]
        if self.truth is None:
            raise ConfigError("start", "planted needs the true features (generator data, or --ground-truth)")
        n = self.truth.shape[1]
        if n * cfg.per_feature > self.M:
            raise ConfigError(
                "width",
                f"must be >= per_feature · n = {cfg.per_feature} · {n} = {cfg.per_feature * n} for a planted start, "
                f"got {self.M}",
            )
        from .. import theory

        out = []
        for e, c in enumerate(self.cfgs):
            c0 = c.planted_cos
            if c0 == 0:
                if self.specs is None:
                    raise ConfigError("planted_cos", "give it (> 0) with a user's data: c₀ is derived from the spec")
                spec = self.specs[e]
                s = spec.mean_frequency() * spec.n  # the expected row sparsity (exactly s for exact supports)
                self.theorem_width[e] = theory.width_bound(n, c.p, s, c.planted_eps)
                c0 = theory.planted_cosine(n, self.d, self.theorem_width[e], PLANTED_DELTA)
            self.c0[e] = c0
            V = self.truth[e].detach().float().cpu()
            V = V / V.norm(dim=1, keepdim=True)
            out.append(planted_directions(V, c0, c.per_feature, self.M, cpu_generator(self.seeds[e], STREAM_INIT)))
        return torch.stack(out).to(self.device)

    def population_rows(self) -> int:
        """Rows one step reads: ⌈fire_rows / p⌉ with a population batch (the smallest p of the ensemble), else 0
        (the training loop's batch)."""
        fr = self.cfgs[0].fire_rows
        return math.ceil(fr / min(c.p for c in self.cfgs)) if fr else 0

    @staticmethod
    def _k_top(p: float, rows: int) -> int:
        """The (1−p)-quantile of ``rows`` values as an order statistic counted from the top: torch.kthvalue's
        k = round((1 − p)(rows − 1)) + 1 from the bottom is the (rows − k + 1)-th largest."""
        k_small = min(rows, max(1, round((1 - p) * (rows - 1)) + 1))
        return rows - k_small + 1

    def named_parameters(self):
        return {}  # no optimiser: the power step moves the directions

    def forward(self, x):
        u = torch.bmm(x - self.mu, self.W.transpose(1, 2))
        y = u + self.b
        phi, _ = smooth_relu(y, self.cfgs[0].smooth)
        # a → 0: the reconstruction is the (vanishing) a-weighted sum; report it at a = 1 for diagnostics
        return torch.bmm(phi, self.W) + self.mu, phi, y

    #: rows of one tile of the step (tile_rows × block floats per buffer): the tiles' three buffers are reused
    #: across tiles, chunks and steps instead of faulting in fresh (B, block) tensors
    tile_rows = 2048

    def _accumulate(self, x, g, fired) -> None:
        """Adds chunk x's (E, B, d) Hebbian sums into g (E, M, d) and its firing-row counts into ``fired`` (E, M),
        tile by tile (``tile_rows`` rows × ``block`` neurons of one model) in three reused buffers, with
        φ(y) + φ'(y)·u written as yc·(yc/2 + u)/δ + relu(y − δ), yc = clamp(y, 0, δ) (the same function in one
        pass fewer); ``_accumulate_reference`` is the formula as written, which tests hold it to."""
        x = x - self.mu if self.cfgs[0].centre else x
        delta = self.cfgs[0].smooth
        E, B, _ = x.shape
        R, K = min(self.tile_rows, B), min(self.block, self.M)
        ws = self.workspace({"u": (R * K,), "t": (R * K,), "a": (R * K,), "g": (K * self.d,)})
        for e in range(E):
            for r0 in range(0, B, R):
                xr = x[e, r0 : r0 + R]
                nr = xr.shape[0]
                for a in range(0, self.M, K):
                    w = self.W[e, a : a + K]  # (k, d)
                    k = w.shape[0]
                    u, t, acc = (buf[: nr * k].view(nr, k) for buf in (ws.u, ws.t, ws.a))
                    torch.mm(xr, w.T, out=u)
                    torch.add(u, self.b[e, 0, a : a + k], out=t)  # y
                    fired[e, a : a + k] += (t > 0).sum(0)
                    torch.sub(t, delta, out=acc).clamp_(min=0)  # relu(y − δ)
                    t.clamp_(0, delta)  # yc
                    u.add_(t, alpha=0.5).mul_(t).div_(delta)  # yc·(u + yc/2)/δ
                    acc.add_(u)
                    gk = ws.g[: k * self.d].view(k, self.d)
                    torch.mm(acc.T, xr, out=gk)  # (an addmm_ into g would do the same; FlopCounterMode misses it)
                    g[e, a : a + k] += gk

    def _accumulate_reference(self, x, g, fired) -> None:
        """The step's sums as the formula reads: φ, φ' of the smooth ReLU, (φ + φ'·u)ᵀ x per block of neurons."""
        x = x - self.mu
        for a in range(0, self.M, self.block):
            sl = slice(a, a + self.block)
            u = torch.bmm(x, self.W[:, sl].transpose(1, 2))  # (E, B, block)
            y = u + self.b[:, :, sl]
            phi, dphi = smooth_relu(y, self.cfgs[0].smooth)
            g[:, sl] += torch.bmm((phi + dphi * u).transpose(1, 2), x)
            fired[:, sl] += (y > 0).sum(1)

    def train_step(self, x):
        g = torch.zeros_like(self.W)  # (E, M, d)
        fired = torch.zeros(self.E, self.M, device=self.device)
        self._accumulate(x, g, fired)
        rows, sq = x.shape[1], x.pow(2).sum(-1).sum(-1)
        while rows < self.population_rows():  # the rest of the population batch, a chunk at a time
            xc = self.draw(x.shape[1])
            self._accumulate(xc, g, fired)
            rows += xc.shape[1]
            sq += xc.pow(2).sum(-1).sum(-1)
        g /= rows
        self.fired_rows.copy_(fired)
        moved = (fired > 0).unsqueeze(-1)  # a neuron that never fires keeps its direction
        if self.cfgs[0].power_step:
            new = unit_rows(g)
        else:
            tang = g - (g * self.W).sum(-1, keepdim=True) * self.W
            new = unit_rows(self.W + self.eta * tang)
        torch.where(moved, new, self.W, out=self.W)  # in place: a captured step writes the same memory
        self.step_count += 1
        # at a → 0 the reconstruction is 0 and the loss is ½‖x‖², whatever w is
        return 0.5 * sq / rows

    def report(self) -> list[dict]:
        """Per model: the planted c₀ (0 for a random start) and the theorem's width it stands for, and how many rows
        the median neuron fired on in the last step (the population proxy's stated number, as measured)."""
        med = self.fired_rows.median(dim=1).values.tolist()
        out = []
        for e in range(self.E):
            r = {"fired_rows_median": med[e], "step_rows": self.population_rows() or None}
            if self.cfgs[e].start == "planted":
                r.update(planted_cos_used=self.c0[e], theorem_width=self.theorem_width[e])
            out.append(r)
        return out

    def phase(self, step: int) -> bool:
        """No host-side decision per step."""
        return False

    def decoder(self):
        return self.W
