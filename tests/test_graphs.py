"""The captured step (theory_sim/graphs.py) and the counter stream it draws from (model/counter.py).

On CPU a captured step is emulated (graphs.StepRunner's "emulate": a replay sees the host as it was at its
capture), so the contract a CUDA graph imposes — state updated in place, no host decision the phase key does not
name — is held here; the real capture is held against the eager step where CUDA is present."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import cli_inprocess
from hypothesis import given, settings
from hypothesis import strategies as st

from theory_sim.device import check_graph
from theory_sim.errors import ConfigError
from theory_sim.model import counter as C
from theory_sim.model.spec import GeneratorSpec
from theory_sim.sae.configs import CONFIGS, capture_refusal
from theory_sim.training import GeneratorData, TrainConfig, resolve_hyper, spec_scales, train, train_ensemble

CUDA = torch.cuda.is_available()


# ------------------------------------------------------------------------------------------ the counter stream
def _fmix32_reference(x: int) -> int:
    """murmur3's fmix32, written from its definition with Python's unbounded ints."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) % 2**32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) % 2**32
    return x ^ (x >> 16)


def test_fmix32_known_values():
    assert _fmix32_reference(0) == 0
    assert _fmix32_reference(1) == 0x514E28B7  # murmur3's published finaliser of 1
    assert int(C.fmix32(torch.tensor(1))) == 0x514E28B7


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50))
def test_fmix32_tensor_equals_the_definition(xs):
    """The int64 tensor form (products split into 16-bit halves, no overflow) equals the 32-bit definition."""
    got = C.fmix32(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [_fmix32_reference(x) for x in xs]


def _draw(seeds, step):
    return C.Draw(C.use_keys(C.model_keys(seeds, 3)), torch.tensor(step))


def test_streams_of_models_uses_and_steps_do_not_overlap():
    """No two streams repeat each other shifted by some steps: the step enters the key through a hash, not a sum
    (with key = use key + step, two uses whose keys differ by one would give the same words one step apart).
    And the first words of 3 models × 3 uses × 300 steps are all distinct. Broken on purpose (an additive step):
    red."""
    near = torch.tensor([[1000], [1001]])  # two uses (one model) whose keys differ by one
    for t in range(20):
        assert not torch.equal(
            C.Draw(near, torch.tensor(t + 1)).bits(0, (8,)), C.Draw(near, torch.tensor(t)).bits(1, (8,))
        )
    ukeys = C.use_keys(C.model_keys([0, 1, 2], 3))
    first = set()
    for t in range(300):
        d = C.Draw(ukeys, torch.tensor(t))
        for use in (1, 2, 3):
            first.update(d.bits(use, (1,))[:, 0].tolist())
    assert len(first) == 3 * 3 * 300


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(0, 30), st.integers(0, 1000))
def test_distinct_indices_are_distinct_and_in_range(S, extra, step):
    n = S + extra
    idx = _draw([3, 4], step).distinct(64, S, n)
    assert idx.shape == (2, 64, S)
    assert int(idx.min()) >= 0 and int(idx.max()) < n
    srt = idx.sort(-1).values
    assert not bool((srt[..., 1:] == srt[..., :-1]).any())


def test_distinct_indices_are_uniform_over_subsets():
    """All C(5, 2) = 10 subsets of [0, 5) equally often (chi-square, 9 d.o.f.: 40 is far in its tail)."""
    idx = _draw([11], 7).distinct(40000, 2, 5)[0].sort(-1).values
    code = idx[:, 0] * 5 + idx[:, 1]
    counts = torch.bincount(code, minlength=25).double()
    counts = counts[counts > 0]
    assert len(counts) == 10
    expected = 40000 / 10
    assert float(((counts - expected) ** 2 / expected).sum()) < 40


def test_uniform_and_normal_moments():
    draw = _draw([0, 1], 2)
    u = draw.uniform(1, (200000,))
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005 and abs(float(u.var()) - 1 / 12) < 0.002
    z = draw.normal(3, 4, (200000,))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    # the two models' draws are not the same numbers, nor correlated; nor are neighbouring words of one stream,
    # nor one position's words at neighbouring steps
    assert abs(float(torch.corrcoef(u)[0, 1])) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([u[0, 1:], u[0, :-1]]))[0, 1])) < 0.01
    later = _draw([0, 1], 3).uniform(1, (200000,))
    assert abs(float(torch.corrcoef(torch.stack([u[0], later[0]]))[0, 1])) < 0.01


