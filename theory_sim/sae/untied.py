"""The untied SAE every baseline shares: pre = (x − b_dec) W_encᵀ + b_enc, x̂ = z W_dec + b_dec, W_enc
initialised to W_dec (unit rows), b_dec at the mean of the first batch; a subclass sets the code z = σ(pre)
and the penalty (L1, TopK and BatchTopK, JumpReLU: one file each)."""

from __future__ import annotations

import torch

from .base import Method, unit_rows_, vector_norms


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
        T = self.row_tile(B)
        ws = self.workspace(
            {
                "pre": (K, T, M),  # pre-activations, then ∂L/∂z, then ∂L/∂pre
                "z": (K, T, M),  # the code
                "r": (K, T, d),  # the residual x̂ − x
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
        if ctx.pre.shape[1] < B:  # row tiles (row_tile): the same sums, accumulated tile by tile
            return self._tiled_grads(ctx, sl, grads)
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

    def _tiled_grads(self, ctx, sl, grads):
        """``chunk_grads`` over row tiles of ``ctx.pre``'s height (every code here is computed row by row): per tile
        the same five products; the weight and bias gradients, Σ r, Σ z and the active count accumulated across
        tiles, ‖x̂ − x‖ from the tiles' squares."""
        xc_all = ctx.xc[sl]
        C, B, _ = xc_all.shape
        T = ctx.pre.shape[1]
        W_encT, b_enc, W_decT = self.W_encT[sl], self.b_enc[sl], self.W_decT[sl]
        sq = torch.zeros(C, device=xc_all.device)
        for i, r0 in enumerate(range(0, B, T)):
            first = i == 0
            xc = xc_all[:, r0 : r0 + T]
            t = xc.shape[1]
            pre, z, r = ctx.pre[:C, :t], ctx.z[:C, :t], ctx.r[:C, :t]
            torch.bmm(xc, W_encT, out=pre).add_(b_enc)
            z = self.hand_code(pre, sl, z)
            self.count_active(z, sl)
            torch.baddbmm(xc, z, W_decT.transpose(1, 2), beta=-1, out=r)
            sq += r.square().sum((1, 2))
            rs = r.sum(1, keepdim=True)
            ctx.rsum[sl].copy_(rs) if first else ctx.rsum[sl].add_(rs)
            gz = pre
            if ctx.dz is None:
                torch.baddbmm(gz, r, W_decT, beta=0, alpha=1 / B, out=gz)
            else:
                torch.baddbmm(ctx.dz[sl], r, W_decT, alpha=1 / B, out=gz)
                zs = z.sum(1, keepdim=True)
                ctx.zsum[sl].copy_(zs) if first else ctx.zsum[sl].add_(zs)
            torch.ops.aten.threshold_backward.grad_input(gz, z, 0, grad_input=gz)
            beta = 0 if first else 1
            torch.baddbmm(grads.W_decT, r.transpose(1, 2), z, beta=beta, alpha=1 / B, out=grads.W_decT)
            torch.baddbmm(grads.W_encT, xc.transpose(1, 2), gz, beta=beta, out=grads.W_encT)
            gb = gz.sum(1, keepdim=True)
            grads.b_enc.copy_(gb) if first else grads.b_enc.add_(gb)
        torch.sqrt(sq, out=ctx.norm[sl])

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

    def phase(self, step: int) -> bool:
        """No host-side decision per step (the L0 controller's mixin overrides this)."""
        return False

    def end_step(self, B):
        if self.unit_decoder:
            unit_rows_(self.W_decT, dim=1)
        self.control(B)

    def decoder(self):
        return self.W_dec.detach()
