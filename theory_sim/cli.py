"""The ``theory-sim`` command.  Bad input: one line on stderr naming the field, exit code 2."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import typing

from .device import choose_threads, resolve_device, set_threads
from .errors import ConfigError, Interrupted, StoreError
from .model.spec import GeneratorSpec

EXIT_BAD_INPUT = 2
MAX_SEEDS = 1024  # `train --seeds`: one ensemble
MAX_SAMPLES = 10**9  # `sample --samples`: measured in batches, but 10^9 rows already take hours
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _number_list(text: str) -> tuple:
    out = []
    for part in text.split(","):
        v = float(part)
        out.append(int(v) if v.is_integer() and "." not in part and "e" not in part.lower() else v)
    return tuple(out)


def add_generator_options(p: argparse.ArgumentParser) -> None:
    """One ``--option`` per GeneratorSpec field (underscores become dashes)."""
    from .params import declared

    hints = typing.get_type_hints(GeneratorSpec)
    decl = declared(GeneratorSpec)
    g = p.add_argument_group("data model (X = H V + noise)")
    for f in dataclasses.fields(GeneratorSpec):
        hint = str(hints[f.name])
        if "tuple" in hint:
            typ = _number_list
        elif "bool" in hint:
            typ = _bool
        elif f.name == "s" or "float" in hint:
            typ = float
        elif "int" in hint:
            typ = int
        else:
            typ = str
        g.add_argument(
            "--" + f.name.replace("_", "-"),
            dest="gen_" + f.name,
            type=typ,
            default=None,
            help=f"{decl[f.name].help}; {decl[f.name].constraint.describe()} (default {f.default})".replace("%", "%%"),
        )


def generator_spec_from_args(args, base: GeneratorSpec | None = None) -> GeneratorSpec:
    """The spec the options describe; with ``base`` (a reloaded spec), the options given override it."""
    kw = {k[4:]: v for k, v in vars(args).items() if k.startswith("gen_") and v is not None}
    if isinstance(kw.get("s"), float) and kw["s"].is_integer():
        kw["s"] = int(kw["s"])
    for k, v in kw.items():
        if isinstance(v, float) and math.isnan(v):
            raise ConfigError(k, "must be a number, got NaN")
    if base is not None:
        return base.replace(**kw)
    return GeneratorSpec(**kw)


def dump_json(obj) -> str:
    """``--json`` output: store.to_json's convention (NaN null, ±inf "inf" / "-inf"), keys in their order."""
    from .store import to_json

    return to_json(obj, sort_keys=False)


