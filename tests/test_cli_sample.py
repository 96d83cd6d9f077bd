import json
import subprocess
import sys

import pytest

KEYS = ["n", "d", "s_mean", "s_max", "f_min", "f_max", "mu_max", "mu_mean", "rho2", "noise_std", "snr"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "theory_sim.cli", *args], capture_output=True, text=True)


def test_sample_json_has_keys_and_is_deterministic():
    args = ["sample", "--n", "256", "--d", "64", "--s", "4", "--samples", "5000", "--seed", "0", "--json"]
    a, b = run(*args), run(*args)
    assert a.returncode == 0, a.stderr
    out = json.loads(a.stdout)
    for k in KEYS:
        assert k in out
    assert out["s_mean"] == 4 and out["n"] == 256
    assert a.stdout == b.stdout


@pytest.mark.parametrize("args,field", [
    (["--n", "4", "--s", "5"], "s"), (["--s", "0"], "s"), (["--n", "0"], "n"), (["--d", "-3"], "d"),
    (["--noise-std", "nan"], "noise_std"), (["--features", "orthogonal", "--n", "100", "--d", "8"], "features"),
    (["--support", "bernoulli", "--frequencies", "list", "--frequency-list", "2"], "frequency_list"),
    (["--bogus", "1"], "--bogus"), (["--mag-value", "-1"], "mag_value"),
])
def test_bad_input_one_line_exit_2(args, field):
    r = run("sample", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in r.stderr
