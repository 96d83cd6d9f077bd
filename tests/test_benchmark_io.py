"""The benchmark's ground: held-out evaluation for user data, per-latent scores from saved folders, bad
supports refused, and trained SAEs saved in SAELens's on-disk layout and loaded back."""

import json

import numpy as np
import pytest
import torch

import theory_sim
from theory_sim import cli
from theory_sim.errors import ConfigError
from theory_sim.training import TensorData


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, [ln for ln in err.splitlines() if ln.strip()]


def test_the_held_out_rows_are_never_drawn_for_training():
    """Rows 0..79 train, 80..99 evaluate (N/5 = 20 < eval_samples): the two sets never meet, by value."""
    X = torch.arange(100, dtype=torch.float32).view(100, 1).repeat(1, 3)
    src = TensorData(X, [0, 1], "cpu", holdout=8192)
    drawn = torch.cat([src.sample(512).flatten() for _ in range(20)]).unique()
    ev, sup = src.eval_batch(8192)
    assert int(drawn.max()) == 79 and int(drawn.min()) == 0
    assert ev.shape == (2, 20, 3) and int(ev[0, 0, 0]) == 80 and sup is None
    src = TensorData(X, [0], "cpu", holdout=10)  # eval_samples smaller than N/5: that many rows held out
    assert src.eval_batch(8192)[0].shape == (1, 10, 3)


def test_supports_follow_the_held_out_rows():
    n, N = 4, 10
    H = np.zeros((N, n), np.float32)
    H[8, 2] = 1.0  # in the held-out rows 8, 9
    H[1, 0] = 1.0  # a training row
    V = np.eye(n, 3, dtype=np.float32) + 0.01
    X = (H @ V + 0.001).astype(np.float32)
    src = TensorData(X, [0], "cpu", V, activations=H, holdout=2)
    _, sup = src.eval_batch(100)
    rows, cols = sup[0]
    assert rows.tolist() == [0] and cols.tolist() == [2]  # row 8 is the first held-out row
    idx = np.array([[8, 2], [1, 0]], np.int64)
    rows, cols = TensorData(X, [0], "cpu", V, activations=idx, holdout=2).eval_batch(100)[1][0]
    assert rows.tolist() == [0] and cols.tolist() == [2]


@pytest.mark.parametrize(
    "acts,match",
    [
        (np.zeros((9, 4), np.float32), "dense"),  # rows disagree with X
        (np.array([[10, 0]], np.int64), "row indices"),
        (np.array([[0, 4]], np.int64), "feature indices"),
        (np.zeros((3, 3), np.int64), "integer array"),
    ],
)
def test_supports_that_do_not_fit_are_refused(acts, match):
    X = np.ones((10, 3), np.float32)
    V = np.eye(4, 3, dtype=np.float32) + 0.01
    with pytest.raises(ConfigError, match=match):
        theory_sim.train("topk", X, ground_truth=V, activations=acts, steps=1, width=4, k=1, progress=False)


def test_a_saved_folder_gives_per_latent_scores_on_held_out_rows(tmp_path, capsys):
    folder = tmp_path / "world"
    assert run(capsys, "sample", "--n", "32", "--d", "12", "--s", "2", "--samples", "5000", "--save", folder)[0] == 0
    code, out, _ = run(
        capsys,
        "train",
        "--method",
        "topk",
        "--data",
        folder,
        "--width",
        "64",
        "--k",
        "2",
        "--steps",
        "300",
        "--eval-samples",
        "512",
        "--json",
        "--no-progress",
    )
    r = json.loads(out)
    assert code == 0 and r["eval_held_out"] is True and r["eval_rows"] == 512
    for k in ("precision", "recall", "f1", "accuracy", "f1_alive", "uniqueness_alive"):
        assert 0.0 <= r[k] <= 1.0, k
    code, out, _ = run(
        capsys,
        "train",
        "--method",
        "topk",
        "--n",
        "32",
        "--d",
        "12",
        "--s",
        "2",
        "--width",
        "64",
        "--steps",
        "5",
        "--eval-samples",
        "256",
        "--json",
        "--no-progress",
    )
    r = json.loads(out)
    assert r["eval_held_out"] is True and r["eval_rows"] == 256


def test_a_folder_missing_a_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "world"
    assert run(capsys, "sample", "--n", "16", "--d", "8", "--s", "2", "--samples", "200", "--save", folder)[0] == 0
    (folder / "V.npy").unlink()
    code, _, err = run(capsys, "train", "--data", folder, "--steps", "2")
    assert code == 2 and len(err) == 1 and "V.npy" in err[0]


