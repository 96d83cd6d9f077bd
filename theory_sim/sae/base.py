"""The batched core every SAE method shares.

Every parameter has a leading ensemble axis E: one ``train_step`` on x (E, B, d) advances E independent
models with batched matmuls. Summing the per-model losses keeps the models independent (each gradient
only sees its own loss) and Adam is elementwise, so optimiser state is per model too. Hyperparameters
listed in ``PER_MODEL`` may differ between the models of one ensemble (they become (E, 1, 1) tensors);
all others must be equal (they are part of the batch key).

BA, GBA, L1 and TopK (without AuxK) train through hand-written gradients (``hand_prepare`` once per
step, ``chunk_grads`` per cache-sized chunk of the ensemble, ``hand_finish``; intermediates in a
``Workspace`` of named reused buffers, gradients written into a ``Workspace`` named like the parameters);
their ``loss`` stays the definition, and tests hold the two paths equal. Both paths end in ``end_step``.
Their directions are stored as (E, d, M) columns (the GEMM's faster orientation for the weight gradients);
the (E, M, d) rows are views.
"""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace
from typing import ClassVar

import torch

from ..model.sampler import STREAM_INIT, cpu_generator
from ..params import per_model
from ..tensor import unit_rows, unit_rows_, vector_norms  # noqa: F401  (re-exported for the methods)
from .configs import (  # noqa: F401  (re-exported)
    CONFIGS,
    DERIVED,
    MAX_WIDTH,
    MethodConfig,
    derived_base,
    get_config,
    make_config,
)


class Workspace(SimpleNamespace):
    """Named tensors of the hand-written step: reused intermediate buffers (``Method.workspace``), the
    per-ensemble values ``hand_prepare`` computes once, or the gradients (one per named parameter)."""

    def sliced(self, sl: slice) -> "Workspace":
        """The same names, each tensor's models ``sl`` (a chunk's view)."""
        return Workspace(**{k: v[sl] for k, v in vars(self).items()})


