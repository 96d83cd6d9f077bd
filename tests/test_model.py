"""The generator: H >= 0, exact sparsity, frequencies, unit V, coherence targets, noise, determinism."""

import math

import pytest
import torch
from conftest import CUDA
from hypothesis import given, settings
from hypothesis import strategies as st

from theory_sim.errors import ConfigError
from theory_sim.model import EnsembleSampler, GeneratorSpec, ModelSampler, make_features, measure, welch_bound


@st.composite
def specs(draw):
    n = draw(st.integers(8, 96))
    d = draw(st.integers(4, 48))
    support = draw(st.sampled_from(["exact", "bernoulli", "mixture"]))
    kw = dict(n=n, d=d, support=support, seed=draw(st.integers(0, 10_000)))
    if support == "mixture":
        kw["mixture_s"] = tuple(draw(st.lists(st.integers(1, n), min_size=1, max_size=3)))
        kw["s"] = 1
    else:
        kw["s"] = draw(st.integers(1, max(1, n // 4)))
    kw["magnitude"] = draw(st.sampled_from(["constant", "uniform", "lognormal", "per_feature"]))
    kw["noise_std"] = draw(st.sampled_from([0.0, 0.1, 0.5]))
    return GeneratorSpec(**kw)


@given(specs())
def test_h_nonnegative_and_x_is_hv_plus_noise(spec):
    x, signal, h = ModelSampler(spec).sample(256)
    assert (h >= 0).all()
    V = make_features(spec)
    assert torch.allclose(signal, h @ V, atol=1e-5)
    assert x.shape == (256, spec.d)


@given(specs())
def test_v_rows_unit_norm(spec):
    V = make_features(spec)
    assert V.shape == (spec.n, spec.d)
    assert torch.allclose(V.norm(dim=1), torch.ones(spec.n), atol=1e-5)


@given(st.integers(8, 200), st.data())
def test_exact_mode_has_exactly_s_nonzeros(n, data):
    s = data.draw(st.integers(1, n))
    spec = GeneratorSpec(n=n, d=8, s=s, magnitude="uniform", mag_low=0.1, mag_high=2.0)
    h = ModelSampler(spec).sample(300)[2]
    assert ((h > 0).sum(1) == s).all()


@given(st.integers(16, 128), st.floats(0.02, 0.5), st.integers(0, 1000))
def test_bernoulli_frequencies_within_sampling_error(n, f, seed):
    spec = GeneratorSpec(n=n, d=8, s=f * n, support="bernoulli", seed=seed)
    N = 4000
    freq = (ModelSampler(spec).sample(N)[2] > 0).float().mean(0)
    se = math.sqrt(f * (1 - f) / N)
    # 5.5 standard errors, Bonferroni-safe over <= 128 features
    assert (freq - f).abs().max().item() < 5.5 * se


def test_zipf_and_list_frequencies_follow_request():
    spec = GeneratorSpec(n=32, d=8, s=4, support="bernoulli", frequencies="zipf", zipf=0.7)
    want = torch.tensor(spec.feature_frequencies())
    assert abs(want.sum().item() - 4) < 1e-9
    N = 20000
    got = (ModelSampler(spec).sample(N)[2] > 0).float().mean(0)
    assert ((got - want).abs() < 5.5 * (want * (1 - want) / N).sqrt()).all()
    fl = [0.05 * (i % 5 + 1) for i in range(32)]
    spec = GeneratorSpec(n=32, d=8, support="bernoulli", frequencies="list", frequency_list=fl)
    got = (ModelSampler(spec).sample(N)[2] > 0).float().mean(0)
    want = torch.tensor(fl)
    assert ((got - want).abs() < 5.5 * (want * (1 - want) / N).sqrt()).all()


def test_mixture_reproduces_the_imbalanced_set():
    spec = GeneratorSpec(n=128, d=42, support="mixture", mixture_s=(3, 20))
    h = ModelSampler(spec).sample(10000)[2]
    nnz = (h > 0).sum(1)
    assert set(nnz.unique().tolist()) == {3, 20}
    assert abs((nnz == 3).float().mean().item() - 0.5) < 0.03
    assert abs(spec.mean_frequency() - 11.5 / 128) < 1e-12


def test_cooccurrence_knob_moves_rho2_across_threshold():
    n = 128
    lo = measure(GeneratorSpec(n=n, d=16, s=3, support="bernoulli", cooccurrence=3 / n), 20000)
    hi = measure(GeneratorSpec(n=n, d=16, s=3, support="bernoulli", cooccurrence=0.5), 20000)
    assert lo["rho2"] < n**-0.5 < hi["rho2"]
    assert abs(hi["rho2"] - 0.5) < 0.1  # within-group conditional rate is the knob
    for st_ in (lo, hi):  # the knob leaves the marginal frequency alone
        assert abs(st_["f_mean"] - 3 / n) < 0.003


@pytest.mark.parametrize("n,d,target", [(64, 32, 0.3), (128, 32, 0.4), (256, 64, 0.3)])
def test_low_coherence_reaches_target_below_gaussian_level(n, d, target):
    gauss = measure(GeneratorSpec(n=n, d=d), 100)["mu_max"]
    assert welch_bound(n, d) < target < gauss
    mu = measure(GeneratorSpec(n=n, d=d, features="low_coherence", coherence=target), 100)["mu_max"]
    assert target - 0.05 < mu <= target + 1e-4


def test_shared_component_raises_coherence():
    base = measure(GeneratorSpec(n=64, d=32), 100)
    sh = measure(GeneratorSpec(n=64, d=32, features="shared", shared=0.4), 100)
    assert sh["mu_mean"] > base["mu_mean"] + 0.2
    assert abs(sh["mu_mean"] - 0.4) < 0.1


def test_orthogonal_features_have_zero_coherence():
    assert measure(GeneratorSpec(n=16, d=32, features="orthogonal", s=2), 100)["mu_max"] < 1e-5


@given(st.floats(0.05, 2.0), st.integers(0, 100))
def test_noise_std_within_sampling_error(sigma, seed):
    spec = GeneratorSpec(n=32, d=16, s=2, noise_std=sigma, seed=seed)
    x, signal, _ = ModelSampler(spec).sample(2000)
    est = (x - signal).std().item()
    assert abs(est - sigma) < 5 * sigma / math.sqrt(2 * 2000 * 16)


@pytest.mark.parametrize("snr", [0.5, 4.0, 50.0])
def test_target_snr_is_met(snr):
    st_ = measure(GeneratorSpec(n=64, d=32, s=3, magnitude="lognormal", snr=snr), 20000)
    assert abs(st_["snr"] / snr - 1) < 0.05


def test_per_feature_magnitudes_are_fixed_per_feature():
    spec = GeneratorSpec(n=16, d=8, s=4, magnitude="per_feature", mag_low=0.2, mag_high=3)
    h = ModelSampler(spec).sample(2000)[2]
    for i in range(16):
        vals = h[:, i][h[:, i] > 0]
        assert vals.numel() > 0 and (vals - vals[0]).abs().max() < 1e-6
        assert 0.2 - 1e-6 <= vals[0] <= 3 + 1e-6


@given(specs())
def test_same_seed_same_numbers(spec):
    a, b = ModelSampler(spec).sample(64), ModelSampler(spec).sample(64)
    for u, v in zip(a, b):
        assert torch.equal(u, v)


def test_ensemble_streams_match_separate_samplers():
    specs_ = [GeneratorSpec(seed=k, s=2 + k) for k in range(3)]
    ens = EnsembleSampler(specs_).sample(50)
    for e, sp in enumerate(specs_):
        assert torch.equal(ens[e], ModelSampler(sp).sample(50)[0])


@pytest.mark.parametrize("magnitude", ["constant", "uniform"])
def test_stacked_ensemble_draw_matches_separate_samplers(magnitude):
    """Equal exact sparsity takes the all-models-at-once path; it must draw what each model draws alone."""
    specs_ = [
        GeneratorSpec(n=64, d=8, s=3, seed=k, magnitude=magnitude, noise_std=0.1 * (k == 1), row_norm=(k == 2))
        for k in range(3)
    ]
    ens = EnsembleSampler(specs_)
    assert ens._stacked
    first, second = ens.sample(200), ens.sample(200)
    for e, sp in enumerate(specs_):
        alone = ModelSampler(sp)
        assert torch.equal(first[e], alone.sample(200)[0])
        assert torch.equal(second[e], alone.sample_x(200))


def test_measure_is_deterministic():
    spec = GeneratorSpec(n=64, d=16, s=3, noise_std=0.1)
    assert measure(spec, 3000) == measure(spec, 3000)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_statistics_match_cpu_within_sampling_error():
    spec = GeneratorSpec(n=128, d=32, s=4, support="bernoulli", noise_std=0.2)
    a, b = measure(spec, 20000, "cpu"), measure(spec, 20000, "cuda")
    assert abs(a["s_mean"] - b["s_mean"]) < 0.1
    assert a["mu_max"] == pytest.approx(b["mu_max"], abs=1e-5)
    assert abs(a["noise_std"] - b["noise_std"]) < 1e-6


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(n=4, s=5), "s"),
        (dict(s=0), "s"),
        (dict(n=0), "n"),
        (dict(d=0), "d"),
        (dict(features="orthogonal", n=50, d=10), "features"),
        (dict(noise_std=-1), "noise_std"),
        (dict(noise_std=float("nan")), "noise_std"),
        (dict(support="bernoulli", frequencies="list", frequency_list=[1.5] * 128), "frequency_list"),
        (dict(magnitude="uniform", mag_low=-1), "mag_low"),
        (dict(features="nope"), "features"),
        (dict(snr=0.0), "snr"),
        (dict(support="exact", s=2.5), "s"),
        (dict(features="low_coherence", coherence=0.01), "coherence"),
    ],
)
def test_bad_specs_name_the_field(kw, field):
    with pytest.raises(ConfigError) as e:
        GeneratorSpec(**kw)
    assert e.value.field == field


