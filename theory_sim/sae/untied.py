"""Untied baseline SAEs: L1, TopK (+AuxK), BatchTopK, JumpReLU, and a frozen-random-decoder sanity check.

All share  pre = (x − b_dec) W_encᵀ + b_enc,  x̂ = z W_dec + b_dec,  W_enc initialised to W_dec (unit rows),
b_dec at the mean of the first batch. Only the code z = σ(pre) and the penalty differ.
"""

from __future__ import annotations

import torch

from .base import (
    Method,
    reconstruction_loss,
    register,
    unit_rows_,
    vector_norms,
)
from .configs import BatchTopKConfig, JumpReLUConfig, L1Config, TopKConfig


class Untied(Method):
    train_decoder = True
    unit_decoder = False

    def init(self, x0):
        # both stored as (E, d, M) columns (the (E, M, d) rows are views): the weight-gradient matmuls
        # then write their outputs in the orientation this CPU's GEMM runs fastest (as BA's directions)
        WT = self.random_directions(self.M).transpose(1, 2).contiguous()
        self.W_decT = WT.clone().requires_grad_(self.train_decoder)
        self.W_encT = WT.clone().requires_grad_(True)
        self.b_enc = torch.zeros(self.E, 1, self.M, device=self.device, requires_grad=True)
        self.b_dec = x0.mean(1, keepdim=True).clone().requires_grad_(True)

    @property
    def W_enc(self) -> torch.Tensor:
        """(E, M, d) encoder rows, a view of the parameter ``W_encT``."""
        return self.W_encT.transpose(1, 2)

    @property
    def W_dec(self) -> torch.Tensor:
        """(E, M, d) decoder rows, a view of the parameter ``W_decT``."""
        return self.W_decT.transpose(1, 2)

    def decoder_norms(self) -> torch.Tensor:
        """‖d_m‖ as (E, 1, M)."""
        return vector_norms(self.W_decT, 1)

    def named_parameters(self):
        return {
            "W_encT": self.W_encT,
            "b_enc": self.b_enc,
            "b_dec": self.b_dec,
            **({"W_decT": self.W_decT} if self.train_decoder else {}),
        }

    def state(self):
        st = super().state()
        for k in ("W_enc", "W_dec"):  # saved as (E, M, d) rows, as every method's directions are
            st[k] = st.pop(k + "T").transpose(1, 2)
        return st

    def preact(self, x):
        return torch.baddbmm(self.b_enc, x - self.b_dec, self.W_encT)

    #: the SAELens architecture of this code ("standard": ReLU), for saelens()
    SAELENS = "standard"

    def saelens(self, e):
        t = {
            "W_enc": self.W_encT[e].detach(),
            "b_enc": self.b_enc[e, 0].detach(),
            "W_dec": self.W_dec[e].detach(),
            "b_dec": self.b_dec[e, 0].detach(),
        }
        return self.SAELENS, t, {}

    def code(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x):
        pre = self.preact(x)
        z = self.code(pre)
        return torch.baddbmm(self.b_dec, z, self.W_dec), z, pre

    def after_step(self, info):
        self.count_active(info["z"].detach())
        self.end_step(info["z"].shape[1])

    # ---- the hand-written step (see Method._hand_step); subclasses supply hand_code and the penalty
    def hand_code(self, pre: torch.Tensor, sl: slice, z: torch.Tensor) -> torch.Tensor:
        """The code of pre (C, B, M), written into z (C, B, M) (pre may be overwritten); returns z."""
        raise NotImplementedError

    def hand_prepare(self, x):
        E, B, d = x.shape
        K, M = self.chunk_models(B), self.M
        ws = self.workspace(
            {
                "pre": (K, B, M),  # pre-activations, then ∂L/∂z, then ∂L/∂pre
                "z": (K, B, M),  # the code
                "r": (K, B, d),  # the residual x̂ − x
                "norm": (E,),  # ‖x̂ − x‖ over the batch
                "rsum": (E, 1, d),  # Σ_b r_b
                "zsum": (E, 1, M),  # Σ_b z_b (a penalty's gradient reads it)
            }
        )
        ws.xc = x - self.b_dec  # (E, B, d)
        ws.dz = self.penalty_dz(ws, B)
        return ws

    def penalty_dz(self, ctx, B: int) -> torch.Tensor | None:
        """The sparsity penalty's ∂/∂z per neuron, (E, 1, M), or None (no penalty); may leave in ``ctx``
        what ``penalty_finish`` needs."""
        return None

    def chunk_grads(self, ctx, sl, grads):
        """Gradients of L = (1/2B) Σ_b ‖x̂_b − x_b‖² + penalty, x̂_b = W_dec z_b + b_dec, z_b = code(pre_b),
        pre_b = W_enc (x_b − b_dec) + b_enc, with r_b = x̂_b − x_b:
          ∂L/∂z_b     = (1/B) W_decᵀ r_b + ∂penalty/∂z_b
          ∂L/∂pre_b   = ∂L/∂z_b · 1[z_b > 0]      (every code here is ≥ 0 and passes gradient where z > 0)
          ∂L/∂W_dec   = (1/B) Σ_b r_b z_bᵀ (+ the penalty's, in penalty_finish)
          ∂L/∂W_enc   = Σ_b ∂L/∂pre_b (x_b − b_dec)ᵀ,   ∂L/∂b_enc = Σ_b ∂L/∂pre_b
          ∂L/∂b_dec   = (1/B) Σ_b r_b − W_encᵀ ∂L/∂b_enc   (hand_finish: a (1, M)·(M, d) product, so no
                                                           (B, d) input gradient is formed)
        Five matmuls per chunk."""
        xc = ctx.xc[sl]
        C, B, _ = xc.shape
        pre, z, r = ctx.pre[:C], ctx.z[:C], ctx.r[:C]
        W_encT, b_enc, W_decT = self.W_encT[sl], self.b_enc[sl], self.W_decT[sl]
        torch.bmm(xc, W_encT, out=pre).add_(b_enc)
        z = self.hand_code(pre, sl, z)
        self.count_active(z, sl)
        torch.baddbmm(xc, z, W_decT.transpose(1, 2), beta=-1, out=r)  # x̂ − x, (C, B, d)
        torch.linalg.vector_norm(r, dim=(1, 2), out=ctx.norm[sl])
        torch.sum(r, 1, keepdim=True, out=ctx.rsum[sl])
        gz = pre  # pre is spent: its buffer takes ∂L/∂z, then ∂L/∂pre; 1/B rides on the matmuls (alpha)
        if ctx.dz is None:
            torch.baddbmm(gz, r, W_decT, beta=0, alpha=1 / B, out=gz)
        else:
            torch.baddbmm(ctx.dz[sl], r, W_decT, alpha=1 / B, out=gz)
            torch.sum(z, 1, keepdim=True, out=ctx.zsum[sl])
        torch.ops.aten.threshold_backward.grad_input(gz, z, 0, grad_input=gz)
        torch.baddbmm(grads.W_decT, r.transpose(1, 2), z, beta=0, alpha=1 / B, out=grads.W_decT)
        torch.bmm(xc.transpose(1, 2), gz, out=grads.W_encT)
        torch.sum(gz, 1, keepdim=True, out=grads.b_enc)

    def hand_finish(self, ctx, grads, B):
        torch.sub(ctx.rsum.mul_(1 / B), torch.bmm(grads.b_enc, self.W_enc), out=grads.b_dec)
        loss = torch.square(ctx.norm).mul_(0.5 / B)
        if ctx.dz is not None:
            loss += self.penalty_finish(ctx, grads.W_decT, B)
        return loss

    def penalty_finish(self, ctx, gW_decT: torch.Tensor, B: int) -> torch.Tensor:
        """The penalty's loss (E,) from Σ_b z (``ctx.zsum``, (E, 1, M)); adds its ∂/∂W_decT (E, d, M)
        into gW_decT."""
        raise NotImplementedError

    #: no L0 controller by default (``TargetL0`` overrides these)
    controlled = False

    def count_active(self, z: torch.Tensor, sl: slice = slice(None)) -> None:
        pass

    def control(self, B: int) -> None:
        pass

    def end_step(self, B):
        if self.unit_decoder:
            unit_rows_(self.W_decT, dim=1)
        self.control(B)

    def decoder(self):
        return self.W_dec.detach()


