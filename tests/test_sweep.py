"""Sweep files, the store, resume after SIGKILL, Dask worker death, divergence, bad input."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import cli_inprocess

from theory_sim import load_results
from theory_sim.errors import ConfigError
from theory_sim.store import SCHEMA_VERSION, Store
from theory_sim.sweep import load_sweep, make_batches, run_sweep

ROOT = Path(__file__).resolve().parent.parent
TIMING = {"seconds", "steps_per_second", "finished_at", "batch_size", "host"}

SMALL = """
name = "small"
[data]
n = 24
s = 2
[grid]
d = [8, 12]
[[methods]]
name = "ba"
width = 32
p_over_f = [0.5, 1, 2]
[[methods]]
name = "topk"
width = 32
k = [1, 2]
[train]
steps = 120
batch = 64
eval_samples = 512
seeds = [0, 1]
[budgets.tiny]
train = {steps = 40, seeds = [0]}
"""


def done_rows(db) -> int:
    """How many cells the store at ``db`` holds as done (0 while it does not exist or is busy)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as c:
            return c.execute("SELECT count(*) FROM cells WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for_done_rows(db, more_than: int, proc=None, limit_s: float = 120.0) -> None:
    """Poll until the store holds more than ``more_than`` done cells (or ``proc`` has exited): kills are
    timed by progress, not by a fixed sleep that a fast machine outruns."""
    deadline = time.monotonic() + limit_s
    while done_rows(db) <= more_than and time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        time.sleep(0.005)


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def cli_process(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "theory_sim.cli", *args], capture_output=True, text=True, timeout=timeout
    )


cli = cli_inprocess  # in-process unless a test needs a real process (then cli_process)


def metrics_by_hash(out):
    df = load_results(out)
    keep = [c for c in df.columns if c not in TIMING]
    return {r["cell_hash"]: r for r in df[keep].to_dict("records")}


def test_grid_expansion_and_batching(tmp_path):
    sw = load_sweep(write(tmp_path, SMALL))
    assert len(sw.cells) == (3 + 2) * 2 * 2  # (ba p/f + topk k) × d × seeds
    assert len({c.hash for c in sw.cells}) == len(sw.cells)
    batches = make_batches(sw.cells, max_batch=32)
    # one ensemble per (method, d): p/f, k and seeds vary inside an ensemble
    assert sorted(len(b) for b in batches) == [4, 4, 6, 6]
    assert all(len(b) <= 5 for b in make_batches(sw.cells, 5))
    tiny = load_sweep(write(tmp_path, SMALL), "tiny")
    assert len(tiny.cells) == 10 and tiny.cells[0].train["steps"] == 40


def test_axis_forms_and_zip(tmp_path):
    sw = load_sweep(
        write(
            tmp_path,
            """
        name = "z"
        [data]
        s = 2
        [grid]
        n = [16, 32, 64]
        d = {range = [8, 24, 8]}
        zip = [["n", "d"]]
        [[methods]]
        name = "ba"
        width = 16
        p_over_f = {geomspace = [0.5, 2, 3]}
        [train]
        steps = 10
    """,
        )
    )
    pts = sorted({(c.data["n"], c.data["d"]) for c in sw.cells})
    assert pts == [(16, 8), (32, 16), (64, 24)]
    assert sorted({c.params["p_over_f"] for c in sw.cells}) == [0.5, 1.0, 2.0]


BAD = [
    ("name='x'\nbogus=1\n[[methods]]\nname='ba'", "bogus"),
    ("name='x'\n[data]\nn='many'\n[[methods]]\nname='ba'", "data.n"),
    ("name='x'\n[data]\nn=4\ns=5\n[[methods]]\nname='ba'", "data.s"),
    ("name='x'\n[grid]\nd=[]\n[[methods]]\nname='ba'", "grid.d"),
    ("name='x'\n[[methods]]\nname='nope'", "methods[0].name"),
    ("name='x'\n[[methods]]\nname='topk'\nwidth=8\nk=9", "methods[0].k"),
    ("name='x'\n[[methods]]\nname='ba'\nkk=1", "methods[0].kk"),
    ("name='x'\n[train]\nsteps=0\n[[methods]]\nname='ba'", "train.steps"),
    ("name='x'\n[data]\nnoise_std=nan\n[[methods]]\nname='ba'", "data.noise_std"),
    ("name='x'\n[[methods]]\nname='ba'\n[budgets.huge]\ntrain={steps=1}", "budgets.huge"),
    ("name='x'\n[[methods]]\nname='ba'\np=[0.5, 1.5]", "methods[0].p"),
]


