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