# ---------------------------------------------------------------------------------------------- L0 target
class TargetL0:
    """Mixin for penalty methods whose per-model coefficient lives in ``self.lam`` (any shape with E
    first): the penalty methods' analogue of bias adaptation (a feedback loop on an observable, L0)."""

    #: bounds on the controlled coefficient, so a model that cannot reach its target does not run away
    COEF_RANGE = (1e-6, 1e3)

    def init_control(self):
        self.target_l0 = self.per_model("target_l0").view(self.E)
        self.controlled = bool((self.target_l0 > 0).any())
        self.ctl_active = torch.zeros(self.E, device=self.device)
        self.ctl_rows = 0

    def count_active(self, z: torch.Tensor, sl: slice = slice(None)) -> None:
        """Adds the active latents of z (C, B, M) to the controller's running count of models ``sl``."""
        if self.controlled:
            self.ctl_active[sl] += torch.sign(z).sum((1, 2))

    def control(self, B: int) -> None:
        """After a step on B rows: every ``control_every`` steps, moves each controlled model's coefficient
        toward its target L0 (multiplicatively, in log space) and clears the count."""
        if not self.controlled:
            return
        self.ctl_rows += B
        cfg = self.cfgs[0]
        if self.step_count % cfg.control_every:
            return
        l0 = self.ctl_active / self.ctl_rows
        err = torch.log((l0 + 0.5) / (self.target_l0 + 0.5)).clamp_(-1, 1)
        factor = torch.where(self.target_l0 > 0, torch.exp(cfg.control_gain * err), torch.ones_like(err))
        lam = (self.lam.view(self.E) * factor).clamp_(*self.COEF_RANGE)
        self.lam.copy_(lam.view_as(self.lam))
        self.ctl_active.zero_()
        self.ctl_rows = 0

    def report(self) -> list[dict]:
        """Per model: the final coefficient (what the controller settled on, or the fixed one) and the
        target L0 it was held at (NaN without one)."""
        return [
            {"coef_final": float(v), "l0_target": float(t) if t > 0 else float("nan")}
            for v, t in zip(self.lam.view(self.E).tolist(), self.target_l0.tolist())
        ]


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