# ---------------------------------------------------------------------- commands
def cmd_sample(args) -> int:
    base = None
    if args.spec:
        from .model.export import load_spec

        base = load_spec(args.spec)
    spec = generator_spec_from_args(args, base=base)
    if not 0 < args.samples <= MAX_SAMPLES:
        raise ConfigError("samples", f"must be in [1, {MAX_SAMPLES}], got {args.samples}")
    from .model.export import check_save_dir, save_sample
    from .model.stats import measure

    device = resolve_device(args.device)
    set_threads()
    if args.save is not None:
        check_save_dir(args.save)  # before drawing anything
        shapes = save_sample(spec, args.samples, args.save, device)
        print(
            f"wrote {', '.join(f'{k} {tuple(v)}' for k, v in shapes.items())} and spec.json to {args.save}",
            file=sys.stderr,
        )
    stats = measure(spec, args.samples, device=device)
    if args.json:
        print(dump_json(stats))
    else:
        for k, v in stats.items():
            print(f"{k:>14}: {v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="theory-sim",
        description="Theory-verification simulations for sparse autoencoders "
        "(Chen et al., provable feature recovery by bias adaptation).",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sp = sub.add_parser("sample", help="draw data from the model and print its measured statistics")
    add_generator_options(sp)
    sp.add_argument("--samples", type=int, default=20000, help="rows to draw (default 20000)")
    sp.add_argument("--device", default="cpu", help="auto | cpu | cuda | cuda:N (default cpu)")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument(
        "--save",
        metavar="DIR",
        help="also write X.npy (N, d), V.npy (n, d), H as H_indices.npy / "
        "H_values.npy and spec.json into DIR (new or empty): data other tools can train on",
    )
    sp.add_argument("--spec", metavar="FILE", help="start from a saved spec.json (options given override it)")
    sp.set_defaults(func=cmd_sample)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _bool(text: str) -> bool:
    t = text.lower()
    if t not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return t in ("true", "1", "yes")


def add_method_options(p: argparse.ArgumentParser) -> None:
    """One option per hyperparameter of any registered method, plus ``--X-over-f`` / ``--X-over-s`` for the
    fields a method declares as data-scaled (``param(..., scale=)``)."""
    from .params import declared, scales
    from .sae.configs import CONFIGS

    g = p.add_argument_group("method hyperparameters (each method accepts its own; docs/methods.md)")
    seen, scaled = {}, {}
    for name, cfg in sorted(CONFIGS.items()):
        decl = declared(cfg)
        scaled.update(scales(cfg))
        for f in dataclasses.fields(cfg):
            text = f"{decl[f.name].help}; {decl[f.name].constraint.describe()}"
            typ, users, text = seen.setdefault(f.name, (type(f.default), {}, text))
            users[name] = f.default
    words = {"f": "the mean feature frequency f", "s": "the data's expected L0 s", "n": "the number of features n"}
    for field, (typ, users, text) in sorted(seen.items()):
        conv = _bool if typ is bool else (int if typ is int else (float if typ is float else str))
        defaults = set(map(repr, users.values()))
        dflt = (
            f"default {next(iter(users.values()))}"
            if len(defaults) == 1
            else "default " + ", ".join(f"{m} {v}" for m, v in users.items())
        )
        g.add_argument(
            "--" + field.replace("_", "-"),
            dest="hp_" + field,
            type=conv,
            default=None,
            metavar=conv.__name__.lstrip("_").upper(),
            help=f"{text} [{', '.join(users)}; {dflt}]".replace("%", "%%"),
        )
        if field in scaled:
            ref = scaled[field]
            g.add_argument(
                f"--{field.replace('_', '-')}-over-{ref}",
                dest=f"hp_{field}_over_{ref}",
                type=float,
                default=None,
                metavar="FLOAT",
                help=f"{field} as a multiple of {words[ref]}",
            )


def method_params_from_args(args) -> dict:
    out = {}
    for k, v in vars(args).items():
        if k.startswith("hp_") and v is not None:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(k[3:], f"must be a finite number, got {v}")
            out[k[3:]] = v
    return out


def cmd_train(args) -> int:
    from .hyper import TrainConfig, resolve_hyper, spec_scales
    from .model.npy import load_array
    from .sae.configs import get_config

    get_config(args.method)
    hyper = method_params_from_args(args)
    data, gt, acts, eval_x, eval_acts = None, None, None, None, None
    if args.eval_activations and not args.eval_data:
        raise ConfigError("eval_activations", "only with --eval-data (the held-out rows they describe)")
    if args.save_sae is not None:  # before anything is read or trained: what --force may replace
        from .errors import check_folder
        from .sae.saved import check_replaceable

        check_folder(args.save_sae, "save_sae", empty=not args.force)
        check_replaceable(
            args.save_sae, [args.data, args.ground_truth, args.activations, args.eval_data, args.eval_activations]
        )
    if args.data:
        given = [k[4:] for k, v in vars(args).items() if k.startswith("gen_") and v is not None and k != "gen_seed"]
        if given:
            raise ConfigError(
                given[0],
                "is a generator option; with --data the array fixes the data (only --seed, "
                "the batch order and initialisation, applies)",
            )
        import os

        if os.path.isdir(args.data):  # a folder written by `sample --save`: X, V and H together
            folder = args.data
            for f in ("X.npy", "V.npy", "H_indices.npy"):
                if not os.path.isfile(os.path.join(folder, f)):
                    raise ConfigError(
                        "data",
                        f"{folder!r} has no {f}; a folder written by theory-sim sample --save holds X.npy, V.npy, "
                        "H_indices.npy, H_values.npy and spec.json",
                    )
            for k in ("ground_truth", "activations"):
                if getattr(args, k):
                    raise ConfigError(
                        k, f"--data {folder} already gives it (its {'V' if k == 'ground_truth' else 'H'})"
                    )
            from .model.export import check_sample_folder

            data = load_array(os.path.join(folder, "X.npy"), "data")
            gt = load_array(os.path.join(folder, "V.npy"), "data")
            acts = load_array(os.path.join(folder, "H_indices.npy"), "data", integer=True)
            check_sample_folder(folder, data, gt, acts)  # spec, V's provenance, H, and X ≈ H V (+ noise)
        else:
            data = load_array(args.data, "data")
            if args.ground_truth:
                gt = load_array(args.ground_truth, "ground_truth")
            if args.activations:
                acts = load_array(args.activations, "activations", integer=None)
        if args.eval_data:
            eval_x = load_array(args.eval_data, "eval_data")
        if args.eval_activations:
            eval_acts = load_array(args.eval_activations, "eval_activations", integer=None)
    else:
        data = generator_spec_from_args(args)
        for k in ("ground_truth", "activations", "eval_data", "eval_activations"):
            if getattr(args, k):
                raise ConfigError(k, "only with --data (the generator knows its own features and draws fresh rows)")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise ConfigError("seeds", f"must be in [1, {MAX_SEEDS}] (one ensemble), got {args.seeds}")
    if args.record_every is not None and not 1 <= args.record_every <= args.steps:
        raise ConfigError("record_every", f"must be an integer in [1, --steps = {args.steps}], got {args.record_every}")
    seeds = [(args.gen_seed or 0) + i for i in range(args.seeds)]
    if not (0 <= seeds[0] and seeds[-1] < 2**63):
        raise ConfigError(
            "seed", f"--seed + --seeds - 1 must be below 2^63 (seeds are integers in [0, 2^63)), got {seeds[-1]}"
        )
    # the checks train() repeats, here before torch is imported: a refusal of bad input costs no import
    TrainConfig(
        steps=args.steps,
        batch=args.batch,
        eval_samples=args.eval_samples,
        input_scale=args.input_scale,
        precision=args.precision,
        graph=args.graph,
    )
    if not args.data:
        resolve_hyper(args.method, hyper, *spec_scales(data))
    from .training import train

    res = train(
        args.method,
        data,
        ground_truth=gt,
        activations=acts,
        eval_data=eval_x,
        eval_activations=eval_acts,
        seeds=seeds,
        steps=args.steps,
        batch=args.batch,
        eval_samples=args.eval_samples,
        record_every=args.record_every or 0,
        input_scale=args.input_scale,
        precision=args.precision,
        graph=args.graph,
        device=args.device,
        progress=not args.no_progress,
        threads=args.threads,
        save_sae=args.save_sae,
        force=args.force,
        **hyper,
    )
    from .store import trajectory_of

    for r in res:
        arrays = r.pop("arrays")
        if "frr_curve" in arrays:
            r["frr_curve"] = [float(v) for v in arrays["frr_curve"]]
        traj = trajectory_of(arrays)
        if traj is not None:
            r["trajectory"] = traj
        r["method"], r["device"] = args.method, str(resolve_device(args.device))
    for i, r in enumerate(res):
        if r.get("converged") is False:
            print(f"warning: seed {seeds[i]} did not converge: {r.get('not_converged_because')}", file=sys.stderr)
        if (r.get("bias_at_floor") or 0) > 0.5 and args.input_scale == "none":
            print(
                f"warning: seed {seeds[i]}: {100 * r['bias_at_floor']:.0f} % of the biases ended at the rule's floor "
                "-1; the inputs are likely too large for the bias range: --input-scale mean_norm divides them by "
                "their mean row norm",
                file=sys.stderr,
            )
    out = res[0] if len(res) == 1 else res
    if args.json:
        print(dump_json(out))
    else:
        for r in res:
            print(
                "  ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in r.items()
                    if not isinstance(v, list)
                )
            )
    return 0 if all(r["status"] == "done" for r in res) else 1


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: the cores not already busy, from the load average; or THEORY_SIM_THREADS)",
    )