@pytest.mark.parametrize("text,key", BAD)
def test_bad_sweep_files_exit_2_and_write_nothing(tmp_path, text, key):
    f = write(tmp_path, text)
    out = tmp_path / "out"
    r = cli("sweep", str(f), "--out", str(out), "--no-progress")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(f) in line and key in line, line
    assert not out.exists()


def test_undefined_budget_names_allowed_ones(tmp_path):
    f = write(tmp_path, SMALL)
    r = cli("sweep", str(f), "--out", str(tmp_path / "o"), "--budget", "quick")
    assert r.returncode == 2 and "budgets.quick" in r.stderr and "tiny" in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_resume_after_sigkill_finishes_every_cell_once_with_identical_metrics(tmp_path):
    f = write(tmp_path, SMALL)
    ref = tmp_path / "ref"
    # both runs in real processes: the metrics are compared bit for bit across them
    assert cli_process("sweep", str(f), "--out", str(ref), "--no-progress", "--max-batch", "2").returncode == 0
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "theory_sim.cli",
        "sweep",
        str(f),
        "--out",
        str(out),
        "--no-progress",
        "--max-batch",
        "2",
    ]
    killed = False
    for attempt in range(6):  # kill at random moments after a new cell is stored, then let the last run finish
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_done_rows(out / "results.sqlite", done_rows(out / "results.sqlite"), proc=p)
        time.sleep(random.uniform(0.0, 0.3))
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            killed = True
        p.wait()
    assert killed, "the sweep finished before any kill; make it longer"
    assert cli_process("sweep", str(f), "--out", str(out), "--no-progress", "--max-batch", "2").returncode == 0
    con = sqlite3.connect(out / "results.sqlite")
    rows = con.execute("SELECT cell_hash, status FROM cells").fetchall()
    assert len(rows) == len({h for h, _ in rows}) == 20 and all(s == "done" for _, s in rows)
    a, b = metrics_by_hash(ref), metrics_by_hash(out)
    assert a.keys() == b.keys()
    for h in a:
        for k, v in a[h].items():
            w = b[h][k]
            assert v == w or (v != v and w != w), (k, v, w)  # NaN == NaN


def test_rerun_skips_finished_cells(tmp_path):
    f = write(tmp_path, SMALL)
    s1 = run_sweep(load_sweep(f, "tiny"), str(tmp_path / "o"), progress=False)
    s2 = run_sweep(load_sweep(f, "tiny"), str(tmp_path / "o"), progress=False)
    assert s1.ran == 10 and s2.ran == 0 and s2.already_done == 10


def test_changed_sweep_file_adds_cells(tmp_path):
    f = write(tmp_path, SMALL)
    run_sweep(load_sweep(f, "tiny"), str(tmp_path / "o"), progress=False)
    # the same file edited in place (a file at another path with the same name is another sweep: refused)
    # another design is refused unless forced; forced, it is a new generation that reuses identical cells
    f2 = write(tmp_path, SMALL.replace("d = [8, 12]", "d = [8, 12, 16]"))
    with pytest.raises(ConfigError, match="another design"):
        run_sweep(load_sweep(f2, "tiny"), str(tmp_path / "o"), progress=False)
    s = run_sweep(load_sweep(f2, "tiny"), str(tmp_path / "o"), progress=False, force=True)
    assert s.new_cells == 5 and s.ran == 5
    f3 = write(tmp_path, SMALL.replace("d = [8, 12]", "d = [16]"))
    run_sweep(load_sweep(f3, "tiny"), str(tmp_path / "o"), progress=False, force=True)
    df = load_results(tmp_path / "o")
    assert len(df) == 15 and df.current.sum() == 5  # old cells kept, not current
    assert set(df[df.current].generation) == {3} and set(df[~df.current].generation) <= {1, 2}
    cur = load_results(tmp_path / "o", current_only=True)
    assert set(cur.d) == {16} and len(cur) == 5


