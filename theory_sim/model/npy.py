"""User arrays for ``theory-sim train --data``: a ``.npy`` file checked from its header before anything is read
(numpy only: a refusal costs no torch import)."""

from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError

#: the most entries a --data / --ground-truth array may have (2^31 float32: 8 GiB)
MAX_ARRAY_ENTRIES = 2**31


def load_array(path: str, field: str, integer: bool | None = False):
    """A real-valued 2-D ``.npy`` array as float32, checked from its header before anything is read: a
    regular file, the .npy format (not .npz, text or an empty file), a real numeric dtype (not complex,
    string, object or structured), two non-empty axes, a size that fits. ``integer=True``: an integer array,
    kept as int64 (coordinates); None: either (int64 when stored as integers, else float32)."""
    if not os.path.isfile(path):
        raise ConfigError(field, f"{path!r} is not a regular file (give a .npy array)")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (
                np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
            )
    except (OSError, ValueError, EOFError) as e:
        raise ConfigError(field, f"{path!r} is not a .npy array ({e}); save one with numpy.save") from None
    if dtype.kind not in "fiu" or dtype.fields is not None:
        raise ConfigError(field, f"{path!r} holds {dtype} values; give real numbers (float or integer)")
    if len(shape) != 2 or min(shape) < (0 if integer is not False else 1) or shape[-1] < 1:
        raise ConfigError(field, f"{path!r} has shape {shape}; give a 2-D array with at least one row and column")
    if shape[0] * shape[1] > MAX_ARRAY_ENTRIES:
        raise ConfigError(field, f"{path!r} claims shape {shape}, more than {MAX_ARRAY_ENTRIES} entries")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
        as_int = integer is True or (integer is None and dtype.kind in "iu")
        if as_int:
            if dtype.kind not in "iu":
                raise ConfigError(field, f"{path!r} holds {dtype} values; give integer (row, feature) coordinates")
            return np.array(arr, dtype=np.int64)
        return np.array(arr, dtype=np.float32)  # a writable copy: torch warns on a read-only memory map
    except (OSError, ValueError) as e:
        raise ConfigError(field, f"cannot read {path!r} as a .npy array ({e})") from None
