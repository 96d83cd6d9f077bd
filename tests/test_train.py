"""The training loop: ensembles equal separate runs, user data, divergence, bad input, recovery."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import cli_inprocess
from hypothesis import given, settings
from hypothesis import strategies as st

from theory_sim.errors import ConfigError
from theory_sim.model import GeneratorSpec, ModelSampler, make_features
from theory_sim.training import GeneratorData, TrainConfig, resolve_hyper, train, train_ensemble

SPEC = GeneratorSpec(n=32, d=16, s=2)


@pytest.mark.slow
def test_ensemble_equals_separate_runs_with_same_seeds():
    seeds = [3, 4, 5]
    specs = [SPEC.replace(seed=s, s=1 + s % 2) for s in seeds]
    cfgs = [
        resolve_hyper("ba", {"width": 64, "p_over_f": pf}, sp.mean_frequency()) for sp, pf in zip(specs, (0.5, 1, 2))
    ]
    tc = TrainConfig(steps=60, batch=64, eval_samples=512)
    ens = train_ensemble("ba", cfgs, GeneratorData(specs, "cpu"), seeds, tc, progress=False)
    for e in range(3):
        alone = train_ensemble("ba", [cfgs[e]], GeneratorData([specs[e]], "cpu"), [seeds[e]], tc, progress=False)[0]
        for k in ("frr_0.8", "mmcs", "mcc", "l0", "explained_variance"):
            assert ens[e][k] == pytest.approx(alone[k], abs=1e-4), k


def test_user_tensor_data_with_ground_truth():
    # s >= 2: with s = 1 a free b_dec makes the directions unidentifiable (d_m ∝ v_i − b_dec fits exactly)
    spec = GeneratorSpec(n=32, d=16, s=3)
    X = ModelSampler(spec).sample(8000)[0]
    V = make_features(spec)
    r = train(
        "topk", X.numpy(), ground_truth=V.numpy(), steps=1000, batch=256, width=128, k=3, lr=1e-2, progress=False
    )[0]
    assert r["status"] == "done" and r["frr_0.8"] >= 0.9


def test_callable_data_without_ground_truth_gives_quality_only():
    g = torch.Generator().manual_seed(0)
    r = train("l1", lambda B: torch.relu(torch.randn(B, 5, generator=g)), steps=20, batch=16, width=8, progress=False)[
        0
    ]
    assert "frr_0.9" not in r and r["status"] == "done" and 0 <= r["l0"] <= 8


def test_divergence_is_reported_not_hung():
    r = train("l1", lambda B: torch.full((B, 4), 1e30), steps=50, batch=8, width=4, progress=False)[0]
    assert r["status"] == "failed" and "non-finite" in r["error"]
    assert r["steps"] <= 50


def test_one_diverging_model_does_not_stop_the_others():
    """BA's output scale a at 1e30 in one model: its reconstruction overflows (the world itself is refused beyond
    magnitude 1e6, so a model, not the data, diverges here); the other model of the ensemble trains on."""
    specs = [SPEC.replace(seed=0), SPEC.replace(seed=1)]
    cfgs = [resolve_hyper("ba", {"width": 32, "p": 0.1, "scale_init": a}, None) for a in (1.0, 1e30)]
    res = train_ensemble(
        "ba",
        cfgs,
        GeneratorData(specs, "cpu"),
        [0, 1],
        TrainConfig(steps=30, batch=32, eval_samples=256),
        progress=False,
    )
    assert res[0]["status"] == "done" and res[1]["status"] == "failed"


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(data=np.array([[1.0, np.nan]])), "data"),
        (dict(data=np.ones((10, 3)), ground_truth=np.ones((4, 5))), "ground_truth"),
        (dict(p_over_f=1.0, data=np.ones((10, 3))), "p_over_f"),
        (dict(steps=0), "steps"),
    ],
)
def test_bad_train_input(kw, field):
    with pytest.raises(ConfigError) as e:
        train("ba", progress=False, **kw)
    assert e.value.field == field


@pytest.mark.slow
def test_train_cli_json_keys_and_bad_input():
    cmd = [
        sys.executable,
        "-m",
        "theory_sim.cli",
        "train",
        "--method",
        "topk",
        "--n",
        "24",
        "--d",
        "12",
        "--s",
        "2",
        "--width",
        "48",
        "--k",
        "2",
        "--steps",
        "100",
        "--json",
        "--no-progress",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for k in (
        "frr_0.8",
        "frr_0.9",
        "frr_0.95",
        "frr_0.99",
        "mmcs",
        "mcc",
        "l0",
        "dead_fraction",
        "explained_variance",
        "seconds",
        "steps_per_second",
    ):
        assert k in out
    for bad, field in (
        (["--method", "nope"], "method"),
        (["--method", "topk", "--k", "99", "--width", "8"], "k"),
        (["--method", "gba", "--htf", "0.001", "--ltf", "0.1"], "htf"),
        (["--method", "ba", "--p", "2"], "p"),
        (["--method", "gba", "--groups", "0"], "groups"),
        (["--width", "0"], "width"),
    ):
        r = cli_inprocess("train", *bad)
        assert r.returncode == 2 and field in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_ba_resonance_light_superposition():
    """the paper's regime (n 128, d 42, s 3, width 512, 3000 steps): BA recovers at p = f, not at p = 4f."""
    spec = GeneratorSpec(n=128, d=42, s=3)
    f = spec.mean_frequency()
    cfgs = [resolve_hyper("ba", {"width": 512, "p_over_f": pf}, f) for pf in (1, 4)]
    res = train_ensemble(
        "ba", cfgs, GeneratorData([spec, spec], "cpu"), [0, 0], TrainConfig(steps=3000), progress=False
    )
    assert res[0]["frr_0.9"] >= 0.85
    assert res[1]["frr_0.9"] <= 0.35