def test_other_sweep_refused_unless_force(tmp_path):
    f = write(tmp_path, SMALL)
    out = tmp_path / "o"
    run_sweep(load_sweep(f, "tiny"), str(out), progress=False)
    g = write(tmp_path, SMALL.replace('name = "small"', 'name = "other"'), "g.toml")
    before = (out / "results.sqlite").stat().st_mtime_ns
    r = cli("sweep", str(g), "--out", str(out), "--budget", "tiny", "--no-progress")
    assert r.returncode == 2 and "other" in r.stderr and "--force" in r.stderr
    assert (out / "results.sqlite").stat().st_mtime_ns == before
    r = cli("sweep", str(g), "--out", str(out), "--budget", "tiny", "--no-progress", "--force")
    assert r.returncode == 0


def test_newer_schema_refused(tmp_path):
    f = write(tmp_path, SMALL)
    out = tmp_path / "o"
    run_sweep(load_sweep(f, "tiny"), str(out), progress=False)
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    r = cli("sweep", str(f), "--out", str(out), "--budget", "tiny")
    assert r.returncode == 2 and "newer" in r.stderr
    with pytest.raises(ConfigError):
        load_results(out)


def test_diverging_cell_is_failed_with_reason_and_sweep_completes(tmp_path):
    f = write(
        tmp_path,
        """
        name = "div"
        [data]
        n = 16
        d = 8
        s = 2
        [[methods]]
        name = "ba"
        width = 16
        scale_init = [1.0, 1e30]
        [train]
        steps = 30
        batch = 32
        eval_samples = 256
    """,
    )
    s = run_sweep(load_sweep(f), str(tmp_path / "o"), progress=False)
    df = load_results(tmp_path / "o")
    assert s.ran == 2 and s.failed == 1
    bad = df[df.scale_init == 1e30].iloc[0]
    assert bad.status == "failed" and "non-finite" in bad.error
    assert df[df.scale_init == 1.0].iloc[0].status == "done"


def test_load_results_columns_and_export(tmp_path):
    f = write(tmp_path, SMALL)
    out = tmp_path / "o"
    run_sweep(load_sweep(f, "tiny"), str(out), progress=False)
    df = load_results(out)
    for col in (
        "cell_hash",
        "method",
        "seed",
        "status",
        "frr_0.9",
        "mmcs",
        "mcc",
        "l0",
        "n",
        "d",
        "width",
        "p_over_f",
        "train_steps",
        "torch_version",
        "device",
        "package_version",
        "seconds",
    ):
        assert col in df.columns, col
    assert df.cell_hash.is_unique and len(df) == 10
    arr = Store(out).load_arrays(df.cell_hash.iloc[0])
    assert arr["feature_best"].shape == (24,)
    r = cli("export", str(out), "--csv", str(tmp_path / "x.csv"))
    assert r.returncode == 0 and (tmp_path / "x.csv").read_text().count("\n") == 11
    r = cli("status", str(out))
    assert r.returncode == 0 and "done" in r.stdout


