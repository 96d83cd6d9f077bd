"""Trained SAEs out and back in, in SAELens's on-disk layout: a folder with ``cfg.json`` and
``sae_weights.safetensors``, loadable with SAELens's ``SAE.load_from_disk(folder)`` and with ``load_sae``.

Tensors (float32): ``W_enc`` (d_in, d_sae), ``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_in), ``b_dec`` (d_in,), and
``threshold`` (d_sae,) for "jumprelu". Codes, as SAELens computes them, with x' = x − b_dec
(``apply_b_dec_to_input``) and pre = x' W_enc + b_enc: "standard" z = ReLU(pre); "topk" the k largest of pre,
then ReLU; "jumprelu" z = pre · (pre > threshold). The reconstruction is z W_dec + b_dec.

An SAE trained on scaled inputs (``input_scale``, divisor c) is saved for raw inputs: W_enc / c, W_dec · c,
b_dec · c (the codes are unchanged); c is kept in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ConfigError

CFG_NAME = "cfg.json"
WEIGHTS_NAME = "sae_weights.safetensors"
ARCHITECTURES = ("standard", "topk", "jumprelu")


def sae_dict(sae, e: int, scale: float | None = None, metadata: dict | None = None) -> tuple[dict, dict]:
    """(cfg, tensors) of model ``e`` of a trained ensemble ``sae`` (Method.saelens), the input scale folded
    in."""
    arch, t, extra = sae.saelens(e)
    t = {k: v.detach().float().cpu().contiguous() for k, v in t.items()}
    if scale is not None and scale != 1.0:
        t["W_enc"] = t["W_enc"] / scale
        t["W_dec"] = t["W_dec"] * scale
        t["b_dec"] = t["b_dec"] * scale
    d_in, d_sae = t["W_enc"].shape
    cfg = {
        "architecture": arch,
        "d_in": int(d_in),
        "d_sae": int(d_sae),
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        **extra,
        "metadata": {"theory_sim": {**(metadata or {}), "input_scale": scale}},
    }
    return cfg, t


def write_sae(folder, cfg: dict, tensors: dict, replace: bool = False) -> None:
    """Writes ``cfg.json`` and ``sae_weights.safetensors`` into ``folder`` (new or empty; with ``replace`` a folder
    ``check_replaceable`` accepts), whole or not at all."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    from ..outputs import OutputError, atomic_folder

    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target, "save_sae", replace=replace) as tmp:
        (tmp / CFG_NAME).write_text(json.dumps(cfg, indent=1))
        try:
            save_file(tensors, str(tmp / WEIGHTS_NAME))
        except SafetensorError as e:  # the Rust writer's OS error (a full disk): one line, nothing left
            why = str(e).split("message: ")[-1].rstrip('"})') if "message: " in str(e) else str(e)
            raise OutputError(f"cannot write {target}/{WEIGHTS_NAME}: {why}; nothing was written") from None


def saved_sae_folder(folder) -> bool:
    """Whether ``folder`` holds a saved SAE and nothing else: exactly CFG_NAME and WEIGHTS_NAME, or (several seeds)
    only ``seed_S`` folders that each do."""
    p = Path(folder)
    names = {q.name for q in p.iterdir()}
    if names == {CFG_NAME, WEIGHTS_NAME}:
        return all((p / n).is_file() and not (p / n).is_symlink() for n in names)
    return bool(names) and all(
        n.startswith("seed_")
        and n[5:].isdigit()
        and (p / n).is_dir()
        and not (p / n).is_symlink()
        and saved_sae_folder(p / n)
        for n in names
    )


def check_replaceable(folder, reads=()) -> None:
    """What ``--force`` may replace: a folder that is new, empty, or holds a saved SAE and nothing else (never a
    sample folder, a results store or a user's own files), and that is not, does not hold and does not lie inside
    any path in ``reads`` (what the same command reads), nor the working folder or one of its ancestors.
    ConfigError naming ``save_sae`` otherwise."""
    import os

    p = Path(folder)
    real = Path(os.path.realpath(p))
    cwd = Path(os.path.realpath(os.getcwd()))
    if real == cwd or real in cwd.parents:
        raise ConfigError("save_sae", f"{str(folder)!r} is the working folder or holds it; give a folder of its own")
    for r in reads:
        if r is None:
            continue
        rr = Path(os.path.realpath(r))
        if rr == real or real in rr.parents or rr in real.parents:
            raise ConfigError(
                "save_sae", f"{str(folder)!r} overlaps {str(r)!r}, which this command reads; save the SAE elsewhere"
            )
    if p.is_dir() and any(p.iterdir()) and not saved_sae_folder(p):
        extra = sorted(q.name for q in p.iterdir() if q.name not in (CFG_NAME, WEIGHTS_NAME))[:3]
        raise ConfigError(
            "save_sae",
            f"--force replaces only a saved SAE ({CFG_NAME} and {WEIGHTS_NAME}, or seed_S folders of them); "
            f"{str(folder)!r} also holds {', '.join(extra) or 'other files'}",
        )


class SavedSAE:
    """A saved SAE, read back: ``cfg`` and the tensors as attributes; ``encode`` / ``decode`` / ``forward``
    compute what SAELens computes (module docstring). x: (..., d_in) tensor or array."""

    def __init__(self, cfg: dict, tensors: dict):
        self.cfg = cfg
        self.architecture = cfg["architecture"]
        for k, v in tensors.items():
            setattr(self, k, v)
        self.k = cfg.get("k")

    def encode(self, x) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        if self.architecture == "standard":
            return torch.relu(pre)
        if self.architecture == "topk":
            vals, idx = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
        return pre * (pre > self.threshold)

    def decode(self, z) -> torch.Tensor:
        return torch.as_tensor(z, dtype=torch.float32) @ self.W_dec + self.b_dec

    def forward(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat, z)."""
        z = self.encode(x)
        return self.decode(z), z


def load_sae(folder) -> SavedSAE:
    """A folder written by ``train --save-sae`` (or by SAELens for these architectures) as a SavedSAE;
    ConfigError naming ``sae`` when a file is missing or does not fit."""
    from safetensors.torch import load_file

    p = Path(folder)
    for f in (CFG_NAME, WEIGHTS_NAME):
        if not (p / f).is_file():
            raise ConfigError(
                "sae", f"{str(folder)!r} has no {f}; a saved SAE folder holds {CFG_NAME} and {WEIGHTS_NAME}"
            )
    try:
        cfg = json.loads((p / CFG_NAME).read_text())
        tensors = load_file(str(p / WEIGHTS_NAME))
    except (OSError, ValueError, RuntimeError) as e:
        raise ConfigError("sae", f"cannot read the SAE in {str(folder)!r} ({type(e).__name__}: {e})") from None
    arch = cfg.get("architecture") if isinstance(cfg, dict) else None
    if arch not in ARCHITECTURES:
        raise ConfigError("sae", f"architecture {arch!r} in {str(folder)!r}; allowed: {', '.join(ARCHITECTURES)}")
    need = {"W_enc", "b_enc", "W_dec", "b_dec"} | ({"threshold"} if arch == "jumprelu" else set())
    missing = sorted(need - set(tensors))
    if missing:
        raise ConfigError("sae", f"{str(folder)!r} lacks the tensors {', '.join(missing)}")
    if arch == "topk" and not isinstance(cfg.get("k"), int):
        raise ConfigError("sae", f"{str(folder)!r}: a topk SAE needs an integer k in {CFG_NAME}")
    return SavedSAE(cfg, tensors)
