"""Nothing lost, nothing silent at the edges: --force replaces only a saved SAE and never what the command reads,
inputs are checked as a whole (a sample folder's X = H V, H finite and nonnegative, knobs that do nothing refused,
degenerate worlds refused), output paths (links, overlong names, the working folder) refused in one line, and
options validated whatever the store holds."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_inprocess as cli

from theory_sim.errors import MAX_NAME_BYTES

TRAIN = ["train", "--method", "topk", "--k", "2", "--width", "16", "--steps", "5", "--no-progress"]
GEN = ["--n", "16", "--d", "8", "--s", "2"]


def one_line(r, field, code=2):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == code and len(lines) == 1 and "Traceback" not in r.stderr, (r.returncode, r.stderr)
    assert field in lines[0], lines[0]


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def sample(tmp_path):
    d = tmp_path / "smp"
    r = cli("sample", *GEN, "--samples", "2000", "--save", str(d))
    assert r.returncode == 0, r.stderr
    return d


def test_force_never_deletes_the_data_it_reads_a_store_or_user_files(tmp_path, sample):
    before = files(sample)
    one_line(cli(*TRAIN, "--data", str(sample), "--save-sae", str(sample), "--force"), "save_sae")
    assert files(sample) == before  # X, V, H and spec all still there
    store = tmp_path / "o"
    (tmp_path / "s.toml").write_text(
        'name = "s"\n[data]\nn = 16\nd = 8\ns = 2\n[[methods]]\nname = "topk"\nwidth = 16\nk = 2\n'
        "[train]\nsteps = 5\nbatch = 32\neval_samples = 64\n"
    )
    assert cli("sweep", str(tmp_path / "s.toml"), "--out", str(store), "--no-progress").returncode == 0
    kept = files(store)
    one_line(cli(*TRAIN, *GEN, "--save-sae", str(store), "--force"), "save_sae")
    assert files(store) == kept
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    one_line(cli(*TRAIN, *GEN, "--save-sae", str(mine), "--force"), "save_sae")
    assert (mine / "notes.txt").read_text() == "mine"
    # a saved SAE is replaced, seed folders of several seeds too
    sae = tmp_path / "sae"
    assert cli(*TRAIN, *GEN, "--save-sae", str(sae)).returncode == 0
    assert cli(*TRAIN, *GEN, "--save-sae", str(sae), "--force").returncode == 0
    multi = tmp_path / "multi"
    assert cli(*TRAIN, *GEN, "--seeds", "2", "--save-sae", str(multi)).returncode == 0
    assert cli(*TRAIN, *GEN, "--seeds", "2", "--save-sae", str(multi), "--force").returncode == 0
    assert files(multi) == sorted(f"seed_{s}{x}" for s in (0, 1) for x in ("", "/cfg.json", "/sae_weights.safetensors"))


def test_save_sae_paths_the_working_folder_links_and_long_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line(cli(*TRAIN, *GEN, "--save-sae", ".", "--force"), "save_sae")
    one_line(cli(*TRAIN, *GEN, "--save-sae", str(tmp_path.parent), "--force"), "save_sae")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    one_line(cli(*TRAIN, *GEN, "--save-sae", "dangling"), "save_sae")
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    r = cli(*TRAIN, *GEN, "--save-sae", "link")
    assert r.returncode == 0, r.stderr  # a link to a folder: written where it points
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real" / "cfg.json").exists()
    long = "x" * (MAX_NAME_BYTES + 1)
    for args in (
        [*TRAIN, *GEN, "--save-sae", long],
        ["sweep", "nope.toml", "--out", long],
        ["export", "nowhere", "--csv", long],
    ):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    one_line(cli(*TRAIN, *GEN, "--save-sae", "y/" * 2100 + "z"), "save_sae")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "link", "real"]


def test_saved_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        assert cli(*TRAIN, *GEN, "--save-sae", str(tmp_path / "sae")).returncode == 0
    finally:
        os.umask(old)
    assert (tmp_path / "sae").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "sae" / "cfg.json").stat().st_mode & 0o777 == 0o644


def test_a_sample_folder_is_checked_as_a_whole(tmp_path, sample):
    other = tmp_path / "other"
    assert cli("sample", *GEN, "--seed", "7", "--samples", "2000", "--save", str(other)).returncode == 0
    (sample / "V.npy").write_bytes((other / "V.npy").read_bytes())
    one_line(cli(*TRAIN, "--data", str(sample)), "data")  # another world's V
    (other / "spec.json").write_text("{garbage")
    one_line(cli(*TRAIN, "--data", str(other)), "spec")
    third = tmp_path / "third"
    assert cli("sample", *GEN, "--samples", "2000", "--save", str(third)).returncode == 0
    x = np.load(third / "X.npy")
    np.save(third / "X.npy", x + 0.5)  # X no longer H V
    one_line(cli(*TRAIN, "--data", str(third)), "data")


def test_inputs_that_do_nothing_or_degenerate_are_refused(tmp_path):
    X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "zero.npy", np.zeros((200, 8), np.float32))
    H = np.abs(np.random.default_rng(1).normal(size=(200, 4))).astype(np.float32)
    H[3, 1] = np.nan
    np.save(tmp_path / "h.npy", H)
    np.save(tmp_path / "v.npy", np.eye(4, 8, dtype=np.float32))
    d = str(tmp_path)
    one_line(cli(*TRAIN, "--data", f"{d}/zero.npy"), "data")
    one_line(
        cli(*TRAIN, "--data", f"{d}/x.npy", "--ground-truth", f"{d}/v.npy", "--activations", f"{d}/h.npy"),
        "activations",
    )
    one_line(cli(*TRAIN, "--data", f"{d}/x.npy", "--eval-activations", f"{d}/h.npy"), "eval_activations")
    for args, field in (
        (["--magnitude", "per_feature", "--mag-spread", "50"], "mag_spread"),
        (["--dictionary-bias", "1e30"], "dictionary_bias"),
        (["--mag-value", "1e30"], "mag_value"),
        (["--zipf", "2"], "zipf"),
        (["--frequencies", "zipf"], "frequencies"),
        (["--hierarchy-exclusive", "true"], "hierarchy_exclusive"),
        (["--support", "bernoulli", "--correlation-scale", "0.3"], "correlation_scale"),
        (["--magnitude", "per_feature", "--magnitudes", ",".join(["0"] * 16)], "magnitudes"),
    ):
        one_line(cli("sample", *GEN, *args, "--json"), field)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npy", "v.npy", "x.npy", "zero.npy"]


def test_dry_run_and_boundary_validate_what_the_run_validates(tmp_path, monkeypatch):
    (tmp_path / "s.toml").write_text(
        'name = "s"\n[data]\nn = 16\nd = 8\ns = 2\n[[methods]]\nname = "topk"\nwidth = 16\nk = 2\n'
        "[train]\nsteps = 5\nbatch = 32\neval_samples = 64\n"
    )
    monkeypatch.setenv("THEORY_SIM_THREADS", "garbage")
    one_line(cli("sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--dry-run"), "THEORY_SIM_THREADS")
    monkeypatch.delenv("THEORY_SIM_THREADS")
    assert cli("sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "--no-progress").returncode == 0
    one_line(cli("boundary", str(tmp_path / "o"), "--level", "nan"), "level")
    one_line(cli("boundary", str(tmp_path / "o"), "--tolerance", "-1"), "tolerance")


def test_two_reports_on_one_out_are_serialised(tmp_path):
    """A second reproduce on an --out another reproduce is writing is refused in one line (the first's REPORT.md is
    not overwritten half-way by a second one's sections)."""
    import fcntl

    out = tmp_path / "rep"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running reproduce holds it
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "theory_sim.cli",
                "reproduce",
                "--budget",
                "tiny",
                "--only",
                "phase",
                "--out",
                str(out),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        os.close(fd)
    one_line(r, "being written", code=1)
    assert not (out / "figures").exists() and not (out / "phase").exists()
