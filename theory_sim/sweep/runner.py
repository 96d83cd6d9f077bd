"""Run a sweep: cells → ensembles of equal shapes → an executor → the store (written by this process only).

Executors: ``local`` (in-process, batched on one device) and ``dask`` (a LocalCluster of ``workers``
processes, or an existing cluster at ``scheduler``). With Dask, tasks are batches of cells; if a worker
dies, the scheduler re-runs its tasks elsewhere, and the store's ``status='pending'`` guard keeps every
cell exactly once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..device import check_graph, check_precision, resolve_device
from ..device import threads as threads_policy
from ..errors import ConfigError, Interrupted, StoreError, check_folder, make_folder
from ..progress import bar as progress_bar
from ..store import Store, design_fingerprint, free_space, load_results, provenance, writer_lock
from .refine import propose
from .spec import Cell, Sweep, make_batches

DATA_STATS_SAMPLES = 10000


def run_batch(payload: dict, on_steps=None) -> list[tuple[str, dict]]:
    """Trains one ensemble. payload: method, cells (config dicts with 'hash' and 'label'), device, threads.
    on_steps(k): called as the ensemble advances by k model-steps (in-process progress).

    A plain function of plain data, so Dask can ship it to any worker. Threads: the one policy
    (``device.threads``) around the batch, restored after it."""
    if on_steps is None and payload.get("progress_topic"):  # on a Dask worker: report steps to the client
        on_steps = _worker_progress(payload)
    with threads_policy(payload.get("threads")):
        return _run_batch(payload, on_steps)


def _worker_progress(payload: dict):
    """on_steps for a batch running on a Dask worker: each advance is an event on the payload's topic,
    which the client's bar receives (``Client.subscribe_topic``), so Dask progress moves inside ensembles
    as the local executor's does. None outside a worker."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    hashes = [c["hash"] for c in payload["cells"]]

    def report(k):
        try:
            worker.log_event(payload["progress_topic"], {"hashes": hashes, "k": k})
        except Exception:  # noqa: BLE001 — progress is best effort; training goes on
            pass

    return report


#: said once per process: a CUDA out-of-memory error shrinks the ensemble (halves, recursively) and retries
_OOM_SAID = []


def _run_batch(payload: dict, on_steps=None) -> list[tuple[str, dict]]:
    import torch

    from ..model.spec import GeneratorSpec
    from ..training import (
        GeneratorData,
        TrainConfig,
        resolve_hyper,
        spec_scales,
        train_ensemble,
    )

    dev = resolve_device(payload["device"])
    cells = payload["cells"]
    specs = [GeneratorSpec.for_cell(c["data"], c["seed"]) for c in cells]
    cfgs = [resolve_hyper(c["method"], c["params"], *spec_scales(s)) for c, s in zip(cells, specs)]
    tc = TrainConfig(**cells[0]["train"])
    try:
        data = GeneratorData(specs, dev, counter=tc.graph)
        results = train_ensemble(
            payload["method"], cfgs, data, [c["seed"] for c in cells], tc, progress=False, on_steps=on_steps
        )
    except torch.cuda.OutOfMemoryError as e:  # the ensemble does not fit: never lose its cells, split it
        data = None
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if len(cells) == 1:  # one model that does not fit: a failed cell that says why (rerun it elsewhere)
            error = f"OutOfMemoryError: {e}".splitlines()[0]
            return [(cells[0]["hash"], {"status": "failed", "error": error, "arrays": {}, "device": str(dev)})]
        else:
            if not _OOM_SAID:
                _OOM_SAID.append(True)
                print(
                    f"warning: out of device memory training {len(cells)} models at once; the ensemble is split in "
                    "halves and retried (said once; every cell is still trained)",
                    file=sys.stderr,
                )
            # the halves run one after the other: they report no steps (each would be credited to every cell of
            # the batch), so the bar stays truthful and catches up as each half's cells are stored
            half = len(cells) // 2
            return _run_batch({**payload, "cells": cells[:half]}) + _run_batch({**payload, "cells": cells[half:]})
    except (RuntimeError, ValueError, FloatingPointError) as e:  # e.g. a NaN that breaks a solver
        results = [{"status": "failed", "error": f"{type(e).__name__}: {e}", "arrays": {}} for _ in cells]
    from ..model.stats import measure

    for e, (r, spec) in enumerate(zip(results, specs)):
        r["device"] = str(dev)
        # the statistics the data actually had (a fixed-size sample), on the V built for training
        st = measure(spec, DATA_STATS_SAMPLES, features=data.V[e].cpu())
        r.update({f"data_{k}": st[k] for k in ("s_mean", "f_mean", "mu_max", "mu_mean", "rho2", "snr")})
    return [(c["hash"], r) for c, r in zip(cells, results)]