def test_a_models_stream_does_not_depend_on_its_ensemble():
    specs = [GeneratorSpec(n=64, d=16, s=3, seed=s, magnitude="uniform", noise_std=0.1) for s in (5, 6, 7)]
    many = C.CounterSampler(specs, "cpu")
    alone = C.CounterSampler(specs[1:2], "cpu")
    for _ in range(3):
        assert torch.equal(many.sample(32)[1], alone.sample(32)[0])
    assert not torch.equal(many.sample(32)[0], many.sample(32)[0])  # the counter advances


LAWS = [
    {},
    {"magnitude": "uniform"},
    {"magnitude": "lognormal"},
    {"magnitude": "per_feature", "mag_spread": 0.3},
    {"support": "bernoulli"},
    {"support": "bernoulli", "frequencies": "zipf"},
    {"support": "bernoulli", "cooccurrence": 0.5},
    {"support": "bernoulli", "correlation_rank": 4, "correlation_scale": 0.6},
    {"support": "bernoulli", "hierarchy_depth": 2, "hierarchy_branching": 3, "hierarchy_exclusive": True},
    {"support": "mixture", "mixture_s": (2, 7), "mixture_weights": (3.0, 1.0)},
    {"noise_std": 0.2},
    {"snr": 4.0},
    {"row_norm": True},
    {"dictionary_bias": 2.0},
]


def _law_moments(x: torch.Tensor, V: torch.Tensor):
    """Per row: squared norm, and the number of features with |cos(x, v_i)| > 0.5 (a support-size proxy that
    sees the support law, co-occurrence and hierarchy, not only the second moment)."""
    cos = (x @ V.T).abs() / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return x.pow(2).sum(1), (cos > 0.5).float().sum(1)


@pytest.mark.parametrize("kw", LAWS)
def test_counter_rows_have_the_generators_law(kw):
    """Mean squared norm, mean row, and mean support-size proxy equal the default sampler's (another stream of the
    same law) within 4.5 standard errors (14 laws × 3 statistics: a false alarm is rare)."""
    from theory_sim.model.sampler import EnsembleSampler

    spec = GeneratorSpec(n=64, d=16, s=4, **kw)
    N = 20000
    ca = C.CounterSampler([spec], "cpu")
    a = ca.sample(N)[0]
    b = EnsembleSampler([spec], "cpu").sample(N)[0]
    for sa, sb in zip(_law_moments(a, ca.V[0]), _law_moments(b, ca.V[0])):
        se = math.sqrt((sa.var() + sb.var()) / N)
        assert abs(float(sa.mean() - sb.mean())) < 4.5 * se + 1e-6, kw
    se_mean = ((a.var(0) + b.var(0)) / N).sqrt()
    assert bool(((a.mean(0) - b.mean(0)).abs() <= 4.5 * se_mean + 1e-6).all()), kw


def test_a_heterogeneous_ensemble_draws_each_models_own_law():
    """Models of one ensemble with different s (exact) or different mixture levels: each model's rows equal that
    model drawn alone, and their squared norms follow its own s (unit magnitudes on nearly orthogonal features:
    ‖x‖² ≈ s). Broken on purpose (a model's draws placed from slot 0 whatever its size): red."""
    specs = [GeneratorSpec(n=64, d=16, s=s, seed=i) for i, s in enumerate((2, 5, 8))]
    x = C.CounterSampler(specs, "cpu").sample(4000)
    for e, spec in enumerate(specs):
        assert torch.allclose(C.CounterSampler([spec], "cpu").sample(4000)[0], x[e], atol=1e-6)
        assert abs(float(x[e].pow(2).sum(1).mean()) - spec.s) < 0.25 * spec.s
    mixed = [
        GeneratorSpec(n=64, d=16, support="mixture", mixture_s=(2, 7), magnitude="uniform", seed=3),
        GeneratorSpec(n=64, d=16, support="mixture", mixture_s=(3, 4), magnitude="uniform", seed=4),
    ]
    x = C.CounterSampler(mixed, "cpu").sample(500)
    for e, spec in enumerate(mixed):
        assert torch.allclose(C.CounterSampler([spec], "cpu").sample(500)[0], x[e], atol=1e-6)
    with pytest.raises(ValueError, match="one structure"):
        C.CounterSampler([GeneratorSpec(n=64, d=16), GeneratorSpec(n=64, d=16, support="bernoulli")], "cpu")


