"""Device resolution: the one place that turns "auto" | "cpu" | "cuda" into a torch device."""
from __future__ import annotations

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name):
    """A torch.device from a name (``auto``: CUDA when torch sees one, else CPU) or a device; ConfigError
    for anything else, or for ``cuda`` without a CUDA device."""
    import torch
    if isinstance(name, torch.device):
        return name
    if name not in DEVICES:
        raise ConfigError("device", f"must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda was requested but torch sees no CUDA device; use cpu or auto")
    return torch.device(name)
