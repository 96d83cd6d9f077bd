"""The results store under hostile use: one writer per folder, one design per folder, outputs that cannot hit
the store and are never partial, every damaged field named and repaired by a rerun, bounded input files.

CLI calls run in-process (``cli.main``) unless a real process is needed; each guard here was broken once on
purpose and its test went red (see the closing note of the store issue)."""

import json
import os
import sqlite3
import textwrap
import zipfile

import numpy as np
import pytest

from theory_sim import cli, load_results
from theory_sim.errors import ConfigError, StoreError
from theory_sim.store import Store, writer_lock
from theory_sim.sweep import load_sweep, run_sweep

BASE = """
name = "h"
[data]
n = 16
s = 2
[grid]
d = [8, 12]
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
[budgets.tiny]
train = {steps = 10}
"""


def run(capsys, *args):
    """cli.main in-process: (exit code, stdout, stderr lines)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, [ln for ln in err.splitlines() if ln.strip()]


def one_line(capsys, code_expected, *args, contains=None):
    code, out, err = run(capsys, *args)
    assert code == code_expected and len(err) == 1, (code, err)
    if contains:
        assert contains in err[0], err[0]
    return err[0]


@pytest.fixture
def finished(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    run_sweep(load_sweep(f), str(out), progress=False)
    return f, out


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm")))


# ------------------------------------------------------------------------------------------ one writer
def test_a_second_writer_is_refused_while_the_first_holds_the_folder(finished, capsys, tmp_path):
    f, out = finished
    with writer_lock(out, "sweep h --budget full"):
        line = one_line(capsys, 1, "sweep", f, "--out", out, "--no-progress", contains="being written by pid")
        assert str(os.getpid()) in line and "sweep h" in line
        one_line(capsys, 1, "plot", out, "--x", "d", contains="being written")
        one_line(capsys, 1, "export", out, "--csv", tmp_path / "x.csv", contains="being written")
        assert not (tmp_path / "x.csv").exists()
        code, text, _ = run(capsys, "status", out)  # readers work during a sweep
        assert code == 0 and "TopK" in text
        assert run(capsys, "boundary", out)[0] == 0
    assert not (out / "writer.lock").exists()  # the holder note goes with the lock
    assert run(capsys, "sweep", f, "--out", out, "--no-progress")[0] == 0


def test_the_lock_is_held_for_the_whole_sweep(tmp_path, monkeypatch):
    """While cells train, the folder is locked: another writer_lock on it fails."""
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE))
    out = tmp_path / "o"
    seen = []
    import theory_sim.sweep.runner as R

    real = R.run_batch

    def probe(payload, on_steps=None):
        with pytest.raises(StoreError, match="being written"):
            with writer_lock(out, "probe"):
                pass
        seen.append(1)
        return real(payload, on_steps)

    monkeypatch.setattr(R, "run_batch", probe)
    run_sweep(load_sweep(f), str(out), progress=False)
    assert seen


# ------------------------------------------------------------------------------------------ one design
def test_another_budget_is_refused_and_force_starts_a_new_generation(finished, capsys):
    f, out = finished
    before = (out / "results.sqlite").read_bytes()
    line = one_line(capsys, 2, "sweep", f, "--out", out, "--budget", "tiny", "--no-progress", contains="another design")
    assert "budget full" in line and "--force" in line
    assert (out / "results.sqlite").read_bytes() == before
    assert run(capsys, "sweep", f, "--out", out, "--budget", "tiny", "--no-progress", "--force")[0] == 0
    df = load_results(out)
    cur = df[df.current]
    assert set(cur.train_steps) == {10} and set(cur.generation) == {2}  # never pooled with the 20-step cells
    assert set(df[~df.current].train_steps) == {20}
    assert Store(out).meta()["sweep_budget"] == "tiny"


def test_comments_and_plot_edits_are_the_same_design(finished, capsys):
    f, out = finished
    f.write_text("# a comment\n" + textwrap.dedent(BASE) + '[plot]\nx = "d"\n')
    assert run(capsys, "sweep", f, "--out", out, "--no-progress")[0] == 0


# ------------------------------------------------------------------------------------------ canonical values
def test_one_and_one_point_zero_are_one_value(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(textwrap.dedent(BASE).replace("d = [8, 12]", "d = [8]\nsnr = [0.5, 1, 1.0]"))
    with pytest.raises(ConfigError, match="same value given twice"):
        load_sweep(f)
    f.write_text(textwrap.dedent(BASE).replace("d = [8, 12]", "d = [8]\nshared = [0.0, -0.0]"))
    with pytest.raises(ConfigError, match="same value given twice"):
        load_sweep(f)
    hashes = []
    for v in ("1", "1.0"):
        f.write_text(textwrap.dedent(BASE).replace("d = [8, 12]", f"d = [8]\nsnr = [{v}]"))
        hashes.append(load_sweep(f).cells[0].hash)
    assert hashes[0] == hashes[1]
    f.write_text(textwrap.dedent(BASE).replace("d = [8, 12]", "d = [8]\nshared = [-0.0]"))
    h0 = load_sweep(f).cells[0].hash
    f.write_text(textwrap.dedent(BASE).replace("d = [8, 12]", "d = [8]\nshared = [0]"))
    assert load_sweep(f).cells[0].hash == h0


# ------------------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("link", ["symlink", "hardlink", "wal", "hardlink-arrays"])
def test_export_through_a_link_never_touches_the_store(finished, capsys, tmp_path, link):
    f, out = finished
    db = out / "results.sqlite"
    target = tmp_path / "x.csv"
    if link == "symlink":
        target.symlink_to(db)
    elif link == "hardlink":
        os.link(db, target)
    elif link == "hardlink-arrays":
        db = next((out / "arrays").glob("*.npz"))
        os.link(db, target)
    else:
        target = out / "results.sqlite-wal"
    before = db.read_bytes()
    one_line(capsys, 2, "export", out, "--csv", target, contains="store")
    assert db.read_bytes() == before
    assert run(capsys, "status", out)[0] == 0


def test_export_is_atomic_and_a_full_disk_is_one_line(finished, capsys, tmp_path):
    f, out = finished
    target = tmp_path / "x.csv"
    assert run(capsys, "export", out, "--csv", target)[0] == 0
    assert len(target.read_text().splitlines()) == 3
    if os.path.exists("/dev/full"):
        one_line(capsys, 1, "export", out, "--csv", "/dev/full", contains="cannot write /dev/full")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".x.csv")]  # no temp left behind


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_stdout_on_a_full_disk_is_one_line_exit_1(finished, tmp_path):
    import subprocess
    import sys

    f, out = finished
    for args in (["status", str(out)], ["boundary", str(out), "--json", "--axis", "d"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run(
                [sys.executable, "-m", "theory_sim.cli", *args], stdout=full, stderr=subprocess.PIPE, text=True
            )
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 1 and len(lines) == 1 and "cannot write" in lines[0], r.stderr


def test_plot_onto_a_read_only_folder_is_one_line(finished, capsys, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    f, out = finished
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    one_line(capsys, 1, "plot", out, "--x", "d", "--fig-dir", ro, contains="cannot write")


def test_sample_save_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch):
    import theory_sim.model.export as E

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(E.np, "save", boom)
    target = tmp_path / "s"
    one_line(capsys, 1, "sample", "--n", "16", "--d", "8", "--s", "2", "--samples", "50", "--save", target)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temp beside it
    monkeypatch.undo()
    assert run(capsys, "sample", "--n", "16", "--d", "8", "--s", "2", "--samples", "50", "--save", target)[0] == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "H_indices.npy",
        "H_values.npy",
        "V.npy",
        "X.npy",
        "spec.json",
    ]


# ------------------------------------------------------------------------------------------ damage
DAMAGE = {
    "config garbled": ("UPDATE cells SET config = '{oops' WHERE rowid = 1", "config"),
    "config not an object": ("UPDATE cells SET config = '[]' WHERE rowid = 1", "config"),
    "metrics a list": ("UPDATE cells SET metrics = '[]' WHERE rowid = 1", "metrics"),
    "metrics null": ("UPDATE cells SET metrics = 'null' WHERE rowid = 1", "metrics"),
    "metrics missing": ("UPDATE cells SET metrics = NULL WHERE rowid = 1", "metrics"),
    "provenance garbled": ("UPDATE cells SET provenance = 'x' WHERE rowid = 1", "provenance"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_each_damaged_field_is_named_and_a_rerun_repairs_it(finished, capsys, tmp_path, case):
    f, out = finished
    good = load_results(out).sort_values("cell_hash")["frr_0.9"].tolist()
    sql, field = DAMAGE[case]
    con = sqlite3.connect(out / "results.sqlite")
    con.execute(sql)
    con.commit()
    con.close()
    for args in (("status", out), ("plot", out, "--x", "d"), ("export", out, "--csv", tmp_path / "x.csv")):
        line = one_line(capsys, 2, *args, contains=f"stored {field} of cell")
        assert "rerun" in line
    code, text, _ = run(capsys, "status", out, "--check")
    assert code == 1 and f"damaged {field}" in text
    code, _, err = run(capsys, "sweep", f, "--out", out, "--no-progress")
    said = "restored from the sweep" if field == "config" else "training them again"
    assert code == 0 and any(said in e for e in err), err
    assert sorted(load_results(out).sort_values("cell_hash")["frr_0.9"].tolist()) == sorted(good)
    assert run(capsys, "status", out, "--check")[0] == 0


def test_a_damaged_schema_version_is_named_and_repaired(finished, capsys):
    f, out = finished
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("UPDATE meta SET value = 'abc' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    one_line(capsys, 2, "status", out, contains="schema_version")
    one_line(capsys, 2, "boundary", out, contains="schema_version")
    assert run(capsys, "sweep", f, "--out", out, "--no-progress")[0] == 0
    assert run(capsys, "status", out)[0] == 0


@pytest.mark.parametrize("kind", ["folder", "text", "empty-tables"])
def test_a_database_replaced_by_something_else_is_one_accurate_line(finished, capsys, kind):
    f, out = finished
    db = out / "results.sqlite"
    for p in out.glob("results.sqlite*"):
        p.unlink()
    if kind == "folder":
        db.mkdir()
        want = "is a folder"
    elif kind == "text":
        db.write_text("hello, I am not a database\n" * 10)
        want = "not a theory-sim results database"
    else:
        sqlite3.connect(db).execute("CREATE TABLE x (a)").connection.commit()
        want = "not a theory-sim results database"
    for args in (("status", out), ("boundary", out), ("plot", out), ("export", out, "--csv", out.parent / "x.csv")):
        one_line(capsys, 2, *args, contains=want)
    one_line(capsys, 2, "sweep", f, "--out", out, "--no-progress", contains=want)


@pytest.mark.slow
def test_a_locked_database_is_called_locked(finished, capsys):
    f, out = finished
    con = sqlite3.connect(out / "results.sqlite", isolation_level=None)
    con.execute("PRAGMA locking_mode = EXCLUSIVE")
    con.execute("BEGIN EXCLUSIVE")
    try:
        line = one_line(capsys, 1, "status", out, contains="locked")
        assert "not a theory-sim" not in line
    finally:
        con.execute("ROLLBACK")
        con.close()


def test_truncated_arrays_are_found_and_retrained(finished, capsys):
    f, out = finished
    victim = sorted((out / "arrays").glob("*.npz"))[0]
    victim.write_bytes(victim.read_bytes()[:40])
    (out / "arrays" / "stray.npz.tmp").write_bytes(b"half")
    code, text, _ = run(capsys, "status", out, "--check")
    assert code == 1 and victim.stem in text and "unreadable" in text
    one_line(capsys, 2, "plot", out, "--x", "d", contains="lost their arrays")
    code, _, err = run(capsys, "sweep", f, "--out", out, "--no-progress")
    assert code == 0 and any("unreadable arrays" in e for e in err)
    with zipfile.ZipFile(victim) as z:
        assert z.testzip() is None
    assert not (out / "arrays" / "stray.npz.tmp").exists()


def test_a_crc_failure_is_found_by_check(finished, capsys):
    f, out = finished
    victim = sorted((out / "arrays").glob("*.npz"))[0]
    data = bytearray(victim.read_bytes())
    with zipfile.ZipFile(victim) as z:
        info = z.infolist()[0]
    import struct

    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the local header's own lengths
    data[start + 5] ^= 0xFF  # one byte of the first member's compressed data
    victim.write_bytes(bytes(data))
    code, text, _ = run(capsys, "status", out, "--check")
    assert code == 1 and victim.stem in text
    code, _, err = run(capsys, "sweep", f, "--out", out, "--no-progress")  # the rerun checks CRCs too
    assert code == 0 and any("unreadable arrays" in e for e in err)
    assert run(capsys, "status", out, "--check")[0] == 0


# ------------------------------------------------------------------------------------------ input bounds
def test_hostile_files_are_refused_before_parsing(tmp_path, capsys):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 50000 + "]" * 50000 + "\n")
    one_line(capsys, 2, "sweep", deep, "--out", tmp_path / "o", contains="nests brackets")
    spec = tmp_path / "deep.json"
    spec.write_text("[" * 100000 + "]" * 100000)
    one_line(capsys, 2, "sample", "--spec", spec, contains="nests brackets")
    if os.path.exists("/dev/zero"):
        one_line(capsys, 2, "sweep", "/dev/zero", "--out", tmp_path / "o", contains="not a regular file")
        one_line(capsys, 2, "sample", "--spec", "/dev/zero", contains="not a regular file")
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * 300000)
    one_line(capsys, 2, "sweep", big, "--out", tmp_path / "o", contains="larger than")
    assert not (tmp_path / "o").exists()


def test_a_byte_order_mark_is_accepted(tmp_path):
    f = tmp_path / "s.toml"
    f.write_bytes("\ufeff".encode() + textwrap.dedent(BASE).encode())
    assert load_sweep(f).name == "h"


def test_sizes_threads_and_seeds_are_bounded(tmp_path, capsys):
    one_line(capsys, 2, "train", "--width", "1048576", "--batch", "65536", "--n", "1024", "--d", "1024", contains="GiB")
    one_line(capsys, 2, "train", "--threads", "100000", "--steps", "1", contains="threads")
    x = tmp_path / "x.npy"
    np.save(x, np.abs(np.random.default_rng(0).normal(size=(64, 4))).astype(np.float32))
    one_line(capsys, 2, "train", "--data", x, "--seed", str(2**63 - 1), "--seeds", "2", contains="seed")
    v = tmp_path / "v.npy"
    np.save(v, np.zeros((3, 4), np.float32))
    one_line(capsys, 2, "train", "--data", x, "--ground-truth", v, "--steps", "2", contains="all zeros")


def test_a_data_run_prints_no_warning(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.abs(np.random.default_rng(0).normal(size=(64, 4))).astype(np.float32))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, _, err = run(capsys, "train", "--data", x, "--steps", "2", "--method", "topk", "--k", "1", "--width", "8")
    assert code == 0 and not [e for e in err if "warn" in e.lower()]


def test_budget_overrides_pass_the_same_checks(tmp_path):
    f = tmp_path / "s.toml"
    for extra, key in (
        ('[budgets.quick]\nall_methods = {label = ""}', "label"),
        ('[[methods]]\nname = "l1"\nlabel = "L1"\n[budgets.quick]\nall_methods = {label = "same"}', "label"),
        ('[plot]\ntuned = ["nonexistent"]', "plot.tuned"),
        ('[plot]\nmetric = "nope"', "plot.metric"),
    ):
        text = textwrap.dedent(BASE).replace("[budgets.tiny]\ntrain = {steps = 10}\n", "") + extra + "\n"
        f.write_text(text)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_sweep(f)  # the full budget is asked for: every budget of the file is checked anyway


def test_memory_estimate_shrinks_ensembles_and_refuses_a_cell_too_big(monkeypatch, tmp_path):
    import theory_sim.training as T
    from theory_sim.sweep.runner import _fit_memory

    cells = load_sweep(_write(tmp_path, BASE)).cells
    one = T.estimate_bytes(1, 16, 8, 16, T.TrainConfig(steps=20, batch=32, eval_samples=256))
    monkeypatch.setattr(T, "device_memory", lambda dev: int(3.5 * one / T.MEMORY_SHARE))
    assert _fit_memory(cells, 8, __import__("torch").device("cpu")) == 3
    monkeypatch.setattr(T, "device_memory", lambda dev: int(0.5 * one / T.MEMORY_SHARE))
    with pytest.raises(ConfigError, match="GiB"):
        _fit_memory(cells, 8, __import__("torch").device("cpu"))


def _write(tmp_path, text):
    p = tmp_path / "w.toml"
    p.write_text(textwrap.dedent(text))
    return p


def test_status_check_on_a_clean_store(finished, capsys):
    f, out = finished
    code, text, _ = run(capsys, "status", out, "--check")
    assert code == 0 and "readable" in text
    meta = Store(out).meta()
    assert meta["design"] and meta["generation"] == "1"
    assert json.loads(json.dumps(meta["schema_version"])) == 1


def test_a_damaged_config_outside_the_grid_is_removed(finished, capsys):
    f, out = finished
    con = sqlite3.connect(out / "results.sqlite")
    con.execute(
        "INSERT INTO cells (cell_hash, sweep, label, method, seed, status, config, metrics) "
        "VALUES ('feedfeedfeedfeedfeed', 'h', 'TopK', 'topk', 0, 'done', '{oops', '{}')"
    )
    con.commit()
    con.close()
    one_line(capsys, 2, "export", out, "--csv", out.parent / "x.csv", contains="feedfeedfeedfeedfeed")
    code, _, err = run(capsys, "sweep", f, "--out", out, "--no-progress")
    assert code == 0 and any("removed" in e for e in err)
    assert "feedfeedfeedfeedfeed" not in set(load_results(out).cell_hash)
