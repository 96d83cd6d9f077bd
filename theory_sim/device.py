"""Device resolution: the one place that turns "auto" | "cpu" | "cuda" into a torch device."""

from __future__ import annotations

import contextlib

from .errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def _card_index(name) -> int | None:
    """N of a "cuda:N" name (a non-negative decimal integer), else None."""
    if isinstance(name, str) and name.startswith("cuda:") and name[5:].isdigit() and name[5:].isascii():
        return int(name[5:])
    return None


def resolve_device(name):
    """A torch.device from a name (``auto``: CUDA when torch sees one, else CPU; ``cuda:N``: card N) or a device;
    ConfigError for anything else, for ``cuda`` without a CUDA device or ``cuda:N`` beyond the cards torch sees."""
    if isinstance(name, str) and name not in DEVICES and _card_index(name) is None:  # refused before torch loads
        raise ConfigError("device", f"must be one of {', '.join(DEVICES)} or cuda:N (a card's index); got {name!r}")
    import torch

    if isinstance(name, torch.device):
        return name
    if not isinstance(name, str):
        raise ConfigError("device", f"must be one of {', '.join(DEVICES)} or cuda:N (a card's index); got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{name} was requested but torch sees no CUDA device; use cpu or auto")
    k = _card_index(name)
    if k is not None and k >= torch.cuda.device_count():
        raise ConfigError(
            "device",
            f"{name}: torch sees {torch.cuda.device_count()} CUDA card(s), cuda:0 … cuda:"
            f"{torch.cuda.device_count() - 1}",
        )
    return torch.device(name)


def choose_threads(requested: int | None = None, cpus: int | None = None, load: float | None = None) -> int:
    """Intra-op threads for torch on CPU: ``requested`` (``--threads``, or the THEORY_SIM_THREADS variable)
    when given, else the cores this process may use minus those already busy (the 1-minute load average,
    rounded), at least 1.

    Why: torch's threads meet at a barrier after every operation, so one thread sharing its core with
    another busy process stalls them all. Measured on this project's 2-core machine with another 2-thread
    training job running: an E = 8 BA ensemble trained at 89.6 steps/s with 1 thread and 11.4 with 2
    (7.9x slower); the quickstart tiny sweep took 3.7 s vs 7.8 s."""
    import os

    if requested is None and os.environ.get("THEORY_SIM_THREADS"):
        try:
            requested = int(os.environ["THEORY_SIM_THREADS"])
        except ValueError:
            raise ConfigError(
                "THEORY_SIM_THREADS", f"must be an integer >= 1, got {os.environ['THEORY_SIM_THREADS']!r}"
            )
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested is not None:
        top = max(cpus, os.cpu_count() or 1)  # more threads than cores only makes them wait for each other
        if not (isinstance(requested, int) and not isinstance(requested, bool) and 1 <= requested <= top):
            raise ConfigError("threads", f"must be an integer in [1, {top}] (this machine's cores), got {requested!r}")
        return requested
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, cpus - int(load + 0.5))


def set_threads(requested: int | None = None) -> int:
    """Applies ``choose_threads`` to torch for the rest of the process (the CLI: the process is the command);
    returns the count."""
    import torch

    n = choose_threads(requested)
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def threads(requested: int | None = None):
    """The one thread policy of every entry point (the API's ``train`` and ``run_sweep``, a Dask worker's
    batch): ``choose_threads(requested)`` set for the block and the caller's torch setting restored after it,
    so an API call leaves no global side effect. Yields the count."""
    import torch

    before = torch.get_num_threads()
    n = choose_threads(requested)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def device_name(device) -> str:
    """What a report says it ran on: the card's name on CUDA ("NVIDIA H200"), else the CPU with its core count."""
    import os
    import platform

    import torch

    dev = resolve_device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({platform.machine() or 'unknown'}, {cores} cores, {torch.get_num_threads()} torch threads)"


#: training matmul precisions (TrainConfig.precision, bench --precision)
PRECISIONS = ("fp32", "tf32")


def check_precision(precision: str, device) -> None:
    """ConfigError naming ``precision``: not one of PRECISIONS, or ``tf32`` asked of a device without tensor
    cores (CPU)."""
    if precision not in PRECISIONS:
        raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "fp32" and getattr(device, "type", device) != "cuda":
        raise ConfigError(
            "precision", f"{precision} needs a CUDA device (tensor cores); on {device} training runs in fp32"
        )


def check_graph(graph: bool, device, method: str | None = None, cfg=None, data: str = "generator") -> None:
    """ConfigError naming ``graph`` when ``graph`` is asked of what cannot be captured: a device other than CUDA,
    data other than the generator's (every generator spec has a counter form: model/counter.py), or a method
    whose step is not captured (``sae.configs.capture_refusal``). Torch-free."""
    if not graph:
        return
    if getattr(device, "type", device) != "cuda":
        raise ConfigError("graph", f"needs a CUDA device (a CUDA graph); on {device} every step runs eagerly")
    if data != "generator":
        raise ConfigError("graph", f"needs generator data (its rows drawn on the device); got {data} data")
    if method is not None:
        from .sae.configs import check_capturable

        check_capturable(method, cfg)


@contextlib.contextmanager
def matmul_precision(precision: str, device):
    """The block's matmuls (and cuDNN convolutions) in ``precision`` ("tf32": TensorFloat-32 on CUDA tensor
    cores); the caller's settings restored after it, so evaluation outside the block stays fp32."""
    check_precision(precision, device)
    if precision == "fp32":
        yield
        return
    import torch

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def matmul_peak(device, reps: int = 5) -> float:
    """GFLOP/s of a large fp32 square matmul (2048³ on CPU, 8192³ on CUDA), best of ``reps``: the machine's
    measured peak that bench and ``sweep --dry-run`` scale by."""
    import time

    import torch

    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()