@pytest.mark.slow
def test_dask_worker_killed_mid_sweep_every_cell_once(tmp_path):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    f = write(tmp_path, SMALL)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        pids = list(client.run(os.getpid).values())
        done_at_kill = []
        db = tmp_path / "o" / "results.sqlite"

        def killer():
            # once the first cell is stored, not after a fixed sleep: on a fast machine the whole
            # sweep ended inside 3 s and the worker died after it (CI failed on that)
            wait_for_done_rows(db, 0)
            os.kill(pids[0], signal.SIGKILL)
            done_at_kill.append(done_rows(db))

        t = threading.Thread(target=killer)
        t.start()
        s = run_sweep(
            load_sweep(f),
            str(tmp_path / "o"),
            executor="dask",
            scheduler=cluster.scheduler_address,
            max_batch=2,
            progress=False,
        )
        t.join()
        assert done_at_kill and 0 < done_at_kill[0] < 20  # the worker died mid-sweep
    finally:
        client.close()
        cluster.close()
    con = sqlite3.connect(tmp_path / "o" / "results.sqlite")
    rows = con.execute("SELECT cell_hash, status FROM cells").fetchall()
    assert len(rows) == 20 and all(st == "done" for _, st in rows)
    assert s.ran == 20
    # the numbers do not depend on which worker (or executor) ran a cell
    ref = tmp_path / "ref"
    run_sweep(load_sweep(f), str(ref), max_batch=2, progress=False)
    a, b = metrics_by_hash(ref), metrics_by_hash(tmp_path / "o")
    for h in a:
        for k in ("frr_0.9", "mmcs", "l0"):
            assert a[h][k] == pytest.approx(b[h][k], abs=1e-5)


@pytest.mark.slow
def test_ctrl_c_prints_one_line_exits_130_and_resumes(tmp_path):
    """SIGINT (what Ctrl-C sends) mid-sweep: one line saying how far it got, exit 130, no traceback; the same
    command then finishes the rest (and says at the start how many cells were already stored)."""
    f = write(tmp_path, SMALL.replace("steps = 120", "steps = 400"))
    out = tmp_path / "o"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "theory_sim.cli",
            "sweep",
            str(f),
            "--out",
            str(out),
            "--max-batch",
            "2",
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_done_rows(out / "results.sqlite", 0, proc=p)  # interrupt once at least one cell is stored
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the sweep finished before the interrupt")
    assert p.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("theory-sim: interrupted: ") and "of 20 cells stored" in lines[0]
    r = cli("sweep", str(f), "--out", str(out), "--max-batch", "2")
    assert r.returncode == 0 and "resuming" in r.stderr
    assert set(load_results(out).status) == {"done"}


def test_non_convergence_is_stored_warned_and_counted(tmp_path):
    """40 steps are far too few for BA's biases to reach their targets: the cells say so (``converged`` False
    with a reason), the sweep warns, ``status`` counts them per method."""
    f = write(tmp_path, SMALL)
    out = tmp_path / "o"
    r = cli("sweep", str(f), "--out", str(out), "--budget", "tiny", "--no-progress")
    assert r.returncode == 0 and "did not converge" in r.stderr, r.stderr
    df = load_results(out)
    ba = df[df.method == "ba"]
    assert (~ba.converged.astype(bool)).all() and ba.not_converged_because.str.contains("targets").all()
    st = cli("status", str(out))
    header = [ln for ln in st.stdout.splitlines() if "not_converged" in ln][0].split()
    line = [ln for ln in st.stdout.splitlines() if ln.startswith("ba")][0].split()
    # the row starts with method and label, then one value per header column after "status"
    assert line[2 + header.index("not_converged") - 1] == str(len(ba))
    topk = [ln.split() for ln in st.stdout.splitlines() if ln.startswith("topk")][0]
    want = int((~df[df.method == "topk"].converged.astype(bool)).sum())
    assert topk[2 + header.index("not_converged") - 1] == str(want)  # counted, not every done cell