def _register_train(sub) -> None:
    from .sae.configs import CONFIGS

    tp = sub.add_parser("train", help="train one method (several seeds = one ensemble) and print its metrics")
    tp.add_argument("--method", default="ba", help=f"one of {', '.join(sorted(CONFIGS))} (default ba)")
    add_generator_options(tp)
    add_method_options(tp)
    tp.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    tp.add_argument("--batch", type=int, default=512, help="rows per step (default 512)")
    tp.add_argument("--eval-samples", type=int, default=8192, help="rows the metrics are computed on (default 8192)")
    tp.add_argument(
        "--input-scale",
        default="none",
        choices=["none", "mean_norm"],
        help="divide the inputs (generator or --data) by their mean row norm, measured on 8192 evaluation rows, "
        "so pre-activations are O(1) (stated in the output as input_scale; default none)",
    )
    tp.add_argument(
        "--precision",
        default="fp32",
        help="training matmuls: fp32 (default) or tf32 (CUDA tensor cores only; the evaluation stays fp32)",
    )
    tp.add_argument(
        "--graph",
        action="store_true",
        help="capture each step in a CUDA graph and replay it, data drawn on the device from the counter stream "
        "(CUDA only; generator data; every method but a TopK with auxk > 0)",
    )
    tp.add_argument(
        "--record-every",
        type=int,
        default=None,
        metavar="N",
        help="record the trajectory every N steps (FRR@0.9 with ground truth, L0 and loss of the step's batch); "
        "--json prints it as 'trajectory' (default: the method's own, mba every step, else none)",
    )
    tp.add_argument("--seeds", type=int, default=1, help="train this many seeds (seed, seed+1, ...) as one ensemble")
    tp.add_argument(
        "--data",
        help="a .npy (N, d) array of your own samples instead of the generator, or a folder written by "
        "theory-sim sample --save (X, V and H: per-latent precision/recall/F1 on held-out rows)",
    )
    tp.add_argument("--ground-truth", help="a .npy (n, d) array of true features for --data")
    tp.add_argument(
        "--activations",
        help="the supports of --data's rows: a .npy dense (N, n) array of coefficients or an (nnz, 2) integer "
        "array of (row, feature) coordinates (sample --save's H_indices.npy); needs --ground-truth",
    )
    tp.add_argument(
        "--eval-data",
        help="a .npy (N', d) array of evaluation rows (default: the last min(eval-samples, N/5) rows of --data, "
        "held out from training)",
    )
    tp.add_argument("--eval-activations", help="the supports of --eval-data's rows (as --activations)")
    tp.add_argument(
        "--save-sae",
        metavar="DIR",
        help="save the trained SAE in SAELens's layout (cfg.json + sae_weights.safetensors; DIR/seed_S for "
        "several seeds): SAELens's SAE.load_from_disk(DIR) and theory_sim.load_sae(DIR) read it",
    )
    tp.add_argument("--force", action="store_true", help="with --save-sae: replace a folder that is not empty")
    tp.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (card N)")
    tp.add_argument("--no-progress", action="store_true")
    _add_threads(tp)
    tp.add_argument("--json", action="store_true", help="print one JSON object (a list for several seeds)")
    tp.set_defaults(func=cmd_train)