# ---------------------------------------------------------------------------------------------- TopK
def keep_top(pre: torch.Tensor, k: torch.Tensor, kmax: int) -> torch.Tensor:
    """Keep the k[e] largest entries of each row of pre (E, B, M) (rest 0); k: (E, 1, 1) ints <= kmax."""
    vals, idx = pre.topk(kmax, dim=-1)
    keep = torch.arange(kmax, device=pre.device).view(1, 1, -1) < k
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals) * keep)


@register
class TopK(Untied):
    """z = the k largest ReLU pre-activations; unit-norm decoder; optional AuxK loss on dead latents."""

    name = "topk"
    Config = TopKConfig
    BENCH_PARAMS = {"k": 4}
    unit_decoder = True

    def init(self, x0):
        super().init(x0)
        unit_rows_(self.W_decT.data, dim=1)
        self.k = self.per_model("k").long()
        self.kmax = max(c.k for c in self.cfgs)
        self.since_fired = torch.zeros(self.E, 1, self.M, device=self.device)

    def code(self, pre):
        return keep_top(pre, self.k, self.kmax)

    def saelens(self, e):  # SAELens's TopK: the k largest pre-activations, then ReLU (keep_top's order)
        _, t, _ = super().saelens(e)
        return "topk", t, {"k": int(self.k[e])}

    #: the hand-written step computes TopK's own code (``hand_code``); a subclass with another code sets False
    HAND_CODE = True

    def hand_written(self):
        return self.HAND_CODE and self.cfgs[0].auxk == 0 and self.train_decoder

    def hand_code(self, pre, sl, z):
        vals, idx = pre.topk(self.kmax, dim=-1)
        keep = torch.arange(self.kmax, device=pre.device).view(1, 1, -1) < self.k[sl]
        return z.zero_().scatter_(-1, idx, vals.clamp_min_(0).mul_(keep))

    def loss(self, x):
        x_hat, z, pre = self.forward(x)
        loss = reconstruction_loss(x_hat, x)
        cfg = self.cfgs[0]
        if cfg.auxk > 0:
            dead = self.since_fired > cfg.dead_steps
            if bool(dead.any()):
                k_aux = min(self.M, 2 * self.kmax)
                pre_dead = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
                z_aux = keep_top(pre_dead, torch.full_like(self.k, k_aux), k_aux).nan_to_num(0.0)
                resid = (x - x_hat).detach()
                loss = loss + cfg.auxk * reconstruction_loss(torch.bmm(z_aux, self.W_dec), resid)
        return loss, {"pre": pre, "z": z}

    def after_step(self, info):
        super().after_step(info)
        if self.cfgs[0].auxk == 0:  # dead-latent tracking only feeds AuxK; skip the (E, B, M) pass
            return
        fired = (info["z"] > 0).any(1, keepdim=True)
        self.since_fired = torch.where(fired, torch.zeros_like(self.since_fired), self.since_fired + 1)


