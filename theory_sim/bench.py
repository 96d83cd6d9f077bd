"""``theory-sim bench``: speed against this machine's own limit, measured in one run.

1. Peak: the fp32 GFLOP/s of a large square matmul (2048³ on CPU, 8192³ on CUDA), best of several,
   measured before and after the method rows; the larger of the two is the peak.
2. Each method's training step on the standard cell (d 64, n 256, s 4, width 512, batch 512) at ensemble
   sizes E: model-steps per second (best of ``WINDOWS`` timing windows, as the peak is a best of
   several; the mean over all windows is reported beside it), achieved GFLOP/s and fraction of peak
   (both from the best window; ``fraction_of_peak_mean`` from the mean). The timed loop includes data
   generation and bias adaptation. FLOPs are those of the matmuls one step actually runs (data generation
   plus the training step, forward and backward), counted by ``torch.utils.flop_counter.FlopCounterMode``
   on one step of the same ensemble, plus the data's weighted row sums (2·B·s·d per model: an
   embedding-bag, which the counter does not see). Elementwise work (activations, Adam, sampling) is
   timed, not counted. With the hand-written steps that is 10·B·d·M for BA, GBA, L1 and TopK (five
   matmuls; no (B, d) input gradient is formed, b_dec's reaches it as a (1, M)·(M, d) product), and
   12·B·d·M for the methods on autograd whose encoder input carries a trained b_dec.
3. The quickstart grid (at a reduced step count) trained batched vs one model at a time.
4. ``--refine``: boundary finding on a resonance-like experiment (BA's FRR@0.9 along p/f), a uniform grid at
   the final resolution against refinement from a coarse grid, both through the real sweep pipeline in one
   run: trained models, seconds, and the largest distance between their boundary estimates in tolerance
   units (``refine_vs_uniform``).
Memory per row: the resident high-water mark since the row began (the process's, where the kernel cannot
reset it: ``peak_rss_is_per_config``), the resident size now, and on CUDA the peak allocated.
"""

from __future__ import annotations

import itertools
import json
import resource
import time

import torch

from .device import check_graph, check_precision, matmul_peak, matmul_precision
from .graphs import StepRunner
from .model.spec import GeneratorSpec
from .sae import get_method
from .training import GeneratorData, resolve_hyper

STANDARD = dict(d=64, n=256, s=4, width=512, batch=512)
SAELENS_REFERENCE_STEPS_PER_S = (
    99.0  # SAELens 6.54 train_toy_sae measured on the same cell on a 2-core machine of this kind (docs/crosscheck)
)


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak_rss() -> bool:
    """Resets the kernel's resident high-water mark (Linux >= 4.0), so the next reading is this
    configuration's own peak; False where that is not possible (then the reading is the process's)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def flops_per_model_step(sae, data, B: int, s: int) -> float:
    """Matmul FLOPs of one data draw + training step, per model (runs one step: call before timing)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        sae.train_step(data.sample(B))
    return counter.get_total_flops() / sae.E + 2 * B * s * sae.d


#: the dense hand-written step's matmul FLOPs per model-step in units of B·d·M (five matmuls)
DENSE_FLOPS_OVER_BDM = 10

#: timing windows per configuration: ``steps_per_second`` is the best window's rate (as the peak is the
#: best of several matmuls), ``steps_per_second_mean`` the whole time's
WINDOWS = 4


#: the scaling experiments' shapes (their sweep files' largest cells), timed by ``bench --scaling``: Modified BA's
#: population step is timed per chunk of its [train] batch (a step streams ⌈fire_rows / p⌉ rows as such chunks,
#: so a chunk's rate is the step's); BA and TopK at resonance_heavy's cell
SCALING_SHAPES = {
    "theorem_scaling n 2048 (quick)": dict(
        method="mba",
        n=2048,
        d=512,
        s=4,
        width=2560,
        batch=16384,
        hyper={"p_over_f": 0.7, "start": "planted"},
        sizes=(1, 3),
    ),
    "theorem_scaling n 4096 (full)": dict(
        method="mba",
        n=4096,
        d=1024,
        s=4,
        width=5120,
        batch=16384,
        hyper={"p_over_f": 0.7, "start": "planted"},
        sizes=(1,),
    ),
    "resonance_heavy BA": dict(
        method="ba",
        n=2048,
        d=40,
        s=3,
        width=4096,
        batch=512,
        hyper={"p_over_f": 1.0, "bias_init_quantile": True, "bias_floor": -4.0},
        sizes=(1, 8),
    ),
    "resonance_heavy TopK": dict(method="topk", n=2048, d=40, s=3, width=4096, batch=512, hyper={"k": 3}, sizes=(1, 8)),
}