def cmd_sweep(args) -> int:
    from .sweep.spec import load_sweep

    sweep = load_sweep(args.file, args.budget)
    resolve_device(args.device)
    from .sweep.runner import run_sweep

    if args.dry_run:
        from .device import choose_threads
        from .sweep.runner import format_plan, plan_sweep

        choose_threads(args.threads)  # what the run checks first (--threads, THEORY_SIM_THREADS): the same refusal
        plan = plan_sweep(sweep, args.out, args.device, args.max_batch, args.force)
        print(dump_json(plan) if args.json else format_plan(plan))
        return 0
    s = run_sweep(
        sweep,
        args.out,
        device=args.device,
        executor=args.executor,
        workers=args.workers,
        scheduler=args.scheduler,
        max_batch=args.max_batch,
        force=args.force,
        progress=not args.no_progress,
        retry_failed=args.retry_failed,
        worker_timeout=args.worker_timeout,
        threads=args.threads,
    )
    refined = (
        f" ({s.refined} of them added by {s.rounds} refinement rounds or a grid edge's extension)" if s.refined else ""
    )
    print(
        f"{sweep.name} [{args.budget}]: {s.total} cells{refined}, {s.already_done} already done, ran {s.ran} "
        f"({s.failed} failed) in {s.seconds:.1f}s -> {args.out}",
        file=sys.stderr,
    )
    if s.not_converged:
        print(
            f"warning: {s.not_converged} of the {s.ran} cells just run did not converge ("
            + ", ".join(f"{k}: {v}" for k, v in s.not_converged_kinds.items())
            + f"); theory-sim status {args.out} counts them per method, the plots mark them",
            file=sys.stderr,
        )
    if args.plot:
        from .plots import plot_sweep

        for p in plot_sweep(args.out):
            print(p)
    return 0


