import json

import pytest
from conftest import cli_inprocess

KEYS = ["n", "d", "s_mean", "s_max", "f_min", "f_max", "mu_max", "mu_mean", "rho2", "noise_std", "snr"]


def run(*args):
    return cli_inprocess(*args)  # in-process: no interpreter start and torch import per call


def test_sample_json_has_keys_and_is_deterministic():
    args = ["sample", "--n", "256", "--d", "64", "--s", "4", "--samples", "5000", "--seed", "0", "--json"]
    a, b = run(*args), run(*args)
    assert a.returncode == 0, a.stderr
    out = json.loads(a.stdout)
    for k in KEYS:
        assert k in out
    assert out["s_mean"] == 4 and out["n"] == 256
    assert a.stdout == b.stdout


@pytest.mark.parametrize(
    "args,field",
    [
        (["--n", "4", "--s", "5"], "s"),
        (["--s", "0"], "s"),
        (["--n", "0"], "n"),
        (["--d", "-3"], "d"),
        (["--noise-std", "nan"], "noise_std"),
        (["--features", "orthogonal", "--n", "100", "--d", "8"], "features"),
        (["--support", "bernoulli", "--frequencies", "list", "--frequency-list", "2"], "frequency_list"),
        (["--bogus", "1"], "--bogus"),
        (["--mag-value", "-1"], "mag_value"),
    ],
)
def test_bad_input_one_line_exit_2(args, field):
    r = run("sample", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr


def test_sample_save_writes_data_that_train_accepts_and_spec_reloads(tmp_path):
    """``--save`` writes X (N, d), V (n, d), H as triplets and spec.json: X = H V exactly (no noise), the
    rows are the generator's, ``train --data/--ground-truth`` takes them, ``--spec`` reloads the spec."""
    import numpy as np
    import torch

    from theory_sim.model import GeneratorSpec, ModelSampler

    d = tmp_path / "data"
    r = run("sample", "--n", "64", "--d", "32", "--s", "2", "--samples", "1000", "--save", str(d), "--json")
    assert r.returncode == 0, r.stderr
    X, V = np.load(d / "X.npy"), np.load(d / "V.npy")
    idx, vals = np.load(d / "H_indices.npy"), np.load(d / "H_values.npy")
    assert X.shape == (1000, 32) and V.shape == (64, 32) and idx.shape == (2000, 2)
    H = np.zeros((1000, 64), np.float32)
    H[idx[:, 0], idx[:, 1]] = vals
    assert np.allclose(H @ V, X, atol=1e-5)
    spec = GeneratorSpec(n=64, d=32, s=2)
    assert np.array_equal(X, ModelSampler(spec).sample_x(1000).numpy())
    t = run(
        "train",
        "--data",
        str(d / "X.npy"),
        "--ground-truth",
        str(d / "V.npy"),
        "--method",
        "topk",
        "--k",
        "2",
        "--width",
        "64",
        "--steps",
        "20",
        "--json",
        "--no-progress",
    )
    assert t.returncode == 0 and "frr_0.9" in json.loads(t.stdout), t.stderr
    again = run("sample", "--spec", str(d / "spec.json"), "--samples", "500", "--json")
    assert json.loads(again.stdout)["n"] == 64 and json.loads(again.stdout)["d"] == 32
    assert torch.equal(torch.from_numpy(X[:1]), ModelSampler(spec).sample_x(1))


@pytest.mark.parametrize("setup,msg", [("file", "not a folder"), ("full", "not empty"), ("under_a_file", "a file")])
def test_sample_save_refuses_bad_folders_and_writes_nothing(tmp_path, setup, msg):
    target = tmp_path / "x"
    if setup == "file":
        target.write_text("keep")
    elif setup == "full":
        target.mkdir()
        (target / "other").write_text("keep")
    else:  # missing parents are made (mkdir -p), but not through a file
        (tmp_path / "f").write_text("keep")
        target = tmp_path / "f" / "missing" / "x"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    r = run("sample", "--n", "16", "--d", "8", "--s", "2", "--samples", "100", "--save", str(target))
    assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_thread_choice_leaves_busy_cores_alone(monkeypatch):
    monkeypatch.delenv("THEORY_SIM_THREADS", raising=False)  # the variable would override the load rule
    from theory_sim.device import choose_threads
    from theory_sim.errors import ConfigError

    assert choose_threads(cpus=2, load=0.1) == 2
    assert choose_threads(cpus=2, load=1.2) == 1 and choose_threads(cpus=2, load=3.9) == 1
    assert choose_threads(cpus=16, load=4.4) == 12
    assert choose_threads(2, cpus=1, load=5) == 2  # asked for, within the machine's cores: obeyed
    with pytest.raises(ConfigError):
        choose_threads(0)
    with pytest.raises(ConfigError, match="cores"):  # 10^5 threads on a few cores: refused, not obeyed
        choose_threads(100000)