def test_spec_dict_round_trip_and_unknown_key():
    spec = GeneratorSpec(support="mixture", mixture_s=(3, 20))
    assert GeneratorSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError) as e:
        GeneratorSpec.from_dict({"nn": 3})
    assert e.value.field == "nn"


def test_row_norm_gives_unit_rows_and_keeps_old_hashes():
    spec = GeneratorSpec(n=32, d=8, s=4, noise_std=0.1, row_norm=True)
    x = ModelSampler(spec).sample_x(100)
    assert torch.allclose(x.norm(dim=1), torch.ones(100), atol=1e-5)
    assert "row_norm" not in GeneratorSpec().to_dict()  # at its default: stored cell hashes are unchanged
    assert GeneratorSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(support="bernoulli"),
        dict(support="mixture", mixture_s=(2, 5)),
        dict(magnitude="uniform", noise_std=0.1),
    ],
)
def test_sample_with_support_is_the_same_stream_and_its_coordinates_rebuild_h(kw):
    """The evaluation rows carry H's non-zeros as coordinates: x is bitwise what sample_x draws, and the
    coordinates are exactly where the dense h of sample() is positive."""
    spec = GeneratorSpec(n=32, d=8, s=3, seed=4, **kw)
    x, rows, cols = ModelSampler(spec).sample_with_support(300)
    assert torch.equal(x, ModelSampler(spec).sample_x(300))
    h = ModelSampler(spec).sample(300)[2]
    mask = torch.zeros_like(h, dtype=torch.bool)
    mask[rows, cols] = True
    assert torch.equal(mask, h > 0)