def test_graph_cells_batch_by_their_counter_structure():
    """Graph cells of another support kind go to another ensemble; eagerly they share one."""
    from theory_sim.sweep import make_batches, parse_sweep

    src = (
        'name = "b"\n[data]\nn = 32\nd = 12\n[grid]\ns = [2, 3]\nsupport = ["exact", "bernoulli"]\n'
        '[train]\nsteps = 5\nseeds = [0]\ngraph = GRAPH\n[[methods]]\nname = "ba"\n'
    )
    eager = make_batches(parse_sweep(src.replace("GRAPH", "false"), "b.toml").cells, 64)
    graphed = make_batches(parse_sweep(src.replace("GRAPH", "true"), "b.toml").cells, 64)
    assert len(eager) == 1 and len(graphed) == 2
    assert sorted(len({c.data["support"] for c in b}) for b in graphed) == [1, 1]
    assert sorted(len(b) for b in graphed) == [2, 2]  # s = 2 and 3 share an ensemble


# ------------------------------------------------------------------------------------------ the captured step
CASES = [
    ("ba", {"p_over_f": 1.0, "adapt_every": 7}),
    ("ba", {"p_over_f": 1.0, "adapt_every": 7, "train_pre_bias": True}),  # through autograd
    ("gba", {"adapt_every": 5}),
    ("l1", {"l1": 0.01, "target_l0": 3, "control_every": 9}),
    ("topk", {"k": 3}),
    ("batchtopk", {"k": 3}),
    ("matryoshka", {"k": 3, "levels": 2}),
    ("random_decoder", {"k": 3}),
    ("jumprelu", {"target_l0": 3, "control_every": 9}),
    ("mba", {"p_over_f": 1.0}),
    ("mp", {"k": 3}),
    ("topk_saelens", {"k": 3, "auxk": 0.0}),  # (with its default AuxK it is refused, as TopK's)
]


def _train(method, hyper, replay, steps=90, device="cpu", seeds=(0, 1, 2), precision="fp32"):
    spec = GeneratorSpec(n=64, d=24, s=3)
    specs = [spec.replace(seed=s) for s in seeds]
    cfg = resolve_hyper(method, {"width": 64, **hyper}, *spec_scales(spec))
    tc = TrainConfig(steps=steps, graph=True, record_every=10, precision=precision, eval_samples=2048)
    data = GeneratorData(specs, device, counter=True)
    return train_ensemble(method, [cfg] * len(seeds), data, list(seeds), tc, progress=False, replay=replay)


def _numbers(results):
    return [
        (r["frr_0.9"], r["mse"], r["l0"], r["loss_drop_last_tenth"], r.get("bias_at_floor"), r.get("coef_final"))
        for r in results
    ]


@pytest.mark.parametrize("method,hyper", CASES)
def test_emulated_capture_equals_the_eager_step(method, hyper):
    """Replays that see the host as at their capture give the eager numbers exactly: every piece of state the
    step moves is updated in place and every host decision is in ``phase`` (adapt_every 7 and control_every 9
    do not divide the warm-up, so both phases are captured after it); and no captured call reads a tensor on
    the host. Broken on purpose: BA's adapt assigning ``self.b = ...`` instead of writing into it — red; a
    ``bool(...)`` of a tensor in BA's buffer update — red (HostRead)."""
    eager = _train(method, hyper, "eager")
    emulated = _train(method, hyper, "emulate")
    assert _numbers(emulated) == _numbers(eager)
    assert [r["frr_0.9_by_step"] for r in emulated] == [r["frr_0.9_by_step"] for r in eager]


