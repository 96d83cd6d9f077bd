"""Reliability under hostile or careless input: every bad input one line and exit 2 with nothing written;
faults (disk full, concurrent creation, lost arrays) detected and repaired; no name writes outside --out."""

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import cli_inprocess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import theory_sim
from theory_sim import load_results
from theory_sim.errors import ConfigError, StoreError
from theory_sim.store import Store
from theory_sim.sweep import load_sweep, run_sweep

BASE = """
name = "h"
[data]
n = 16
s = 2
[grid]
d = [8]
[[methods]]
name = "topk"
label = "TopK"
width = 16
k = 2
[train]
steps = 20
batch = 32
eval_samples = 256
seeds = [0]
"""


def cli_process(*args, cwd=None, timeout=600):
    """The command line in a subprocess; a hang fails the test (TimeoutExpired) instead of stalling CI."""
    return subprocess.run(
        [sys.executable, "-m", "theory_sim.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


cli = cli_inprocess  # in-process unless a test needs a real process (then cli_process)


def one_line_exit_2(r, field=None):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    if field:
        assert field in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------- sweep files
PARTS = {
    "name": 'name = "h"',
    "data": "[data]\nn = 16\ns = 2",
    "grid": "[grid]\nd = [8]",
    "methods": "[[methods]]\nname = 'topk'\nlabel = 'TopK'\nwidth = 16\nk = 2",
    "train": "[train]\nsteps = 20\nbatch = 32\neval_samples = 256\nseeds = [0]",
    "extra": "",
}


def doc(**over) -> str:
    """A sweep file from PARTS with some parts replaced; top-level keys must come before any table."""
    parts = {**PARTS, **over}
    top = [parts.pop("top")] if "top" in parts else []
    return "\n".join(top + [parts[k] for k in ("name", "data", "grid", "methods", "train", "extra") if parts[k]]) + "\n"


BAD_FILES = [
    (dict(name='name = "/abs/x"'), "name"),
    (dict(name='name = "../x"'), "name"),
    (dict(name='name = "a/b"'), "name"),
    (dict(name='name = ".hidden"'), "name"),
    (dict(name='name = ["ba"]'), "name"),
    (dict(grid="", top="grid = 3"), "grid"),
    (dict(train="", top="train = 3"), "train"),
    (dict(top="plot = 3"), "plot"),
    (dict(top="budgets = 3"), "budgets"),
    (dict(extra="[budgets]\nquick = 3"), "budgets.quick"),
    (dict(extra="[budgets.quick]\nbogus = 1"), "budgets.quick.bogus"),
    (dict(extra="[budgets.quick]\ntrain = 4"), "budgets.quick.train"),
    (dict(grid="[grid]\nd = [8]\nzip = 3"), "grid.zip"),
    (dict(methods="", top="methods = [3]"), "methods"),
    (dict(train="[train]\nseeds = [9223372036854775808]"), "train.seeds"),
    (dict(grid="[grid]\nd = {range = [8.5, 12, 1.5]}"), "grid.d"),
    (dict(grid="[grid]\nd = {range = [1, 1000000000, 1]}"), "grid.d"),
    (dict(grid="[grid]\nmag_value = {linspace = [0.1, 1, 1e9]}"), "grid.mag_value"),
    (dict(extra="[plot]\nx = 3"), "plot.x"),
    (dict(extra="[plot]\ncurve = ['nope']"), "plot.curve"),
    (dict(extra="[plot]\ntuned = 'ev'"), "plot.tuned"),
    (dict(extra="[plot]\ny = 'd'"), "plot.y"),
    (dict(extra="[plot]\nx = 'd'\ny = 'd'"), "plot.y"),
    (dict(extra="[[methods]]\nname = 'topk'\nlabel = 'TopK'\nwidth = 16\nk = 3"), "label"),  # duplicate label
    (dict(grid="[grid]\nd = [8]\nn = {range = [16, 700, 1]}\nmag_value = {range = [1, 500, 1]}"), "grid"),
    # [theory] and [check]: unknown keys, hypotheses and switches, values out of range — one line, nothing written
    (dict(extra="[theory]\nbogus = 1"), "theory.bogus"),
    (dict(extra="[theory]\nrequire = ['nope']"), "theory.require"),
    (dict(extra="[theory]\neps = 0.7"), "theory.eps"),
    (dict(extra="[theory]\nrequire = ['steps']"), "theory.varsigma"),
    (dict(extra="[check]\nsteps_factor = 1"), "check.steps_factor"),
    (dict(extra="[check]\nmethods = ['Nope']"), "check.methods"),
    (dict(extra="[check]\ngrid = {nope = [1]}"), "check.grid.nope"),
    (dict(extra="[check]\nswitches = {nope = [1]}"), "check.switches.nope"),
    (dict(extra="[check]\nswitches = {k = [0]}"), "check.switches.k"),  # a value TopK refuses
    (dict(extra="[check]\nswitches = {steps = [-5]}"), "check.switches.steps"),
    (dict(extra="[check]\nswitches = {k = [true]}"), "check.switches.k"),
    (dict(extra="[check]\njoint = [{k = 2}]"), "check.joint"),  # a joint switch needs two or more
    (dict(extra="[check]\njoint = [{k = 2, nope = 1}]"), "check.joint"),
    (dict(grid="[grid]\nd = [8, 8]"), "grid.d"),  # one model, pooled twice
    (dict(grid="[grid]\nd = [8, 8]\nn = [16, 16]\nzip = [['d', 'n']]"), "grid.zip"),  # a zipped point twice
    (dict(methods="[[methods]]\nname = 'topk'\nlabel = 'TopK'\nwidth = 16\nk = 2\nsteps = 0"), "methods[0].steps"),
]


@pytest.mark.parametrize("over,field", BAD_FILES)
def test_bad_sweep_files_one_line_exit_2_nothing_written(tmp_path, over, field):
    f = tmp_path / "s.toml"
    f.write_text(doc(**over))
    out = tmp_path / "out"
    r = cli("sweep", str(f), "--out", str(out), "--budget", "quick" if "budgets" in str(over) else "full")
    one_line_exit_2(r, field)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_non_utf8_sweep_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_bytes(b'name = "\xff\xfe"\n')
    one_line_exit_2(cli("sweep", str(f), "--out", str(tmp_path / "o")), "UTF-8")
    assert not (tmp_path / "o").exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.sampled_from(["data", "grid", "train", "plot", "methods", "budgets"]),
    value=st.one_of(
        st.integers(),
        st.text(max_size=5),
        st.booleans(),
        st.lists(st.integers(), max_size=3),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
)
def test_any_wrong_shape_for_a_table_is_a_config_error(tmp_path, key, value):
    """In-process (fast): every section given a non-table value raises ConfigError, nothing else."""
    import tomllib

    doc = tomllib.loads(textwrap.dedent(BASE))
    doc[key] = value
    from theory_sim.sweep import spec as S

    text = _dump(doc)
    f = tmp_path / "hyp.toml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        S.load_sweep(f)


def _dump(doc) -> str:
    """A tiny TOML writer for the shapes the property test makes (tomllib reads only)."""
    import json

    lines, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif k == "methods" and isinstance(v, list) and v and all(isinstance(m, dict) for m in v):
            for m in v:
                tables.append(("[methods]", m))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    for k, v in tables:
        lines.append(f"[{k}]")
        lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- sweep options
@pytest.mark.parametrize(
    "args,field",
    [
        (["--executor", "dask", "--workers", "0"], "workers"),
        (["--executor", "dask", "--scheduler", "nonsense"], "scheduler"),
        (["--max-batch", "0"], "max_batch"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_sweep_options_write_nothing(tmp_path, args, field):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    one_line_exit_2(cli("sweep", str(f), "--out", str(tmp_path / "o"), *args), field)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kind", ["empty", "file", "under_a_file"])
def test_bad_out_paths(tmp_path, kind):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = {"empty": "", "file": str(f), "under_a_file": str(f / "sub" / "o")}[kind]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    one_line_exit_2(cli("sweep", str(f), "--out", out, cwd=tmp_path), "out")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_missing_parent_folders_are_made(tmp_path):
    """`--out runs/quickstart` in a fresh clone (no runs/ yet) works, as `mkdir -p` would."""
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    r = cli("sweep", str(f), "--out", "runs/deeper/o", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "deeper" / "o" / "results.sqlite").exists()


# ---------------------------------------------------------------------------------------------- dask
def one_line_exit(r, code, words):
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.slow
def test_a_scheduler_without_workers_times_out_in_one_line_and_writes_nothing(tmp_path):
    from dask.distributed import LocalCluster

    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None, host="127.0.0.1") as cluster:
        r = cli_process(
            "sweep",
            str(f),
            "--out",
            str(tmp_path / "o"),
            "--executor",
            "dask",
            "--scheduler",
            cluster.scheduler_address,
            "--worker-timeout",
            "2",
        )
    one_line_exit(r, 1, ["no workers after 2 s", "--worker-timeout"])
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    r = cli_process(
        "sweep",
        str(f),
        "--out",
        str(tmp_path / "o"),
        "--executor",
        "dask",
        "--scheduler",
        "tcp://127.0.0.1:9",
        "--worker-timeout",
        "1",
    )
    one_line_exit(r, 1, ["cannot reach the Dask scheduler"])
    assert not (tmp_path / "o").exists()


def test_a_local_cluster_that_fails_to_start_is_one_error_and_writes_nothing(tmp_path, monkeypatch):
    """A worker killed while the cluster starts (simulated: LocalCluster raises as it does then)."""
    import dask.distributed

    def dies(*a, **k):
        raise RuntimeError("Worker failed to start: Nanny process exited")

    monkeypatch.setattr(dask.distributed, "LocalCluster", dies)
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    with pytest.raises(StoreError, match="did not start .*Nanny process exited.*--executor local"):
        run_sweep(load_sweep(f), str(tmp_path / "o"), executor="dask", workers=2, progress=False)
    assert not (tmp_path / "o").exists()


def test_bad_worker_timeout_is_refused(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    for bad in ("0", "-1", "inf", "nan"):
        one_line_exit_2(cli("sweep", str(f), "--out", str(tmp_path / "o"), "--worker-timeout", bad), "worker_timeout")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- faults
def test_disk_full_while_creating_the_store_leaves_nothing_and_a_rerun_completes(tmp_path, monkeypatch):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    real = sqlite3.connect

    def full(*a, **k):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(sqlite3, "connect", full)
    with pytest.raises(StoreError, match="free"):
        run_sweep(load_sweep(f), str(out), progress=False)
    monkeypatch.setattr(sqlite3, "connect", real)
    assert not (out / "results.sqlite").exists()
    (out / "results.sqlite").write_bytes(b"")  # what a crash mid-creation used to leave: not "another sweep's"
    s = run_sweep(load_sweep(f), str(out), progress=False)
    assert s.ran == 1 and set(load_results(out).status) == {"done"}


def test_disk_full_while_storing_is_one_line_and_resumable(tmp_path, monkeypatch):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE).replace("d = [8]", "d = [8, 12]"))
    out = tmp_path / "o"
    real = Store.write_result
    calls = []

    def full_after_one(self, con, h, r, prov):
        calls.append(h)
        if len(calls) > 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, con, h, r, prov)

    monkeypatch.setattr(Store, "write_result", full_after_one)
    with pytest.raises(StoreError, match="1 of 2 cells are stored"):
        run_sweep(load_sweep(f), str(out), progress=False)
    monkeypatch.setattr(Store, "write_result", real)
    s = run_sweep(load_sweep(f), str(out), progress=False)
    assert s.already_done == 1 and s.ran == 1


@pytest.mark.slow
def test_two_sweeps_creating_one_folder_at_once(tmp_path):
    """Two different sweep files start on the same fresh --out together: one runs, the other is refused
    with a clear line; the store holds one sweep's cells only, never a mix."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(textwrap.dedent(BASE).replace('name = "h"', 'name = "a"'))
    b.write_text(textwrap.dedent(BASE).replace('name = "h"', 'name = "b"'))
    out = tmp_path / "o"
    results = {}

    def go(name, f):
        results[name] = cli_process("sweep", str(f), "--out", str(out), "--no-progress")

    ts = [threading.Thread(target=go, args=(n, f)) for n, f in (("a", a), ("b", b))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(r.returncode for r in results.values())
    # the loser is refused either by the writer lock (exit 1, naming the holder's pid) while the winner runs,
    # or, once the winner is done, as another sweep (exit 2)
    assert codes in ([0, 1], [0, 2]), {k: (r.returncode, r.stderr[-500:]) for k, r in results.items()}
    loser = [r for r in results.values() if r.returncode != 0][0]
    lines = [ln for ln in loser.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in loser.stderr, loser.stderr
    assert ("being written by pid" in lines[0]) if loser.returncode == 1 else ("out" in lines[0])
    assert "None" not in loser.stderr
    assert len(set(load_results(out).sweep)) == 1


def test_same_name_from_another_file_is_refused_unless_force(tmp_path):
    a = tmp_path / "a.toml"
    b = tmp_path / "sub" / "a.toml"
    b.parent.mkdir()
    a.write_text(textwrap.dedent(BASE))
    b.write_text(textwrap.dedent(BASE).replace("k = 2", "k = 3"))
    out = tmp_path / "o"
    assert cli("sweep", str(a), "--out", str(out), "--no-progress").returncode == 0
    one_line_exit_2(cli("sweep", str(b), "--out", str(out), "--no-progress"), "another sweep file")
    assert cli("sweep", str(b), "--out", str(out), "--no-progress", "--force").returncode == 0


def test_lost_arrays_are_detected_and_repaired(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE).replace("d = [8]", "d = [8, 12]"))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    victim = next((out / "arrays").glob("*.npz"))
    victim.unlink()
    st_ = cli("status", str(out))
    assert "lost_arrays" in st_.stdout and st_.stdout.splitlines()[-1].split()[-1] == "1"
    one_line_exit_2(cli("plot", str(out), "--x", "d"), "lost their arrays")
    s = run_sweep(load_sweep(f), str(out), progress=False)
    assert s.ran == 1 and victim.exists()


def test_export_never_overwrites_the_store(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    before = (out / "results.sqlite").read_bytes()
    one_line_exit_2(cli("export", str(out), "--csv", str(out / "results.sqlite")), "csv")
    assert (out / "results.sqlite").read_bytes() == before


# ---------------------------------------------------------------------------------------------- data and sizes
@pytest.mark.parametrize(
    "args,field",
    [
        (["--n", "1000000000000"], "n"),
        (["--width", "10000000000"], "width"),
        (["--steps", "1000000000000"], "steps"),
        (["--seeds", "100000000"], "seeds"),
        (["--d", "0"], "d"),
        (["--seed", "9223372036854775808"], "seed"),
    ],
)
def test_impossible_sizes_are_refused_with_numbers(args, field):
    one_line_exit_2(cli("train", "--method", "topk", *args), field)


def test_sample_refuses_impossible_sample_counts():
    one_line_exit_2(cli("sample", "--samples", "100000000000000"), "samples")


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda p: np.save(p, np.ones((5, 3)) * 1j), "complex"),
        (lambda p: np.savez(p, a=np.ones(3)), "not a .npy"),
        (lambda p: np.save(p, np.array([["a"]])), "<U1"),
        (lambda p: np.save(p, np.zeros((0, 3))), "shape"),
        (lambda p: open(p, "wb").close(), "not a .npy"),
        (lambda p: np.save(p, np.ones(4)), "shape"),
    ],
)
def test_bad_data_arrays(tmp_path, make, field):
    p = tmp_path / "x.npy"
    make(str(p))
    if not p.exists():  # np.savez appends .npz
        p = next(tmp_path.iterdir())
    one_line_exit_2(cli("train", "--data", str(p), "--steps", "5"), field)


def test_a_huge_header_is_refused_before_reading(tmp_path):
    p = tmp_path / "x.npy"
    with open(p, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 10**3)})
    one_line_exit_2(cli("train", "--data", str(p), "--steps", "5"), "claims shape")


def test_data_with_generator_options_is_refused(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, np.ones((20, 3), np.float32))
    one_line_exit_2(cli("train", "--data", str(p), "--n", "64"), "n:")
    one_line_exit_2(cli("train", "--data", "/dev/null"), "regular file")


def test_api_errors_are_config_errors_and_numpy_integers_are_integers():
    X = np.abs(np.random.default_rng(0).normal(size=(64, 4))).astype(np.float32)
    with pytest.raises(ConfigError):
        theory_sim.train("topk", X * 1j, steps=2, progress=False)
    with pytest.raises(ConfigError):
        theory_sim.train("topk", X, ground_truth=np.zeros((0, 4)), steps=2, progress=False)
    with pytest.raises(ConfigError):
        theory_sim.train("nope", X, steps=2, progress=False)
    r = theory_sim.train(
        "topk", X, steps=np.int64(3), batch=np.int32(16), width=np.int64(8), k=np.int64(2), progress=False
    )[0]
    assert r["status"] == "done"
    spec = theory_sim.GeneratorSpec(n=np.int64(16), d=np.int64(8), s=np.int64(2))
    assert type(spec.n) is int


def test_no_name_writes_outside_out(tmp_path):
    """Even a store written before names were checked cannot make plot write outside --out."""
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("UPDATE meta SET value = '../escaped' WHERE key = 'sweep_name'")
    con.execute(
        "UPDATE meta SET value = replace(value, 'name = \"h\"', 'name = \"../escaped\"') WHERE key = 'sweep_source'"
    )
    con.commit()
    con.close()
    one_line_exit_2(cli("plot", str(out), "--x", "d"), "a file stem")
    assert not any(p.name.startswith("escaped") for p in tmp_path.rglob("*"))


def test_a_creator_that_raced_past_the_check_cannot_mix_its_cells_in(tmp_path):
    """The window the subprocess test rarely hits: both processes passed check_compatible on a fresh folder,
    both created (one link wins), and the second to fill the store in must be refused, not mixed in."""
    out = tmp_path / "o"
    fa, fb = tmp_path / "a.toml", tmp_path / "b.toml"
    fa.write_text(doc(name='name = "a"'))
    fb.write_text(doc(name='name = "b"'))
    sa, sb = load_sweep(fa), load_sweep(fb)
    A, B = Store(out), Store(out)
    out.mkdir()
    A.check_compatible(sa.name, False, sa.path)
    B.check_compatible(sb.name, False, sb.path)
    A.init(sa.name, sa.source, sa.cells, sa.path)
    with pytest.raises(ConfigError, match="another"):
        B.init(sb.name, sb.source, sb.cells, sb.path)
    assert set(load_results(out).sweep) == {"a"}


def test_damaged_metrics_are_one_line_and_a_rerun_repairs_them(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    good = load_results(out)["frr_0.9"].tolist()
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("UPDATE cells SET metrics = '{oops'")
    con.commit()
    con.close()
    for cmd in (("status", str(out)), ("plot", str(out), "--x", "d"), ("export", str(out), "--csv", "x.csv")):
        one_line_exit_2(cli(*cmd, cwd=tmp_path), "damaged")
    s = run_sweep(load_sweep(f), str(out), progress=False)
    assert s.ran == 1 and load_results(out)["frr_0.9"].tolist() == good  # trained again, the same numbers


@pytest.mark.parametrize("sizes", ["0", "x", "1,-2", "100000"])
def test_bad_bench_sizes(sizes):
    one_line_exit_2(cli("bench", "--sizes", sizes, "--no-grid"), "sizes")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="no /proc")
def test_a_folder_the_filesystem_refuses_is_one_line(tmp_path):
    one_line_exit_2(cli("sample", "--samples", "10", "--save", "/proc/theory-sim-x"), "save")
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    one_line_exit_2(cli("sweep", str(f), "--out", "/proc/theory-sim-x/o"), "out")
