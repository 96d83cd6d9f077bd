"""Recovery and quality metrics (names and definitions: docs/science.md §5; where a name is shared with
SAELens's synthetic benchmark, SynthSAEBench — mcc, uniqueness, dead_latents, precision, recall, f1,
accuracy — the definition is theirs).

All cosine computations are chunked over features, so n = 65,536 features × M = 65,536 neurons never
hold the whole n × M matrix: memory is O(chunk · M). MCC uses scipy's Hungarian solver on the dense
matrix when n·M <= ``DENSE_MCC_LIMIT``; beyond that, on a sparse graph of each feature's ``MCC_CANDIDATES``
best neurons (scipy.sparse.csgraph.min_weight_full_bipartite_matching) — exact whenever the optimal
matching uses only such candidate edges, which it does when features are recovered.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from .measures import METRIC_RANGES, TAUS  # noqa: F401  (re-exported; declared in measures.py)
from .tensor import unit_rows

CURVE_TAUS = tuple(np.round(np.linspace(0.5, 1.0, 51), 3))
DENSE_MCC_LIMIT = 25_000_000
MCC_CANDIDATES = 16


def _unit(a: torch.Tensor) -> torch.Tensor:
    return unit_rows(a.float())


def best_cosines(V: torch.Tensor, D: torch.Tensor, chunk: int = 2048, absolute: bool = False):
    """Best signed cosines (``absolute``: best |cos|) between true features V (n, d) and decoder directions
    D (M, d).

    Returns (feature_best (n,), feature_arg (n,), neuron_best (M,), neuron_arg (M,)).
    """
    V, D = _unit(V), _unit(D.to(V.device))
    n, M = V.shape[0], D.shape[0]
    fb, fa = torch.empty(n, device=V.device), torch.empty(n, dtype=torch.long, device=V.device)
    nb = torch.full((M,), -2.0, device=V.device)
    na = torch.zeros(M, dtype=torch.long, device=V.device)
    for a in range(0, n, chunk):
        c = V[a : a + chunk] @ D.T  # (chunk, M)
        if absolute:
            c = c.abs()
        fb[a : a + chunk], fa[a : a + chunk] = c.max(1)
        cb, ca = c.max(0)
        better = cb > nb
        nb = torch.where(better, cb, nb)
        na = torch.where(better, ca + a, na)
    return fb, fa, nb, na


def frr(feature_best: torch.Tensor, tau: float) -> float:
    """Feature recovery rate: fraction of features with best cosine >= tau."""
    return (feature_best >= tau).float().mean().item()


def align_error(feature_best: torch.Tensor) -> float:
    """The median over features of 1 − best signed cosine: how far the typical feature is from recovery (the
    theorem's "cos ≥ 1 − o(1)" read as a trend in n)."""
    return float((1 - feature_best).median().item())


def frr_curve(feature_best: torch.Tensor, taus=CURVE_TAUS) -> list[float]:
    return [frr(feature_best, t) for t in taus]


def matched_cosines(V: torch.Tensor, D: torch.Tensor, chunk: int = 2048, signed: bool = False) -> np.ndarray:
    """Per true feature, its cosine (|cos| unless ``signed``) with the neuron it gets under the best one-to-one
    matching of features and neurons (Hungarian); NaN for a feature left unmatched (n > M). V: (n, d),
    D: (M, d); returns (n,) float64."""
    return matched_pairs(V, D, chunk, signed)[0]


def matched_pairs(V: torch.Tensor, D: torch.Tensor, chunk: int = 2048, signed: bool = False):
    """``matched_cosines`` and the matching itself: ((n,) float64 cosines, NaN where unmatched; (n,) int64 index of
    each feature's matched neuron, −1 where unmatched)."""
    V, D = _unit(V), _unit(D.to(V.device))
    n, M = V.shape[0], D.shape[0]
    out = np.full(n, np.nan)
    idx = np.full(n, -1, dtype=np.int64)

    def cos(a, b):
        c = a @ b.T
        return c if signed else c.abs()

    if n * M <= DENSE_MCC_LIMIT:
        c = cos(V, D).cpu().double().numpy()
        r, k = linear_sum_assignment(c, maximize=True)
        out[r] = c[r, k]
        idx[r] = k
        return out, idx
    swap = n > M  # match the smaller side fully
    A, B = (D, V) if swap else (V, D)
    kc = min(MCC_CANDIDATES, B.shape[0])
    rows, cols, vals = [], [], []
    for a in range(0, A.shape[0], chunk):
        top = cos(A[a : a + chunk], B).topk(kc, dim=1)
        rows.append(np.repeat(np.arange(a, a + top.values.shape[0]), kc))
        cols.append(top.indices.cpu().numpy().ravel())
        vals.append(top.values.cpu().double().numpy().ravel())
    vals_ = np.concatenate(vals)
    # weights must be positive for the sparse solver: minimise (2 − cos) ∈ (0, 4)
    g = csr_matrix((2.0 - vals_, (np.concatenate(rows), np.concatenate(cols))), shape=(A.shape[0], B.shape[0]))
    try:
        r, k = min_weight_full_bipartite_matching(g)
        v = 2.0 - np.asarray(g[r, k]).ravel()
    except ValueError:  # no full matching among candidates: fall back to greedy best per row
        r, k = np.arange(A.shape[0]), np.concatenate(cols).reshape(-1, kc)[:, 0]
        v = vals_.reshape(-1, kc)[:, 0]
    if swap:
        out[k], idx[k] = v, r
    else:
        out[r], idx[r] = v, k
    return out, idx


def mcc(V: torch.Tensor, D: torch.Tensor, chunk: int = 2048, signed: bool = False) -> float:
    """Mean matched |cosine| under the best one-to-one matching of features and neurons (Hungarian), over
    the min(n, M) matched pairs — SynthSAEBench's MCC. ``signed``: the signed cosine instead (the paper's
    convention for FRR: a negated feature is not a recovered one)."""
    m = matched_cosines(V, D, chunk, signed)
    return float(np.nansum(m) / min(V.shape[0], D.shape[0]))


def frr_matched(matched: np.ndarray, tau: float) -> float:
    """FRR over the one-to-one matching: the fraction of features whose own matched neuron (signed
    ``matched_cosines``) has cosine >= tau, so one decoder direction cannot count for two features."""
    return float(np.mean(np.nan_to_num(matched, nan=-2.0) >= tau)) if len(matched) else 0.0


def uniqueness(neuron_abs_arg: torch.Tensor) -> float:
    """SynthSAEBench's uniqueness: distinct true features among every latent's best |cos| match, divided by
    the number of latents M. At most min(n, M)/M: a wide SAE (M = 4n) scores ≤ 0.25 even when every feature
    has its own latent; ``uniqueness_alive`` (classification_metrics) divides by the latents that fire
    instead. neuron_abs_arg: (M,) best-|cos| feature index per latent."""
    M = neuron_abs_arg.numel()
    return neuron_abs_arg.unique().numel() / M if M else 0.0


def aligned_uniqueness(feature_best, neuron_best, neuron_arg, tau: float = 0.9) -> float:
    """Among neurons aligned with some feature (best signed cosine >= tau), the fraction of distinct features
    they match: 1 = no two aligned neurons share a feature; NaN when no neuron is aligned (nothing to
    judge)."""
    aligned = neuron_best >= tau
    k = int(aligned.sum())
    if k == 0:
        return float("nan")
    return neuron_arg[aligned].unique().numel() / k


def consistency(D1: torch.Tensor, D2: torch.Tensor, tau: float = 0.9, alive1=None, chunk: int = 2048) -> float:
    """Cross-seed consistency: fraction of (alive) neurons of SAE 1 whose best cosine to SAE 2 >= tau."""
    if alive1 is not None:
        D1 = D1[alive1]
    if D1.shape[0] == 0:
        return float("nan")
    best = best_cosines(D1, D2, chunk)[0]
    return frr(best, tau)


def recovery_metrics(V: torch.Tensor, D: torch.Tensor, match: torch.Tensor | None = None) -> tuple[dict, dict]:
    """Scalar recovery metrics and per-feature/per-neuron arrays for one model.

    V: (n, d) true features; D: (M, d) decoder directions; match: (M,) ``best_abs_match(V, D)`` if the
    caller has it already.
    """
    fb, fa, nb, na = best_cosines(V, D)
    out = {f"frr_{t}": frr(fb, t) for t in TAUS}
    out["mmcs"] = fb.mean().item()
    out["align_error"] = align_error(fb)
    out["mcc"] = mcc(V, D)
    signed, matched = matched_pairs(V, D, signed=True)
    out["mcc_signed"] = float(np.nansum(signed) / min(V.shape[0], D.shape[0]))
    out["frr_matched_0.9"] = frr_matched(signed, 0.9)
    out["uniqueness"] = uniqueness(best_abs_match(V, D) if match is None else match)
    out["aligned_uniqueness"] = aligned_uniqueness(fb, nb, na)
    arrays = {
        "feature_best": fb.cpu().numpy(),
        "feature_arg": fa.cpu().numpy(),
        "neuron_best": nb.cpu().numpy(),
        "frr_curve": np.array(frr_curve(fb)),
        "feature_matched": matched,
        "feature_matched_cos": signed,
    }
    return out, arrays


def feature_activity(n: int, rows: int, sup_rows=None, sup_cols=None, sup_vals=None) -> dict:
    """Per true feature, measured on the ``rows`` evaluation rows from H's non-zeros (coordinates ``sup_rows``,
    ``sup_cols``, magnitudes ``sup_vals`` (K,) when known): ``feature_freq_eval`` (n,) the fraction of rows it is
    active in, ``feature_mag_eval`` (n,) its mean non-zero magnitude (NaN where it never fired or magnitudes are
    unknown). Empty without supports."""
    if sup_cols is None:
        return {}
    cols = sup_cols.long().cpu()
    count = torch.bincount(cols, minlength=n).double()
    out = {"feature_freq_eval": (count / max(1, rows)).numpy()}
    if sup_vals is not None:
        tot = torch.bincount(cols, weights=sup_vals.double().cpu(), minlength=n)
        out["feature_mag_eval"] = torch.where(count > 0, tot / count.clamp_min(1), torch.nan).numpy()
    return out


def frequency_match(feature_freq: np.ndarray, neuron_freq: np.ndarray, matched: np.ndarray) -> dict:
    """How closely each feature's matched latent fires at the feature's own frequency (R1's question): over the
    features with a matched latent and a known frequency f_i > 0, log₂(p̂_m / f_i) with p̂_m the latent's firing
    frequency on the evaluation rows — its median, quartiles (``freq_match_log2_q25`` / ``_q75``) and the fraction
    of matched latents that never fire (``freq_match_dead``; their log ratio is −∞ and they sit in the low
    quartiles). NaN when no feature qualifies. feature_freq: (n,); neuron_freq: (M,); matched: (n,) −1 unmatched."""
    feature_freq, matched = np.asarray(feature_freq, float), np.asarray(matched)
    ok = (matched >= 0) & np.isfinite(feature_freq) & (feature_freq > 0)
    keys = ("freq_match_log2_median", "freq_match_log2_q25", "freq_match_log2_q75", "freq_match_dead")
    if not ok.any():
        return dict.fromkeys(keys, math.nan)
    p_hat = np.asarray(neuron_freq, float)[matched[ok]]
    with np.errstate(divide="ignore"):
        r = np.log2(p_hat / feature_freq[ok])
    q25, med, q75 = np.quantile(r, [0.25, 0.5, 0.75], method="nearest")
    return dict(zip(keys, (float(med), float(q25), float(q75), float(np.mean(p_hat == 0)))))


def best_abs_match(V: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """(M,) index of each decoder direction's best |cos| true feature (SynthSAEBench's matching)."""
    return best_cosines(V, D, absolute=True)[3]


@torch.no_grad()
def classification_metrics(
    z: torch.Tensor,
    D: torch.Tensor,
    V: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    match: torch.Tensor | None = None,
) -> dict:
    """Each latent as a detector of its best-|cos| true feature, over N evaluation rows (SynthSAEBench's
    definitions): per latent TP/FP/FN/TN from "fires" (z != 0) and "the feature is present" (h > 0); the
    means over all M latents of precision TP/(TP+FP), recall TP/(TP+FN), F1 (0 where undefined) and
    accuracy. z: (N, M) codes; D: (M, d) decoder; V: (n, d) features; rows, cols: (K,) the coordinates of
    H's non-zeros in those N rows; match: (M,) ``best_abs_match(V, D)`` if the caller has it already."""
    N, M = z.shape
    if match is None:
        match = best_abs_match(V, D)  # (M,)
    feats, inv = match.unique(return_inverse=True)  # the U features some latent matches
    pos = torch.full((V.shape[0],), -1, dtype=torch.long, device=z.device)
    pos[feats] = torch.arange(feats.numel(), device=z.device)
    present = torch.zeros(N, feats.numel(), dtype=torch.bool, device=z.device)
    keep = pos[cols] >= 0
    present[rows[keep], pos[cols[keep]]] = True
    gt = present[:, inv]  # (N, M): latent m's feature present in row b
    fires = z != 0
    tp = (fires & gt).sum(0).double()
    fp = (fires & ~gt).sum(0).double()
    fn = (~fires & gt).sum(0).double()
    tn = N - tp - fp - fn
    prec = torch.where(tp + fp > 0, tp / (tp + fp).clamp_min(1), torch.zeros_like(tp))
    rec = torch.where(tp + fn > 0, tp / (tp + fn).clamp_min(1), torch.zeros_like(tp))
    f1 = torch.where(prec + rec > 0, 2 * prec * rec / (prec + rec).clamp_min(1e-12), torch.zeros_like(tp))
    alive = fires.any(0)  # latents that fired on some evaluation row
    n_alive = int(alive.sum())
    return {
        "precision": prec.mean().item(),
        "recall": rec.mean().item(),
        "f1": f1.mean().item(),
        "accuracy": ((tp + tn) / N).mean().item(),
        # the same over alive latents only: SynthSAEBench's F1 and uniqueness average over all M latents, so a
        # wide SAE (M > n) is capped by its dead and duplicate latents whatever it recovered
        "f1_alive": f1[alive].mean().item() if n_alive else 0.0,
        "uniqueness_alive": match[alive].unique().numel() / n_alive if n_alive else 0.0,
    }


@torch.no_grad()
def quality_metrics(x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor, targets: torch.Tensor | None = None):
    """Reconstruction quality for one model on an eval batch.

    x, x_hat: (N, d); z: (N, M) codes (a neuron is active where z != 0); targets: (M,) target
    frequencies or None. Returns (scalars, per-neuron arrays).
    """
    active = z != 0
    freq = active.float().mean(0)
    resid = (x - x_hat).pow(2).sum()
    total = (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)
    ev = 1 - (resid / total).item()
    xn = x.norm(dim=1)
    ok = xn > 0
    out = {
        "l0": active.float().sum(1).mean().item(),
        "dead_fraction": (freq == 0).float().mean().item(),
        "dead_latents": int((freq == 0).sum().item()),  # SynthSAEBench's name: a count
        "explained_variance": ev,
        "fvu": 1 - ev,
        "mse": (resid / x.shape[0]).item(),
        "shrinkage": (x_hat[ok].norm(dim=1) / xn[ok]).mean().item(),
    }
    if targets is not None:
        alive = freq > 0
        if bool(alive.any()):
            ratio = freq[alive].log() - targets[alive].log()
            out["freq_log_error"] = ratio.abs().mean().item()
            # what BA/GBA's rule enforces: it lowers an over-active neuron's bias and revives a dead one, and
            # leaves a neuron firing below its target alone, so only frequencies above target are a miss
            out["freq_excess_log"] = ratio.clamp_min(0).mean().item()
    return out, {"neuron_freq": freq.cpu().numpy()}


#: a BA/GBA model whose neurons fire above their target frequencies by more than 2× on average (mean of
#: max(0, log(freq / target)) over alive neurons above log 2) did not reach the cap its rule sets; firing
#: below the target is what the rule allows (it only caps frequencies and revives dead neurons)
FREQ_LOG_ERROR_BOUND = math.log(2)
#: a run whose FRR@0.9 rose by more than 5 points over its last fifth of steps was still recovering features
FRR_RISE_BOUND = 0.05
#: a run whose training-batch L0 moved by more than 10 % between the fifth of its steps before last and the
#: last was still drifting (feedback rules not settled)
L0_DRIFT_BOUND = 0.10
#: an L0-targeted model more than 25 % away from its target L0 did not reach it
L0_REL_ERROR_BOUND = 0.25
#: a run whose mean loss over its last tenth of steps is still more than 5 % below the tenth before was
#: cut short (BA's adaptations make the loss jumpy: a plateau is judged on tenths, not single steps)
LOSS_DROP_BOUND = 0.05


#: what each kind of non-convergence (the reasons ``converged`` gives) is called in legends and warnings
NC_KINDS = (
    ("frequencies", "neuron frequencies off target"),
    ("L0 ", "L0 off its target"),
    ("loss still falling", "loss still falling at the end"),
    ("recovery still rising", "recovery still rising at the end"),
    ("L0 still drifting", "L0 still drifting at the end"),
)


def nc_kinds(reason: str) -> list[str]:
    """The kinds (NC_KINDS wording) named in one ``converged`` reason string."""
    return [word for key, word in NC_KINDS if key in reason]


def converged(res: dict) -> tuple[bool, str]:
    """Whether one model's feedback rules reached their targets, its loss levelled off and its recovery
    settled, with the reason when not: reads ``freq_excess_log`` (BA/GBA; one-sided: their rule only caps
    frequencies; ``freq_log_error`` for rows stored before it existed), ``l0`` against ``l0_target``
    (L0-controlled methods), ``loss_drop_last_tenth``, ``frr_rise_last_fifth`` and ``l0_drift_last_fifth`` (every
    method); a missing
    or NaN reading passes."""
    why = []
    fe = res.get("freq_excess_log")
    if fe is None or fe != fe:
        fe = res.get("freq_log_error")
    if fe is not None and fe == fe and fe > FREQ_LOG_ERROR_BOUND:
        why.append(f"neuron frequencies {math.exp(fe):.2g}x above their targets on average")
    t, l0 = res.get("l0_target"), res.get("l0")
    if t is not None and t == t and t > 0 and l0 is not None and abs(l0 - t) > L0_REL_ERROR_BOUND * t:
        why.append(f"L0 {l0:.3g} vs target {t:.3g}")
    d = res.get("loss_drop_last_tenth")
    if d is not None and d == d and d > LOSS_DROP_BOUND:
        why.append(f"loss still falling ({100 * d:.0f} % over the last tenth of the steps)")
    r = res.get("frr_rise_last_fifth")
    if r is not None and r == r and r > FRR_RISE_BOUND:
        why.append(f"recovery still rising (FRR@0.9 +{100 * r:.0f} points over the last fifth of the steps)")
    dr = res.get("l0_drift_last_fifth")
    if dr is not None and dr == dr and dr > L0_DRIFT_BOUND:
        why.append(f"L0 still drifting ({100 * dr:.0f} % between the last two fifths of the steps)")
    return (not why, "; ".join(why))
