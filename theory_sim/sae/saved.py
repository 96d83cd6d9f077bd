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


#: the cfg.json fields that change what SAELens computes for these architectures, and what load_sae does with each
#: value: honoured (implemented below) or refused in one line (never ignored)
NORMALIZATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


class SavedSAE:
    """A saved SAE, read back: ``cfg`` and the tensors (float32) as attributes; ``encode`` / ``decode`` /
    ``forward`` compute what SAELens 6's ``SAE.encode`` / ``decode`` compute for the architecture, honouring
    ``apply_b_dec_to_input`` (x' = x − b_dec or x), ``normalize_activations`` ("none"; "expected_average_only_in",
    which SAELens's SAE does not apply at run time either — its activation store does; "constant_norm_rescale":
    x·√d_in/‖x‖ in, the inverse out; "layer_norm": (x − mean)/(std + 1e-5) in, x̂·std + mean out) and, for topk,
    ``rescale_acts_by_decoder_norm`` (pre-activations times ‖W_dec row‖ before the top k, codes divided by it
    before decoding). x: (..., d_in) tensor or array."""

    def __init__(self, cfg: dict, tensors: dict):
        self.cfg = cfg
        self.architecture = cfg["architecture"]
        for k, v in tensors.items():
            setattr(self, k, v)
        self.k = cfg.get("k")
        self.apply_b_dec = cfg.get("apply_b_dec_to_input", True)
        self.norm = cfg.get("normalize_activations", "none")
        self.rescale = bool(cfg.get("rescale_acts_by_decoder_norm", False))
        self._stats = None

    def _norm_in(self, x):
        if self.norm == "constant_norm_rescale":
            coeff = self.W_enc.shape[0] ** 0.5 / x.norm(dim=-1, keepdim=True)
            self._stats = coeff
            return x * coeff
        if self.norm == "layer_norm":
            mu = x.mean(dim=-1, keepdim=True)
            xc = x - mu
            std = xc.std(dim=-1, keepdim=True)
            self._stats = (mu, std)
            return xc / (std + 1e-5)
        return x

    def _norm_out(self, x):
        if self.norm == "constant_norm_rescale" and self._stats is not None:
            return x / self._stats
        if self.norm == "layer_norm" and self._stats is not None:
            mu, std = self._stats
            return x * std + mu
        return x

    def encode(self, x) -> torch.Tensor:
        x = self._norm_in(torch.as_tensor(x, dtype=torch.float32))
        pre = (x - self.b_dec if self.apply_b_dec else x) @ self.W_enc + self.b_enc
        if self.architecture == "standard":
            return torch.relu(pre)
        if self.architecture == "topk":
            if self.rescale:
                pre = pre * self.W_dec.norm(dim=-1)
            vals, idx = pre.topk(self.k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
        return torch.relu(pre) * (pre > self.threshold)

    def decode(self, z) -> torch.Tensor:
        z = torch.as_tensor(z, dtype=torch.float32)
        if self.architecture == "topk" and self.rescale:
            z = z * (1 / self.W_dec.norm(dim=-1))  # as SAELens writes it: the same rounding
        return self._norm_out(z @ self.W_dec + self.b_dec)

    def forward(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_hat, z)."""
        z = self.encode(x)
        return self.decode(z), z

    def save(self, folder, replace: bool = False) -> None:
        """Writes this SAE back in SAELens's layout (its cfg as read, its tensors as float32)."""
        names = ("W_enc", "b_enc", "W_dec", "b_dec") + (("threshold",) if self.architecture == "jumprelu" else ())
        cfg = {**self.cfg, "dtype": "float32"}
        write_sae(folder, cfg, {k: getattr(self, k).contiguous() for k in names}, replace=replace)


def _refuse(folder, message: str):
    raise ConfigError("sae", f"{str(folder)!r}: {message}")


def check_sae_cfg(cfg, folder) -> None:
    """Every cfg.json field that changes the computation holds a value load_sae honours, the sizes are positive
    integers and k fits; ConfigError naming ``sae`` and the field otherwise."""
    if not isinstance(cfg, dict):
        _refuse(folder, f"{CFG_NAME} must hold a JSON object")
    arch = cfg.get("architecture")
    if arch not in ARCHITECTURES:
        _refuse(folder, f"architecture {arch!r}; allowed: {', '.join(ARCHITECTURES)}")
    for key in ("d_in", "d_sae"):
        v = cfg.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**31):
            _refuse(folder, f"{key} must be an integer in [1, 2^31], got {v!r}")
    if cfg.get("dtype", "float32") not in DTYPES:
        _refuse(folder, f"dtype {cfg.get('dtype')!r}; allowed: {', '.join(DTYPES)}")
    v = cfg.get("apply_b_dec_to_input", True)
    if not isinstance(v, bool):
        _refuse(folder, f"apply_b_dec_to_input must be true or false, got {v!r}")
    v = cfg.get("normalize_activations", "none")
    if v not in NORMALIZATIONS:
        _refuse(
            folder,
            f"normalize_activations {v!r} is not applied here (allowed: {', '.join(NORMALIZATIONS)}); fold it into the "
            "weights with SAELens first",
        )
    v = cfg.get("reshape_activations", "none")
    if v != "none":
        _refuse(folder, f"reshape_activations {v!r} reshapes attention heads; only 'none' is supported")
    v = cfg.get("rescale_acts_by_decoder_norm", False)
    if not isinstance(v, bool):
        _refuse(folder, f"rescale_acts_by_decoder_norm must be true or false, got {v!r}")
    if v and arch != "topk":
        _refuse(folder, f"rescale_acts_by_decoder_norm is a topk field, not {arch}'s")
    if arch == "topk":
        k = cfg.get("k")
        if not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= cfg["d_sae"]):
            _refuse(folder, f"a topk SAE needs an integer k in [1, d_sae = {cfg['d_sae']}], got {k!r}")


