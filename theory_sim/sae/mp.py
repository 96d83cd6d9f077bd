"""Matching-pursuit SAE (MP-SAE): the encoder is greedy matching pursuit over the decoder's own atoms.

x̂ = Σ_m z_m d_m + b_dec with unit-norm atoms d_m (rows of D). The code z of a row x comes from k steps of
matching pursuit on the residual r (r ← x − b_dec at the start):
    m* = argmax_m d_mᵀ r,   c = d_{m*}ᵀ r,   z_{m*} += c,   r ← r − c d_{m*}      (stop early if c ≤ 0)
so each step removes the residual's projection on the best-matching atom: atoms compete for explanation
("explaining away"), which a one-pass encoder cannot do. This is classic sparse coding (Mallat & Zhang
1993) used as an SAE encoder; a non-linear, non-amortised baseline next to the paper's methods.

Training: Adam on D and b_dec through the reconstruction ½‖x̂ − x‖² with the code held fixed (the argmax
selection has no gradient); the atoms go back to unit norm after every step.

Decisions: codes are non-negative (a step whose best correlation is ≤ 0 adds nothing), as every method's
code here is (a neuron is active iff z > 0); ``k`` may differ between the models of one ensemble (a model
stops after its own k steps); an atom may be chosen twice for one row (its coefficient then accumulates).
Shapes: x (E, B, d), D (E, M, d), z and the first step's correlations (E, B, M).
"""

from __future__ import annotations

import torch

from .base import Method, register, unit_rows_
from .configs import MPConfig


@register
class MatchingPursuit(Method):
    """Matching-pursuit encoder, linear decoder (see the module docstring)."""

    name = "mp"
    Config = MPConfig
    BENCH_PARAMS = {"k": 4}

    def init(self, x0):
        self.D = self.random_directions(self.M).requires_grad_(True)  # (E, M, d) unit rows
        self.b_dec = x0.mean(1, keepdim=True).clone().requires_grad_(True)  # (E, 1, d)
        self.k = self.per_model("k").long().view(self.E, 1)  # (E, 1)
        self.kmax = max(c.k for c in self.cfgs)

    def named_parameters(self):
        return {"D": self.D, "b_dec": self.b_dec}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z (E, B, M), the first step's correlations Dᵀ(x − b_dec) (E, B, M)) for x (E, B, d)."""
        D = self.D.detach()
        r = x - self.b_dec
        z = torch.zeros(x.shape[0], x.shape[1], self.M, device=x.device)
        first = None
        for t in range(self.kmax):
            corr = torch.bmm(r, D.transpose(1, 2))  # (E, B, M)
            if first is None:
                first = corr
            c, m = corr.max(-1)  # (E, B): the best atom of each row and its coefficient
            c = torch.where((c > 0) & (t < self.k), c, torch.zeros_like(c))
            z.scatter_add_(2, m.unsqueeze(-1), c.unsqueeze(-1))
            r -= c.unsqueeze(-1) * D.gather(1, m.unsqueeze(-1).expand(-1, -1, self.d))
        return z, first

    def forward(self, x):
        z, pre = self.encode(x)
        return torch.baddbmm(self.b_dec, z, self.D), z, pre

    def phase(self, step: int) -> bool:
        """No host-side decision per step."""
        return False

    def end_step(self, B):
        with torch.no_grad():
            unit_rows_(self.D)

    def decoder(self):
        return self.D.detach()
