"""Launch-free training steps: each step phase captured once as a CUDA graph, then replayed.

Why: on a GPU the small-ensemble step is a queue of kernel launches (measured on one H200, BA at E = 8 used
1.4 % of the card's fp32 peak). A step of a capturable method (every one but AuxK: ``sae.configs.
capture_refusal``) on the counter stream (``model/counter.py``) is a fixed sequence of kernels on fixed memory,
except for its host-side decisions (whether it ends in a bias adaptation, a controller update), which
``Method.phase(step)`` names. So one graph per phase key replays every step of that key: the data draw, the
forward and backward (hand-written or autograd's), Adam (``capturable``: its step count on the device),
renormalisation and the feedback rules, all in one launch.

``StepRunner(fn, sae, mode)(step)`` runs step ``step``: ``mode`` "eager" calls ``fn`` every step; "cuda" runs the
first ``WARMUP`` steps eagerly on a side stream (torch's advice before a capture), then captures the first step
of each phase (a capture records without running, so that step is replayed at once) and replays the graph of
its phase for every later one; "emulate" is "cuda"'s contract on any device, for tests: a "replay" calls ``fn``
with the method's host-side attributes as they were when its phase was "captured" (a replayed graph sees
nothing the host did since), so a step that reassigns a tensor instead of updating it in place, or reads a
host counter the graph would have frozen, gives other numbers than "eager" — as a real graph would.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

#: how a StepRunner runs the steps (see the module docstring)
MODES = ("eager", "cuda", "emulate")

#: the ways Python reads a tensor's value on the host: each waits for the device, which a capture forbids
HOST_READS = ("item", "tolist", "numpy", "nonzero", "__bool__", "__int__", "__float__")


class HostRead(RuntimeError):
    """A captured step read a tensor's value on the host (a CUDA capture would fail there)."""


@contextlib.contextmanager
def host_reads_forbidden():
    """Within the block, reading a tensor's value on the host (HOST_READS, and ``torch.nonzero``) raises HostRead:
    what an emulated capture holds a step to. The optimiser's step is exempt (``_exempt``): on CUDA it is built
    ``capturable``, which on CPU torch does not offer, and its non-capturable form reads its step count."""
    saved = {name: getattr(torch.Tensor, name) for name in HOST_READS}
    saved_nonzero = torch.nonzero
    state = {"exempt": 0}

    def guard(name, original):
        def read(self, *a, **kw):
            if state["exempt"]:
                return original(self, *a, **kw)
            raise HostRead(f"a captured step read a tensor on the host (Tensor.{name})")

        return read

    try:
        for name, original in saved.items():
            setattr(torch.Tensor, name, guard(name, original))
        torch.nonzero = guard("nonzero", saved_nonzero)
        _EXEMPT.append(state)
        yield
    finally:
        _EXEMPT.remove(state)
        for name, original in saved.items():
            setattr(torch.Tensor, name, original)
        torch.nonzero = saved_nonzero


_EXEMPT: list = []
#: a capture failure is said once per process (every result records it)
_FALLBACK_SAID: list = []


@contextlib.contextmanager
def _exempt():
    """Host reads allowed in the block (the optimiser's step, see host_reads_forbidden)."""
    for s in _EXEMPT:
        s["exempt"] += 1
    try:
        yield
    finally:
        for s in _EXEMPT:
            s["exempt"] -= 1


class StepRunner:
    """Runs a training step ``fn() -> outputs`` (tensors: the step's batch and loss) for ``sae`` (a Method)."""

    #: eager steps before the first capture (lazily made state — Adam's moments, the workspaces — exists by then)
    WARMUP = 3

    def __init__(self, fn, sae, mode: str = "eager"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.fn, self.sae, self.mode = fn, sae, mode
        self.graphs: dict = {}  # phase key -> (graph or host attributes, outputs)
        #: why a capture failed and the run went on eagerly (None: it did not)
        self.failed: str | None = None

    def __call__(self, step: int):
        self.sae.step_count = step - 1  # what the method's host-side decisions read (train_step advances it)
        if self.mode == "eager":
            return self.fn()
        if step <= self.WARMUP:
            return self._warm()
        key = self.sae.phase(step)
        if key not in self.graphs:
            return self._capture(key)
        return self._replay(key)

    def _warm(self):
        if self.mode == "emulate":
            return self.fn()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.fn()
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, key):
        if self.mode == "emulate":
            host = dict(vars(self.sae))  # the host's view at capture; tensors by reference, as a graph holds them
            out = self._emulated()
            self.graphs[key] = (host, None)
            return out
        try:
            return self._capture_cuda(key)
        except torch.cuda.OutOfMemoryError:
            raise  # the sweep's runner splits the ensemble and retries
        except RuntimeError as e:  # an op this torch cannot capture: the run goes on eagerly, never lost
            return self._fall_back(e)

    def _capture_cuda(self, key):
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):  # torch's default ("global") mode, as its whole-network capture documents
            out = self.fn()
        self.graphs[key] = (graph, out)
        graph.replay()  # the capture recorded this step without running it
        return out

    def _fall_back(self, error: Exception):
        """After a failed capture (which ran nothing: the step's device state is as before it, its host counters
        are set anew each step): this step and the rest eagerly, the reason kept in ``failed`` (train_ensemble
        puts it in every result as ``graph_fallback``) and said once per process."""
        self.failed = f"{type(error).__name__}: {error}".splitlines()[0]
        if not _FALLBACK_SAID:
            _FALLBACK_SAID.append(True)
            warnings.warn(f"a training step could not be captured ({self.failed}); it and the rest run eagerly")
        self.mode, self.graphs = "eager", {}
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return self.fn()

    def _emulated(self):
        """One call of the step as a capture would see it: no host reads of tensor values, the optimiser exempt."""
        opt = getattr(self.sae, "opt", None)
        step = opt.step if opt is not None else None
        if opt is not None:

            def exempt_step(*a, **kw):
                with _exempt():
                    return step(*a, **kw)

            opt.step = exempt_step
        try:
            with host_reads_forbidden():
                return self.fn()
        finally:
            if opt is not None:
                del opt.step  # back to the class's method

    def _replay(self, key):
        held, out = self.graphs[key]
        if self.mode == "cuda":
            held.replay()
            return out
        now = dict(vars(self.sae))
        vars(self.sae).clear()
        vars(self.sae).update(held)
        try:
            return self._emulated()
        finally:
            vars(self.sae).clear()
            vars(self.sae).update(now)
