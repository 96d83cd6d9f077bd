"""Saved SAE folders (SAELens's layout) loaded exactly or refused in one line: every cfg field that changes the
computation honoured or refused, the config held against the tensors, damaged files the project's error."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from theory_sim import load_sae
from theory_sim.errors import ConfigError

D_IN, D_SAE = 6, 10


def write(folder, cfg: dict, tensors: dict | None = None):
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    t = tensors or {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g),
        "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g) * 1.7,  # rows far from unit norm: rescaling matters
        "b_dec": torch.randn(D_IN, generator=g),
        "threshold": torch.rand(D_SAE, generator=g) * 0.5,
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(folder / "sae_weights.safetensors"))
    return t


def base(**kw):
    return {"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "k": 3, **kw}


X = torch.randn(32, D_IN, generator=torch.Generator().manual_seed(1)) * 2 + 0.5


def by_hand(cfg, t, x):
    """What SAELens 6 computes, written out from its source for these fields."""
    norm = cfg.get("normalize_activations", "none")
    if norm == "constant_norm_rescale":
        c = D_IN**0.5 / x.norm(dim=-1, keepdim=True)
        xin = x * c
    elif norm == "layer_norm":
        mu, std = x.mean(-1, keepdim=True), (x - x.mean(-1, keepdim=True)).std(-1, keepdim=True)
        xin = (x - mu) / (std + 1e-5)
    else:
        xin = x
    pre = (xin - t["b_dec"] * cfg.get("apply_b_dec_to_input", True)) @ t["W_enc"] + t["b_enc"]
    rescale = cfg.get("rescale_acts_by_decoder_norm", False)
    if cfg["architecture"] == "topk":
        if rescale:
            pre = pre * t["W_dec"].norm(dim=-1)
        v, i = pre.topk(cfg["k"], dim=-1)
        z = torch.zeros_like(pre).scatter(-1, i, v.relu())
    elif cfg["architecture"] == "standard":
        z = pre.relu()
    else:
        z = pre.relu() * (pre > t["threshold"])
    zd = z / t["W_dec"].norm(dim=-1) if rescale else z
    out = zd @ t["W_dec"] + t["b_dec"]
    if norm == "constant_norm_rescale":
        out = out / c
    elif norm == "layer_norm":
        out = out * std + mu
    return out, z


@pytest.mark.parametrize(
    "cfg",
    [
        base(apply_b_dec_to_input=False),
        base(rescale_acts_by_decoder_norm=True),
        base(normalize_activations="constant_norm_rescale"),
        base(normalize_activations="layer_norm", apply_b_dec_to_input=False),
        base(normalize_activations="expected_average_only_in"),
        {**base(), "architecture": "standard", "apply_b_dec_to_input": False},
        {**base(), "architecture": "jumprelu"},
    ],
)
def test_every_computing_field_is_honoured(tmp_path, cfg):
    t = write(tmp_path / "s", cfg)
    x_hat, z = load_sae(tmp_path / "s").forward(X)
    ref_hat, ref_z = by_hand(cfg, t, X)
    assert torch.allclose(z, ref_z, atol=1e-5) and torch.allclose(x_hat, ref_hat, atol=1e-5)


def test_float64_weights_are_converted(tmp_path):
    t = write(tmp_path / "s", base())
    write(tmp_path / "d", base(dtype="float64"), {k: v.double() for k, v in t.items()})
    a, b = load_sae(tmp_path / "s").forward(X), load_sae(tmp_path / "d").forward(X)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a, b))


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g),
        "b_enc": torch.zeros(D_SAE),
        "W_dec": torch.randn(D_SAE, D_IN, generator=g),
        "b_dec": torch.zeros(D_IN),
        "threshold": torch.zeros(D_SAE),
    }


def damaged():
    t = _tensors()
    nan = dict(t, W_enc=t["W_enc"].clone().index_fill_(0, torch.tensor([0]), float("nan")))
    inf = dict(t, b_dec=torch.full((D_IN,), float("inf")))
    return [
        ("d_in text", base(d_in="eight"), t),
        ("d_in 9", base(d_in=9), t),
        ("d_in missing", {k: v for k, v in base().items() if k != "d_in"}, t),
        ("d_sae -16", base(d_sae=-16), t),
        ("d_sae 0", base(d_sae=0), t),
        ("d_sae 1e15", base(d_sae=10**15), t),
        ("dtype float128", base(dtype="float128"), t),
        ("NaN weights", base(), nan),
        ("inf weights", base(), inf),
        ("int32 weights", base(), dict(t, W_dec=t["W_dec"].to(torch.int32))),
        ("transposed W_enc", base(), dict(t, W_enc=t["W_enc"].T.contiguous())),
        ("k 0", base(k=0), t),
        ("k -1", base(k=-1), t),
        ("k true", base(k=True), t),
        ("k 1e9", base(k=10**9), t),
        ("k > d_sae", base(k=D_SAE + 1), t),
        ("threshold length", {**base(), "architecture": "jumprelu"}, dict(t, threshold=torch.zeros(3))),
        ("no threshold", {**base(), "architecture": "jumprelu"}, {k: v for k, v in t.items() if k != "threshold"}),
        ("normalize covariance", base(normalize_activations="covariance_whitening"), t),
        ("normalize garbage", base(normalize_activations="sometimes"), t),
        ("hook_z", base(reshape_activations="hook_z"), t),
        ("apply_b_dec text", base(apply_b_dec_to_input="no"), t),
        ("rescale on standard", {**base(), "architecture": "standard", "rescale_acts_by_decoder_norm": True}, t),
        ("architecture gated", {**base(), "architecture": "gated"}, t),
        ("cfg a list", [1, 2], t),
    ]


@pytest.mark.parametrize("name,cfg,tensors", damaged(), ids=[c[0] for c in damaged()])
def test_damaged_folders_are_refused_in_one_line(tmp_path, name, cfg, tensors):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(tmp_path / "s" / "sae_weights.safetensors"))
    with pytest.raises(ConfigError) as e:
        load_sae(tmp_path / "s")
    assert e.value.field == "sae" and "\n" not in str(e.value)


@pytest.mark.parametrize("damage", ["empty", "truncated", "lying header", "garbage"])
def test_damaged_weight_files_are_the_projects_error(tmp_path, damage):
    write(tmp_path / "s", base())
    w = tmp_path / "s" / "sae_weights.safetensors"
    raw = w.read_bytes()
    w.write_bytes(
        {
            "empty": b"",
            "truncated": raw[: len(raw) // 2],
            "lying header": (10**9).to_bytes(8, "little") + raw[8:],
            "garbage": np.random.default_rng(0).bytes(200),
        }[damage]
    )
    with pytest.raises(ConfigError, match="sae"):
        load_sae(tmp_path / "s")