def test_host_reads_are_refused_inside_an_emulated_capture():
    """What breaks a CUDA capture — a tensor's value read on the host — raises inside the emulation, is allowed in
    the optimiser's exempt step, and is restored after."""
    from theory_sim.graphs import HostRead, _exempt, host_reads_forbidden

    t = torch.tensor([1.0, 0.0])
    with host_reads_forbidden():
        for read in (lambda: t.sum().item(), lambda: bool(t[0]), lambda: t.tolist(), lambda: torch.nonzero(t)):
            with pytest.raises(HostRead):
                read()
        with _exempt():
            assert t.sum().item() == 1.0
    assert bool(t[0]) and t.tolist() == [1.0, 0.0]


def test_auxk_reads_the_host_every_step():
    """Why capture_refusal refuses AuxK: its step asks the host whether a latent is dead, which the emulated
    capture catches (a model with a dead latent makes the read happen from the first captured step)."""
    from theory_sim.graphs import HostRead

    with pytest.raises(HostRead, match="__bool__"):
        _train("topk", {"k": 3, "auxk": 0.1, "dead_steps": 1}, "emulate", steps=12)


def test_every_phase_is_captured_once():
    from theory_sim.graphs import StepRunner

    class Counted(StepRunner):
        def _capture(self, key):
            keys.append(key)
            return super()._capture(key)

    keys = []
    import theory_sim.training as T

    original = T.StepRunner
    T.StepRunner = Counted
    try:
        _train("ba", {"p_over_f": 1.0, "adapt_every": 7}, "emulate", steps=40)
    finally:
        T.StepRunner = original
    assert sorted(keys) == [False, True]


def test_capture_refusal_matches_the_methods_code():
    """capture_refusal (torch-free, what refuses a sweep) says None exactly where the method's code declares its
    step's phases (Method.phase not None)."""
    from theory_sim.sae import get_method

    spec = GeneratorSpec(n=32, d=12, s=2)
    x0 = torch.randn(1, 64, 12)
    for name in sorted(CONFIGS):
        for extra in ({}, {"train_pre_bias": True}, {"auxk": 0.1}):
            try:
                cfg = resolve_hyper(name, {"width": 16, **extra}, *spec_scales(spec))
            except ConfigError:
                continue
            sae = get_method(name)([cfg], 12, [0], "cpu", x0)
            assert (capture_refusal(name, cfg) is None) == (sae.phase(1) is not None), (name, extra)
    assert {c[0] for c in CASES} == set(CONFIGS)  # every method's capture is held against its eager step


def test_graph_refusals_name_graph():
    cfg = resolve_hyper("topk", {"auxk": 0.1}, 0.02)
    with pytest.raises(ConfigError, match="graph.*CUDA device"):
        check_graph(True, torch.device("cpu"))
    with pytest.raises(ConfigError, match="graph.*auxk.*not captured"):
        check_graph(True, "cuda", "topk", cfg)
    with pytest.raises(ConfigError, match="graph.*generator data"):
        check_graph(True, "cuda", data="array")
    check_graph(False, "cpu", "topk", cfg)  # off: nothing to refuse
    if not CUDA:
        with pytest.raises(ConfigError, match="graph"):
            train("ba", graph=True, steps=5, progress=False)


@pytest.mark.skipif(CUDA, reason="the refusal is of a machine without CUDA")
def test_cli_graph_without_cuda_is_refused(tmp_path):
    out = tmp_path / "sae"
    r = cli_inprocess("train", "--graph", "--steps", "5", "--save-sae", out)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("theory-sim: error: graph:")
    assert not out.exists()


def test_sweep_with_graph_without_cuda_is_refused_before_writing(tmp_path):
    if CUDA:
        pytest.skip("the refusal is of a machine without CUDA")
    sweep = tmp_path / "g.toml"
    sweep.write_text(
        'name = "g"\n[data]\nn = 32\nd = 12\ns = 2\n[train]\nsteps = 5\ngraph = true\nseeds = [0]\n'
        '[[methods]]\nname = "ba"\n'
    )
    out = tmp_path / "out"
    r = cli_inprocess("sweep", sweep, "--out", out)
    assert r.returncode == 2, r.stderr
    assert "graph" in r.stderr.strip().splitlines()[-1]
    assert not out.exists()