def test_one_pass_from_file_to_batches(monkeypatch):
    """Each cell's hyperparameters are resolved once (in make_cell) and carried: parsing the quickstart and
    batching its cells resolves exactly one config per cell (it used to be three: validation, the batch key
    and the count's own pass)."""
    from pathlib import Path

    import theory_sim.sweep.spec as spec_mod

    calls = []
    real = spec_mod.resolve_hyper
    monkeypatch.setattr(spec_mod, "resolve_hyper", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    root = Path(__file__).resolve().parent.parent
    sweep = spec_mod.parse_sweep((root / "sweeps" / "quickstart.toml").read_text(), "quickstart.toml", "full")
    spec_mod.make_batches(sweep.cells, 64)
    assert len(sweep.cells) > 10 and len(calls) == len(sweep.cells)
    assert sweep.cells[0].method_config() is sweep.cells[0].resolved  # carried, not resolved again
    assert "resolved" not in sweep.cells[0].config  # and never part of the cell's identity (its hash)


def test_out_of_memory_splits_the_ensemble_and_loses_no_cell(tmp_path, monkeypatch, capsys):
    """A CUDA out-of-memory error inside a batch (simulated on CPU: training refuses ensembles of more than one
    model) splits the batch in halves and retries, saying so once; every cell is trained, with the same numbers
    as a run that never hit the error (each model's numbers do not depend on its ensemble)."""
    import torch

    import theory_sim.sweep.runner as runner
    import theory_sim.training as training

    f = write(tmp_path, SMALL)
    ref = run_sweep(load_sweep(f, "tiny"), str(tmp_path / "ref"), progress=False)
    real = training.train_ensemble
    sizes = []

    def tight(method, cfgs, *a, **k):
        sizes.append(len(cfgs))
        if len(cfgs) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(method, cfgs, *a, **k)

    monkeypatch.setattr(training, "train_ensemble", tight)
    monkeypatch.setattr(runner, "_OOM_SAID", [])
    s = run_sweep(load_sweep(f, "tiny"), str(tmp_path / "o"), progress=False)
    assert s.ran == ref.ran == 10 and s.failed == 0
    assert max(sizes) > 1 and sizes.count(1) == 10  # it did split, down to one model per retry
    assert capsys.readouterr().err.count("out of device memory") == 1
    a, b = metrics_by_hash(tmp_path / "ref"), metrics_by_hash(tmp_path / "o")
    assert set(a) == set(b)
    for h in a:
        assert a[h]["frr_0.9"] == b[h]["frr_0.9"] and a[h]["mse"] == pytest.approx(b[h]["mse"], rel=1e-5)


CHECKED = (
    SMALL
    + """
[check]
methods = ["ba"]
grid = {d = [8], p_over_f = [0.5, 1.5]}
steps_factor = 2
"""
)


def test_the_budget_check_takes_refined_cells_at_the_selected_values_too(tmp_path):
    """The deciding cells are those the [check] table selects among the coarse grid's *and* the cells refinement
    added (a refined value between two coarse ones, or an extra seed at a coarse value): both sit where the
    verdict's boundaries are fitted. Cells the table does not select stay out."""
    from theory_sim.checks import derived_sweep

    sweep = load_sweep(write(tmp_path, CHECKED), "full")
    coarse = derived_sweep(sweep, None, None, 2, 1)[1]
    ba_half = next(c for c in sweep.cells if c.method == "ba" and c.data["d"] == 8 and c.params["p_over_f"] == 0.5)
    refined_seed = sweep.derive(ba_half, seed=7)  # refinement's extra seed at a selected value
    refined_value = sweep.derive(ba_half, "p_over_f", 1.5)  # a refined value the table lists
    unselected = sweep.derive(ba_half, "p_over_f", 0.7)  # a refined value it does not
    other_d = sweep.derive(ba_half, "d", 12)
    stored = [*sweep.cells, refined_seed, refined_value, unselected, other_d]
    mapping = derived_sweep(sweep, None, None, 2, 1, stored)[1]
    assert set(coarse) < set(mapping)
    assert set(mapping) - set(coarse) == {refined_seed.hash, refined_value.hash}
    assert all(m.train["steps"] == 2 * sweep.cells[0].train["steps"] for m in mapping.values())


def test_joint_switches_apply_together_and_only_where_the_method_has_them():
    """[check] joint: GBA's activation and the data's row norm switched at once; a TopK deciding cell has no
    activation, so only the row norm applies to it, and a switch of GBA's activation alone leaves TopK out (not
    re-trained); a key no deciding cell has is refused, naming it."""
    from theory_sim.checks import derived_sweep, switch_name, variants
    from theory_sim.errors import ConfigError
    from theory_sim.sweep.spec import parse_sweep

    src = """
name = "j"
[data]
n = 32
d = 8
[[methods]]
name = "gba"
label = "GBA"
width = 16
[[methods]]
name = "topk"
label = "TopK"
width = 16
k = 2
[train]
steps = 10
[check]
switches = {activation = ["jumprelu"]}
joint = [{activation = "jumprelu", row_norm = true}]
"""
    sw = parse_sweep(src, "j.toml")
    names = [v[0] for v in variants(sw)]
    assert names == ["check_budget", "check_activation_jumprelu", "check_activation_jumprelu_row_norm_True"]
    assert switch_name({"activation": "jumprelu", "row_norm": True}, None) == "activation=jumprelu+row_norm=True"
    _, alone = derived_sweep(sw, "activation", "jumprelu", 1, 1)
    assert [c.label for c in alone.values()] == ["GBA"]  # TopK has no activation: not re-trained
    _, both = derived_sweep(sw, {"activation": "jumprelu", "row_norm": True}, None, 1, 1)
    by = {c.label: c for c in both.values()}
    assert by["GBA"].params["activation"] == "jumprelu" and by["GBA"].data["row_norm"] is True
    assert by["TopK"].data["row_norm"] is True and "activation" not in by["TopK"].params
    with pytest.raises(ConfigError, match="check.joint"):
        parse_sweep(src.replace("row_norm = true}]", "row_nrom = true}]"), "j.toml")


def test_switches_may_have_their_own_deciding_cells():
    """[check] switch_grid: the budget check re-trains every listed cell, the switches only those of switch_grid."""
    from theory_sim.checks import derived_sweep
    from theory_sim.sweep.spec import parse_sweep

    src = """
name = "g"
[data]
d = 8
s = 2
[grid]
n = [16, 32, 64]
[[methods]]
name = "topk"
width = 16
k = 2
[train]
steps = 10
[check]
switches = {lr = [0.01]}
switch_grid = {n = [32]}
"""
    sw = parse_sweep(src, "g.toml")
    _, budget = derived_sweep(sw, None, None, 2, 1)
    _, switch = derived_sweep(sw, "lr", 0.01, 1, 1)
    assert sorted(c.data["n"] for c in budget.values()) == [16, 32, 64]
    assert [c.data["n"] for c in switch.values()] == [32] and next(iter(switch.values())).params["lr"] == 0.01


@pytest.mark.parametrize("budget", ["tiny", "quick", "full"])
@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parent.parent / "sweeps").glob("*.toml")))
def test_every_committed_experiment_has_cells_that_can_count(name, budget):
    """A sweep file whose every cell is outside its claim's hypotheses can decide nothing (resonance_heavy's
    first design: at s = 2 the full band n^-1 <= p <= n^(-2/s) is a point, so band_nondegenerate failed at every
    cell); each committed experiment keeps cells inside, or decided by the run (a planted start's width)."""
    from theory_sim.sweep.runner import hypotheses_plan

    h = hypotheses_plan(load_sweep(str(Path(__file__).parent.parent / "sweeps" / name), budget))
    assert h is None or h["inside"] + h["decided_by_the_run"] > 0, h