def time_method(
    method: str,
    E: int,
    device: torch.device,
    seconds: float = 2.0,
    graph: bool = False,
    replay: str = "cuda",
    cell: dict | None = None,
    hyper: dict | None = None,
) -> dict:
    """One row: ``method`` at ensemble size E on the standard cell (or ``cell``: n, d, s, width, batch, with the
    method's ``hyper``). ``graph``: the step captured as CUDA graphs and replayed (graphs.StepRunner, mode
    ``replay``; its rows from the counter stream), else eager."""
    c = cell or STANDARD
    spec = GeneratorSpec(n=c["n"], d=c["d"], s=c["s"])
    specs = [spec.replace(seed=i) for i in range(E)]
    params = {"width": c["width"], **(get_method(method).BENCH_PARAMS if hyper is None else hyper)}
    cfg = resolve_hyper(method, params, spec.mean_frequency(), spec.mean_frequency() * spec.n, spec.n)
    data = GeneratorData(specs, device, counter=graph)
    sae = get_method(method)(
        [cfg] * E,
        c["d"],
        list(range(E)),
        device,
        data.sample(max(c["batch"], get_method(method).INIT_ROWS)),
        truth=data.V,
        specs=specs,
        draw=data.sample,
    )
    per_config = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if graph:
        sae.make_capturable()
    flops = flops_per_model_step(sae, data, c["batch"], c["s"])
    runner = StepRunner(lambda: sae.train_step(data.sample(c["batch"])), sae, replay if graph else "eager")
    count = itertools.count(sae.step_count + 1)
    warm = 50 if cell is None else max(2, min(50, int(2e10 // max(flops, 1))))  # big shapes: a few steps warm
    for _ in range(warm):  # past the warm-up and one bias adaptation (every 20) or control step: all phases captured
        runner(next(count))
    _sync(device)
    rates, total_steps, total_time = [], 0, 0.0
    for _ in range(WINDOWS):  # the peak is a best of several; the step rate is estimated the same way
        steps, t0 = 0, time.perf_counter()
        while True:
            runner(next(count))
            steps += 1
            if steps % 5 == 0 or cell is not None:
                _sync(device)
                if time.perf_counter() - t0 >= seconds / WINDOWS:
                    break
        el = time.perf_counter() - t0
        rates.append(steps * E / el)
        total_steps, total_time = total_steps + steps, total_time + el
    msps = max(rates)
    gf = msps * flops / 1e9
    row = {
        "method": method,
        "E": E,
        "graph": graph,
        **({"cell": {k: v for k, v in c.items() if k not in ("hyper", "sizes", "method")}} if cell is not None else {}),
        "steps_per_second": msps,
        "steps_per_second_mean": total_steps * E / total_time,
        "flops_per_model_step": flops,
        "flops_over_BdM": flops / (c["batch"] * c["d"] * c["width"]),
        "achieved_gflops": gf,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_rss_is_per_config": per_config,
        "rss_mb": _rss_mb(),
    }
    if device.type == "cuda":
        row["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if runner.failed:  # timed eagerly after all: the ratio would not be a graph's
        row["graph_fallback"] = runner.failed
    return row


def batched_vs_serial(device: torch.device, steps: int = 300) -> dict:
    """The quickstart grid's (quick budget) cells at ``steps`` steps: batched ensembles vs one by one,
    whole cells (data, training, evaluation, data statistics), in total and per method: only cells of one
    method and one shape share an ensemble, so a method with one cell per shape has nothing to batch."""
    import dataclasses
    from pathlib import Path

    from .sweep import load_sweep, make_batches, run_batch
    from .sweep.runner import _payload

    sweep = load_sweep(Path(__file__).resolve().parent.parent / "sweeps" / "quickstart.toml", "quick")
    cells = [dataclasses.replace(c, train={**c.train, "steps": steps, "eval_samples": 2048}) for c in sweep.cells]
    out = {"cells": len(cells), "steps": steps, "batched_seconds": 0.0, "serial_seconds": 0.0, "by_method": {}}
    # warm-up: the first optimiser built in a process imports torch's compile machinery (~1.5 s here),
    # which must not land on whichever mode happens to run first
    warm = [dataclasses.replace(c, train={**c.train, "steps": 2, "eval_samples": 256}) for c in cells[:1]]
    run_batch(_payload(warm, str(device), None))
    for method in dict.fromkeys(c.method for c in cells):
        group = [c for c in cells if c.method == method]
        row = {"cells": len(group), "ensembles": len(make_batches(group, 32))}
        for name, mb in (("batched", 32), ("serial", 1)):
            t = time.perf_counter()
            for b in make_batches(group, mb):
                run_batch(_payload(b, str(device), None))
            _sync(device)
            row[f"{name}_seconds"] = time.perf_counter() - t
            out[f"{name}_seconds"] += row[f"{name}_seconds"]
        row["speedup"] = row["serial_seconds"] / row["batched_seconds"]
        out["by_method"][method] = row
    out["speedup"] = out["serial_seconds"] / out["batched_seconds"]
    return out


REFINE_EXPERIMENT = {
    "n": 64,
    "s": 2,
    "d": 32,
    "width": 128,
    "lo": 1 / 16,
    "hi": 16,
    "coarse": 5,
    "tolerance": 2**0.125,
    "steps": 1500,
    "seeds": [0, 1, 2],
    "eval_samples": 2048,
}


def _refine_sweep(e: dict, values: str, refine: bool) -> str:
    table = f'\n[refine]\naxis = "p_over_f"\ntolerance = {e["tolerance"]!r}\nmax_rounds = 12\n' if refine else ""
    return (
        f'name = "bench_{"refine" if refine else "uniform"}"\n[data]\nn = {e["n"]}\ns = {e["s"]}\nd = {e["d"]}\n'
        f'[[methods]]\nname = "ba"\nlabel = "BA"\nwidth = {e["width"]}\np_over_f = {values}\n'
        f"[train]\nsteps = {e['steps']}\nseeds = {e['seeds']}\neval_samples = {e['eval_samples']}\n" + table
    )


def refine_vs_uniform(device: torch.device, experiment: dict | None = None) -> dict:
    """One run of both ways to find where BA's FRR@0.9 crosses 50 % along p/f: a uniform geometric grid at
    the final resolution (spacing ≤ the tolerance ratio) and refinement from a coarse grid to the same
    tolerance. Returns uniform/refine models and seconds, both boundary lists, and max_disagreement: the
    largest |log(estimate_u / estimate_r)| / log(tolerance) over crossings matched by direction and order
    (inf when the two find different numbers of crossings)."""
    import math
    import tempfile
    from pathlib import Path

    from .results import load_boundaries
    from .sweep import parse_sweep, run_sweep

    e = {**REFINE_EXPERIMENT, **(experiment or {})}
    octaves = math.log(e["hi"] / e["lo"])
    fine = math.ceil(octaves / math.log(e["tolerance"])) + 1  # spacing ≤ tolerance
    out = {"experiment": e, "uniform_points": fine, "coarse_points": e["coarse"]}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, values, refine in (
            ("uniform", f"{{geomspace = [{e['lo']!r}, {e['hi']!r}, {fine}]}}", False),
            ("refine", f"{{geomspace = [{e['lo']!r}, {e['hi']!r}, {e['coarse']}]}}", True),
        ):
            sweep = parse_sweep(_refine_sweep(e, values, refine), f"bench_{kind}.toml")
            folder = str(Path(tmp) / kind)
            t = time.perf_counter()
            summary = run_sweep(sweep, folder, device=str(device), progress=False)
            out[f"{kind}_seconds"] = time.perf_counter() - t
            out[f"{kind}_models"] = summary.total
            out[f"{kind}_boundaries"] = load_boundaries(folder, axis="p_over_f", tolerance=e["tolerance"])
    u, r = out["uniform_boundaries"], out["refine_boundaries"]
    dist = []
    for direction in ("rising", "falling"):
        bu = [b for b in u if b["direction"] == direction]
        br = [b for b in r if b["direction"] == direction]
        if len(bu) != len(br):
            dist.append(math.inf)
        dist += [abs(math.log(a["estimate"] / b["estimate"])) / math.log(e["tolerance"]) for a, b in zip(bu, br)]
    out["max_disagreement"] = max(dist) if dist else 0.0
    out["model_ratio"] = out["uniform_models"] / max(1, out["refine_models"])
    out["seconds_ratio"] = out["uniform_seconds"] / max(1e-9, out["refine_seconds"])
    return out


#: the job of the API-vs-CLI comparison: TopK, 2 seeds as one ensemble, on generator data
API_JOB = {"method": "topk", "n": 256, "d": 64, "s": 4, "width": 512, "k": 4, "steps": 600, "seeds": 2}
#: a competing process: 2 torch threads multiplying matrices until killed (another user's training job)
BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a = torch.tanh(a @ a) "


def api_vs_cli(device: torch.device) -> dict:
    """One run, one job (API_JOB), while a 2-thread busy process competes for the cores: model-steps/s of
    ``theory-sim train`` (a CLI process) and of ``theory_sim.train`` called in this process, each from its
    own stored training seconds (start-up and evaluation excluded). Both choose threads by the one policy
    (device.threads: THEORY_SIM_THREADS, else the cores not already busy)."""
    import subprocess
    import sys

    from .training import train

    j = API_JOB
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(8.0)  # let the 1-minute load average see the competitor, as it would on a shared machine
        args = ["train", "--method", j["method"], "--n", str(j["n"]), "--d", str(j["d"]), "--s", str(j["s"])]
        args += ["--width", str(j["width"]), "--k", str(j["k"]), "--steps", str(j["steps"]), "--seeds", str(j["seeds"])]
        args += ["--device", device.type, "--json", "--no-progress"]
        r = subprocess.run([sys.executable, "-m", "theory_sim.cli", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"the CLI job failed: {r.stderr[-500:]}")
        import json

        cli_res = json.loads(r.stdout)
        from .model.spec import GeneratorSpec

        before = torch.get_num_threads()
        api_res = train(
            j["method"],
            GeneratorSpec(n=j["n"], d=j["d"], s=j["s"]),
            seeds=list(range(j["seeds"])),
            steps=j["steps"],
            width=j["width"],
            k=j["k"],
            device=device,
            progress=False,
        )
        restored = torch.get_num_threads() == before
    finally:
        busy.kill()
        busy.wait()
    rate = lambda res: j["seeds"] * j["steps"] / res[0]["seconds"]  # noqa: E731
    cli_rate, api_rate = rate(cli_res), rate(api_res)
    return {
        "job": j,
        "competitor": "one 2-thread torch process",
        "cli_model_steps_per_s": cli_rate,
        "api_model_steps_per_s": api_rate,
        "api_over_cli": api_rate / cli_rate,
        "api_left_threads_as_found": restored,
    }


def run_bench(
    device: torch.device,
    methods=("ba", "gba", "topk", "l1"),
    sizes=(1, 8, 32),
    seconds=2.0,
    grid=True,
    refine=False,
    api=False,
    precision: str = "fp32",
    graph: bool = False,
    diagram: int = 0,
    scaling: bool = False,
) -> dict:
    """precision "tf32" (CUDA only): the rows train with TF32 matmuls and each is also set against the card's
    measured TF32 peak (matmul_peak under TF32), beside the fp32 one. graph (CUDA only): every row is timed
    eagerly and captured (graphs.StepRunner), in this run, and ``targets`` sets their ratio against the issue's
    goals. diagram N > 0: the wall time of an N × N × 3-seed resonance diagram at the full budget's width and
    steps (``diagram_time``). scaling: rows for the scaling experiments' shapes too (SCALING_SHAPES)."""
    check_precision(precision, device)
    check_graph(graph, device)
    peaks = [matmul_peak(device)]
    with matmul_precision(precision, device):
        rows = [time_method(m, E, device, seconds) for m in methods for E in sizes]
        if scaling:  # the scaling experiments' shapes (SCALING_SHAPES), each at its own ensemble sizes
            for name, sh in SCALING_SHAPES.items():
                for E in sh["sizes"]:
                    rows.append(
                        {"shape": name, **time_method(sh["method"], E, device, seconds, cell=sh, hyper=sh["hyper"])}
                    )
        if graph:
            rows += [time_method(m, E, device, seconds, graph=True) for m in methods for E in sizes]
        tf32_peak = matmul_peak(device) if precision == "tf32" else None
    peaks.append(matmul_peak(device))
    peak = max(peaks)  # measured before and after the rows; the larger makes every fraction conservative
    for r in rows:
        r["fraction_of_peak"] = r["achieved_gflops"] / peak
        r["fraction_of_peak_mean"] = r["steps_per_second_mean"] * r["flops_per_model_step"] / 1e9 / peak
        # a sparse step (TopK's, k·32 <= M) runs fewer matmul FLOPs than the dense 10·B·d·M; its rate in the dense
        # step's FLOPs says how it compares with the best a dense step could do (> 1: faster than any at this peak)
        c = r.get("cell", STANDARD)
        r["fraction_of_peak_dense"] = r["steps_per_second"] * DENSE_FLOPS_OVER_BDM * c["batch"] * c["d"] * c["width"]
        r["fraction_of_peak_dense"] /= 1e9 * peak
        if tf32_peak:
            r["fraction_of_tf32_peak"] = r["achieved_gflops"] / tf32_peak
    out = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "peak_gflops": peak,
        "peak_gflops_before_after": peaks,
        "precision": precision,
        **({"tf32_peak_gflops": tf32_peak} if tf32_peak else {}),
        "cell": STANDARD,
        "results": rows,
    }
    if graph:
        out["targets"] = graph_targets(rows)
    if diagram:
        out["diagram"] = diagram_time(device, diagram, graph=graph)
    one = [r for r in rows if r["E"] == 1 and r["method"] == "topk" and not r["graph"]]
    if one:
        out["topk_E1_vs_saelens_reference"] = one[0]["steps_per_second"] / SAELENS_REFERENCE_STEPS_PER_S
    if grid:
        out["quickstart_grid"] = batched_vs_serial(device)
    if refine:
        out["refine"] = refine_vs_uniform(device)
    if api:
        out["api_vs_cli"] = api_vs_cli(device)
    return out


#: the issue's goals for captured steps on the standard cell: model-steps/s captured over eager, by E
GRAPH_TARGETS = {8: 10.0, 256: 3.0}
#: the goal for the N × N × 3-seed resonance diagram at the full budget on one H100/H200-class card, seconds
DIAGRAM_TARGET_S = 120.0


def graph_targets(rows: list[dict]) -> list[dict]:
    """Per method and E timed both ways: captured / eager model-steps/s (best windows), with the goal where the
    issue sets one (GRAPH_TARGETS) and whether it is met."""
    eager = {(r["method"], r["E"]): r for r in rows if not r["graph"]}
    out = []
    for r in rows:
        e = eager.get((r["method"], r["E"]))
        if not r["graph"] or e is None:
            continue
        ratio = r["steps_per_second"] / e["steps_per_second"]
        goal = GRAPH_TARGETS.get(r["E"])
        fell = r.get("graph_fallback")
        out.append(
            {"method": r["method"], "E": r["E"], "graph_over_eager": ratio, "target": goal}
            | ({"met": ratio >= goal and not fell} if goal else {})
            | ({"graph_fallback": fell} if fell else {})
        )
    return out


def diagram_time(device: torch.device, size: int = 20, seeds: int = 3, graph: bool = False, steps=None) -> dict:
    """Wall time of BA's resonance diagram, ``size`` p/f values × ``size`` values of d × ``seeds`` seeds, at the full
    budget's width and steps of sweeps/resonance.toml (``steps`` overrides them: tests), through the real sweep
    pipeline into a temporary folder (no refinement, no check); ``graph``: captured where it can be."""
    import tempfile
    from pathlib import Path

    from .report.driver import SWEEP_DIR
    from .sweep import load_sweep, parse_sweep, run_sweep
    from .sweep.spec import with_execution

    full = load_sweep(SWEEP_DIR / "resonance.toml", "full")
    ba = next(c for c in full.cells if c.method == "ba")
    d_lo, d_hi = min(c.data["d"] for c in full.cells), max(c.data["d"] for c in full.cells)
    ds = sorted({round(d_lo * (d_hi / d_lo) ** (i / max(1, size - 1))) for i in range(size)})
    steps = steps or ba.train["steps"]
    params = {k: v for k, v in ba.params.items() if k != "p_over_f"}
    hyper = "".join(f"{k} = {json.dumps(v)}\n" for k, v in params.items())  # TOML's scalars, as JSON writes them
    source = (
        f'name = "bench_diagram"\n[data]\nn = {ba.data["n"]}\ns = {ba.data["s"]}\n[grid]\nd = {ds}\n'
        f'[[methods]]\nname = "ba"\n{hyper}p_over_f = {{geomspace = [0.0625, 16, {size}]}}\n'
        f"[train]\nsteps = {steps}\nseeds = {list(range(seeds))}\n"
    )
    sweep = parse_sweep(source, "bench_diagram.toml")
    if graph:
        sweep = with_execution(sweep, graph=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        summary = run_sweep(sweep, str(Path(tmp) / "diagram"), device=str(device), progress=False)
        _sync(device)
        seconds = time.perf_counter() - t
    return {
        "size": [size, len(ds), seeds],
        "d": ds,
        "width": ba.resolved.width,
        "steps": steps,
        "models": summary.total,
        "graph": graph,
        "seconds": seconds,
        "target_seconds": DIAGRAM_TARGET_S,
    }


def _tf32_note(b: dict) -> str:
    if "tf32_peak_gflops" not in b:
        return ""
    each = ", ".join(f"{r['method']} E={r['E']} {100 * r['fraction_of_tf32_peak']:.1f}%" for r in b["results"])
    return f"; rows trained in TF32, its matmul peak {b['tf32_peak_gflops']:.1f} GFLOP/s (of it: {each})"


def _row_name(r: dict) -> str:
    return r["method"] + (" (graph)" if r.get("graph") else "")


def format_bench(b: dict) -> str:
    pb = b.get("peak_gflops_before_after", [b["peak_gflops"]])
    lines = [
        f"device {b['device_name']}, torch {b['torch']}, fp32 matmul peak {b['peak_gflops']:.1f} GFLOP/s "
        f"(before/after the rows: {' / '.join(f'{p:.1f}' for p in pb)})" + _tf32_note(b),
        f"standard cell {b['cell']}; FLOPs: the matmuls one data draw + training step runs (torch's "
        "FlopCounterMode), per model-step in units of B·d·M; elementwise work timed, not counted",
        "model-steps/s: best of the timing windows (as the peak), and their mean",
        f"{'method':>8} {'E':>3} {'model-steps/s':>14} {'mean':>7} {'FLOPs/BdM':>10} {'GFLOP/s':>9} {'of peak':>8} "
        f"{'(mean)':>7} {'dense-eq.':>9} {'peak RSS MB':>12}",
    ]
    for r in b["results"]:
        dense = r.get("fraction_of_peak_dense")
        lines.append(
            f"{_row_name(r):>8} {r['E']:>3} {r['steps_per_second']:>14.1f} {r['steps_per_second_mean']:>7.1f} "
            f"{r['flops_over_BdM']:>10.2f} {r['achieved_gflops']:>9.1f} {100 * r['fraction_of_peak']:>7.1f}% "
            f"{100 * r['fraction_of_peak_mean']:>6.1f}% "
            + (f"{100 * dense:>8.1f}%" if dense is not None and r["flops_over_BdM"] < DENSE_FLOPS_OVER_BDM else " " * 9)
            + f" {r['peak_rss_mb']:>12.0f}"
        )
    if any(r["flops_over_BdM"] < DENSE_FLOPS_OVER_BDM for r in b["results"]):
        lines.append(
            "dense-eq.: a sparse step's rate in the dense step's 10·B·d·M FLOPs, as a fraction of the peak "
            "(over 100 %: faster than a dense step could run at the peak)"
        )
    for r in b["results"]:
        if "shape" in r:
            cell = ", ".join(f"{k} {v}" for k, v in r["cell"].items())
            lines.append(f"  {_row_name(r)} E={r['E']}: {r['shape']} ({cell})")
    for t in b.get("targets", []):
        goal = f" (goal ≥ {t['target']:g}x: {'met' if t['met'] else 'NOT met'})" if t.get("target") else ""
        if t.get("graph_fallback"):
            goal += f" — the capture failed and the row ran eagerly: {t['graph_fallback']}"
        lines.append(f"captured / eager, {t['method']} E={t['E']}: {t['graph_over_eager']:.2f}x{goal}")
    if "diagram" in b:
        g = b["diagram"]
        lines.append(
            f"resonance diagram {g['size'][0]} p/f × {g['size'][1]} d × {g['size'][2]} seeds ({g['models']} models, "
            f"width {g['width']}, {g['steps']} steps{', captured' if g['graph'] else ''}): {g['seconds']:.1f} s "
            f"(goal under {g['target_seconds']:.0f} s on an H100/H200-class card)"
        )
    if "topk_E1_vs_saelens_reference" in b:
        lines.append(
            f"topk E=1 / SAELens reference ({SAELENS_REFERENCE_STEPS_PER_S:g} steps/s, measured earlier, "
            f"not measured in this run): {b['topk_E1_vs_saelens_reference']:.2f}x"
        )
    if "quickstart_grid" in b:
        g = b["quickstart_grid"]
        lines.append(
            f"quickstart grid ({g['cells']} cells, {g['steps']} steps each): batched {g['batched_seconds']:.1f}s, "
            f"one by one {g['serial_seconds']:.1f}s, speedup {g['speedup']:.2f}x"
        )
        for m, r in g.get("by_method", {}).items():
            lines.append(
                f"  {m}: {r['cells']} cells in {r['ensembles']} ensembles: batched {r['batched_seconds']:.1f}s, "
                f"one by one {r['serial_seconds']:.1f}s, speedup {r['speedup']:.2f}x"
            )
    if "api_vs_cli" in b:
        a = b["api_vs_cli"]
        lines.append(
            f"API vs CLI ({a['job']['method']}, {a['job']['seeds']} seeds, {a['job']['steps']} steps, with "
            f"{a['competitor']} busy): CLI {a['cli_model_steps_per_s']:.0f} model-steps/s, API "
            f"{a['api_model_steps_per_s']:.0f} ({100 * a['api_over_cli']:.0f} % of the CLI); the API left torch's "
            f"threads as it found them: {a['api_left_threads_as_found']}"
        )
    if "refine" in b:
        r = b["refine"]
        lines.append(
            f"boundary finding (BA, FRR@0.9 = 50 % along p/f {r['experiment']['lo']:g}…{r['experiment']['hi']:g}, "
            f"tolerance ×{r['experiment']['tolerance']:.3g}): uniform {r['uniform_points']} points "
            f"{r['uniform_models']} models {r['uniform_seconds']:.1f}s; refined from {r['coarse_points']} points "
            f"{r['refine_models']} models {r['refine_seconds']:.1f}s; {r['model_ratio']:.1f}x fewer models, "
            f"{r['seconds_ratio']:.1f}x faster; max disagreement {r['max_disagreement']:.2f} tolerance units"
        )
        for kind in ("uniform", "refine"):
            for c in r[f"{kind}_boundaries"]:
                lines.append(
                    f"  {kind}: {c['direction']} at p/f {c['estimate']:.4g} [{c['low']:.4g}, {c['high']:.4g}], "
                    f"bracket {c['lower']:.4g}–{c['upper']:.4g}"
                )
    return "\n".join(lines)
