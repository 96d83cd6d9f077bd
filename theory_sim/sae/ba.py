"""Bias adaptation (BA) and Group Bias Adaptation (GBA): docs/science.md §2.

Tied SAE  f(x) = Σ_m a_m w_m φ(w_mᵀ(x − b_pre) + b_m) + b_pre,  loss ½‖f(x) − x‖², no sparsity penalty.
Adam trains w (and a, b_pre where switched on); the biases b get no gradient. Every ``adapt_every`` steps,
from the pre-activations since the last adaptation, neuron m (group k, target frequency p_k) gets
  p_m = mean 1[y_m > 0],  r_m = max y_m;
  if p_m > p_k:          b_m ← max(b_m − γ₋ r_m, −1)
  elif p_m ≤ dead_eps:   b_m ← min(b_m + γ₊ · mean{r_m' > 0 : m' in group k}, 0)
The buffer is kept as running counts and maxima (exactly what the rule reads), not as raw activations.

Decisions where the paper is silent (all switches):
- ``activation``: ``relu`` φ(y) = max(y, 0); ``jumprelu`` z = (wᵀ(x − b_pre)) · 1[y > 0] — the output
  magnitude is the bias-free projection, so the bias only gates (the paper's "decouples the output magnitude
  from the bias").
- ``dead_eps`` = 0: a neuron is dead when it never fired in the buffer.
- ``renorm`` = True: w is put back on the unit sphere after every step (as the theory does), so the bias
  range [−1, 0] is on the scale of the unit-norm projections; the generator's data with unit magnitudes
  have feature projections O(1), so no input scaling is applied.
- ``pre_bias`` = ``mean`` (b_pre is the mean of the first batch) and **not trained** by default: measured
  on n=128, d=42, s=3, a b_pre trained by Adam shifts every projection and undoes the bias feedback
  (L0 stays ~43 whatever p is, FRR@0.9 = 0); ``train_pre_bias`` switches it on.
- ``adapt_every`` = 20 and Adam lr 3e-3: the paper's 50 (with batch 512) was for LLM runs of far more steps;
  in a 3000-step synthetic run 50 leaves too few adaptations for the biases to reach their targets.
- ``train_scale`` (a trained by Adam from ``scale_init``) — a fixed small a is the alternative.
- Groups: neuron m belongs to group floor(m K / M) (neurons are exchangeable at init); TAFs geometric
  from ``htf`` (group 0) to ``ltf`` (group K−1).
"""

from __future__ import annotations

import torch

from .base import Method, register, unit_rows_
from .configs import BAConfig, GBAConfig


