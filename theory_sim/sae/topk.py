"""TopK (+AuxK), TopK as SAELens trains it, BatchTopK and the frozen-random-decoder sanity check (a TopK whose decoder
never trains)."""

from __future__ import annotations

import torch

from .base import reconstruction_loss, register, unit_rows_
from .configs import (
    TOPK_SPARSE_RATIO,
    BatchTopKConfig,
    MatryoshkaConfig,
    RandomDecoderConfig,
    TopKConfig,
    TopKSAELensConfig,
)
from .untied import Untied


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

    #: the sparse step (``sparse_grads``) when k · SPARSE_RATIO <= M: its gathers and scatter-adds cost, per
    #: element, about this many GEMM multiply-adds (measured on the standard cell, CPU: k 4, M 512 ran at 2.1x the
    #: dense step; k 50, M 512 at 0.6x)
    SPARSE_RATIO = TOPK_SPARSE_RATIO

    def sparse(self) -> bool:
        """Whether the hand-written step runs the decoder and the gradients on the k active latents only."""
        return self.kmax * self.SPARSE_RATIO <= self.M

    def chunk_grads(self, ctx, sl, grads):
        if not self.sparse():
            return super().chunk_grads(ctx, sl, grads)
        return self.sparse_grads(ctx, sl, grads)

    def sparse_grads(self, ctx, sl, grads):
        """``Untied.chunk_grads``'s gradients with the code's sparsity used: only the encoder's pre-activations are a
        dense (B, d)·(d, M) product; per model, the reconstruction gathers the k active decoder rows, and ∂L/∂W_dec,
        ∂L/∂W_enc and ∂L/∂b_enc index-add their k·B outer products (∂L/∂pre is zero off the active latents: z is the
        ReLU of the top k). vals, idx: (C, B, k) the active latents' values and indices. A wide model's
        pre-activations are formed in row tiles of ``ctx.pre``'s height (``row_tile``: each tile's top k taken while
        it is in cache); everything after works on (B, k)."""
        xc = ctx.xc[sl]
        C, B, d = xc.shape
        k = self.kmax
        T = ctx.pre.shape[1]
        if T >= B:
            pre = ctx.pre[:C]
            torch.bmm(xc, self.W_encT[sl], out=pre).add_(self.b_enc[sl])
            vals, idx = pre.topk(k, dim=-1)  # (C, B, k)
        else:
            vals = torch.empty(C, B, k, device=xc.device)
            idx = torch.empty(C, B, k, dtype=torch.long, device=xc.device)
            for r0 in range(0, B, T):
                pre = ctx.pre[:C, : min(T, B - r0)]
                torch.bmm(xc[:, r0 : r0 + T], self.W_encT[sl], out=pre).add_(self.b_enc[sl])
                vals[:, r0 : r0 + T], idx[:, r0 : r0 + T] = pre.topk(k, dim=-1)
        keep = torch.arange(k, device=pre.device).view(1, 1, -1) < self.k[sl]
        vals = vals.clamp_min_(0).mul_(keep)
        r = ctx.r[:C] if T >= B else torch.empty(C, B, d, device=xc.device)  # x̂ − x
        e0 = sl.start or 0
        for c in range(C):
            e = e0 + c
            flat = idx[c].reshape(-1)  # (B·k,)
            # the active decoder rows (a contiguous copy first: gathering from the (d, M) column storage is 3x slower)
            rows = self.W_decT[e].detach().T.contiguous().index_select(0, flat).view(B, k, d)
            v = vals[c]
            torch.sub((rows * v.unsqueeze(-1)).sum(1), xc[c], out=r[c])  # x̂ − x
            # B·∂L/∂pre at the active latents, (B, k) (the 1/B rides on the index-adds' alpha)
            g = (rows * r[c].unsqueeze(1)).sum(-1).mul_(v > 0)
            gd = torch.zeros(self.M, d, device=xc.device)
            gd.index_add_(0, flat, (v.unsqueeze(-1) * r[c].unsqueeze(1)).view(-1, d), alpha=1 / B)  # Σ_b r_b z_bm
            grads.W_decT[c].copy_(gd.T)
            gd.zero_().index_add_(0, flat, (g.unsqueeze(-1) * xc[c].unsqueeze(1)).view(-1, d), alpha=1 / B)
            grads.W_encT[c].copy_(gd.T)  # Σ_b gz_bm x_b
            grads.b_enc[c, 0].zero_().index_add_(0, flat, g.reshape(-1), alpha=1 / B)
        torch.linalg.vector_norm(r, dim=(1, 2), out=ctx.norm[sl])
        torch.sum(r, 1, keepdim=True, out=ctx.rsum[sl])

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

    def phase(self, step: int):
        """None with AuxK (whether any latent is dead is read on the host every step: not capturable)."""
        return None if self.cfgs[0].auxk > 0 else False

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
            # in place: a captured step writes the same memory
            torch.where(seen, (1 - lr) * self.threshold + lr * smallest, self.threshold, out=self.threshold)
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
class Matryoshka(BatchTopK):
    """BatchTopK with nested reconstruction losses (Bussmann et al. 2025, "Learning Multi-Level Features with
    Matryoshka SAEs"; SAELens's ``matryoshka_batchtopk``): with the one BatchTopK code z (E, B, M), each level's
    first w latents reconstruct x alone, x̂_w = z[:, :, :w] W_dec[:, :w] + b_dec, and the loss adds ½‖x̂_w − x‖² of
    every inner level to the full one (so the early latents learn what is most worth reconstructing: the frequent
    features). No target frequency to choose (the reviewers' R3); saved and evaluated as BatchTopK (a JumpReLU)."""

    name = "matryoshka"
    Config = MatryoshkaConfig

    def loss(self, x):
        loss, info = super().loss(x)
        z, W_dec = info["z"], self.W_dec
        for w in self.cfgs[0].level_widths()[:-1]:  # the widest level is the loss above
            loss = loss + reconstruction_loss(torch.baddbmm(self.b_dec, z[:, :, :w], W_dec[:, :w]), x)
        return loss, info