def test_dry_run_and_sweep_warn_when_no_cell_can_count(tmp_path, capsys):
    """Every cell outside (s = 2: the band degenerate): one warning line in the dry-run and before a sweep
    trains; none at s = 4."""
    from theory_sim import cli

    def write(s):
        f = tmp_path / f"s{s}.toml"
        f.write_text(
            textwrap.dedent(
                f"""
                name = "s{s}"
                [data]
                n = 64
                d = 16
                s = {s}
                [[methods]]
                name = "ba"
                p_over_f = 1.0
                width = 32
                [train]
                steps = 20
                seeds = [0]
                eval_samples = 256
                [theory]
                require = ["data_model", "band_nondegenerate"]
                """
            )
        )
        return str(f)

    assert cli.main(["sweep", write(2), "--out", str(tmp_path / "o2"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 cells inside, 1 outside" in out and "warning: every one of the 1 cells" in out
    assert "band_nondegenerate fails at 1" in out and not (tmp_path / "o2").exists()
    assert cli.main(["sweep", write(4), "--out", str(tmp_path / "o4"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 cells inside" in out and "warning" not in out
    assert cli.main(["sweep", write(2), "--out", str(tmp_path / "o2"), "--no-progress"]) == 0
    assert "warning: every one of the 1 cells" in capsys.readouterr().err
