"""Statistics a drawn sample actually has, and which of the theorem's data conditions it meets.

rho2 estimator (a DECIDE point of the paper): ``rho2 = max_{i != j} P^(h_i>0, h_j>0) / P^(h_i>0)`` over
features that fired at least ``MIN_COUNT`` times (fewer gives ratios dominated by counting noise);
``rho2_mean`` is the same ratio averaged over all pairs. For n > ``RHO2_MAX_FEATURES`` rho2 is measured
on the first ``RHO2_MAX_FEATURES`` features (``rho2_features`` says how many).

World structure, as produced: ``firing_corr_mean`` / ``firing_corr_max`` (Pearson correlation of the firing
indicators over pairs of those features; ≈ 0 for independent firing), ``root_corr_abs_mean`` /
``root_corr_abs_max`` (|correlation| among the hierarchy's root features, all features without a hierarchy),
``hierarchy_consistency`` (the fraction of child firings whose parent fired: 1 by construction) and
``hierarchy_exclusive_violations`` (the fraction of (row, parent) pairs with more than one child firing),
``dictionary_bias_norm``.
"""

from __future__ import annotations

import math

import torch

from .. import theory
from ..tensor import unit_rows
from .sampler import ModelSampler, hierarchy_levels
from .spec import GeneratorSpec

MIN_COUNT = 30
RHO2_MAX_FEATURES = 4096