def test_eval_rows_are_the_ensemble_samplers():
    """Evaluation draws per model (to know H) but must be the rows the ensemble sampler draws."""
    from theory_sim.model.sampler import STREAM_EVAL
    from theory_sim.training import GeneratorData

    specs_ = [GeneratorSpec(n=32, d=8, s=2, seed=k) for k in range(3)]
    data = GeneratorData(specs_, "cpu")
    x, supports = data.eval_batch(200)
    assert torch.equal(x, EnsembleSampler(specs_, "cpu", STREAM_EVAL, features=data.V).sample(200))
    assert len(supports) == 3 and supports[0][0].numel() == 400


# ------------------------------------------------------------------------------------------ worlds with structure
def test_hierarchy_layout_by_hand():
    """n = 16, branching 2, depth 2: trees of 1 + 2 + 4 = 7 features, R = 2 trees; roots 0, 1; level 1
    2..5 (children of 0: 2, 3; of 1: 4, 5); level 2 6..13 (children of 2: 6, 7; ...); 14, 15 left over."""
    from theory_sim.model.sampler import hierarchy_levels

    spec = GeneratorSpec(n=16, d=8, s=2, support="bernoulli", hierarchy_depth=2, hierarchy_branching=2)
    (c1, p1), (c2, p2) = hierarchy_levels(spec)
    assert c1.tolist() == [2, 3, 4, 5] and p1.tolist() == [0, 0, 1, 1]
    assert c2.tolist() == list(range(6, 14)) and p2.tolist() == [2, 2, 3, 3, 4, 4, 5, 5]


@given(st.integers(1, 3), st.integers(1, 3), st.booleans(), st.integers(0, 10**6))
@settings(max_examples=15, deadline=None)
def test_no_child_fires_without_its_parent(branching, depth, exclusive, seed):
    from theory_sim.model.sampler import ModelSampler, hierarchy_levels

    spec = GeneratorSpec(
        n=64,
        d=8,
        s=6,
        support="bernoulli",
        hierarchy_depth=depth,
        hierarchy_branching=branching,
        hierarchy_exclusive=exclusive,
        seed=seed,
    )
    if spec.tree_size() > 64:
        return
    _, _, h = ModelSampler(spec).sample(2000)
    on = h > 0
    for children, parents in hierarchy_levels(spec):
        assert not (on[:, children] & ~on[:, parents]).any()
        if exclusive:
            assert int(on[:, children].view(2000, -1, branching).sum(-1).max()) <= 1