# ------------------------------------------------------------------------------------------ CUDA only
@pytest.mark.skipif(not CUDA, reason="a CUDA graph needs a CUDA device")
@pytest.mark.parametrize("method,hyper", CASES)
def test_cuda_graph_equals_the_eager_step(method, hyper):
    """The real capture against the eager step on the same card and stream: float tolerance (a graph may
    pick other kernels), identical recovery."""
    eager = _train(method, hyper, "eager", device="cuda", steps=200)
    graphed = _train(method, hyper, "cuda", device="cuda", steps=200)
    assert not any("graph_fallback" in r for r in graphed), graphed[0].get("graph_fallback")  # really captured
    for a, b in zip(_numbers(eager), _numbers(graphed)):
        assert a[0] == b[0]  # FRR@0.9
        assert math.isclose(a[1], b[1], rel_tol=1e-3, abs_tol=1e-5)  # MSE
        assert math.isclose(a[2], b[2], rel_tol=1e-3, abs_tol=1e-3)  # L0


@pytest.mark.skipif(not CUDA, reason="a CUDA graph needs a CUDA device")
def test_cuda_train_with_graph_end_to_end():
    r = train("ba", GeneratorSpec(n=64, d=24, s=3), seeds=[0, 1], steps=300, graph=True, progress=False, p_over_f=1.0)
    assert all(x["status"] == "done" and "graph_fallback" not in x for x in r)
    assert json.dumps([x["frr_0.9"] for x in r])


# ------------------------------------------------------------------------------------------ bench
def test_graph_targets_ratio_and_goals():
    from theory_sim.bench import graph_targets

    rows = [
        {"method": "ba", "E": 8, "graph": False, "steps_per_second": 100.0},
        {"method": "ba", "E": 8, "graph": True, "steps_per_second": 1200.0},
        {"method": "ba", "E": 256, "graph": False, "steps_per_second": 1000.0},
        {"method": "ba", "E": 256, "graph": True, "steps_per_second": 2500.0},
        {"method": "ba", "E": 32, "graph": True, "steps_per_second": 50.0},  # no eager row: no ratio
    ]
    got = graph_targets(rows)
    assert got == [
        {"method": "ba", "E": 8, "graph_over_eager": 12.0, "target": 10.0, "met": True},
        {"method": "ba", "E": 256, "graph_over_eager": 2.5, "target": 3.0, "met": False},
    ]


def test_bench_times_a_captured_row_and_a_small_diagram():
    """The captured row's code path (emulated here) and the diagram through the real sweep pipeline: 2 × 2 d and
    p/f values × 1 seed are 4 models at the full budget's width."""
    from theory_sim.bench import diagram_time, format_bench, time_method

    dev = torch.device("cpu")
    row = time_method("ba", 2, dev, 0.2, graph=True, replay="emulate")
    assert row["graph"] is True and row["steps_per_second"] > 0
    g = diagram_time(dev, 2, seeds=1, steps=20)
    assert g["models"] == 4 and g["d"] == [8, 48] and g["width"] == 512 and g["seconds"] > 0
    text = format_bench(
        {
            "device_name": "cpu",
            "torch": torch.__version__,
            "peak_gflops": 1.0,
            "cell": {},
            "results": [{**row, "fraction_of_peak": 0.1, "fraction_of_peak_mean": 0.1}],
            "diagram": g,
        }
    )
    assert "ba (graph)" in text and "resonance diagram 2 p/f × 2 d × 1 seeds (4 models" in text


def test_reproduce_tf32_or_graph_refused_without_cuda(tmp_path):
    if CUDA:
        pytest.skip("the refusal is of a machine without CUDA")
    for extra in (["--precision", "tf32"], ["--graph"], ["--precision", "bf16"]):
        out = tmp_path / "r"
        r = cli_inprocess("reproduce", "--budget", "tiny", "--out", out, *extra)
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].split(":")[2].strip() in ("precision", "graph")
        assert not out.exists()


def test_bench_graph_refused_without_cuda():
    if CUDA:
        pytest.skip("the refusal is of a machine without CUDA")
    r = cli_inprocess("bench", "--graph", "--no-grid")
    assert r.returncode == 2 and "graph" in r.stderr.strip().splitlines()[-1]