@register
class BatchTopK(TopK):
    """Keep the k·B largest pre-activations of the whole batch (per model): k is an average L0. Evaluated, by
    default, as SAELens does: a JumpReLU at θ, the running mean of the smallest activation each training
    batch kept (``eval_code = "threshold"``); ``"batch"`` keeps the batch-level selection at evaluation."""

    name = "batchtopk"
    Config = BatchTopKConfig
    HAND_CODE = False  # its code ranks the whole batch: autograd through ``loss``

    def init(self, x0):
        super().init(x0)
        self.threshold = torch.zeros(self.E, 1, 1, device=self.device)

    def code(self, pre):
        if self.evaluating and self.cfgs[0].eval_code == "threshold":
            return pre * (pre > self.threshold)
        E, B, M = pre.shape
        flat = pre.reshape(E, 1, B * M)
        return keep_top(flat, self.k * B, self.kmax * B).reshape(E, B, M)

    def after_step(self, info):
        with torch.no_grad():  # θ ← (1 − lr) θ + lr · (smallest activation kept in this batch)
            z = info["z"].detach()
            smallest = torch.where(z > 0, z, torch.full_like(z, torch.inf)).amin(dim=(1, 2), keepdim=True)
            lr = self.cfgs[0].threshold_lr
            seen = torch.isfinite(smallest)
            self.threshold = torch.where(seen, (1 - lr) * self.threshold + lr * smallest, self.threshold)
        super().after_step(info)

    def report(self):
        return [{**r, "threshold": float(self.threshold[e])} for e, r in enumerate(super().report())]

    def saelens(self, e):  # as SAELens saves a trained BatchTopK: a JumpReLU at the learned threshold
        from ..errors import ConfigError

        if self.cfgs[0].eval_code != "threshold":
            raise ConfigError(
                "save_sae",
                'batchtopk with eval_code = "batch" ranks a whole batch; SAELens has no such '
                'architecture: train with eval_code = "threshold" to save it',
            )
        _, t, _ = Untied.saelens(self, e)
        return "jumprelu", {**t, "threshold": self.threshold[e].flatten().expand(self.M).clone()}, {}


@register
class RandomDecoder(TopK):
    """Sanity baseline: TopK whose decoder is frozen at its random init; recovery should be chance level."""

    name = "random_decoder"
    train_decoder = False


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
