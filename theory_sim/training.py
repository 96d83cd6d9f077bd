"""The training loop: E models at once, each on its own data stream; step, adapt, check, evaluate.

Data can be the generator's (``GeneratorSpec`` per model), a user's tensor of samples (N, d), or a callable
returning batches (B, d); ground-truth features (n, d) are optional (without them only quality metrics).
Hyperparameters named ``X_over_f`` are resolved to ``X = value · f`` with f the spec's mean feature
frequency (e.g. ``p_over_f``, ``htf_over_f``, ``ltf_over_f``); ``X_over_s`` to ``X = value · f·n`` (the
expected L0, e.g. ``target_l0_over_s``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import metrics as M
from .device import check_graph, check_precision, matmul_precision, resolve_device
from .device import threads as threads_policy
from .errors import ConfigError, require
from .graphs import StepRunner
from .hyper import (  # noqa: F401  (re-exported: the training API's names)
    INPUT_SCALES,
    SCALE_ROWS,
    TRAIN_LIMITS,
    TrainConfig,
    derived_base,
    resolve_hyper,
    spec_scales,
)
from .model.counter import CounterSampler
from .model.sampler import STREAM_DATA, STREAM_EVAL, EnsembleSampler, ModelSampler, derive_seed
from .model.spec import GeneratorSpec
from .progress import bar as progress_bar
from .sae import Method, get_method


# ------------------------------------------------------------------------------------------ data sources
class GeneratorData:
    """E generator specs of equal (n, d)."""

    def __init__(self, specs: list[GeneratorSpec], device, counter: bool = False):
        """counter: training rows from the counter stream (model/counter.py; what a captured step draws)."""
        sampler = CounterSampler if counter else EnsembleSampler
        self.train = sampler(specs, device, STREAM_DATA)
        self.specs = specs
        self.V = self.train.V
        self.d = specs[0].d
        self.device = torch.device(device)

    def sample(self, B):
        return self.train.sample(B)

    def eval_batch(self, N):
        """(x (E, N, d), supports): the evaluation rows of each model (its own eval stream, the rows the
        ensemble sampler would draw) and, per model, H's non-zeros as (rows, cols, values)."""
        xs, supports = [], []
        for e, spec in enumerate(self.specs):
            sampler = ModelSampler(spec, self.device, STREAM_EVAL, features=self.V[e])
            x, rows, cols, vals = sampler.sample_with_support(N, values=True)
            xs.append(x)
            supports.append((rows, cols, vals))
        return torch.stack(xs), supports


class ScaledData:
    """Another data source divided by a per-model constant ``scale`` (E,): training and evaluation rows alike;
    the ground truth V (directions) is unchanged."""

    def __init__(self, inner, scale: torch.Tensor):
        self.inner, self.scale = inner, scale.view(-1, 1, 1)
        self.V, self.d, self.device = inner.V, inner.d, inner.device
        self.specs = getattr(inner, "specs", None)
        self.held_out = getattr(inner, "held_out", True)

    def sample(self, B):
        return self.inner.sample(B) / self.scale

    def eval_batch(self, N):
        x, supports = self.inner.eval_batch(N)
        return x / self.scale, supports


def measure_input_scale(data, how: str) -> torch.Tensor | None:
    """The per-model divisor (E,) of ``how`` (TrainConfig.input_scale), measured on rows the model may learn from —
    never on held-out rows: a user's array's first training rows (``TensorData.scale_rows``), fresh draws of the
    generator's distribution (its evaluation stream: samples, not a held-out set), fresh calls of a callable — or
    None for "none"."""
    if how == "none":
        return None
    rows = getattr(data, "scale_rows", None)
    x = rows(SCALE_ROWS) if rows is not None else data.eval_batch(SCALE_ROWS)[0]
    return x.norm(dim=-1).mean(-1).clamp_min(1e-12)


