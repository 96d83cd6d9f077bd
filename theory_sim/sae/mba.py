"""Modified BA — the algorithm the recovery theorem (Thm 6.1) analyses; docs/science.md §2.

Tied unit-norm weights, one target frequency p, biases held fixed, output scale a → 0, a smooth ReLU,
spherical gradient descent. In the a → 0 limit the loss gradient of neuron m is
    −∂L/∂w_m ∝ E[(φ(y_m) + φ'(y_m) u_m) x],   u_m = w_mᵀx,  y_m = u_m + b_m,
a Hebbian step weighted by how strongly the neuron fires (it is zero where y_m ≤ 0): w moves toward the
mean of the inputs on which it fires. ``power_step`` (default) takes the η → ∞ limit, w ← normalise(g);
otherwise w ← normalise(w + step_size · (g − (gᵀw) w)) (a Riemannian step).

Decisions: φ is the C¹ "smooth ReLU" 0 (y ≤ 0), y²/(2δ) (0 < y < δ), y − δ/2 (y ≥ δ), δ = ``smooth``;
the fixed bias b_m = −(1−p)-quantile of u_m over the first batch, so each neuron starts firing at
frequency p; no pre-bias (the theorem's data are uncentred, X = HV). No Adam: each step uses one batch
(``batch`` large approximates the population gradient the theorem uses).
"""

from __future__ import annotations

import torch

from .base import Method, register, unit_rows
from .configs import MBAConfig


def smooth_relu(y: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """φ(y) and φ'(y) of the C¹ smooth ReLU with knee width delta."""
    yc = y.clamp(0, delta)
    phi = torch.where(y >= delta, y - delta / 2, yc * yc / (2 * delta))
    dphi = yc / delta
    return phi, dphi


@register
class MBA(Method):
    name = "mba"
    Config = MBAConfig
    INIT_ROWS = 4096  # the bias is set from the first batch's pre-activation quantiles: at least this many rows
    RECORD_EVERY = 1  # the theorem is about the first steps: record FRR@0.9 after every one
    uses_adam = False

    #: neurons per pass of the step: the neurons are independent (a → 0), so a wide model is stepped in
    #: blocks whose (B, block) intermediates the allocator reuses (measured: width 65,536, batch 4096, one
    #: step 15 s unblocked, most of it page faults of fresh 1 GiB tensors)
    block = 4096

    def init(self, x0):
        self.W = self.random_directions(self.M)  # (E, M, d)
        B0 = x0.shape[1]
        q = torch.empty(self.E, self.M, device=self.device)
        for e in range(self.E):  # the (1−p)-quantile as an order statistic, block by block
            k = min(B0, max(1, round((1 - self.cfgs[e].p) * (B0 - 1)) + 1))
            for a in range(0, self.M, self.block):
                u = x0[e] @ self.W[e, a : a + self.block].T  # (B0, block)
                q[e, a : a + self.block] = torch.kthvalue(u, k, dim=0).values
        self.b = -q.view(self.E, 1, self.M)
        self.eta = self.per_model("step_size")

    def named_parameters(self):
        return {}  # no optimiser: the power step moves the directions

    def forward(self, x):
        u = torch.bmm(x, self.W.transpose(1, 2))
        y = u + self.b
        phi, _ = smooth_relu(y, self.cfgs[0].smooth)
        # a → 0: the reconstruction is the (vanishing) a-weighted sum; report it at a = 1 for diagnostics
        return torch.bmm(phi, self.W), phi, y

    def train_step(self, x):
        g = torch.empty_like(self.W)  # (E, M, d)
        fired = torch.empty(self.E, self.M, 1, dtype=torch.bool, device=self.device)
        for a in range(0, self.M, self.block):
            sl = slice(a, a + self.block)
            u = torch.bmm(x, self.W[:, sl].transpose(1, 2))  # (E, B, block)
            y = u + self.b[:, :, sl]
            phi, dphi = smooth_relu(y, self.cfgs[0].smooth)
            g[:, sl] = torch.bmm((phi + dphi * u).transpose(1, 2), x) / x.shape[1]
            fired[:, sl] = (y > 0).any(1).unsqueeze(-1)  # a neuron that never fires keeps its direction
        if self.cfgs[0].power_step:
            new = unit_rows(g)
        else:
            tang = g - (g * self.W).sum(-1, keepdim=True) * self.W
            new = unit_rows(self.W + self.eta * tang)
        torch.where(fired, new, self.W, out=self.W)  # in place: a captured step writes the same memory
        self.step_count += 1
        # at a → 0 the reconstruction is 0 and the loss is ½‖x‖², whatever w is
        return 0.5 * x.pow(2).sum(-1).mean(-1)

    def phase(self, step: int) -> bool:
        """No host-side decision per step."""
        return False

    def decoder(self):
        return self.W
