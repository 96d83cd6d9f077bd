"""The L0 controller of the penalty methods (L1, JumpReLU): the coefficient held by feedback at the value that
gives each model its ``target_l0`` — the penalty methods' analogue of bias adaptation."""

from __future__ import annotations

import torch


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
        self.ctl_rows = torch.zeros((), device=self.device)  # a device scalar: a captured step updates it

    def count_active(self, z: torch.Tensor, sl: slice = slice(None)) -> None:
        """Adds the active latents of z (C, B, M) to the controller's running count of models ``sl``."""
        if self.controlled:
            self.ctl_active[sl] += torch.sign(z).sum((1, 2))

    def control(self, B: int) -> None:
        """After a step on B rows: every ``control_every`` steps, moves each controlled model's coefficient
        toward its target L0 (multiplicatively, in log space) and clears the count."""
        if not self.controlled:
            return
        self.ctl_rows.add_(B)
        cfg = self.cfgs[0]
        if self.step_count % cfg.control_every:
            return
        l0 = self.ctl_active / self.ctl_rows
        err = torch.log((l0 + 0.5) / (self.target_l0 + 0.5)).clamp_(-1, 1)
        factor = torch.where(self.target_l0 > 0, torch.exp(cfg.control_gain * err), torch.ones_like(err))
        lam = (self.lam.view(self.E) * factor).clamp_(*self.COEF_RANGE)
        self.lam.copy_(lam.view_as(self.lam))
        self.ctl_active.zero_()
        self.ctl_rows.zero_()

    def phase(self, step: int) -> bool:
        """Whether step ``step`` ends in a coefficient update (the one host-side decision of the step)."""
        return self.controlled and step % self.cfgs[0].control_every == 0

    def report(self) -> list[dict]:
        """Per model: the final coefficient (what the controller settled on, or the fixed one) and the
        target L0 it was held at (NaN without one)."""
        return [
            {"coef_final": float(v), "l0_target": float(t) if t > 0 else float("nan")}
            for v, t in zip(self.lam.view(self.E).tolist(), self.target_l0.tolist())
        ]