class Method:
    """Base class.  Subclasses set ``name`` and ``Config`` and implement ``forward``/``loss``.

    Shapes: x (E, B, d); pre-activations and codes (E, B, M); decoder directions (E, M, d).
    """

    #: True while the final evaluation runs (training._evaluate): a method whose inference code differs from its
    #: training code (BatchTopK's threshold) reads it
    evaluating = False

    name = "base"
    Config = MethodConfig
    #: the config fields declared ``per_model`` (set from ``Config`` for every subclass)
    PER_MODEL: tuple[str, ...] = ()
    uses_adam = True
    #: rows of the first batch handed to ``init`` (0: the training batch)
    INIT_ROWS: int = 0
    #: record FRR@0.9 every k steps by default (0: only if [train] record_every asks)
    RECORD_EVERY: int = 0
    #: hyperparameters for `theory-sim bench`'s standard cell (n 256, s 4): a working point, not a default
    BENCH_PARAMS: ClassVar[dict] = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.PER_MODEL = per_model(cls.Config)

    def __init__(
        self, cfgs: list, d: int, seeds: list[int], device, x0: torch.Tensor, truth=None, specs=None, draw=None
    ):
        """cfgs: E configs; seeds: E root seeds (init stream); x0: (E, B0, d) a first batch for init. What a method
        may read beyond its first batch (most read none of it): ``truth`` (E, n, d) the true features when known
        (Modified BA's planted start), ``specs`` the E generator specs (None for a user's data), ``draw`` a
        callable B -> (E, B, d) of further training rows (Modified BA's streamed population batches)."""
        self.cfgs, self.E, self.d = cfgs, len(cfgs), d
        self.truth, self.specs, self.draw = truth, specs, draw
        self.M = cfgs[0].width
        self.device = torch.device(device)
        for f in fields(cfgs[0]):
            if f.name not in self.PER_MODEL:
                vals = {repr(getattr(c, f.name)) for c in cfgs}
                if len(vals) > 1:
                    raise ValueError(f"{self.name}: {f.name} must be equal across an ensemble, got {vals}")
        self.seeds = seeds
        self.init(x0)
        if self.uses_adam:
            self.opt = make_adam(self.parameters(), cfgs[0].lr)
        self.step_count = 0

    # ---- helpers
    def per_model(self, name: str) -> torch.Tensor:
        """A hyperparameter as an (E, 1, 1) tensor on the device."""
        return torch.tensor([float(getattr(c, name)) for c in self.cfgs], device=self.device).view(-1, 1, 1)

    def random_directions(self, rows: int) -> torch.Tensor:
        """(E, rows, d) unit rows, each model from its own init stream (independent of E and device)."""
        ws = [unit_rows(torch.randn(rows, self.d, generator=cpu_generator(s, STREAM_INIT))) for s in self.seeds]
        return torch.stack(ws).to(self.device)

    # ---- interface
    def init(self, x0: torch.Tensor) -> None:
        raise NotImplementedError

    def named_parameters(self) -> dict[str, torch.Tensor]:
        """The tensors Adam trains, by attribute name (the hand-written step's gradients carry these names)."""
        raise NotImplementedError

    def parameters(self) -> list[torch.Tensor]:
        return list(self.named_parameters().values())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (x_hat (E,B,d), code z (E,B,M), pre-activation (E,B,M); a neuron is active iff z > 0)."""
        raise NotImplementedError

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Per-model training loss (E,) and extras (``pre`` for the feedback rules)."""
        x_hat, z, pre = self.forward(x)
        return reconstruction_loss(x_hat, x), {"pre": pre, "z": z}

    def after_step(self, info: dict) -> None:
        """After an autograd step: feed the feedback rules from ``info`` (the loss's extras), then ``end_step``."""
        self.end_step(info["z"].shape[1])

    def decoder(self) -> torch.Tensor:
        """(E, M, d) decoder directions, the SAE's learned features."""
        raise NotImplementedError

    def report(self) -> list[dict]:
        """Per model, scalars the method adds to its results (e.g. a controlled coefficient's final value)."""
        return [{} for _ in range(self.E)]

    def saelens(self, e: int) -> tuple[str, dict, dict]:
        """Model ``e`` in SAELens's terms (sae/saved.py writes it): (architecture, tensors, extra cfg keys).
        Tensors: ``W_enc`` (d, M), ``b_enc`` (M,), ``W_dec`` (M, d), ``b_dec`` (d,), and ``threshold`` (M,) for
        "jumprelu"; extra cfg: e.g. {"k": 3} for "topk". A method whose code SAELens has no architecture for
        refuses (ConfigError naming ``save_sae``)."""
        from ..errors import ConfigError

        raise ConfigError("save_sae", f"{self.name} has no SAELens architecture to save as")

    # ---- the hand-written step (autograd through ``loss`` is its reference; tests compare the two)
    #: bytes of one model's (B, M) intermediate a thread may keep for itself: a chunk of the ensemble
    #: stays in the cores' caches.  Measured for BA on the standard cell (E = 8, 2 threads, data included):
    #: 2 models per pass 7.8 ms a step, 4 8.3 ms, 8 8.5 ms; 1 model per pass ran at 0.7x of 2 (its matmuls
    #: split poorly over the two threads).
    chunk_bytes = 2**20

    def chunk_models(self, B: int) -> int:
        """Models per pass of the hand-written step: all of them on a GPU; on CPU one per thread, more
        while a model's (B, M) float32 intermediate stays under ``chunk_bytes``."""
        if self.device.type != "cpu":
            return self.E
        per_thread = max(1, self.chunk_bytes // (4 * B * self.M))
        return max(1, min(self.E, torch.get_num_threads() * per_thread))

    def row_tile(self, B: int) -> int:
        """Rows per tile of the hand-written step: all B while one model's (B, M) intermediate fits ``chunk_bytes``
        (the standard cell: the path as it always was); else the most rows that fit (at least 32), so a wide
        model's passes over its (rows, M) buffers run in a core's cache instead of memory. Measured at
        resonance_heavy's cell (d 40, width 4,096, batch 512; BA, 2 threads): E = 1 82 → 126 model-steps/s,
        E = 8 106 → 157. On a GPU: all B."""
        if self.device.type != "cpu" or 4 * B * self.M <= self.chunk_bytes:
            return B
        return min(B, max(32, self.chunk_bytes // (4 * self.M)))

    def workspace_rows(self) -> int:
        """Rows of the hand-written step's (K, rows, M) buffers as last made (row_tile's choice; tests read it)."""
        return next(shape[1] for shape in self._ws_shapes.values() if len(shape) == 3 and shape[2] == self.M)

    def hand_written(self) -> bool:
        """Whether this configuration trains through ``chunk_grads`` (else autograd through ``loss``)."""
        return False

    def hand_prepare(self, x: torch.Tensor) -> Workspace:
        """The hand-written step's context: the workspace (reused buffers) plus whatever the chunks share
        that is computed once for the whole ensemble (centred inputs, scaled decoders: (E, ...) tensors,
        sliced [sl] by each chunk). Small per-ensemble work lives here and in ``hand_finish``, not in the
        chunk loop, where each op's dispatch would be paid once per chunk."""
        raise NotImplementedError

    def chunk_grads(self, ctx: Workspace, sl: slice, grads: Workspace) -> None:
        """The (C, B, M) work of models ``sl``: writes their share of each parameter's gradient into
        ``grads`` (named like ``named_parameters``; already the chunk's views) and their per-model sums
        into ``ctx``'s (E, ...) buffers."""
        raise NotImplementedError

    def hand_finish(self, ctx: Workspace, grads: Workspace, B: int) -> torch.Tensor:
        """Completes the gradients from the chunks' sums, feeds the feedback rules; returns the loss (E,)."""
        raise NotImplementedError

    def end_step(self, B: int) -> None:
        """The tail both steps share, after the optimiser moved the parameters on a batch of B rows
        (renormalisation, bias adaptation, L0 control); the feedback rules have been fed by then."""

    def workspace(self, shapes: dict[str, tuple]) -> Workspace:
        """Reused buffers (name → tensor of that shape) for the hand-written step's intermediates, made
        again only when the shapes change; (K, ...) buffers are sliced to a chunk's size by the caller."""
        if getattr(self, "_ws_shapes", None) != shapes:
            self._ws = {k: torch.empty(shp, device=self.device) for k, shp in shapes.items()}
            self._ws_shapes = shapes
        return Workspace(**self._ws)

    def train_step(self, x: torch.Tensor) -> torch.Tensor:
        """One step on x (E, B, d); returns the per-model loss (E,) (detached)."""
        if self.hand_written():
            return self._hand_step(x)
        return self.autograd_step(x)

    def autograd_step(self, x: torch.Tensor) -> torch.Tensor:
        """The reference step: autograd through ``loss``, then ``after_step``. Always this path, whatever
        ``hand_written()`` says, so tests can hold the hand-written step against it."""
        self.opt.zero_grad(set_to_none=True)
        loss, info = self.loss(x)
        loss.sum().backward()
        self.opt.step()
        self.step_count += 1
        with torch.no_grad():
            self.after_step(info)
        return loss.detach()

    def _hand_step(self, x: torch.Tensor) -> torch.Tensor:
        """Why by hand: autograd allocates every (E, B, M) intermediate afresh each step (on CPU, fresh
        pages: measured 4.7 of a 15 ms BA step in page faults) and walks them in extra passes; here they
        live in reused buffers, and the ensemble goes through in cache-sized chunks."""
        params = self.named_parameters()
        B = x.shape[1]
        with torch.no_grad():
            grads = getattr(self, "_grads", None)
            if grads is None or {k: g.shape for k, g in vars(grads).items()} != {k: p.shape for k, p in params.items()}:
                grads = self._grads = Workspace(**{k: torch.empty_like(p) for k, p in params.items()})
            ctx = self.hand_prepare(x)
            C = self.chunk_models(B)
            for e0 in range(0, self.E, C):
                sl = slice(e0, min(self.E, e0 + C))
                self.chunk_grads(ctx, sl, grads.sliced(sl))
            loss = self.hand_finish(ctx, grads, B)
            for k, p in params.items():
                p.grad = getattr(grads, k)
        self.opt.step()
        self.step_count += 1
        with torch.no_grad():
            self.end_step(B)
        return loss

    # ---- the captured step (theory_sim/graphs.py)
    def phase(self, step: int):
        """The host-side decisions of step ``step`` (e.g. whether it ends in a bias adaptation) as a hashable key:
        steps of one key run the same kernels on the same memory, so one CUDA graph per key can replay them.
        None: the method has not declared them (its step cannot be captured)."""
        return None

    def make_capturable(self) -> None:
        """Before the first step: an optimiser whose step count lives on the device (a captured step advances
        it on every replay). Persistent state is updated in place by every capturable method."""
        if self.uses_adam:
            self.opt = make_adam(self.parameters(), self.cfgs[0].lr, capturable=True)

    def state(self) -> dict[str, torch.Tensor]:
        """Named parameters and buffers (E, ...) for saving; tensors only, never pickled objects (the 0-d row
        counters of the feedback buffers are not state of a model)."""
        return {k: v.detach() for k, v in vars(self).items() if isinstance(v, torch.Tensor) and v.dim()}


def make_adam(params: list[torch.Tensor], lr: float, capturable: bool = False) -> torch.optim.Adam:
    """Adam with its fused kernel where this torch has one for the device (CPU: torch >= 2.4), else the
    multi-tensor one: the same update, measured 0.98 -> 0.18 ms per step for an (8, 512, 64) ensemble.
    ``capturable``: its step count on the device, as a CUDA graph needs (CUDA only)."""
    extra = {"capturable": True} if capturable else {}
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **extra)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True, **extra)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """½‖x̂ − x‖² averaged over the batch: (E,)."""
    return 0.5 * (x_hat - x).pow(2).sum(-1).mean(-1)


REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Adds ``cls`` to REGISTRY under ``cls.name``. Refused: a name already taken by another class (a second
    method of one name would silently replace the first in every sweep, figure and report), and a method whose
    ``Config`` is not the one ``sae.configs`` files under its name (the torch-free half the CLI and the sweep
    parser read would then describe another method)."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered ({REGISTRY[cls.name].__qualname__})")
    if CONFIGS.get(cls.name) is not cls.Config:
        raise ValueError(
            f"method {cls.name!r}: its Config {cls.Config.__qualname__} is not filed under that name in "
            "sae.configs (decorate it with @config(name))"
        )
    REGISTRY[cls.name] = cls
    return cls