def test_correlated_firing_keeps_each_frequency_and_correlates():
    """The copula moves the joint law, not the marginals: each f_i as requested (Zipf), within sampling
    error; the firing indicators correlate (they do not without it)."""
    base = dict(n=32, d=8, s=4, support="bernoulli", frequencies="zipf", zipf=0.5)
    want = torch.tensor(GeneratorSpec(**base).feature_frequencies())
    corr = measure(GeneratorSpec(**base, correlation_rank=2, correlation_scale=0.8), 40000)
    plain = measure(GeneratorSpec(**base), 40000)
    from theory_sim.model.sampler import ModelSampler

    _, _, h = ModelSampler(GeneratorSpec(**base, correlation_rank=2, correlation_scale=0.8)).sample(40000)
    got = (h > 0).float().mean(0)
    assert torch.allclose(got, want, atol=4 * (want * (1 - want) / 40000).sqrt().max().item() + 1e-3)
    assert corr["firing_corr_max"] > 0.1 and abs(plain["firing_corr_mean"]) < 0.01


def test_magnitude_spread_and_dictionary_bias():
    from theory_sim.model.sampler import ModelSampler, world_bias

    spec = GeneratorSpec(n=16, d=8, s=2, magnitude="per_feature", magnitudes=tuple([2.0] * 16), mag_spread=0.5)
    _, _, h = ModelSampler(spec).sample(20000)
    vals = h[h > 0]
    assert vals.min() > 0 and abs(vals.mean().item() - 2.0) < 0.05 and vals.std().item() > 0.5
    b = GeneratorSpec(n=16, d=8, s=2, dictionary_bias=0.7)
    x, signal, _ = ModelSampler(b).sample(10)
    assert torch.allclose(
        signal - ModelSampler(b.replace(dictionary_bias=0.0)).sample(10)[1], world_bias(b).expand(10, 8), atol=1e-6
    )
    assert world_bias(b).norm().item() == pytest.approx(0.7, rel=1e-6)


@pytest.mark.parametrize(
    "kw,field",
    [
        ({"support": "bernoulli", "correlation_rank": 100}, "correlation_rank"),
        ({"support": "bernoulli", "correlation_rank": 2, "correlation_scale": 1.0}, "correlation_scale"),
        ({"support": "bernoulli", "hierarchy_depth": 3, "hierarchy_branching": 4}, "hierarchy_branching"),
        ({"hierarchy_depth": 1}, "hierarchy_depth"),
        ({"magnitude": "per_feature", "mag_spread": -0.1}, "mag_spread"),
        ({"mag_spread": 0.2}, "mag_spread"),
        ({"dictionary_bias": -1.0}, "dictionary_bias"),
        ({"support": "bernoulli", "hierarchy_depth": True}, "hierarchy_depth"),
    ],
)
def test_world_fields_out_of_range_are_refused(kw, field):
    with pytest.raises(ConfigError, match=field):
        GeneratorSpec(n=64, d=8, s=2, **kw)


def test_the_world_fields_leave_old_hashes_alone():
    """At their defaults the new fields are left out of the stored config (so every stored cell keeps its
    hash); set, they are in it."""
    new = {
        "hierarchy_depth",
        "hierarchy_branching",
        "hierarchy_exclusive",
        "correlation_rank",
        "correlation_scale",
        "mag_spread",
        "dictionary_bias",
    }
    assert not new & set(GeneratorSpec().to_dict())
    on = GeneratorSpec(n=64, d=8, s=2, support="bernoulli", hierarchy_depth=1, correlation_rank=2).to_dict()
    assert {"hierarchy_depth", "correlation_rank"} <= set(on)


def test_correlation_scale_reads_as_saelens_reads_it():
    """SAELens's low-rank correlation: loadings N(0, scale²), each row's shared variance capped at 0.99 on its own
    (rank 8, scale 0.3: about a quarter of the rows reach the cap). The others keep their drawn loadings (a global
    rescaling — the reading before — halved every correlation), and the copula's latent is N(0, 1) per feature."""
    from theory_sim.model.sampler import copula_loadings

    spec = GeneratorSpec(n=256, d=8, s=4, support="bernoulli", correlation_rank=8, correlation_scale=0.3)
    F = copula_loadings(spec).double()
    sq = F.pow(2).sum(1)
    capped = sq > 0.99 - 1e-6
    assert 0.05 < capped.float().mean() < 0.5 and torch.allclose(sq[capped], torch.full_like(sq[capped], 0.99))
    raw = torch.randn(256, 8, generator=torch.Generator().manual_seed(0 * 1000 + 8), dtype=torch.float64) * 0.3
    assert torch.allclose(F[~capped], raw[~capped].float().double(), atol=1e-6)  # untouched where below the cap
    stats = measure(spec, 40000)
    assert 0.01 < stats["root_corr_abs_mean"] < 0.08  # correlated (0 without the copula); docs/crosscheck: vs SAELens