def test_with_graph_switches_only_what_can_be_captured():
    from theory_sim.sweep import parse_sweep
    from theory_sim.sweep.spec import with_execution

    src = (
        'name = "w"\n[data]\nn = 32\nd = 12\ns = 2\n[grid]\nsupport = ["exact", "bernoulli"]\n'
        "[train]\nsteps = 5\nseeds = [0]\n"
        '[[methods]]\nname = "ba"\n[[methods]]\nname = "topk"\nlabel = "AuxK"\nauxk = 0.1\n'
    )
    sweep = parse_sweep(src, "w.toml")
    graphed = with_execution(sweep, graph=True)
    assert sum(bool(c.train.get("graph")) for c in graphed.cells) == 2  # ba on exact and bernoulli; AuxK never
    assert {(c.method, bool(c.train.get("graph"))) for c in graphed.cells} == {("ba", True), ("topk", False)}
    assert all(g.hash != c.hash for g, c in zip(graphed.cells, sweep.cells) if g.method == "ba")  # another cell
    tf32 = with_execution(sweep, precision="tf32")  # every cell, capturable or not; no graph
    assert {(c.train.get("precision"), c.train.get("graph")) for c in tf32.cells} == {("tf32", None)}
    same = with_execution(sweep)
    assert [c.hash for c in same.cells] == [c.hash for c in sweep.cells]
    bad = (
        'name = "w"\n[data]\nn = 32\nd = 12\ns = 2\n[train]\nsteps = 5\ngraph = true\n[[methods]]\nname = "topk"\n'
        "auxk = 0.1\n"
    )
    with pytest.raises(ConfigError, match="graph.*auxk"):
        parse_sweep(bad, "w.toml")


@pytest.mark.slow
def test_reproduce_with_graph_end_to_end_emulated(tmp_path, monkeypatch):
    """``reproduce --graph`` through the whole pipeline on CPU, captures emulated (the device check bypassed):
    every trained cell — grid, refined and checked — carries graph = true, batches form by counter structure,
    nothing fails, and the report counts the captured cells."""
    import theory_sim.graphs as G
    import theory_sim.report.driver as drv
    import theory_sim.sweep.runner as R
    from theory_sim.store import load_results

    init = G.StepRunner.__init__

    def emulated(self, fn, sae, mode="eager"):
        init(self, fn, sae, "emulate" if mode == "cuda" else mode)

    def on_a_card(graph, device, *a, **kw):
        return check_graph(graph, "cuda", *a, **kw)

    monkeypatch.setattr(G.StepRunner, "__init__", emulated)
    monkeypatch.setattr(drv, "check_graph", on_a_card)
    monkeypatch.setattr(R, "check_graph", on_a_card)
    report = drv.reproduce(str(tmp_path), "tiny", "cpu", ["resonance"], progress=False, threads=2, graph=True)
    df = load_results(tmp_path / "resonance", current_only=True)
    assert len(df) > 8 and bool(df["train_graph"].fillna(False).all()) and not (df.status == "failed").any()
    assert f"{len(df)} of them trained as CUDA graphs" in report.read_text()
    checks = [p for p in (tmp_path / "resonance").iterdir() if p.name.startswith("check_")]
    assert checks and all(bool(load_results(p)["train_graph"].all()) for p in checks)


def test_a_failed_capture_falls_back_to_eager_steps(monkeypatch):
    """A capture that fails (an op this torch cannot capture) runs the step and the rest eagerly, keeps the reason,
    and warns once; an out-of-memory error is not swallowed (the sweep runner splits the ensemble on it). Broken
    on purpose (the fallback's eager call removed): red."""
    from types import SimpleNamespace

    import theory_sim.graphs as G

    calls = []
    sae = SimpleNamespace(step_count=0, phase=lambda step: False)
    runner = G.StepRunner(lambda: calls.append(1) or len(calls), sae, "cuda")
    runner.WARMUP = 0

    def refuse(key):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(runner, "_capture_cuda", refuse)
    monkeypatch.setattr(G, "_FALLBACK_SAID", [])
    with pytest.warns(UserWarning, match="could not be captured"):
        assert runner(1) == 1
    assert runner.mode == "eager" and runner.failed == "RuntimeError: operation not permitted when stream is capturing"
    assert runner(2) == 2 and len(calls) == 2

    def oom(key):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    runner2 = G.StepRunner(lambda: 0, sae, "cuda")
    runner2.WARMUP = 0
    monkeypatch.setattr(runner2, "_capture_cuda", oom)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        runner2(1)