class TensorData:
    """A user's samples X (N, d); each model draws its own batch order (seeded). Evaluated on held-out rows,
    never on training rows: ``eval_data`` (N', d) when given, else the last ``holdout`` rows of X (which are
    then never drawn for training). ``activations``: the supports of X's rows — a dense (N, n) array of
    coefficients or an (nnz, 2) integer array of (row, feature) coordinates — for per-latent precision /
    recall / F1 / accuracy (``eval_activations`` likewise for ``eval_data``)."""

    held_out = True

    def __init__(
        self,
        X,
        seeds,
        device,
        ground_truth=None,
        activations=None,
        eval_data=None,
        eval_activations=None,
        holdout: int = 8192,
    ):
        X = _real_tensor(X, "data")
        require(
            X.ndim == 2 and X.shape[0] > 0 and X.shape[1] > 0,
            "data",
            f"must be a (N, d) array, got shape {tuple(X.shape)}",
        )
        require(bool(torch.isfinite(X).all()), "data", "contains NaN or inf")
        require(bool((X != 0).any()), "data", "every entry is 0: there is nothing to learn")
        self.d = X.shape[1]
        self.device = torch.device(device)
        self.gens = [torch.Generator(device=self.device).manual_seed(derive_seed(s, STREAM_DATA)) for s in seeds]
        self.V = _ground_truth(ground_truth, self.d, len(seeds), self.device)
        n = None if self.V is None else self.V.shape[1]
        require(activations is None or n is not None, "activations", "needs the ground truth V (--ground-truth)")
        support = None if activations is None else _supports(activations, X.shape[0], n, "activations")
        if eval_data is not None:
            ev = _real_tensor(eval_data, "eval_data")
            require(
                ev.ndim == 2 and ev.shape[0] > 0 and ev.shape[1] == self.d,
                "eval_data",
                f"must be a (N', d = {self.d}) array, got shape {tuple(ev.shape)}",
            )
            require(bool(torch.isfinite(ev).all()), "eval_data", "contains NaN or inf")
            require(eval_activations is None or n is not None, "eval_activations", "needs the ground truth V")
            require(
                not (activations is not None and eval_activations is None),
                "activations",
                "describe the training rows; with --eval-data the held-out rows need their own --eval-activations",
            )
            self.X, self.X_eval = X.to(device), ev.to(device)
            self.eval_support = (
                None if eval_activations is None else _supports(eval_activations, ev.shape[0], n, "eval_activations")
            )
        else:
            require(eval_activations is None, "eval_activations", "only with eval_data (the rows they describe)")
            require(
                X.shape[0] >= 2,
                "data",
                "needs at least 2 rows: the last ones are held out for evaluation (or give --eval-data)",
            )
            h = max(1, min(int(holdout), X.shape[0] // 5))
            cut = X.shape[0] - h
            self.X, self.X_eval = X[:cut].to(device), X[cut:].to(device)
            self.eval_support = None
            if support is not None:
                rows, cols = support
                keep = rows >= cut
                self.eval_support = (rows[keep] - cut, cols[keep])

    def sample(self, B):
        N = self.X.shape[0]
        return torch.stack([self.X[torch.randint(N, (B,), generator=g, device=self.device)] for g in self.gens])

    def scale_rows(self, N):
        """(E, N', d) the first N' ≤ N training rows (what the input scale is measured on: never held-out rows)."""
        return self.X[:N].unsqueeze(0).expand(len(self.gens), -1, -1)

    def eval_batch(self, N):
        x = self.X_eval[:N]
        sup = None
        if self.eval_support is not None:
            rows, cols = self.eval_support
            keep = rows < x.shape[0]
            sup = [(rows[keep].to(self.device), cols[keep].to(self.device))] * len(self.gens)
        return x.unsqueeze(0).expand(len(self.gens), -1, -1), sup


def _supports(H, N: int, n: int, field: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of the non-zero coefficients: from a dense (N, n) array, or an (nnz, 2) integer array of
    coordinates (``sample --save``'s H_indices.npy); ConfigError naming ``field`` when its shape or indices do
    not fit X (N rows) and V (n features)."""
    a = H if isinstance(H, torch.Tensor) else torch.as_tensor(np.asarray(H))
    if a.ndim == 2 and a.shape == (N, n) and (a.is_floating_point() or a.shape[1] != 2):
        require(
            bool(torch.isfinite(a).all()) if a.is_floating_point() else True,
            field,
            "holds NaN or inf coefficients; H must be finite and nonnegative",
        )
        require(bool((a >= 0).all()), field, "holds negative coefficients; H must be finite and nonnegative")
        nz = (a != 0).nonzero()
        return nz[:, 0].long(), nz[:, 1].long()
    require(
        a.ndim == 2 and a.shape[1] == 2 and not a.is_floating_point() and a.dtype != torch.bool,
        field,
        f"must be a dense (N = {N}, n = {n}) array of coefficients or an (nnz, 2) integer array of (row, feature) "
        f"coordinates, got shape {tuple(a.shape)} of {a.dtype}",
    )
    a = a.long()
    if a.numel():
        require(
            int(a[:, 0].min()) >= 0 and int(a[:, 0].max()) < N,
            field,
            f"row indices must lie in [0, {N}) (the rows of X), got {int(a[:, 0].min())}..{int(a[:, 0].max())}",
        )
        require(
            int(a[:, 1].min()) >= 0 and int(a[:, 1].max()) < n,
            field,
            f"feature indices must lie in [0, {n}) (the rows of V), got {int(a[:, 1].min())}..{int(a[:, 1].max())}",
        )
    return a[:, 0], a[:, 1]


class CallableData:
    """A callable ``fn(B) -> (B, d)`` tensor; called once per model per step."""

    def __init__(self, fn, E, device, ground_truth=None):
        self.fn, self.E, self.device = fn, E, torch.device(device)
        probe = self._call(2)
        self.d = probe.shape[1]
        self.V = _ground_truth(ground_truth, self.d, E, self.device)

    def _call(self, B):
        x = torch.as_tensor(self.fn(B), dtype=torch.float32, device=self.device)
        require(
            x.ndim == 2 and x.shape[0] == B, "data", f"callable must return a (B, d) array, got shape {tuple(x.shape)}"
        )
        require(bool(torch.isfinite(x).all()), "data", "callable returned NaN or inf")
        return x

    def sample(self, B):
        return torch.stack([self._call(B) for _ in range(self.E)])

    def eval_batch(self, N):
        return torch.stack([self._call(N) for _ in range(self.E)]), None


def _real_tensor(a, field: str) -> torch.Tensor:
    """A float32 tensor from an array-like of real numbers; complex, string, object or boolean input is a
    ConfigError (torch would drop an imaginary part silently)."""
    if isinstance(a, torch.Tensor):
        ok = not (a.is_complex() or a.dtype == torch.bool)
    else:
        try:
            a = np.asarray(a)
        except (TypeError, ValueError) as e:
            raise ConfigError(field, f"must be an array of real numbers ({e})") from None
        ok = a.dtype.kind in "fiu"
    if not ok:
        raise ConfigError(field, f"must hold real numbers, got dtype {a.dtype}")
    return torch.as_tensor(a, dtype=torch.float32)


def _ground_truth(V, d, E, device):
    if V is None:
        return None
    V = _real_tensor(V, "ground_truth")
    require(
        V.ndim == 2 and V.shape[1] == d and V.shape[0] >= 1,
        "ground_truth",
        f"must be (n, d) with n >= 1 and d = {d} matching the data, got shape {tuple(V.shape)}",
    )
    require(bool(torch.isfinite(V).all()), "ground_truth", "contains NaN or inf")
    zero = (V.norm(dim=1) == 0).nonzero().flatten()
    require(
        len(zero) == 0,
        "ground_truth",
        f"row {int(zero[0]) if len(zero) else 0} (of {V.shape[0]}) is all zeros; a true feature needs a direction",
    )
    return V.to(device).unsqueeze(0).expand(E, -1, -1)


# ------------------------------------------------------------------------------------------ the loop
#: steps between progress callbacks (a sweep's bar moves inside an ensemble)
PROGRESS_EVERY = 25


def train_ensemble(
    method: str,
    cfgs: list,
    data,
    seeds: list[int],
    tc: TrainConfig = TrainConfig(),
    progress: bool = True,
    keep_weights: bool = False,
    desc: str | None = None,
    on_steps=None,
    save_sae: str | None = None,
    replace: bool = False,
    replay: str | None = None,
) -> list[dict]:
    """Trains len(cfgs) models together; ``on_steps(k)`` (optional) hears every ``PROGRESS_EVERY`` steps
    that each model advanced k more steps. ``replay``: how the steps run (graphs.MODES; default "cuda" when
    ``tc.graph``, else "eager"; tests pass "emulate"). Returns one result dict per model:
    ``status`` ('done' | 'failed'), ``error``, metric scalars, ``seconds``, ``steps_per_second``, and
    ``arrays`` (per-feature best cosine, per-neuron frequency, FRR trajectory, optionally weights)."""
    cls = get_method(method)
    E = len(cfgs)
    device = data.device
    t0 = time.perf_counter()
    scale = measure_input_scale(data, tc.input_scale)
    if scale is not None:
        data = ScaledData(data, scale)
    x0 = data.sample(max(tc.batch, cls.INIT_ROWS))
    sae = cls(cfgs, data.d, seeds, device, x0, truth=data.V, specs=getattr(data, "specs", None), draw=data.sample)
    D0 = sae.decoder().clone()  # the random initialisation: its FRR is the chance level of the recovery metrics
    failed = [None] * E
    bad = torch.zeros(E, dtype=torch.bool, device=device)
    traj = [[] for _ in range(E)]
    align = [[] for _ in range(E)]  # (step, median 1 − best cos) per model, beside traj

    curves = [[] for _ in range(E)]  # (step, L0 on the step's batch, the step's loss) per model

    @torch.no_grad()
    def record(step, xb=None, loss=None):
        """The trajectory at ``step``: FRR@0.9 (with ground truth), and the L0 and loss of the step's own
        training batch (no extra data drawn: a user's callable is not called for it)."""
        if data.V is not None:
            D = sae.decoder()
            for e in range(E):
                fb = M.best_cosines(data.V[e], D[e])[0]
                traj[e].append((step, M.frr(fb, 0.9)))
                align[e].append((step, M.align_error(fb)))
        if xb is not None:
            l0 = (sae.forward(xb)[1] > 0).float().sum(-1).mean(-1).tolist()
            for e in range(E):
                curves[e].append((step, l0[e], float(loss[e])))

    # every run records FRR@0.9 at (at least) ten points, so convergence can ask whether recovery settled
    record_every = tc.record_every or cls.RECORD_EVERY or max(1, tc.steps // 10)
    if record_every:
        record(0)
    bar = progress_bar(
        total=tc.steps, desc=desc or method, file=sys.stderr, disable=not progress, delay=2.0, unit="step", leave=False
    )
    # the mean loss over the last tenth of the steps and the tenth before it: a run still falling fast
    # at its end was cut short (metrics.converged reads the relative drop). ``acc`` sums the losses since it was
    # last cleared (on the device, inside the step: a captured step adds to it on every replay)
    tenth = max(1, tc.steps // 10)
    acc = torch.zeros(E, device=device)
    loss_prev = torch.zeros(E, device=device)

    def one_step():
        xb = data.sample(tc.batch)
        with matmul_precision(tc.precision, device):  # the step only: recording and evaluation stay fp32
            loss = sae.train_step(xb)
        bad.logical_or_(~torch.isfinite(loss))
        acc.add_(loss)
        return xb, loss

    if tc.graph:
        sae.make_capturable()
    runner = StepRunner(one_step, sae, replay or ("cuda" if tc.graph else "eager"))
    t_loop = time.perf_counter()
    for step in range(1, tc.steps + 1):
        xb, loss = runner(step)
        if step == tc.steps - 2 * tenth:
            acc.zero_()
        elif step == tc.steps - tenth:
            loss_prev.copy_(acc)
            acc.zero_()
        if step % tc.check_every == 0 or step == tc.steps:
            if bool(bad.any()):
                for e in torch.nonzero(bad).flatten().tolist():
                    if failed[e] is None:
                        failed[e] = f"diverged: non-finite loss by step {step}"
                if all(failed):
                    break
        if record_every and step % record_every == 0:
            record(step, xb, loss)
        bar.update(1)
        if on_steps is not None and step % PROGRESS_EVERY == 0:
            on_steps(PROGRESS_EVERY)
    sae.step_count = step
    loss_last = acc
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps_done = step
    train_seconds = time.perf_counter() - t0
    loop_rate = steps_done / max(time.perf_counter() - t_loop, 1e-9)
    drop = ((loss_prev - loss_last) / loss_prev.abs().clamp_min(1e-12)).tolist() if tc.steps >= 20 else [math.nan] * E
    results = _evaluate(
        sae, data, tc, failed, traj, train_seconds, steps_done, keep_weights, D0, loop_rate, drop, curves, align
    )
    if scale is not None:  # stated in every result (and so in the store): the inputs were divided by it
        for e, r in enumerate(results):
            r["input_scale"] = float(scale[e])
    if runner.failed:  # graph = true, but a capture failed and the steps from there ran eagerly: said in each result
        for r in results:
            r["graph_fallback"] = runner.failed
    if save_sae is not None:
        _save_saes(sae, results, cfgs, seeds, tc, save_sae, replace, None if scale is None else scale.tolist())
    return results


def _save_saes(sae, results, cfgs, seeds, tc, folder, replace, scales) -> None:
    """Each finished model in SAELens's layout (sae/saved.py): ``folder`` for one model, ``folder/seed_S``
    for several; ``saved_sae`` in its result says where."""
    from .sae.saved import sae_dict, write_sae

    for e, r in enumerate(results):
        if r["status"] != "done":
            continue
        target = folder if len(results) == 1 else f"{folder}/seed_{seeds[e]}"
        meta = {"method": sae.name, "hyperparameters": cfgs[e].to_dict(), "seed": seeds[e], "train": tc.to_dict()}
        meta.update({k: r.get(k) for k in ("frr_0.9", "mcc", "l0", "explained_variance")})
        cfg, tensors = sae_dict(sae, e, None if scales is None else scales[e], meta)
        write_sae(target, cfg, tensors, replace=replace)
        r["saved_sae"] = str(target)


def frr_rise(traj: list[tuple[int, float]], steps: int) -> float:
    """How much FRR@0.9 rose over the last fifth of a run: its last recorded value minus the value at the
    last record at or before 80 % of the steps (NaN when the run has no record that early, or < 5 steps).
    traj: (step, FRR) pairs in step order."""
    early = [v for t, v in traj if t <= 0.8 * steps]
    if steps < 5 or not early or traj[-1][0] <= 0.8 * steps:
        return math.nan
    return traj[-1][1] - early[-1]


def l0_drift(curve: list[tuple[int, float, float]], steps: int) -> float:
    """How much the L0 of the training batches still moved at the end of a run: the mean L0 recorded in the last
    fifth of the steps against the mean in the fifth before, as a relative change |a − b| / b (NaN with < 10
    steps, or no record in either fifth). A feedback rule that has not settled (BA/GBA's biases still walking,
    an L0 controller still moving) shows here even when its average frequency error is within bound.
    curve: (step, L0, loss) records in step order."""
    last = [l0 for t, l0, _ in curve if t > 0.8 * steps]
    before = [l0 for t, l0, _ in curve if 0.6 * steps < t <= 0.8 * steps]
    if steps < 10 or not last or not before:
        return math.nan
    b = float(np.mean(before))
    return abs(float(np.mean(last)) - b) / max(b, 1e-12)


@torch.no_grad()
def _evaluate(
    sae, data, tc, failed, traj, train_seconds, steps_done, keep_weights, D0, loop_rate, drop, curves=None, align=None
):
    E = sae.E
    sae.evaluating = True  # inference codes from here on (BatchTopK: its learned threshold)
    x, supports = data.eval_batch(tc.eval_samples)
    chunks = [sae.forward(x[:, a : a + 4096]) for a in range(0, x.shape[1], 4096)]
    x_hat = torch.cat([c[0] for c in chunks], 1)
    z = torch.cat([c[1] for c in chunks], 1)
    targets = getattr(sae, "target", None)
    D = sae.decoder()
    reports = sae.report()
    results = []
    for e in range(E):
        res = {
            "status": "done",
            "error": None,
            "seconds": train_seconds,
            "steps": steps_done,
            "steps_per_second": loop_rate,
            "ensemble_size": E,
            "loss_drop_last_tenth": drop[e],
            "eval_rows": int(x.shape[1]),
            "eval_held_out": bool(getattr(data, "held_out", True)),
        }
        arrays = {}
        if failed[e] is None and not bool(torch.isfinite(D[e]).all()):
            failed[e] = "diverged: non-finite decoder weights"
        if failed[e] is not None:
            res.update(status="failed", error=failed[e])
            results.append({**res, "arrays": arrays})
            continue
        q, qa = M.quality_metrics(x[e], x_hat[e], z[e], None if targets is None else targets[e].flatten())
        if targets is not None:  # each neuron's target frequency (BA/GBA): the per-feature records read p/f_i
            arrays["neuron_target"] = targets[e].flatten().cpu().numpy()
        res.update(q)
        res.update(reports[e])
        arrays.update(qa)
        if data.V is not None:
            match = M.best_abs_match(data.V[e], D[e])  # shared by uniqueness and the per-latent metrics
            r, ra = M.recovery_metrics(data.V[e], D[e], match)
            res.update(r)
            if supports is not None:
                res.update(M.classification_metrics(z[e], D[e], data.V[e], *supports[e][:2], match=match))
            chance = M.best_cosines(data.V[e], D0[e])[0]
            res["chance_frr_0.9"] = M.frr(chance, 0.9)
            res["chance_frr_0.99"] = M.frr(chance, 0.99)
            arrays.update(ra)
            n_feat = data.V.shape[-2]
            specs = getattr(data, "specs", None)
            if specs is not None:  # the dictionary's measured incoherence (max and mean |cos| over pairs)
                from .model.stats import coherence

                res["mu_max"], res["mu_mean"] = coherence(data.V[e])
            f_spec = np.array(specs[e].feature_frequencies()) if specs is not None else np.full(n_feat, np.nan)
            fa = M.feature_activity(n_feat, x.shape[1], *(supports[e] if supports is not None else ()))
            arrays.update(feature_freq=f_spec, **fa)
            f_ref = np.where(np.isfinite(f_spec), f_spec, fa.get("feature_freq_eval", np.full(n_feat, np.nan)))
            res.update(M.frequency_match(f_ref, qa["neuron_freq"], ra["feature_matched"]))
        if traj[e]:
            arrays["frr_trajectory"] = np.array(traj[e], dtype=np.float64)
            res["frr_0.9_by_step"] = [v for _, v in traj[e]]
            res["frr_rise_last_fifth"] = frr_rise(traj[e], steps_done)
        if align and align[e]:
            arrays["align_trajectory"] = np.array(align[e], dtype=np.float64)
            res["align_error_by_step"] = [v for _, v in align[e]]
        if curves and curves[e]:  # (K, 3): step, L0 of that step's batch, that step's training loss
            arrays["trajectory"] = np.array(curves[e], dtype=np.float64)
            res["l0_drift_last_fifth"] = l0_drift(curves[e], steps_done)
        if tc.save_decoder:
            arrays["decoder"] = D[e].cpu().numpy()
        if keep_weights:
            for k, v in sae.state().items():
                if v.shape[0] == E:
                    arrays["w_" + k] = v[e].cpu().numpy()
        if not all(math.isfinite(v) for v in q.values()):
            res.update(status="failed", error="non-finite metrics")
        res["converged"], why = M.converged(res)
        if why:
            res["not_converged_because"] = why
        results.append({**res, "arrays": arrays})
    return results


def train(
    method: str = "ba",
    data=None,
    *,
    ground_truth=None,
    seeds=(0,),
    steps: int = 3000,
    batch: int = 512,
    eval_samples: int = 8192,
    record_every: int = 0,
    input_scale: str = "none",
    precision: str = "fp32",
    graph: bool = False,
    activations=None,
    eval_data=None,
    eval_activations=None,
    device="auto",
    progress: bool = True,
    keep_weights: bool = False,
    threads: int | None = None,
    save_sae: str | None = None,
    force: bool = False,
    **hyper,
) -> list[dict]:
    """Train ``len(seeds)`` models of ``method`` and return one result dict each (see ``train_ensemble``).

    data: a ``GeneratorSpec`` (its seed is replaced by each seed), a tensor/array (N, d) of samples, a
    callable ``fn(B) -> (B, d)``, or None (the default spec). ground_truth: (n, d) features for recovery
    metrics with user data. hyper: the method's hyperparameters (``p_over_f`` etc. allowed with a spec).
    activations: the supports of an array's rows (dense (N, n) or (nnz, 2) coordinates) for per-latent
    precision / recall / F1; eval_data / eval_activations: held-out evaluation rows (else the last rows of the
    array are held out). save_sae: a folder to save each trained SAE in SAELens's layout (``folder`` for one seed,
    ``folder/seed_S`` for several; ``theory_sim.load_sae`` or SAELens's ``SAE.load_from_disk`` reads it back),
    refused before training when it exists and is not empty, unless ``force``.
    """
    dev = resolve_device(device)
    if data is None or isinstance(data, GeneratorSpec):
        for k, v in (("activations", activations), ("eval_data", eval_data), ("eval_activations", eval_activations)):
            require(v is None, k, "only with array data (the generator knows its own supports and draws fresh rows)")
    seeds = list(seeds)
    require(len(seeds) >= 1, "seeds", "give at least one seed")
    for s in seeds:  # the same rule on every path (generator, array, callable)
        require(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < 2**63,
            "seed",
            f"seeds must be integers in [0, 2^63), got {s!r}",
        )
    seeds = [int(s) for s in seeds]
    tc = TrainConfig(
        steps=steps,
        batch=batch,
        eval_samples=eval_samples,
        record_every=record_every,
        input_scale=input_scale,
        precision=precision,
        graph=graph,
    )
    check_precision(tc.precision, dev)
    generated = data is None or isinstance(data, GeneratorSpec)
    if generated:
        spec = data or GeneratorSpec()
        specs = [spec.replace(seed=s) for s in seeds]
        src = GeneratorData(specs, dev, counter=tc.graph)
        f, l0, n_features = spec_scales(spec)
        if ground_truth is not None:
            raise ConfigError(
                "ground_truth", "the generator supplies its own features; give ground_truth only with user data"
            )
    elif callable(data):
        require(activations is None and eval_data is None, "activations", "only with array data")
        src, f, l0, n_features = CallableData(data, len(seeds), dev, ground_truth), None, None, None
    else:
        src = TensorData(data, seeds, dev, ground_truth, activations, eval_data, eval_activations, eval_samples)
        f, l0 = None, None
        n_features = None if src.V is None else src.V.shape[-2]
    cfg = resolve_hyper(method, hyper, f, l0, n_features)
    check_graph(tc.graph, dev, method, cfg, data="generator" if generated else "array or callable")
    n = src.V.shape[-2] if getattr(src, "V", None) is not None else 0
    check_memory(len(seeds), n, src.d, cfg.width, tc, dev)
    if save_sae is not None:
        from .errors import check_folder

        check_folder(save_sae, "save_sae", empty=not force)  # before training, not after
        from .sae.saved import check_replaceable

        reads = [
            x for x in (data, eval_data, ground_truth, activations, eval_activations) if isinstance(x, (str, Path))
        ]
        check_replaceable(save_sae, reads)
        sae_cls = get_method(method)
        if sae_cls.saelens is Method.saelens:
            raise ConfigError("save_sae", f"{method} has no SAELens architecture to save as")
    with threads_policy(threads):
        return train_ensemble(
            method, [cfg] * len(seeds), src, seeds, tc, progress, keep_weights, save_sae=save_sae, replace=force
        )


#: the share of the device's memory one ensemble may be estimated to need before it is refused
MEMORY_SHARE = 0.8


def estimate_bytes(E: int, n: int, d: int, width: int, tc: TrainConfig) -> int:
    """A rough upper estimate of one ensemble's memory (float32): per model the parameters with their
    gradients and Adam's two moments (≈ 6·d·M), a handful of (B, M) training buffers and a (B, d) batch, an
    evaluation chunk of at most 8192 rows × M plus the (n, M) cosine table, and V (n, d)."""
    B, M = tc.batch, width
    ev = min(tc.eval_samples, 8192)
    per_model = 6 * d * M + 6 * B * M + 2 * B * d + 2 * ev * M + ev * d + 2 * n * M + n * d
    return 4 * E * per_model


def device_memory(dev) -> int:
    """Bytes of memory of the device (CUDA: the card's; CPU: the machine's physical memory)."""
    if dev.type == "cuda":
        return torch.cuda.get_device_properties(dev).total_memory
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def check_memory(E: int, n: int, d: int, width: int, tc: TrainConfig, dev, field: str = "width") -> None:
    """ConfigError (naming ``field``, with the estimate) when ``estimate_bytes`` exceeds MEMORY_SHARE of the
    device's memory: refused before anything is allocated, instead of an allocator failure mid-run."""
    need, have = estimate_bytes(E, n, d, width, tc), device_memory(torch.device(dev))
    if need > MEMORY_SHARE * have:
        raise ConfigError(
            field,
            f"{E} model(s) of width {width} with batch {tc.batch}, d = {d}, n = {n} need about {need / 2**30:.1f} GiB, "
            f"more than {MEMORY_SHARE:.0%} of this {torch.device(dev).type} device's {have / 2**30:.1f} GiB; "
            "shrink width, batch or seeds",
        )