def cmd_status(args) -> int:
    from .store import existing

    store = existing(args.out)
    if args.show_sweep:
        meta = store.meta()
        print(
            f"# sweep {meta.get('sweep_name')!r} from {meta.get('sweep_path')}, budget {meta.get('sweep_budget')}, "
            f"design {meta.get('design') or '?'}, generation {meta.get('generation', 1)}"
        )
        print(meta.get("sweep_source", ""))
        return 0
    if args.check:
        problems = store.check()
        for h, what in problems:
            print(f"{h}: {what}")
        cells = {h for h, _ in problems if h != "meta"}
        print(
            f"{args.out}: every row and array is readable"
            if not problems
            else f"{args.out}: {len(problems)} problems; a rerun of the sweep command on this folder repairs them "
            f"and trains {len(cells)} cells again"
        )
        return 1 if problems else 0
    from .sweep.runner import status_table

    t = status_table(args.out)
    print(t.to_string() if not t.empty else "no cells")
    return 0


def cmd_export(args) -> int:
    from .outputs import atomic_file, check_output
    from .store import load_results, writer_lock

    if not args.csv and not args.parquet:
        raise ConfigError("export", "give --csv FILE and/or --parquet FILE")
    targets = [(f, t) for f, t in (("csv", args.csv), ("parquet", args.parquet)) if t is not None]
    for field, target in targets:
        check_output(target, field, stores=[args.out])
    if args.parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError("parquet", "needs pyarrow: pip install 'theory-sim[parquet]'") from None
    df = load_results(args.out, per_feature=args.per_feature)  # validates the store before anything is written
    with writer_lock(args.out, "export", required=False):
        for field, target in targets:
            with atomic_file(target) as tmp:
                (df.to_csv if field == "csv" else df.to_parquet)(tmp, index=False)
            print(f"wrote {len(df)} rows to {target}")
    return 0