@register
class RandomDecoder(TopK):
    """Sanity baseline: TopK whose decoder is frozen at its random init; recovery should be chance level."""

    name = "random_decoder"
    Config = RandomDecoderConfig
    train_decoder = False


# ---------------------------------------------------------------------------------------------- TopK, SAELens's way
@register
class TopKSAELens(TopK):
    """TopK trained as SAELens 6's synthetic trainer trains it (sae_lens/saes/topk_sae.py, training/sae_trainer.py),
    so a comparison with it can be asked by name:
    - init: decoder rows drawn kaiming-uniform, scaled to norm ``decoder_init_norm`` (0.1); W_enc = W_decᵀ; b_enc = 0,
      b_dec = 0 (not the data mean);
    - code: pre = (x − b_dec) W_enc + b_enc, scaled by each decoder row's norm before the top k
      (``rescale_acts_by_decoder_norm``), then ReLU; x̂ = (z / ‖W_dec‖) W_dec + b_dec; the decoder is not renormalised;
    - loss: Σ_d (x̂ − x)² averaged over the batch (twice theory-sim's ½‖·‖²), plus AuxK: with D latents dead (no firing
      for more than ``dead_steps`` steps), the top k_aux = min(d/2, D) dead pre-activations (no ReLU) reconstruct
      the detached residual x − x̂ through the decoder without its bias, weighted ``auxk`` · min(D / (d/2), 1);
    - each model's gradient clipped to global norm ``grad_clip`` (1) before Adam (β 0.9, 0.999).
    Trained through autograd (not captured: AuxK reads on the host whether a latent is dead)."""

    name = "topk_saelens"
    Config = TopKSAELensConfig
    unit_decoder = False

    def init(self, x0):
        super().init(x0)
        from ..model.sampler import STREAM_INIT, cpu_generator

        rows = []
        for c, seed in zip(self.cfgs, self.seeds):
            bound = (6 / self.d) ** 0.5  # nn.init.kaiming_uniform_ on a (d_sae, d_in) matrix: fan_in = d_in
            w = torch.empty(self.M, self.d).uniform_(-bound, bound, generator=cpu_generator(seed, STREAM_INIT))
            rows.append(w / w.norm(dim=1, keepdim=True) * c.decoder_init_norm)
        WT = torch.stack(rows).transpose(1, 2).contiguous().to(self.device)
        with torch.no_grad():
            self.W_decT.copy_(WT)
            self.W_encT.copy_(WT)
            self.b_dec.zero_()

    def hand_written(self):
        return False

    def code_and_scale(self, pre):
        """(z, pre scaled by ‖W_dec‖, ‖W_dec‖ (E, 1, M)): the code SAELens computes."""
        n = self.decoder_norms()
        pre_r = pre * n
        return keep_top(pre_r, self.k, self.kmax), pre_r, n

    def forward(self, x):
        pre = self.preact(x)
        z, _, n = self.code_and_scale(pre)
        return torch.baddbmm(self.b_dec, z / n, self.W_dec), z, pre

    def loss(self, x):
        pre = self.preact(x)
        z, pre_r, n = self.code_and_scale(pre)
        x_hat = torch.baddbmm(self.b_dec, z / n, self.W_dec)
        loss = (x_hat - x).pow(2).sum(-1).mean(-1)  # SAELens's mse: Σ_d, mean over the batch
        cfg = self.cfgs[0]
        dead = self.since_fired > cfg.dead_steps  # (E, 1, M)
        n_dead = dead.sum((1, 2))  # (E,)
        if cfg.auxk > 0 and bool((n_dead > 0).any()):
            half = self.d // 2
            k_aux = n_dead.clamp(max=half).view(-1, 1, 1)
            scale = (n_dead.float() / half).clamp(max=1.0)
            masked = torch.where(dead, pre_r, torch.full_like(pre_r, -torch.inf))
            vals, idx = masked.topk(min(half, self.M), dim=-1)
            keep = torch.arange(vals.shape[-1], device=x.device).view(1, 1, -1) < k_aux
            acts = torch.zeros_like(pre_r).scatter(-1, idx, torch.where(keep, vals, torch.zeros_like(vals)))
            recons = torch.bmm(acts / n, self.W_dec)
            resid = (x - x_hat).detach()
            loss = loss + cfg.auxk * scale * (recons - resid).pow(2).sum(-1).mean(-1)
        return loss, {"pre": pre, "z": z}

    def autograd_step(self, x):
        """Autograd through ``loss``, each model's gradient clipped to global norm ``grad_clip`` (as SAELens's
        clip_grad_norm_, per model of the ensemble), then Adam."""
        self.opt.zero_grad(set_to_none=True)
        loss, info = self.loss(x)
        loss.sum().backward()
        clip = self.cfgs[0].grad_clip
        if clip > 0:
            with torch.no_grad():
                ps = [p for p in self.parameters() if p.grad is not None]
                norm = torch.sqrt(sum(p.grad.pow(2).flatten(1).sum(1) for p in ps))  # (E,)
                coef = (clip / (norm + 1e-6)).clamp(max=1.0)
                for p in ps:
                    p.grad.mul_(coef.view(-1, *[1] * (p.grad.dim() - 1)))
        self.opt.step()
        self.step_count += 1
        with torch.no_grad():
            self.after_step(info)
        return loss.detach()

    def saelens(self, e):
        arch, t, extra = super().saelens(e)
        return arch, t, {**extra, "rescale_acts_by_decoder_norm": True}