def coherence(V: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    """(max, mean) |cos| over pairs i != j of the rows of V (n, d); chunked over rows."""
    V = unit_rows(V)
    n = V.shape[0]
    if n < 2:
        return 0.0, 0.0
    mx, tot = 0.0, 0.0
    for a in range(0, n, chunk):
        g = (V[a : a + chunk] @ V.T).abs()
        rows = torch.arange(a, min(a + chunk, n), device=V.device)
        g[rows - a, rows] = 0
        mx = max(mx, g.max().item())
        tot += g.sum().item()
    return mx, tot / (n * (n - 1))


def measure(
    spec: GeneratorSpec,
    samples: int = 20000,
    device: str | torch.device = "cpu",
    batch: int = 4096,
    features: torch.Tensor | None = None,
) -> dict:
    """Draws ``samples`` rows and returns the measured statistics (keys as in ``theory-sim sample``).
    ``features``: the spec's V (n, d) if the caller already built it (it is deterministic in the spec)."""
    sampler = ModelSampler(spec, device, features=features)
    n, d = spec.n, spec.d
    m = min(n, RHO2_MAX_FEATURES)
    dev = sampler.device
    counts = torch.zeros(n, dtype=torch.float64, device=dev)
    co = torch.zeros(m, m, dtype=torch.float64, device=dev)
    row_nnz = []
    levels = [(c.to(dev), p.to(dev)) for c, p in hierarchy_levels(spec)]
    child_fired = child_with_parent = 0.0
    groups = excl_violations = 0.0
    sig_pow = noise_pow = 0.0
    h_min, h_max = math.inf, 0.0
    done = 0
    while done < samples:
        B = min(batch, samples - done)
        x, signal, h = sampler.sample(B)
        active = h > 0
        row_nnz.append(active.sum(1).cpu())
        a = active.double()
        counts += a.sum(0)
        co += a[:, :m].T @ a[:, :m]
        for children, parents in levels:  # hierarchy consistency: no child without its parent
            fired = active[:, children]
            child_fired += fired.sum().item()
            child_with_parent += (fired & active[:, parents]).sum().item()
            blocks = fired.view(B, -1, spec.hierarchy_branching).sum(-1)
            groups += blocks.numel()
            excl_violations += (blocks > 1).sum().item()
        sig_pow += signal.double().pow(2).sum().item()
        noise_pow += (x - signal).double().pow(2).sum().item()
        if active.any():
            h_min = min(h_min, h[active].min().item())
            h_max = max(h_max, h.max().item())
        done += B
    nnz = torch.cat(row_nnz).double()
    f = (counts / samples).cpu()
    diag = co.diagonal().clone()
    ratio = co / diag.clamp_min(1)[:, None]  # P(i and j) / P(i), row i conditions
    ratio.fill_diagonal_(0)
    ok = diag >= MIN_COUNT
    rho2 = ratio[ok][:, ok].max().item() if ok.sum() >= 2 else float("nan")
    rho2_mean = (ratio.sum() / max(1, m * (m - 1))).item()
    # correlation of the firing indicators (Pearson, pairs among the first m features that fire sometimes)
    p = (diag / samples).clamp(0, 1)
    var = p * (1 - p)
    live = var > 0
    cov = co / samples - p[:, None] * p[None, :]
    corr = cov / (var[:, None] * var[None, :]).clamp_min(1e-300).sqrt()
    pairs = live[:, None] & live[None, :] & ~torch.eye(m, dtype=torch.bool, device=dev)
    firing_corr_mean = corr[pairs].mean().item() if pairs.any() else float("nan")
    firing_corr_max = corr[pairs].max().item() if pairs.any() else float("nan")
    # the same among the root features only (a hierarchy's roots are features 0 … R−1; without one every feature
    # is a root): the statistic SAELens's generator is compared on (docs/crosscheck/saelens_world.py)
    roots = min(m, spec.n // spec.tree_size()) if spec.hierarchy_depth else m
    rp = pairs[:roots, :roots]
    rc = corr[:roots, :roots][rp].abs()
    root_corr_abs_mean = rc.mean().item() if rp.any() else float("nan")
    root_corr_abs_max = rc.max().item() if rp.any() else float("nan")
    mu_max, mu_mean = coherence(sampler.V)
    noise_std = sampler.noise_std
    snr = sig_pow / noise_pow if noise_pow > 0 else float("inf")
    stats = {
        "n": n,
        "d": d,
        "samples": samples,
        "s_mean": nnz.mean().item(),
        "s_max": int(nnz.max().item()),
        "f_min": f.min().item(),
        "f_max": f.max().item(),
        "f_mean": f.mean().item(),
        "mu_max": mu_max,
        "mu_mean": mu_mean,
        "rho2": rho2,
        "rho2_mean": rho2_mean,
        "rho2_features": m,
        "noise_std": noise_std,
        "snr": snr,
        "h_min": h_min if h_max > 0 else 0.0,
        "h_max": h_max,
        "firing_corr_mean": firing_corr_mean,
        "firing_corr_max": firing_corr_max,
        "root_corr_abs_mean": root_corr_abs_mean,
        "root_corr_abs_max": root_corr_abs_max,
    }
    if levels:
        stats["hierarchy_consistency"] = child_with_parent / child_fired if child_fired else 1.0
        stats["hierarchy_exclusive_violations"] = excl_violations / groups if groups else 0.0
    if sampler.bias is not None:
        stats["dictionary_bias_norm"] = sampler.bias.norm().item()
    stats["conditions"] = data_conditions(spec, stats)
    return stats


def data_conditions(spec: GeneratorSpec, stats: dict) -> dict:
    """The theorem's data assumptions (docs/science.md §1, §3) that a sample can be checked for.

    - ``theorem_model``: V Gaussian and H uniformly s-sparse (the recovery theorem's exact assumptions);
    - ``low_cooccurrence`` (H3): rho2 < n^{-1/2};
    - ``incoherent`` (V1): mu_max <= the typical max |cos| of n Gaussian directions in R^d,
      sqrt(4 log(n) / d) (a Gaussian V meets it by construction; a shared component breaks it);
    - ``superposition``: ``heavy`` if d < sqrt(n), ``light`` otherwise (the band is wide in light);
    - ``in_superposition``: n > d.
    """
    n, d = spec.n, spec.d
    gaussian_level = theory.gaussian_coherence_level(n, d)
    return {
        "theorem_model": spec.features == "gaussian" and spec.shared == 0 and spec.support == "exact",
        "low_cooccurrence": bool(theory.low_cooccurrence(stats["rho2"], n)),
        "rho2_threshold": theory.cooccurrence_threshold(n),
        "incoherent": bool(stats["mu_max"] <= gaussian_level),
        "mu_threshold": gaussian_level,
        "superposition": theory.superposition_regime(n, d),
        "in_superposition": n > d,
    }
