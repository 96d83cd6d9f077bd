"""Data out and back in: a drawn sample saved as plain ``.npy`` files other tools can train on, and a
saved generator spec reloaded.

Folder layout (``save_sample``): ``X.npy`` (N, d) float32 samples; ``V.npy`` (n, d) float32 true features;
``H_indices.npy`` (nnz, 2) int64 (row, feature) of the non-zero coefficients and ``H_values.npy`` (nnz,)
float32 their values (H is sparse: N × n dense would dwarf X); ``spec.json`` the generator spec (reload it
with ``load_spec`` / ``theory-sim sample --spec``) plus ``samples`` and the files' shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, check_folder, make_folder, read_bounded
from ..outputs import atomic_folder
from .sampler import ModelSampler, make_features
from .spec import GeneratorSpec

#: rows drawn per chunk while saving (bounds memory: a chunk's dense H is CHUNK × n floats)
CHUNK = 65536
#: the most bytes ``save_sample`` writes without being asked to (X plus H's triplets)
MAX_BYTES = 8 * 2**30


def check_save_dir(folder: str) -> Path:
    """The folder to save into: new (missing parents are made) or empty."""
    return check_folder(folder, "save", empty=True)


def save_sample(spec: GeneratorSpec, samples: int, folder: str, device="cpu") -> dict:
    """Draws ``samples`` rows of ``spec`` (the same rows ``ModelSampler(spec)`` draws) and writes the folder
    described in the module docstring. Returns {file name: shape}."""
    nnz_est = samples * spec.s
    need = samples * spec.d * 4 + nnz_est * 20
    if need > MAX_BYTES:
        raise ConfigError(
            "samples",
            f"{samples} rows of d = {spec.d} need about {need / 2**30:.1f} GiB on disk "
            f"(limit {MAX_BYTES / 2**30:.0f} GiB); draw fewer",
        )
    target = check_save_dir(folder)
    make_folder(target.parent, "save")
    with atomic_folder(target) as p:  # written whole or not at all: a killed run leaves no half folder
        return _write_sample(spec, samples, p, device)


def _write_sample(spec: GeneratorSpec, samples: int, p: Path, device) -> dict:
    sampler = ModelSampler(spec, device)
    X = np.lib.format.open_memmap(p / "X.npy", mode="w+", dtype=np.float32, shape=(samples, spec.d))
    idx, vals = [], []
    for a in range(0, samples, CHUNK):
        b = min(samples, a + CHUNK)
        x, _, h = sampler.sample(b - a)
        X[a:b] = x.cpu().numpy()
        nz = h.nonzero()
        idx.append((nz + torch.tensor([a, 0], device=nz.device)).cpu().numpy())
        vals.append(h[nz[:, 0], nz[:, 1]].cpu().numpy())
    X.flush()
    del X
    np.save(p / "H_indices.npy", np.concatenate(idx).astype(np.int64))
    np.save(p / "H_values.npy", np.concatenate(vals).astype(np.float32))
    np.save(p / "V.npy", make_features(spec).cpu().numpy().astype(np.float32))
    shapes = {f: list(np.load(p / f, mmap_mode="r").shape) for f in ("X.npy", "V.npy", "H_indices.npy", "H_values.npy")}
    (p / "spec.json").write_text(json.dumps({"spec": spec.to_dict(), "samples": samples, "files": shapes}, indent=1))
    return shapes


def load_spec(path: str) -> GeneratorSpec:
    """A GeneratorSpec from a ``spec.json`` written by ``save_sample`` (or a plain JSON object of spec
    fields)."""
    text = read_bounded(path, "spec")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ConfigError("spec", f"{path!r} is not a JSON file ({type(e).__name__})") from None
    if isinstance(obj, dict) and "spec" in obj:
        obj = obj["spec"]
    if not isinstance(obj, dict):
        raise ConfigError("spec", f"{path!r} must hold a JSON object of generator options")
    return GeneratorSpec.from_dict(obj)


#: rows of a sample folder whose X ≈ H V (+ bias, noise) is checked
CHECK_ROWS = 4096


def check_sample_folder(folder, X: np.ndarray, V: np.ndarray, idx: np.ndarray) -> GeneratorSpec:
    """A folder written by ``sample --save``, checked as a whole before training on it (ConfigError naming
    ``data`` otherwise): ``spec.json`` a valid generator spec; ``V.npy`` the features that spec makes (its
    provenance: a V from another world is refused); ``H_indices.npy`` / ``H_values.npy`` of equal length, in
    range, the values finite and nonnegative; and on the first CHECK_ROWS rows X = H V (+ the dictionary bias)
    exactly for a noiseless world (unit rows with ``row_norm``), or with residual power within a factor 2 of the
    stated noise. X: (N, d); V: (n, d); idx: (nnz, 2). Returns the spec."""
    p = Path(folder)
    spec = load_spec(str(p / "spec.json"))
    n, d = V.shape
    if (spec.n, spec.d) != (n, d) or X.shape[1] != d:
        raise ConfigError(
            "data", f"{folder}: V.npy is {V.shape} and X.npy {X.shape}, spec.json says n = {spec.n}, d = {spec.d}"
        )
    if not np.allclose(V, make_features(spec).numpy(), atol=1e-5):
        raise ConfigError(
            "data", f"{folder}: V.npy is not the dictionary of the world in spec.json (another world's V?)"
        )
    vals_path = p / "H_values.npy"
    if not vals_path.is_file():
        raise ConfigError("data", f"{folder} has no H_values.npy")
    try:
        vals = np.asarray(np.load(vals_path, allow_pickle=False, mmap_mode="r"), dtype=np.float64).ravel()
    except (OSError, ValueError) as e:
        raise ConfigError("data", f"{folder}: H_values.npy is not a .npy array of numbers ({e})") from None
    if len(vals) != len(idx):
        raise ConfigError("data", f"{folder}: {len(idx)} H indices but {len(vals)} H values")
    if not np.isfinite(vals).all() or (vals < 0).any():
        raise ConfigError("data", f"{folder}: H_values.npy holds NaN, inf or negative coefficients")
    if len(idx) and (idx[:, 0].min() < 0 or idx[:, 0].max() >= len(X) or idx[:, 1].min() < 0 or idx[:, 1].max() >= n):
        raise ConfigError("data", f"{folder}: H_indices.npy points outside X's rows or V's features")
    rows = min(len(X), CHECK_ROWS)
    keep = idx[:, 0] < rows
    H = np.zeros((rows, n))
    np.add.at(H, (idx[keep, 0], idx[keep, 1]), vals[keep])
    from .sampler import world_bias

    bias = world_bias(spec)
    signal = H @ V.astype(np.float64) + (0.0 if bias is None else bias.numpy().astype(np.float64))
    x = X[:rows].astype(np.float64)
    noisy = spec.noise_std > 0 or spec.snr is not None
    if spec.row_norm:
        signal = signal / np.maximum(np.linalg.norm(signal, axis=1, keepdims=True), 1e-12)
    if not noisy:
        err = float(np.abs(x - signal).max())
        if err > 1e-3 * max(1.0, float(np.abs(x).max())):
            raise ConfigError("data", f"{folder}: X differs from H V by up to {err:.3g}; X, H and V are not one sample")
        return spec
    if spec.row_norm:  # unit rows of a noisy signal: the signal's direction must still show
        cos = (x * signal).sum(1) / np.maximum(np.linalg.norm(x, axis=1), 1e-12)
        if float(np.mean(cos)) < 0.3:
            raise ConfigError("data", f"{folder}: X's rows point away from H V (mean cos {np.mean(cos):.2f})")
        return spec
    resid = float(((x - signal) ** 2).sum(1).mean())
    power = float((signal**2).sum(1).mean())
    expect = spec.d * spec.noise_std**2 if spec.snr is None else power / spec.snr
    if not 0.5 * expect <= resid <= 2 * expect:
        raise ConfigError(
            "data",
            f"{folder}: X − H V has power {resid:.3g} per row, the world's noise {expect:.3g}; X, H and V are not one "
            "sample",
        )
    return spec