def _register_sweep(sub) -> None:
    sp = sub.add_parser("sweep", help="run a sweep file into a results folder (resumable)")
    sp.add_argument("file", help="sweeps/NAME.toml")
    sp.add_argument("--out", required=True, help="results folder (SQLite store + arrays)")
    sp.add_argument(
        "--budget",
        default="full",
        choices=["tiny", "quick", "full"],
        help="the file's [budgets.tiny|quick] overrides, or full: the file as written (default full)",
    )
    sp.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (card N)")
    sp.add_argument("--executor", default="local", choices=["local", "dask"])
    sp.add_argument("--workers", type=int, default=2, help="Dask LocalCluster worker processes")
    sp.add_argument(
        "--scheduler", help="tcp://HOST:PORT of an existing Dask scheduler (a trusted cluster: Dask pickles tasks)"
    )
    sp.add_argument(
        "--worker-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for a Dask scheduler to answer and have a worker (default 60)",
    )
    sp.add_argument("--max-batch", type=int, default=None, help="models per ensemble (default 8 on CPU, 64 on CUDA)")
    sp.add_argument(
        "--force",
        action="store_true",
        help="run on an --out made by another sweep file or another design of this one (another budget, grid, "
        "methods, refine tables or seeds) as a new generation: the old cells stay stored, never pooled with it",
    )
    sp.add_argument("--retry-failed", action="store_true", help="run failed cells again")
    sp.add_argument(
        "--dry-run",
        action="store_true",
        help="validate everything and print cells, models and an estimated time per method; write nothing",
    )
    sp.add_argument("--json", action="store_true", help="with --dry-run: the plan as one JSON object")
    sp.add_argument("--plot", action="store_true", help="draw the sweep's figures when done")
    sp.add_argument("--no-progress", action="store_true")
    _add_threads(sp)
    sp.set_defaults(func=cmd_sweep)
    st = sub.add_parser("status", help="done / failed / pending cells per method of a results folder")
    st.add_argument("out")
    st.add_argument(
        "--check",
        action="store_true",
        help="verify every stored row and array (sizes, zip CRC) and list what a rerun would repair; exit 1 if any",
    )
    st.add_argument(
        "--show-sweep",
        action="store_true",
        help="print the sweep file the folder was last run with (as stored), its budget, design and generation",
    )
    st.set_defaults(func=cmd_status)
    ex = sub.add_parser("export", help="write a results folder as CSV (and Parquet if pyarrow is present)")
    ex.add_argument("out")
    ex.add_argument("--csv")
    ex.add_argument("--parquet")
    ex.add_argument(
        "--per-feature",
        action="store_true",
        help="one row per (cell, true feature): f, f_eval, h, best and matched latent, their cosines and firing "
        "frequencies, log2 of the matched latent's frequency over f (docs/science.md §5)",
    )
    ex.set_defaults(func=cmd_export)


def cmd_boundary(args) -> int:
    from .results import check_boundary_options, load_boundaries

    check_boundary_options(args.metric, args.level, args.tolerance)  # whatever the store holds
    found = load_boundaries(args.out, axis=args.axis, metric=args.metric, level=args.level, tolerance=args.tolerance)
    if args.json:
        print(dump_json(found))
        return 0
    if not found:
        print("no crossings")
    for b in found:
        row = ", ".join(f"{k} = {v}" for k, v in b["row"].items())
        iv = "" if math.isnan(b["low"]) else f" [{b['low']:.4g}, {b['high']:.4g}]"
        print(
            f"{b['label']}{' (' + row + ')' if row else ''}: {b['metric']} {b['direction']} through {b['level']:g} "
            f"at {b['axis']} = {b['estimate']:.4g}{iv}; bracket {b['lower']:.4g}–{b['upper']:.4g} "
            f"({b['bracket_width']:.2g} tolerance units, {'decided' if b['decided'] else 'ends undecided'}), "
            f"{b['cells']} cells, {b['seeds']} seeds"
        )
    return 0


def cmd_plot(args) -> int:
    from .store import existing

    existing(args.out)
    from .plots import plot_sweep

    for p in plot_sweep(args.out, x=args.x, y=args.y, metric=args.metric, fig_dir=args.fig_dir):
        print(p)
    return 0


def _register_plot(sub) -> None:
    pp = sub.add_parser("plot", help="draw a results folder's phase diagram and curves (PNG, PDF, CSV)")
    pp.add_argument("out", help="results folder")
    pp.add_argument("--x", help="x axis (default: the sweep's [plot] x)")
    pp.add_argument("--y", help="y axis for a phase diagram (default: the sweep's [plot] y)")
    pp.add_argument("--metric", help="frr_0.8 | frr_0.9 | frr_0.95 | frr_0.99 | mmcs | mcc | ... (default frr_0.9)")
    pp.add_argument("--fig-dir", help="where to write figures (default OUT/figures)")
    pp.set_defaults(func=cmd_plot)