@pytest.mark.slow
@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(n=st.integers(32, 48), p_over_f=st.floats(0.5, 1.0), seed=st.integers(0, 1000))
def test_mba_recovers_inside_theorem_regime(n, p_over_f, seed):
    """Light superposition (d = n/2 > sqrt(n)), s = 2, p ∈ [f/2, f] (the band is f ≲ p ≲ min(√f, f d) up to
    constants; measured, recovery at step 1 holds at its low end and fails toward p = 2f), width M = 4096:
    after one spherical power step every feature has a neuron with cos >= 0.9 (Thm 6.1: constant steps)."""
    spec = GeneratorSpec(n=n, d=n // 2, s=2, seed=seed)
    r = train("mba", spec, seeds=[seed], steps=2, batch=8192, width=4096, p_over_f=p_over_f, progress=False)[0]
    assert max(r["frr_0.9_by_step"][1:]) == 1.0


def test_top_level_train_can_be_called_twice_and_shows_its_signature():
    """``theory_sim.train`` is the function, not a module that an import replaces."""
    import inspect

    import theory_sim
    import theory_sim.training  # noqa: F401  (importing the module must not shadow the function)

    X = np.abs(np.random.default_rng(0).normal(size=(256, 6))).astype(np.float32)
    for _ in range(2):
        r = theory_sim.train("topk", X, steps=5, batch=32, width=8, k=2, progress=False)[0]
        assert r["status"] == "done"
    assert callable(theory_sim.train) and "ground_truth" in inspect.signature(theory_sim.train).parameters


def test_input_scale_divides_by_the_mean_row_norm_and_is_stated():
    """Rows of norm exactly 5: the measured scale is 5, the model sees unit rows (its first batch x0 too),
    and a cell without the switch keeps its old config (no input_scale key, so its hash is unchanged)."""
    import numpy as np

    import theory_sim
    from theory_sim.training import TrainConfig

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 6))
    X = (5 * X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    r = theory_sim.train(
        "topk", X, steps=3, batch=32, eval_samples=128, width=8, k=1, input_scale="mean_norm", progress=False
    )[0]
    assert r["input_scale"] == pytest.approx(5.0, rel=1e-5)
    plain = theory_sim.train("topk", X, steps=3, batch=32, eval_samples=128, width=8, k=1, progress=False)[0]
    assert "input_scale" not in plain
    assert (
        "input_scale" not in TrainConfig().to_dict()
        and TrainConfig(input_scale="mean_norm").to_dict()["input_scale"] == "mean_norm"
    )
    with pytest.raises(theory_sim.ConfigError, match="input_scale"):
        TrainConfig(input_scale="max")


def test_input_scale_never_reads_the_held_out_rows():
    """With ``input_scale = mean_norm`` the divisor comes from training rows: the held-out rows (the last rows of the
    array, and an ``eval_data`` array) multiplied by 1,000 leave the scale and every trained weight bit-identical."""
    import numpy as np

    import theory_sim

    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    kw = dict(steps=20, batch=32, eval_samples=64, width=8, k=2, input_scale="mean_norm", progress=False)
    a = theory_sim.train("topk", X, keep_weights=True, **kw)[0]
    X2 = X.copy()
    X2[-64:] *= 1000  # the held-out tail (min(eval_samples, N // 5) = 64 rows)
    b = theory_sim.train("topk", X2, keep_weights=True, **kw)[0]
    assert a["input_scale"] == b["input_scale"]
    for k in (k for k in a["arrays"] if k.startswith("w_")):
        assert np.array_equal(a["arrays"][k], b["arrays"][k]), k
    ev = rng.normal(size=(64, 6)).astype(np.float32)
    c = theory_sim.train("topk", X, eval_data=ev, keep_weights=True, **kw)[0]
    d = theory_sim.train("topk", X, eval_data=ev * 1000, keep_weights=True, **kw)[0]
    assert c["input_scale"] == d["input_scale"] and np.array_equal(c["arrays"]["w_W_dec"], d["arrays"]["w_W_dec"])