@register
class BA(Method):
    """Single-group bias adaptation (target frequency ``p``)."""

    name = "ba"
    Config = BAConfig
    BENCH_PARAMS = {"p_over_f": 1.0}

    def group_index(self) -> list[int]:
        return [0] * self.M

    def targets(self, e: int) -> list[float]:
        """Model e's target frequency of every neuron (length M)."""
        return self.cfgs[e].targets()

    def init(self, x0):
        cfg, E, M, dev = self.cfgs[0], self.E, self.M, self.device
        # stored as (E, d, M): the weight-gradient matmuls then write their outputs in the orientation
        # this CPU's GEMM runs fastest (measured 203 vs 235 us per (2, 512, 512, 64) product)
        self.WT = self.random_directions(M).transpose(1, 2).contiguous().requires_grad_(True)
        self.a = (self.per_model("scale_init").view(E, 1, 1) * torch.ones(E, 1, M, device=dev)).requires_grad_(
            cfg.train_scale
        )
        self.b = self.per_model("bias_init").view(E, 1, 1) * torch.ones(E, 1, M, device=dev)
        mean = x0.mean(1, keepdim=True) if cfg.pre_bias == "mean" else torch.zeros(E, 1, self.d, device=dev)
        self.b_pre = mean.clone().requires_grad_(cfg.train_pre_bias)
        self.target = torch.tensor([self.targets(e) for e in range(E)], device=dev).view(E, 1, M)
        self.floor = self.per_model("bias_floor")
        if cfg.bias_init_quantile:  # each neuron starts firing at its target frequency on the first batch
            u, _ = torch.bmm(x0 - self.b_pre.detach(), self.WT.detach()).sort(dim=1)  # (E, B0, M), ascending
            k = ((1 - self.target) * (u.shape[1] - 1)).round().long().clamp(0, u.shape[1] - 1)  # (E, 1, M)
            self.b = torch.maximum(-u.gather(1, k), self.floor).clamp_max(0.0)
        self.group = torch.tensor(self.group_index(), device=dev)
        self.n_groups = int(self.group.max()) + 1
        self.gm, self.gp = self.per_model("gamma_minus"), self.per_model("gamma_plus")
        self._reset_buffer()

    @property
    def W(self) -> torch.Tensor:
        """The directions w_m as an (E, M, d) view of the (E, d, M) parameter ``WT``."""
        return self.WT.transpose(1, 2)

    def named_parameters(self):
        cfg = self.cfgs[0]
        return {
            "WT": self.WT,
            **({"a": self.a} if cfg.train_scale else {}),
            **({"b_pre": self.b_pre} if cfg.train_pre_bias else {}),
        }

    def _reset_buffer(self):
        """The adaptation buffer, emptied in place (its tensors keep their storage, so a captured step's graph
        reads and writes the same memory on every replay); ``buf_rows`` is a device scalar for the same reason."""
        if not hasattr(self, "buf_count"):
            self.buf_count = torch.zeros(self.E, 1, self.M, device=self.device)
            self.buf_max = torch.empty(self.E, 1, self.M, device=self.device)
            self.buf_rows = torch.zeros((), device=self.device)
        self.buf_count.zero_()
        self.buf_max.fill_(-torch.inf)
        self.buf_rows.zero_()

    def forward(self, x):
        xc = x - self.b_pre
        y = torch.baddbmm(self.b, xc, self.WT)  # (E, B, M), bias fused into the matmul
        if self.cfgs[0].activation == "relu":
            z = torch.relu(y)
        else:
            z = (y - self.b) * (y > 0)  # the bias-free projection, gated by the bias
        # a scales decoder rows: (E, d, M) work instead of an (E, B, M) product
        x_hat = torch.baddbmm(self.b_pre, z, (self.WT * self.a).transpose(1, 2))
        return x_hat, z, y

    # ---- the hand-written step (see Method._hand_step)
    def hand_written(self) -> bool:
        return not self.cfgs[0].train_pre_bias

    def hand_prepare(self, x):
        E, B, d = x.shape
        K, M = self.chunk_models(B), self.M
        T = self.row_tile(B)
        ws = self.workspace(
            {
                "y": (K, T, M),  # projections, then the code z, then ∂L/∂y (one buffer, three lives)
                "s": (K, T, M),  # the firing indicator 1[y > 0]
                "r": (K, T, d),  # the residual x̂ − x
                "dWd": (E, d, M),  # ∂L/∂(a_m w_m)
                "max": (E, 1, M),  # max_b (y_bm − b_m) of this batch
                "count": (E, 1, M),  # Σ_b 1[y_bm > 0]
                "norm": (E,),  # ‖x̂ − x‖ over the batch
            }
        )
        ws.xc = x - self.b_pre  # (E, B, d)
        ws.Wd = self.WT * self.a  # decoder rows a_m w_m, as columns: (E, d, M)
        return ws

    def chunk_grads(self, ctx, sl, grads):
        """Gradients of L = (1/2B) Σ_b ‖x̂_b − x_b‖², x̂_b = Σ_m a_m w_m z_bm + b_pre, z_bm = φ(y_bm),
        y_bm = w_mᵀ(x_b − b_pre) + b_m, with r_b = x̂_b − x_b:
          ∂L/∂(a_m w_m) = (1/B) Σ_b r_b z_bm                     (dWd, the decoder's view)
          ∂L/∂y_bm      = (1/B) (a_m w_m)ᵀ r_b · φ'(y_bm)         (φ' = 1[y > 0] for both activations here)
          ∂L/∂w_m       = Σ_b (x_b − b_pre) ∂L/∂y_bm  +  a_m ∂L/∂(a_m w_m)   (encoder share here, decoder in
                                                                            hand_finish)
          ∂L/∂a_m       = w_mᵀ ∂L/∂(a_m w_m)                      (hand_finish)
        Five batched matmuls and six passes over the chunk's (C, B, M) intermediates."""
        C, B, _ = ctx.xc[sl].shape
        if ctx.y.shape[1] < B:  # row tiles: the same sums, accumulated tile by tile
            return self._tiled_grads(ctx, sl, grads)
        xc, Wd, WT, b = ctx.xc[sl], ctx.Wd[sl], self.WT[sl], self.b[sl]
        y, s, r = ctx.y[:C], ctx.s[:C], ctx.r[:C]
        u = torch.bmm(xc, WT, out=y)  # projections w·(x − b_pre), (C, B, M)
        # max_b (u + b) = max_b u + b exactly (rounding is monotone): hand_finish adds b once per step
        torch.amax(u, 1, keepdim=True, out=ctx.max[sl])
        if self.cfgs[0].activation == "jumprelu":
            torch.sign(torch.add(u, b).clamp_min_(0), out=s)  # 1[y > 0]
            z = u.mul_(s)  # the bias-free projection, gated
        else:
            z = u.add_(b).clamp_min_(0)
            torch.sign(z, out=s)  # the firing indicator 1[y > 0]
        torch.sum(s, 1, keepdim=True, out=ctx.count[sl])
        torch.baddbmm(xc, z, Wd.transpose(1, 2), beta=-1, out=r)  # x̂ − x, (C, B, d)
        torch.linalg.vector_norm(r, dim=(1, 2), out=ctx.norm[sl])
        # the batch mean's 1/B rides on the matmuls (alpha) instead of a pass over r
        dWd = ctx.dWd[sl]
        torch.baddbmm(dWd, r.transpose(1, 2), z, beta=0, alpha=1 / B, out=dWd)  # ∂L/∂(a_m w_m), (C, d, M)
        gz = y  # z is spent: its buffer takes ∂L/∂y, (C, B, M) (two such buffers per model fit its core's L2)
        torch.baddbmm(gz, r, Wd, beta=0, alpha=1 / B, out=gz).mul_(s)
        torch.bmm(xc.transpose(1, 2), gz, out=grads.WT)  # the encoder's share of ∂L/∂w, (C, d, M)

    def _tiled_grads(self, ctx, sl, grads):
        """``chunk_grads`` over row tiles of ``ctx.y``'s height: per tile the same five products, the weight
        gradients and the adaptation's count and max accumulated across tiles, ‖x̂ − x‖ from the tiles' squares."""
        xc_all, Wd, WT, b = ctx.xc[sl], ctx.Wd[sl], self.WT[sl], self.b[sl]
        C, B, _ = xc_all.shape
        T = ctx.y.shape[1]
        dWd, gW, mx, cnt = ctx.dWd[sl], grads.WT, ctx.max[sl], ctx.count[sl]
        sq = torch.zeros(C, device=xc_all.device)
        jump = self.cfgs[0].activation == "jumprelu"
        for i, r0 in enumerate(range(0, B, T)):
            xc = xc_all[:, r0 : r0 + T]
            t = xc.shape[1]
            y, s, r = ctx.y[:C, :t], ctx.s[:C, :t], ctx.r[:C, :t]
            u = torch.bmm(xc, WT, out=y)
            tile_max = u.amax(1, keepdim=True)
            if i == 0:
                mx.copy_(tile_max)
            else:
                torch.maximum(mx, tile_max, out=mx)
            if jump:
                torch.sign(torch.add(u, b).clamp_min_(0), out=s)
                z = u.mul_(s)
            else:
                z = u.add_(b).clamp_min_(0)
                torch.sign(z, out=s)
            tile_count = s.sum(1, keepdim=True)
            if i == 0:
                cnt.copy_(tile_count)
            else:
                cnt.add_(tile_count)
            torch.baddbmm(xc, z, Wd.transpose(1, 2), beta=-1, out=r)
            sq += r.square().sum((1, 2))
            torch.baddbmm(dWd, r.transpose(1, 2), z, beta=0 if i == 0 else 1, alpha=1 / B, out=dWd)
            gz = y
            torch.baddbmm(gz, r, Wd, beta=0, alpha=1 / B, out=gz).mul_(s)
            torch.baddbmm(gW, xc.transpose(1, 2), gz, beta=0 if i == 0 else 1, out=gW)
        torch.sqrt(sq, out=ctx.norm[sl])

    def hand_finish(self, ctx, grads, B):
        self.observe(ctx.count, ctx.max.add_(self.b), B)
        grads.WT.addcmul_(ctx.dWd, self.a)  # + the decoder's share a_m ∂L/∂(a_m w_m)
        if self.cfgs[0].train_scale:
            torch.sum(ctx.dWd * self.WT, 1, out=grads.a[:, 0, :])
        return torch.square(ctx.norm).mul_(0.5 / B)

    def observe(self, count: torch.Tensor, maxes: torch.Tensor, rows: int) -> None:
        """Feeds the adaptation buffer with one batch: count (E, 1, M) rows where each neuron fired, maxes
        (E, 1, M) its largest pre-activation, rows the batch size. The one update path of the buffer."""
        self.buf_count += count
        torch.maximum(self.buf_max, maxes, out=self.buf_max)
        self.buf_rows.add_(rows)

    def end_step(self, B):
        cfg = self.cfgs[0]
        if cfg.renorm:
            unit_rows_(self.WT, dim=1)
        if self.step_count % cfg.adapt_every == 0:
            self.adapt()

    def phase(self, step: int) -> bool:
        """Whether step ``step`` ends in a bias adaptation (the one host-side decision of the step)."""
        return step % self.cfgs[0].adapt_every == 0

    def after_step(self, info):
        y = info["pre"].detach()
        # z >= 0 under both activations (y > 0 with b <= 0 implies u > 0), so sign(z) is the firing indicator;
        # one float pass, ~4x cheaper than count_nonzero's bool -> int64 conversion on CPU
        self.observe(torch.sign(info["z"].detach()).sum(1, keepdim=True), y.amax(1, keepdim=True), y.shape[1])
        self.end_step(y.shape[1])

    def adapt(self) -> None:
        """One bias-adaptation step from the buffer (see the module docstring), then clear the buffer."""
        cfg = self.cfgs[0]
        freq = self.buf_count / self.buf_rows.clamp_min(1)
        r = self.buf_max
        over = freq > self.target
        dead = (~over) & (freq <= cfg.dead_eps)
        pos = (r > 0).float()
        g = self.group.view(1, 1, -1).expand_as(r)
        sums = torch.zeros(self.E, 1, self.n_groups, device=self.device).scatter_add_(2, g, r.clamp_min(0) * pos)
        cnts = torch.zeros(self.E, 1, self.n_groups, device=self.device).scatter_add_(2, g, pos)
        group_mean = (sums / cnts.clamp_min(1)).gather(2, g)
        b = self.b
        b = torch.where(over, torch.maximum(b - self.gm * r, self.floor), b)
        b = torch.where(dead, torch.clamp(b + self.gp * group_mean, max=0.0), b)
        # in place: the range the rule promises, whatever the buffer held
        torch.maximum(b, self.floor, out=self.b).clamp_max_(0.0)
        self._reset_buffer()

    def decoder(self):
        return self.W.detach()

    def saelens(self, e):
        """relu: a standard SAE (W_enc the directions, b_enc the biases, W_dec the directions scaled by a);
        the bias-gated code z = u·(u > −b) is SAELens's JumpReLU with b_enc = 0 and threshold −b."""
        W = self.W[e].detach()  # (M, d)
        t = {
            "W_enc": W.T.contiguous(),
            "b_enc": self.b[e, 0].detach().clone(),
            "W_dec": (W * self.a[e, 0].detach().unsqueeze(-1)).contiguous(),
            "b_dec": self.b_pre[e, 0].detach().clone(),
        }
        if self.cfgs[0].activation == "relu":
            return "standard", t, {}
        return "jumprelu", {**t, "b_enc": torch.zeros_like(t["b_enc"]), "threshold": -t["b_enc"]}, {}

    def report(self):
        """``bias_at_floor``: the fraction of neurons whose bias ended at the rule's floor (``bias_floor``,
        the paper's −1), where no adaptation can lower it further (inputs too large for the bias range:
        TrainConfig.input_scale, or a lower ``bias_floor``)."""
        floor = (self.b <= self.floor + 1e-6).float().mean(dim=(1, 2)).tolist()
        return [{**r, "bias_at_floor": floor[e]} for e, r in enumerate(super().report())]

    def state(self):
        st = super().state()
        st["W"] = st.pop("WT").transpose(1, 2)  # saved as (E, M, d), as every method's directions are
        return st


@register
class GBA(BA):
    """K groups with geometric target frequencies from ``htf`` to ``ltf``."""

    name = "gba"
    Config = GBAConfig
    BENCH_PARAMS = {}

    def group_index(self):
        return self.cfgs[0].group_index()

    def targets(self, e: int) -> list[float]:
        """Geometric TAFs from the config, or with ``taf_spacing = "data"`` group k's TAF the (k + ½)/K quantile of
        the data's feature frequencies in descending order (each group then covers an equal share of the
        features — R4's alternative to geometric spacing)."""
        cfg = self.cfgs[e]
        if cfg.taf_spacing == "geometric":
            return cfg.targets()
        if self.specs is None:
            from ..errors import ConfigError

            raise ConfigError("taf_spacing", "data needs the data model's frequencies (generator data)")
        import numpy as np

        fs = np.sort(np.asarray(self.specs[e].feature_frequencies(), float))[::-1]
        K = cfg.groups
        tafs = [float(np.quantile(fs, 1 - (k + 0.5) / K)) for k in range(K)]
        return [tafs[g] for g in cfg.group_index()]