def check_sae_tensors(cfg: dict, tensors: dict, folder) -> dict:
    """The tensors held against the config: every one the architecture needs, floating point (converted to
    float32), of the shapes d_in and d_sae give, finite. Returns them converted; ConfigError otherwise."""
    arch, d_in, d_sae = cfg["architecture"], cfg["d_in"], cfg["d_sae"]
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    if arch == "jumprelu":
        shapes["threshold"] = (d_sae,)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        _refuse(folder, f"lacks the tensors {', '.join(missing)}")
    out = {}
    for name, shape in shapes.items():
        t = tensors[name]
        if not t.is_floating_point():
            _refuse(
                folder, f"{name} holds {str(t.dtype).removeprefix('torch.')} values; weights must be floating point"
            )
        if tuple(t.shape) != shape:
            _refuse(folder, f"{name} has shape {tuple(t.shape)}, cfg.json's d_in = {d_in}, d_sae = {d_sae} say {shape}")
        t = t.float()
        if not bool(torch.isfinite(t).all()):
            _refuse(folder, f"{name} holds NaN or inf")
        out[name] = t
    return out


def load_sae(folder) -> SavedSAE:
    """A folder written by ``train --save-sae`` (or by SAELens for these architectures) as a SavedSAE, checked
    before it is returned (``check_sae_cfg``, ``check_sae_tensors``); every failure a ConfigError naming ``sae``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(folder)
    for f in (CFG_NAME, WEIGHTS_NAME):
        if not (p / f).is_file():
            raise ConfigError(
                "sae", f"{str(folder)!r} has no {f}; a saved SAE folder holds {CFG_NAME} and {WEIGHTS_NAME}"
            )
    try:
        cfg = json.loads((p / CFG_NAME).read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise ConfigError("sae", f"cannot read {CFG_NAME} in {str(folder)!r} ({type(e).__name__})") from None
    check_sae_cfg(cfg, folder)
    try:
        tensors = load_file(str(p / WEIGHTS_NAME))
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        why = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise ConfigError("sae", f"cannot read {WEIGHTS_NAME} in {str(folder)!r} ({why})") from None
    return SavedSAE(cfg, check_sae_tensors(cfg, tensors, folder))