def cmd_reproduce(args) -> int:
    from .report import EXPERIMENTS, reproduce

    resolve_device(args.device)
    exps = args.only.split(",") if args.only else list(EXPERIMENTS)
    for e in exps:
        if e not in EXPERIMENTS:
            raise ConfigError("only", f"unknown experiment {e!r}; allowed: {', '.join(EXPERIMENTS)}")
    path = reproduce(
        args.out,
        args.budget,
        args.device,
        exps,
        progress=not args.no_progress,
        threads=args.threads,
        graph=args.graph,
        precision=args.precision,
    )
    print(path)
    return 0


def _register_reproduce(sub) -> None:
    rp = sub.add_parser("reproduce", help="run the paper's experiments, draw their figures and write REPORT.md")
    rp.add_argument("--out", required=True)
    rp.add_argument(
        "--budget",
        default="quick",
        choices=["tiny", "quick", "full"],
        help="tiny: seconds (a smoke test); quick: the committed figures (about an hour on 2 cores); "
        "full: the sweep files as written, 5 seeds (a GPU's work: docs/gpu.md; default quick)",
    )
    rp.add_argument("--device", default="auto")
    rp.add_argument("--only", help="comma list of experiments (default: all)")
    rp.add_argument(
        "--graph",
        action="store_true",
        help="train every cell that can be captured as CUDA graphs on the counter stream (CUDA only; the report "
        "counts them), the others eagerly",
    )
    rp.add_argument(
        "--precision",
        default="fp32",
        help="fp32 (default) or tf32: every cell's training matmuls in TF32, the evaluation in fp32 (CUDA only; "
        "how to decide whether TF32 moves a verdict: docs/gpu.md)",
    )
    rp.add_argument("--no-progress", action="store_true")
    _add_threads(rp)
    rp.set_defaults(func=cmd_reproduce)


def cmd_bench(args) -> int:
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    except ValueError:
        raise ConfigError(
            "sizes", f"must be a comma list of integers in [1, {MAX_SEEDS}], got {args.sizes!r}"
        ) from None
    if not all(1 <= e <= MAX_SEEDS for e in sizes):
        raise ConfigError("sizes", f"ensemble sizes must be in [1, {MAX_SEEDS}], got {args.sizes!r}")
    if not (math.isfinite(args.seconds) and 0 < args.seconds <= 600):
        raise ConfigError("seconds", f"must be in (0, 600], got {args.seconds}")
    if not 0 <= args.diagram <= 64:
        raise ConfigError("diagram", f"must be an integer in [0, 64] (values per axis; 0: none), got {args.diagram}")
    methods = tuple(args.methods.split(","))
    from .sae.configs import get_config

    for m in methods:
        get_config(m)
    dev = resolve_device(args.device)
    from .bench import format_bench, run_bench

    if args.threads is not None:  # else bench measures the whole machine
        set_threads(args.threads)
    b = run_bench(
        dev,
        methods,
        sizes,
        args.seconds,
        grid=not args.no_grid,
        refine=args.refine,
        api=args.api,
        precision=args.precision,
        graph=args.graph,
        diagram=args.diagram,
        scaling=args.scaling,
    )
    print(dump_json(b) if args.json else format_bench(b))
    return 0


