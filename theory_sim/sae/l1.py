"""L1: a ReLU SAE with an L1 penalty weighted by decoder norms (the paper's baseline)."""

from __future__ import annotations

import torch

from .base import reconstruction_loss, register
from .configs import L1Config
from .control import TargetL0
from .untied import Untied


# ---------------------------------------------------------------------------------------------- L1
@register
class L1(TargetL0, Untied):
    """ReLU SAE, loss ½‖x̂ − x‖² + λ Σ_m ‖d_m‖ z_m (the paper's L1 baseline); λ fixed, or held by feedback
    at the value that gives each model its ``target_l0``."""

    name = "l1"
    Config = L1Config
    BENCH_PARAMS = {"l1": 0.01}

    def init(self, x0):
        super().init(x0)
        self.lam = self.per_model("l1").view(self.E, 1)
        self.init_control()

    def code(self, pre):
        return torch.relu(pre)

    def hand_written(self):
        return True

    def hand_code(self, pre, sl, z):
        return torch.clamp_min(pre, 0, out=z)

    def penalty_dz(self, ctx, B):
        """λ·mean_b Σ_m z_bm ‖d_m‖: ∂/∂z_bm = λ‖d_m‖/B."""
        ctx.dnorm = self.decoder_norms()  # (E, 1, M), the decoder before this step's update
        return self.lam.unsqueeze(-1) * ctx.dnorm / B

    def penalty_finish(self, ctx, gW_decT, B):
        """∂/∂d_m = λ (Σ_b z_bm / B) d_m/‖d_m‖."""
        lam = self.lam.unsqueeze(-1)  # (E, 1, 1)
        norm = ctx.dnorm
        zbar = ctx.zsum / B
        gW_decT += (lam * zbar / norm.clamp_min(1e-12)) * self.W_decT
        return lam[:, 0, 0] * (zbar * norm).sum(-1)[:, 0]

    def loss(self, x):
        x_hat, z, pre = self.forward(x)
        penalty = (z * self.decoder_norms()).sum(-1).mean(-1)
        return reconstruction_loss(x_hat, x) + self.lam.squeeze(-1) * penalty, {"pre": pre, "z": z}