def test_alive_scores_are_not_capped_by_width():
    """Four latents, two of them dead, two tracking features 0 and 1 exactly: SynthSAEBench's uniqueness
    (over all M) is 2/4, the alive version 2/2; F1 over all latents 0.5 (dead ones count 0), alive 1."""
    from theory_sim.metrics import classification_metrics

    V = torch.eye(2, 3)
    D = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0.9, 0.1, 0], [0.1, 0.9, 0]])
    z = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])  # rows: feature 0 present, then feature 1
    rows, cols = torch.tensor([0, 1]), torch.tensor([0, 1])
    m = classification_metrics(z, D, V, rows, cols)
    assert m["f1"] == pytest.approx(0.5) and m["f1_alive"] == pytest.approx(1.0)
    assert m["uniqueness_alive"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "method,params", [("topk", {"k": 2}), ("l1", {}), ("jumprelu", {}), ("ba", {"p": 0.05}), ("batchtopk", {"k": 2})]
)
def test_a_saved_sae_reloads_with_the_same_codes_and_metrics(tmp_path, method, params):
    """Train, save in SAELens's layout, load back: the loaded SAE's codes and reconstruction equal the
    trained model's on the same rows, and its decoder gives the same FRR; with input scaling folded in too."""
    from theory_sim import metrics as M
    from theory_sim.model import GeneratorSpec
    from theory_sim.training import GeneratorData

    spec = GeneratorSpec(n=16, d=8, s=2)
    for scale in ("none", "mean_norm"):
        folder = tmp_path / f"{method}-{scale}"
        r = theory_sim.train(
            method,
            spec,
            steps=60,
            batch=64,
            eval_samples=256,
            width=24,
            keep_weights=True,
            input_scale=scale,
            save_sae=str(folder),
            progress=False,
            **params,
        )[0]
        sae = theory_sim.load_sae(folder)
        cfg = json.loads((folder / "cfg.json").read_text())
        assert cfg["d_in"] == 8 and cfg["d_sae"] == 24 and (folder / "sae_weights.safetensors").exists()
        V = GeneratorData([spec], "cpu").V[0]
        assert M.frr(M.best_cosines(V, sae.W_dec)[0], 0.9) == pytest.approx(r["frr_0.9"])
        x, _ = GeneratorData([spec], "cpu").eval_batch(256)
        x_hat, z = sae.forward(x[0])
        c = r.get("input_scale", 1.0)
        ev = 1 - ((x[0] - x_hat).pow(2).sum() / (x[0] - x[0].mean(0)).pow(2).sum()).item()
        assert ev == pytest.approx(r["explained_variance"], abs=1e-4)  # the trained model's, on the same rows
        assert (z != 0).float().sum(1).mean().item() == pytest.approx(r["l0"], abs=1e-4)
        assert cfg["metadata"]["theory_sim"]["input_scale"] == (None if scale == "none" else pytest.approx(c))


def test_save_sae_refuses_a_full_folder_and_methods_saelens_cannot_hold(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep me")
    code, _, err = run(
        capsys,
        "train",
        "--method",
        "topk",
        "--n",
        "16",
        "--d",
        "8",
        "--s",
        "2",
        "--width",
        "16",
        "--steps",
        "3",
        "--save-sae",
        full,
    )
    assert code == 2 and len(err) == 1 and "save_sae" in err[0] and (full / "x").exists()
    code, _, err = run(
        capsys,
        "train",
        "--method",
        "mba",
        "--n",
        "16",
        "--d",
        "8",
        "--s",
        "2",
        "--width",
        "16",
        "--steps",
        "1",
        "--save-sae",
        tmp_path / "m",
    )
    assert code == 2 and "SAELens architecture" in err[0] and not (tmp_path / "m").exists()
    args = ["train", "--method", "topk", "--n", "16", "--d", "8", "--s", "2", "--width", "16", "--steps", "3"]
    # --force replaces only a saved SAE: a folder of the user's own files is refused, its file kept
    code, _, err = run(capsys, *args, "--save-sae", full, "--force", "--no-progress")
    assert code == 2 and "replaces only a saved SAE" in err[0] and (full / "x").exists()
    (full / "x").unlink()
    code, _, _ = run(capsys, *args, "--save-sae", full, "--no-progress")
    assert code == 0
    code, _, _ = run(capsys, *args, "--save-sae", full, "--force", "--no-progress")  # a saved SAE: replaced
    assert code == 0 and sorted(p.name for p in full.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    (full / "cfg.json").write_text('{"architecture": "gated"}')
    with pytest.raises(ConfigError, match="architecture"):
        theory_sim.load_sae(full)