def _payload(batch: list[Cell], device: str, threads: int | None) -> dict:
    return {
        "method": batch[0].method,
        "device": device,
        "threads": threads,
        "cells": [{**c.config, "hash": c.hash, "label": c.label} for c in batch],
    }


@dataclass
class RunSummary:
    total: int
    already_done: int
    ran: int
    failed: int
    seconds: float
    new_cells: int
    not_converged: int = 0
    not_converged_kinds: dict = field(default_factory=dict)  # metrics.NC_KINDS wording → cells
    refined: int = 0  # cells added by refinement (all rounds)
    rounds: int = 0  # refinement rounds that added cells


SCHEDULER = re.compile(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?")
#: seconds to wait for a Dask scheduler to answer and to have at least one worker
WORKER_TIMEOUT = 60.0


class ClusterError(StoreError):
    """The Dask cluster could not be used (unreachable, no workers, workers that died): exit 1, one line."""


def default_max_batch(device: str) -> int:
    """Models per ensemble: on CPU E = 8 (theory-sim bench, standard cell: E = 8 runs at 1.8x E = 1 per
    model and E = 32 only ~7 % faster than E = 8, while smaller tasks keep Dask retries and the progress bar
    fine-grained); on CUDA 64 (the GPU needs wide batches to fill)."""
    return 64 if resolve_device(device).type == "cuda" else 8


def run_sweep(
    sweep: Sweep,
    out: str,
    device: str = "auto",
    executor: str = "local",
    workers: int = 2,
    scheduler: str | None = None,
    max_batch: int | None = None,
    force: bool = False,
    progress: bool = True,
    retry_failed: bool = False,
    worker_timeout: float = WORKER_TIMEOUT,
    threads: int | None = None,
) -> RunSummary:
    """Trains every pending cell of the sweep into the store at ``out``, then, if the sweep has a [refine]
    table, round after round the cells refinement asks for (sweep/refine.py). Resumable at any point."""
    if max_batch is None:
        max_batch = default_max_batch(device)
    if executor not in ("local", "dask"):
        raise ConfigError("executor", f"must be local or dask, got {executor!r}")
    if not (isinstance(max_batch, int) and max_batch >= 1):
        raise ConfigError("max_batch", f"must be an integer >= 1, got {max_batch!r}")
    if executor == "dask":
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            raise ConfigError(
                "executor", "dask is not installed; pip install 'theory-sim[dask]' or use --executor local"
            ) from None
        if scheduler is None and not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
            raise ConfigError("workers", f"must be an integer >= 1, got {workers!r}")
        if scheduler is not None and not SCHEDULER.fullmatch(str(scheduler)):
            raise ConfigError("scheduler", f"must be an address like tcp://HOST:PORT, got {scheduler!r}")
    if not (isinstance(worker_timeout, (int, float)) and 0 < worker_timeout < math.inf):
        raise ConfigError("worker_timeout", f"must be a number of seconds > 0, got {worker_timeout!r}")
    dev, max_batch, store, design = _validate_run(sweep, out, device, max_batch, force)
    warn = hypotheses_warning(hypotheses_plan(sweep), len(sweep.cells))
    if warn:  # said before hours of training, not after (the report would show 0 cells inside)
        print(f"{sweep.name}: {warn}", file=sys.stderr)
    # every check above writes nothing; then one writer per folder, for the whole sweep, taken before the
    # store is created or a cluster started, and the checks repeated under it (a writer may have just finished)
    fresh = not Path(out).exists()
    make_folder(out, "out")
    try:
        with writer_lock(out, f"sweep {sweep.name} --budget {sweep.budget}"):
            store.check_compatible(sweep.name, force, sweep.path, design)
            with _executor(executor, device, workers, scheduler, worker_timeout, threads) as submit:
                new = store.init(sweep.name, sweep.source, sweep.cells, sweep.path, force, sweep.budget, design)
                con = store.connect()
                try:
                    return _run_rounds(sweep, store, con, submit, device, max_batch, progress, retry_failed, new, out)
                finally:
                    con.close()
    except BaseException:
        if fresh:  # refused before the store existed (a cluster that did not start): leave nothing behind
            with contextlib.suppress(OSError):
                Path(out).rmdir()
        raise


def _validate_run(sweep: Sweep, out: str, device, max_batch: int, force: bool):
    """The checks a run (and its --dry-run) makes before writing anything: the device, the folder, each cell's
    memory (shrinking max_batch to fit), the store's schema, sweep and design. Returns (device, max_batch,
    store, design fingerprint)."""
    dev = resolve_device(device)
    for precision in sorted({c.train.get("precision", "fp32") for c in sweep.cells}):
        check_precision(precision, dev)  # tf32 off CUDA: refused before anything is written
    # a cell's method and data were checked when it was made (spec.make_cell); the device is checked here
    check_graph(any(c.train.get("graph") for c in sweep.cells), dev)
    check_folder(out, "out")
    max_batch = _fit_memory(sweep.cells, max_batch, dev)
    store = Store(out)
    design = design_fingerprint(sweep.name, sweep.budget, sweep.cells, sweep.refine, sweep.seeds, sweep.extend)
    store.check_compatible(sweep.name, force, sweep.path, design)
    return dev, max_batch, store, design


def _fit_memory(cells, max_batch: int, dev) -> int:
    """Refuses a cell that alone would need more than MEMORY_SHARE of the device's memory (ConfigError with
    the estimate), and shrinks the ensemble size so that max_batch models of the largest cell fit."""
    from ..training import MEMORY_SHARE, TrainConfig, check_memory, device_memory, estimate_bytes

    seen, worst = set(), 0
    for c in cells:
        key = (c.method, c.data["n"], c.data["d"], json.dumps(c.params, sort_keys=True), json.dumps(c.train))
        if key in seen:
            continue
        seen.add(key)
        tc = TrainConfig(**c.train)
        width = c.method_config().width
        check_memory(1, c.data["n"], c.data["d"], width, tc, dev, field=f"{c.label}: width")
        worst = max(worst, estimate_bytes(1, c.data["n"], c.data["d"], width, tc))
    if worst:
        max_batch = max(1, min(max_batch, int(MEMORY_SHARE * device_memory(dev) // worst)))
    return max_batch


def _run_rounds(sweep, store, con, submit, device, max_batch, progress, retry_failed, new, out) -> RunSummary:
    if retry_failed:
        con.execute("UPDATE cells SET status='pending', error=NULL WHERE status='failed'")
    _repair(sweep, store, con)
    cells = list(sweep.cells)
    summary = RunSummary(len(cells), 0, 0, 0, 0.0, new)
    t0 = time.perf_counter()
    rounds = max((r.max_rounds for r in sweep.refine), default=0)

    def add_round(add: list, name: str) -> None:
        """Adds a round's new cells to the design (current cells, like the coarse grid's) and trains them."""
        summary.new_cells += store.add_cells(con, sweep.name, add)
        cells.extend(add)
        summary.total += len(add)
        summary.refined += len(add)
        _train(add, name, store, con, submit, device, max_batch, progress, summary, out)

    try:
        _train(sweep.cells, sweep.name, store, con, submit, device, max_batch, progress, summary, out)
        for rnd in range(1, rounds + 1):
            add, seen = [], set()
            for ref in sweep.refine:  # each refined axis proposes from the same results
                if rnd <= ref.max_rounds:
                    for c in propose(ref, cells, store.metric_of(con, ref.metric), list(sweep.seeds), sweep.derive):
                        if c.hash not in seen:
                            seen.add(c.hash)
                            add.append(c)
            if not add:
                break
            summary.rounds = rnd
            add_round(add, f"{sweep.name} refine {rnd}/{rounds}")
        for rnd in range(1, (sweep.extend or {}).get("rounds", 0) + 1):  # grid edges pushed back (sweep/extend.py)
            from .extend import propose_extensions

            metric, l0 = store.metric_of(con, sweep.extend["metric"]), store.metric_of(con, "l0")
            add = propose_extensions(sweep.extend, cells, metric, l0, sweep.derive)
            if not add:
                break
            add_round(add, f"{sweep.name} extend {rnd}")
    finally:
        summary.seconds = time.perf_counter() - t0
    return summary


def _repair(sweep, store, con) -> None:
    """Repaired, not trusted (under the writer lock): a cell whose stored config is damaged gets it back from
    the sweep when it is one of the design's coarse cells (its hash names its config) and is deleted otherwise
    (refinement proposes it again if it needs it); a done cell without readable arrays (CRCs checked), or
    whose stored metrics or provenance are damaged, trains again; stray temp files of a killed writer go."""
    from ..store import to_json

    store.remove_stray_temps()
    damaged = store.damaged(con)
    by_hash = {c.hash: c for c in sweep.cells}
    bad_config = sorted({h for h, f in damaged if f == "config"})
    restored = [h for h in bad_config if h in by_hash]
    gone = [h for h in bad_config if h not in by_hash]
    if restored:
        con.executemany(
            "UPDATE cells SET config=? WHERE cell_hash=?", [(to_json(by_hash[h].config), h) for h in restored]
        )
        print(
            f"{sweep.name}: {len(restored)} stored cells had a damaged config; restored from the sweep", file=sys.stderr
        )
    if gone:
        con.executemany("DELETE FROM cells WHERE cell_hash=?", [(h,) for h in gone])
        for h in gone:
            (store.arrays_dir / f"{h}.npz").unlink(missing_ok=True)
        print(
            f"{sweep.name}: {len(gone)} stored cells had a damaged config and are not in this design's grid; "
            "removed (refinement trains them again if it needs them)",
            file=sys.stderr,
        )
    damaged = store.damaged(con)  # what is left: metrics or provenance (and configs of restored cells' rows)
    retrain = sorted({h for h, _ in damaged})
    lost = [h for h in store.lost_arrays(con, full=True) if h not in retrain]  # CRCs checked too
    for what, hashes in (("had lost or unreadable arrays", lost), ("had damaged metrics or provenance", retrain)):
        if hashes:
            con.executemany(
                "UPDATE cells SET status='pending', metrics=NULL, provenance=NULL WHERE cell_hash=?",
                [(h,) for h in hashes],
            )
            print(f"{sweep.name}: {len(hashes)} finished cells {what}; training them again", file=sys.stderr)


def _train(cells, name, store, con, submit, device, max_batch, progress, summary, out) -> None:
    """Trains the pending ones among ``cells`` (one round), writing each result as it arrives."""
    status = store.statuses(con)
    todo = {c.hash for c in cells if status.get(c.hash) == "pending"}
    batches = [b for b in make_batches(cells, max_batch) if any(c.hash in todo for c in b)]
    done0 = len(cells) - len(todo)
    summary.already_done += done0
    if done0 and progress:
        print(f"{name}: resuming, {done0} of {len(cells)} cells already stored", file=sys.stderr)
    prov_cache: dict[str, dict] = {}
    # the bar counts model-steps (a cell of S steps is S of them), so it moves inside an ensemble and its
    # ETA weighs cells by their work; the description counts cells
    steps = {c.hash: c.train["steps"] for c in cells}
    work_done = sum(steps[c.hash] for c in cells if c.hash not in todo)
    bar = progress_bar(
        total=sum(steps.values()),
        initial=work_done,
        desc=f"{name}: {done0}/{len(cells)} cells",
        unit=" model-steps",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    credited: dict[str, int] = {}  # model-steps already shown for cells in flight

    def on_steps(k, hashes):
        for h in hashes:
            credited[h] = credited.get(h, 0) + k
        bar.update(k * len(hashes))

    def store_batch(results):
        for h, r in results:
            if h not in todo:
                continue  # a cell finished earlier that shares this ensemble: keep the first result
            dev = r.pop("device", device)
            prov = prov_cache.setdefault(dev, provenance(dev))
            failed = r["status"] == "failed"
            nc = not failed and r.get("converged") is False
            if store.write_result(con, h, r, prov):
                summary.ran += 1
                summary.failed += failed
                summary.not_converged += nc
                if nc:
                    from ..metrics import nc_kinds

                    for kind in nc_kinds(str(r.get("not_converged_because", ""))) or ["unknown reason"]:
                        summary.not_converged_kinds[kind] = summary.not_converged_kinds.get(kind, 0) + 1
                todo.discard(h)
                bar.update(max(0, steps[h] - credited.pop(h, 0)))
        bar.set_description(f"{name}: {len(cells) - len(todo)}/{len(cells)} cells", refresh=False)
        bar.set_postfix(failed=summary.failed, not_converged=summary.not_converged)

    try:
        submit(batches, todo, on_steps, store_batch)
    except KeyboardInterrupt:
        raise Interrupted(len(cells) - len(todo), len(cells)) from None
    except (sqlite3.OperationalError, OSError) as e:  # disk full, permissions: what, where, how much space
        if isinstance(e, OSError) and e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise
        done = len(cells) - len(todo)
        raise StoreError(
            f"cannot write results in {out}: {e} ({free_space(Path(out))}); {done} of "
            f"{len(cells)} cells are stored: free space and rerun the same command"
        ) from None
    finally:
        bar.close()


@contextlib.contextmanager
def _executor(kind, device, workers, scheduler, timeout, threads=None):
    """Yields submit(batches, todo, on_steps, store_batch), which trains the batches and hands each result
    to store_batch in this process. Dask: one cluster for every round of the sweep."""
    if kind == "local":

        def submit(batches, todo, on_steps, store_batch):
            for b in batches:
                pending = [c.hash for c in b if c.hash in todo]
                store_batch(run_batch(_payload(b, device, threads), lambda k, hs=pending: on_steps(k, hs)))

        yield submit
        return
    from dask.distributed import Client, LocalCluster, as_completed
    from distributed.scheduler import KilledWorker

    cluster = None
    try:
        with _quiet("distributed"):
            if scheduler:
                try:
                    client = Client(scheduler, timeout=f"{timeout}s")
                except (OSError, TimeoutError) as e:
                    raise ClusterError(
                        f"cannot reach the Dask scheduler {scheduler} within {timeout:g} s ({e}); "
                        "start it or fix --scheduler"
                    ) from None
            else:
                # 127.0.0.1 only and no dashboard: nothing is exposed beyond this machine; worker logs
                # silenced (their shutdown heartbeats otherwise end a successful run with tracebacks)
                try:
                    cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        host="127.0.0.1",
                        silence_logs=logging.CRITICAL,
                    )
                except Exception as e:  # noqa: BLE001 — a worker that died while starting, ports, limits
                    raise ClusterError(
                        f"the local Dask cluster of {workers} workers did not start "
                        f"({type(e).__name__}: {e}); rerun, or use --executor local"
                    ) from None
                client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            client.close()
            raise ClusterError(
                f"the Dask scheduler {scheduler or 'LocalCluster'} has no workers after {timeout:g} s; "
                "start workers (dask worker ADDRESS) or raise --worker-timeout"
            ) from None
    except BaseException:
        if cluster is not None:
            with _quiet("distributed"):
                cluster.close()
        raise
    if threads is None and cluster is not None:  # a LocalCluster: its processes share this machine's cores
        threads = 1

    topic = f"theory-sim-progress-{os.getpid()}-{time.time_ns()}"
    progress_handler = {"fn": None}
    guard = threading.Lock()

    def on_event(event):
        msg = event[1] if isinstance(event, tuple) else event
        fn = progress_handler["fn"]
        if fn is not None and isinstance(msg, dict):
            with guard:
                fn(msg["k"], msg["hashes"])

    try:
        client.subscribe_topic(topic, on_event)
    except Exception:  # noqa: BLE001 — an old distributed: progress per finished batch only
        topic = None

    def submit(batches, todo, on_steps, store_batch):
        def advance(k, hashes):  # only cells still to do: a batch re-run by Dask after a death recounts
            on_steps(k, [h for h in hashes if h in todo])

        progress_handler["fn"] = advance
        payloads = [{**_payload(b, device, threads), "progress_topic": topic} for b in batches]
        futures = [client.submit(run_batch, p, pure=False, retries=2) for p in payloads]
        try:
            for fut in as_completed(futures):
                result = fut.result()
                with guard:
                    store_batch(result)
        except KilledWorker as e:
            raise ClusterError(
                f"Dask workers died three times on one batch ({e}); the cells stored so far are kept: "
                "rerun the same command to resume"
            ) from None
        finally:
            progress_handler["fn"] = None
            for f in futures:
                f.cancel()

    try:
        yield submit
    finally:
        with _quiet("distributed"):
            client.close()
            if cluster is not None:
                cluster.close()


@contextlib.contextmanager
def _quiet(logger: str):
    """Silences a library's logger while a cluster shuts down (the messages are about its own teardown)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def status_table(out: str):
    """Counts of done / failed / pending per (method, label), over the cells of the sweep as last run, with
    how many done cells did not converge (analysis.converged) and how many lost their arrays."""
    from ..analysis import converged

    df = load_results(out, current_only=True)
    if df.empty:
        return df
    t = df.groupby(["method", "label", "status"]).size().unstack(fill_value=0)
    for col in ("done", "failed", "pending"):
        if col not in t:
            t[col] = 0
    keys = [df.method, df.label]
    t["not_converged"] = ((df.status == "done") & ~converged(df)).groupby(keys).sum()
    t["lost_arrays"] = df.cell_hash.isin(set(Store(out).lost_arrays())).groupby(keys).sum()
    return t[["done", "failed", "pending", "not_converged", "lost_arrays"]]


#: the fraction of the matmul peak a training step is assumed to reach in a --dry-run estimate (theory-sim bench
#: measured 40–75 % on CPU for E = 1–32 on the standard cell; a GPU is launch-bound at these sizes: ~1–10 %)
DRY_RUN_EFFICIENCY = {"cpu": 0.5, "cuda": 0.05}


def plan_sweep(sweep: Sweep, out: str, device: str = "auto", max_batch: int | None = None, force: bool = False):
    """What ``run_sweep`` would do, without writing anything: per method label the cells, how many are
    already stored done, ensembles and model-steps to train, and an estimated time from this machine's
    measured matmul rate (a short 2048³ / 8192³ matmul) at an assumed fraction of it (DRY_RUN_EFFICIENCY).
    The same validation as a real run (folder, design, memory) comes first. Refinement rounds come on top
    and are not counted (they depend on the results)."""
    from ..device import matmul_peak

    if max_batch is None:
        max_batch = default_max_batch(device)
    dev, max_batch, store, _ = _validate_run(sweep, out, device, max_batch, force)
    done = set()
    if store.exists():
        with contextlib.closing(store._read_only()) as con:
            done = {h for h, st in store.statuses(con).items() if st == "done"}
    peak = matmul_peak(dev, reps=2) * 1e9
    eff = DRY_RUN_EFFICIENCY.get(dev.type, 0.5)
    rows: dict[str, dict] = {}
    todo = [c for c in sweep.cells if c.hash not in done]
    for c in sweep.cells:
        r = rows.setdefault(c.label, {"method": c.method, "cells": 0, "stored": 0, "model_steps": 0, "flops": 0.0})
        r["cells"] += 1
        if c.hash in done:
            r["stored"] += 1
            continue
        cfg = c.method_config()
        r["model_steps"] += c.train["steps"]
        r["flops"] += cfg.step_flops(c.train["batch"], c.data["d"]) * c.train["steps"]
        r["flops"] += cfg.init_flops(c.train["batch"], c.data["d"])
    batches = make_batches(todo, max_batch)
    for r in rows.values():
        r["seconds"] = r.pop("flops") / (peak * eff)
    return {
        "sweep": sweep.name,
        "budget": sweep.budget,
        "device": str(dev),
        "cells": len(sweep.cells),
        "stored": len(sweep.cells) - len(todo),
        "to_train": len(todo),
        "ensembles": len(batches),
        "max_batch": max_batch,
        "seeds": list(sweep.seeds),
        "refine_rounds": max((r.max_rounds for r in sweep.refine), default=0),
        "peak_gflops": peak / 1e9,
        "assumed_fraction_of_peak": eff,
        "seconds": sum(r["seconds"] for r in rows.values()),
        "per_label": rows,
        "hypotheses": hypotheses_plan(sweep),
    }


def hypotheses_plan(sweep: Sweep) -> dict | None:
    """Before anything trains: how many of the sweep's cells are inside its claim's ``[theory] require``
    (analysis.with_hypotheses on each cell's data, hyperparameters and steps), outside, or decided only by the
    run (a planted start's width needs the c₀ it planted); per required hypothesis, the cells where it fails.
    None without requirements."""
    import pandas as pd

    from ..analysis import with_hypotheses

    req = (sweep.theory or {}).get("require")
    if not req:
        return None
    rows = [{**c.data, **c.params, "train_steps": c.train["steps"]} for c in sweep.cells]
    df = with_hypotheses(pd.DataFrame(rows), sweep.theory)
    ins = df["inside"]
    return {
        "require": list(req),
        "inside": int(ins.map(lambda v: v is True).sum()),
        "outside": int(ins.map(lambda v: v is False).sum()),
        "decided_by_the_run": int(ins.map(lambda v: v is None).sum()),
        "failing": {h: int(df[f"hyp_{h}"].map(lambda v: v is False).sum()) for h in req},
    }


def hypotheses_warning(h: dict | None, cells: int) -> str | None:
    """One line when no cell can count for or against the claim (every cell outside its hypotheses)."""
    if not h or h["outside"] < cells:
        return None
    fails = ", ".join(f"{k} fails at {v}" for k, v in h["failing"].items() if v)
    return (
        f"warning: every one of the {cells} cells is outside the claim's hypotheses ({fails}): nothing this sweep "
        "trains can count for or against its claim"
    )


def format_plan(p: dict) -> str:
    lines = [
        f"{p['sweep']} [{p['budget']}] on {p['device']}: {p['cells']} cells (seeds {p['seeds']}), "
        f"{p['stored']} already stored, {p['to_train']} to train in {p['ensembles']} ensembles "
        f"of up to {p['max_batch']} models",
        f"{'label':>24} {'method':>14} {'cells':>6} {'stored':>6} {'model-steps':>12} {'est. s':>8}",
    ]
    for lab, r in p["per_label"].items():
        lines.append(
            f"{lab:>24} {r['method']:>14} {r['cells']:>6} {r['stored']:>6} {r['model_steps']:>12} {r['seconds']:>8.0f}"
        )
    h = p.get("hypotheses")
    if h:
        lines.append(
            f"hypotheses ({', '.join(h['require'])}): {h['inside']} cells inside, {h['outside']} outside, "
            f"{h['decided_by_the_run']} decided by the run"
        )
        warn = hypotheses_warning(h, p["cells"])
        if warn:
            lines.append(warn)
    rounds = f"; up to {p['refine_rounds']} refinement rounds come on top" if p["refine_rounds"] else ""
    lines.append(
        f"estimated {p['seconds'] / 60:.1f} min: the matmul FLOPs of each step (10·B·d·M for most methods) at "
        f"{p['assumed_fraction_of_peak']:.0%} of this machine's measured matmul peak "
        f"({p['peak_gflops']:.0f} GFLOP/s){rounds}; nothing was written"
    )
    return "\n".join(lines)
