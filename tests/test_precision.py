"""The tensor-core option (TrainConfig.precision = "tf32"): refused off CUDA in one line, before anything is
written; on a CUDA device (skipped here without one) the training matmuls run in TF32, the evaluation in fp32,
and the caller's torch settings are restored."""

import pytest
import torch
from conftest import CUDA, cli_inprocess

import theory_sim
from theory_sim.errors import ConfigError
from theory_sim.hyper import TrainConfig

SWEEP = """
name = "p"
[data]
n = 24
d = 8
s = 2
[[methods]]
name = "topk"
width = 32
k = 2
[train]
steps = 20
batch = 64
eval_samples = 256
precision = "tf32"
"""


def test_default_precision_keeps_every_stored_cell_hash():
    """fp32 is left out of the cell's train dict, so cells stored before the option existed keep their hashes;
    tf32 is part of it (other numbers, another cell)."""
    assert "precision" not in TrainConfig().to_dict()
    assert TrainConfig(precision="tf32").to_dict()["precision"] == "tf32"
    with pytest.raises(ConfigError) as e:
        TrainConfig(precision="bf16")
    assert e.value.field == "precision" and "fp32, tf32" in str(e.value)


@pytest.mark.skipif(CUDA, reason="the refusal is for a machine without CUDA")
def test_tf32_off_cuda_is_refused_in_one_line_and_writes_nothing(tmp_path):
    r = cli_inprocess("train", "--method", "topk", "--k", "2", "--steps", "5", "--precision", "tf32", "--device", "cpu")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "precision: tf32 needs a CUDA device" in r.stderr
    with pytest.raises(ConfigError, match="precision"):
        theory_sim.train("topk", steps=5, k=2, precision="tf32", device="cpu", progress=False)
    f = tmp_path / "p.toml"
    f.write_text(SWEEP)
    out = tmp_path / "out"
    r = cli_inprocess("sweep", str(f), "--out", str(out), "--device", "cpu")
    assert r.returncode == 2 and "precision" in r.stderr and not out.exists()
    r = cli_inprocess("bench", "--precision", "tf32", "--device", "cpu")
    assert r.returncode == 2 and r.stderr.startswith("theory-sim: error: precision: tf32 needs a CUDA device")
    r = cli_inprocess("bench", "--precision", "bf16", "--device", "cpu")
    assert r.returncode == 2 and "must be one of fp32, tf32" in r.stderr


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_tf32_on_cuda_trains_restores_settings_and_matches_fp32():
    before = torch.backends.cuda.matmul.allow_tf32
    spec = theory_sim.GeneratorSpec(n=128, d=42, s=3)
    kw = dict(steps=1500, batch=512, eval_samples=4096, k=3, width=512, seeds=[0, 1], progress=False, device="cuda")
    fp32 = theory_sim.train("topk", spec, **kw)
    tf32 = theory_sim.train("topk", spec, precision="tf32", **kw)
    assert torch.backends.cuda.matmul.allow_tf32 == before
    for a, b in zip(fp32, tf32):
        assert abs(a["frr_0.9"] - b["frr_0.9"]) <= 0.05, (a["frr_0.9"], b["frr_0.9"])
