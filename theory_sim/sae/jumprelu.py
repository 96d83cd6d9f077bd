"""JumpReLU: z = u·1[u > θ] with a trained per-neuron threshold (straight-through), an L0 penalty."""

from __future__ import annotations

import torch

from .base import reconstruction_loss, register
from .configs import JumpReLUConfig
from .control import TargetL0
from .untied import Untied


# ---------------------------------------------------------------------------------------------- JumpReLU
class _Step(torch.autograd.Function):
    """H(u − θ) with the straight-through pseudo-derivative −K((u−θ)/ε)/ε wrt θ (rectangle kernel)."""

    @staticmethod
    def forward(ctx, u, theta, eps):
        ctx.save_for_backward(u, theta)
        ctx.eps = eps
        return (u > theta).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        u, theta = ctx.saved_tensors
        k = ((u - theta).abs() < ctx.eps / 2).to(u.dtype) / ctx.eps
        return None, (-g * k).sum(1, keepdim=True), None


class _Jump(torch.autograd.Function):
    """u · H(u − θ): exact gradient wrt u, pseudo-derivative −θ K((u−θ)/ε)/ε wrt θ."""

    @staticmethod
    def forward(ctx, u, theta, eps):
        ctx.save_for_backward(u, theta)
        ctx.eps = eps
        return u * (u > theta)

    @staticmethod
    def backward(ctx, g):
        u, theta = ctx.saved_tensors
        k = ((u - theta).abs() < ctx.eps / 2).to(u.dtype) / ctx.eps
        return g * (u > theta), (-g * theta * k).sum(1, keepdim=True), None


@register
class JumpReLU(TargetL0, Untied):
    """z = u·1[u > θ] with trained per-neuron θ (STE), loss ½‖x̂ − x‖² + λ·L0; λ fixed, or held by
    feedback at the value that gives each model its ``target_l0``."""

    name = "jumprelu"
    Config = JumpReLUConfig
    BENCH_PARAMS = {"l0_coef": 0.01}

    def init(self, x0):
        super().init(x0)
        th = self.cfgs[0].threshold_init
        self.log_theta = torch.full(
            (self.E, 1, self.M), float(torch.tensor(th).log()), device=self.device, requires_grad=True
        )
        self.lam = self.per_model("l0_coef").view(self.E)
        self.init_control()

    def named_parameters(self):
        return {**super().named_parameters(), "log_theta": self.log_theta}

    def code(self, pre):
        return _Jump.apply(pre, self.log_theta.exp(), self.cfgs[0].bandwidth)

    def saelens(self, e):
        _, t, _ = super().saelens(e)
        return "jumprelu", {**t, "threshold": self.log_theta[e, 0].detach().exp()}, {}

    def loss(self, x):
        x_hat, z, pre = self.forward(x)
        l0 = _Step.apply(pre, self.log_theta.exp(), self.cfgs[0].bandwidth).sum(-1).mean(-1)
        return reconstruction_loss(x_hat, x) + self.lam * l0, {"pre": pre, "z": z}