def _register_bench(sub) -> None:
    bp = sub.add_parser("bench", help="measure training speed against this machine's matmul peak")
    bp.add_argument("--device", default="auto")
    bp.add_argument("--methods", default="ba,gba,topk,l1")
    bp.add_argument("--sizes", default="1,8,32", help="ensemble sizes E")
    bp.add_argument("--seconds", type=float, default=2.0, help="timing window per configuration")
    bp.add_argument("--no-grid", action="store_true", help="skip the batched-vs-serial quickstart grid")
    bp.add_argument(
        "--refine",
        action="store_true",
        help="also measure boundary finding: a uniform grid at the final "
        "resolution vs adaptive refinement, in one run (a few minutes on 2 cores)",
    )
    bp.add_argument(
        "--api",
        action="store_true",
        help="also compare theory_sim.train (the Python API) with the CLI on one job while a 2-thread process "
        "competes (about a minute)",
    )
    bp.add_argument("--json", action="store_true")
    bp.add_argument(
        "--precision", default="fp32", help="fp32 (default) or tf32: train the rows with TF32 matmuls (CUDA only)"
    )
    bp.add_argument(
        "--graph",
        action="store_true",
        help="also time every row with its step captured as CUDA graphs, in this run, and set the ratio against "
        "the goals (≥ 10x at E = 8, ≥ 3x at E = 256; CUDA only)",
    )
    bp.add_argument(
        "--scaling",
        action="store_true",
        help="also time the scaling experiments' shapes: Modified BA at theorem_scaling's n 2048 and 4096 cells (per "
        "chunk of 16,384 rows), BA and TopK at resonance_heavy's cell (n 2048, d 40, width 4096)",
    )
    bp.add_argument(
        "--diagram",
        type=int,
        default=0,
        metavar="N",
        help="also time an N × N × 3-seed resonance diagram of BA at the full budget's width and steps (a GPU's "
        "work: N = 20 is 1,200 models; with --graph, captured)",
    )
    bp.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all of this machine's)")
    bp.set_defaults(func=cmd_bench)


def _register_boundary(sub) -> None:
    bp = sub.add_parser(
        "boundary",
        help="where a metric crosses a level along an axis, per method and row (the sweep's [refine] table by default)",
    )
    bp.add_argument("out", help="results folder")
    bp.add_argument("--axis", help="axis to read crossings along (default: [refine] axis, else [plot] x)")
    bp.add_argument("--metric", help="default: [refine] metric, else the [plot] metric, else frr_0.9")
    bp.add_argument("--level", type=float, help="default: [refine] level, else 0.5")
    bp.add_argument("--tolerance", type=float, help="bracket width unit for bracket_width (ratio on a log axis)")
    bp.add_argument("--json", action="store_true", help="print a JSON list, one object per crossing")
    bp.set_defaults(func=cmd_boundary)


def cmd_params(args) -> int:
    from .params import declared
    from .reference import markdown, sections

    if args.markdown:
        print(markdown(), end="")
        return 0
    for title, cls in sections():
        print(f"# {title}")
        for name, d in declared(cls).items():
            extra = (f"; {name}_over_{d.scale}" if d.scale else "") + ("; per model" if d.per_model else "")
            default = cls.__dataclass_fields__[name].default
            print(f"  {name} = {default!r}: {d.constraint.describe()}{extra} — {d.help}")
    return 0


def _register_params(sub) -> None:
    pp = sub.add_parser(
        "params", help="every field of the data model, [train] and each method: default, accepted values, meaning"
    )
    pp.add_argument("--markdown", action="store_true", help="as docs/parameters.md (its generator)")
    pp.set_defaults(func=cmd_params)


_EXTRA_COMMANDS: list = [
    _register_params,
    _register_train,
    _register_sweep,
    _register_plot,
    _register_boundary,
    _register_reproduce,
    _register_bench,
]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "threads", None) is not None:
            # refused here, before any work; applied by the command's entry point (training.train, run_sweep,
            # reproduce, bench), so a refusal of bad input never pays for importing torch
            choose_threads(args.threads)
        code = args.func(args) or 0
        sys.stdout.flush()  # a full disk or closed pipe behind stdout shows here, not at interpreter exit
        return code
    except ConfigError as e:
        print(f"theory-sim: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreError as e:
        print(f"theory-sim: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`... | head`): nothing more to say to it
        _silence_stdout()
        return 0
    except OSError as e:  # stdout on a full disk (`> /dev/full`), or another output the filesystem refuses
        import errno

        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES):
            raise
        _silence_stdout()
        print(f"theory-sim: error: cannot write the output: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # one line, not a traceback; a sweep says how far it got
        print(f"theory-sim: {e}" if isinstance(e, Interrupted) else "theory-sim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """Points stdout at /dev/null so Python's own flush at exit does not print a second error."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
