"""Losses and update rules on tiny hand-checkable cases; the ensemble axis; bad hyperparameters."""

import math

import pytest
import torch
from conftest import CUDA
from hypothesis import given
from hypothesis import strategies as st

from theory_sim.errors import ConfigError
from theory_sim.sae import REGISTRY, get_method, make_config
from theory_sim.sae.ba import BA, GBA, BAConfig, GBAConfig
from theory_sim.sae.base import reconstruction_loss
from theory_sim.sae.configs import JumpReLUConfig, L1Config, TopKConfig
from theory_sim.sae.jumprelu import JumpReLU
from theory_sim.sae.l1 import L1
from theory_sim.sae.mba import MBA, MBAConfig, smooth_relu
from theory_sim.sae.topk import BatchTopK, RandomDecoder, TopK, keep_top


def make(cls, cfg, E=1, d=3, B=4, seed=0):
    x0 = torch.randn(E, B, d, generator=torch.Generator().manual_seed(seed))
    return cls([cfg] * E, d, list(range(E)), "cpu", x0)


def test_reconstruction_loss_by_hand():
    x = torch.tensor([[[1.0, 2.0], [0.0, 0.0]]])
    xh = torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])
    # rows: ½(1+4) = 2.5 and ½(9+16) = 12.5 → mean 7.5
    assert reconstruction_loss(xh, x).item() == pytest.approx(7.5)


def test_ba_forward_by_hand():
    sae = make(BA, BAConfig(width=2, p=0.5, pre_bias="zero"), d=2)
    sae.WT.data = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).transpose(1, 2).contiguous()
    sae.a.data = torch.tensor([[[2.0, 3.0]]])
    sae.b = torch.tensor([[[-0.5, -0.1]]])
    x = torch.tensor([[[1.0, 0.05]]])
    x_hat, z, y = sae.forward(x)
    assert torch.allclose(y, torch.tensor([[[0.5, -0.05]]]))
    assert torch.allclose(z, torch.tensor([[[0.5, 0.0]]]))
    assert torch.allclose(x_hat, torch.tensor([[[1.0, 0.0]]]))  # a·z·w = 2·0.5·e1
    sae2 = make(BA, BAConfig(width=2, p=0.5, pre_bias="zero", activation="jumprelu"), d=2)
    sae2.WT.data, sae2.b = sae.WT.data.clone(), sae.b.clone()
    _, z2, _ = sae2.forward(x)
    assert torch.allclose(z2, torch.tensor([[[1.0, 0.0]]]))  # jumprelu: magnitude is wᵀx, bias only gates


def test_bias_gets_no_gradient_and_prebias_fixed_by_default():
    sae = make(BA, BAConfig(width=4, p=0.2))
    assert not sae.b.requires_grad and not sae.b_pre.requires_grad
    names = {id(t) for t in sae.parameters()}
    assert id(sae.WT) in names and id(sae.b) not in names


def test_adaptation_moves_exactly_the_right_neurons():
    """Targets 0.1. Neuron 0 over-active (p=0.5, r=2) → b − 0.01·2; neuron 1 dead → b + 0.01·mean(pos r);
    neuron 2 in band (p=0.05) → unchanged; neuron 3 over-active near −1 → clamped to −1."""
    sae = make(BA, BAConfig(width=4, p=0.1, gamma_minus=0.01, gamma_plus=0.01))
    sae.b = torch.tensor([[[-0.2, -0.3, -0.4, -0.995]]])
    sae.buf_rows.fill_(20)
    sae.buf_count = torch.tensor([[[10.0, 0.0, 1.0, 4.0]]])
    sae.buf_max = torch.tensor([[[2.0, -0.7, 0.3, 1.0]]])
    sae.adapt()
    pos_mean = (2.0 + 0.3 + 1.0) / 3
    want = torch.tensor([[[-0.2 - 0.02, -0.3 + 0.01 * pos_mean, -0.4, -1.0]]])
    assert torch.allclose(sae.b, want, atol=1e-7)
    assert sae.buf_rows == 0 and sae.buf_count.sum() == 0  # the buffer is cleared


def test_dead_neuron_bias_is_clamped_at_zero():
    sae = make(BA, BAConfig(width=2, p=0.1, gamma_plus=0.5))
    sae.b = torch.tensor([[[-0.01, -0.5]]])
    sae.buf_rows.fill_(10)
    sae.buf_count = torch.tensor([[[0.0, 5.0]]])
    sae.buf_max = torch.tensor([[[-0.2, 1.0]]])
    sae.adapt()
    assert sae.b[0, 0, 0].item() == 0.0  # min(−0.01 + 0.5·1.0, 0)


def test_gba_group_means_are_per_group():
    cfg = GBAConfig(width=4, groups=2, htf=0.5, ltf=0.05, gamma_plus=0.1)
    sae = make(GBA, cfg)
    assert torch.allclose(sae.target.flatten(), torch.tensor([0.5, 0.5, 0.05, 0.05]))
    sae.b = torch.full((1, 1, 4), -0.5)
    sae.buf_rows.fill_(10)
    sae.buf_count = torch.tensor([[[0.0, 3.0, 0.0, 0.2]]])  # 0 and 2 dead; 1 in band; 3 in band (0.02)
    sae.buf_max = torch.tensor([[[-1.0, 0.4, -1.0, 0.8]]])
    sae.adapt()
    assert sae.b[0, 0, 0].item() == pytest.approx(-0.5 + 0.1 * 0.4)  # group 0's positive r: 0.4
    assert sae.b[0, 0, 2].item() == pytest.approx(-0.5 + 0.1 * 0.8)  # group 1's: 0.8
    assert sae.b[0, 0, 1].item() == -0.5 and sae.b[0, 0, 3].item() == -0.5


def test_gba_targets_are_geometric():
    t = GBAConfig(width=6, groups=3, htf=0.1, ltf=0.001).targets()
    assert t == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


@given(
    st.lists(st.floats(0, 1), min_size=6, max_size=6),
    st.lists(st.floats(-3, 3), min_size=6, max_size=6),
    st.lists(st.floats(-1, 0), min_size=6, max_size=6),
    st.floats(0, 2),
    st.floats(0, 2),
)
def test_biases_stay_in_range(freqs, peaks, biases, gm, gp):
    sae = make(GBA, GBAConfig(width=6, groups=2, htf=0.3, ltf=0.01, gamma_minus=gm, gamma_plus=gp))
    sae.b = torch.tensor(biases).view(1, 1, 6)
    sae.buf_rows.fill_(100)
    sae.buf_count = torch.tensor(freqs).view(1, 1, 6) * 100
    sae.buf_max = torch.tensor(peaks).view(1, 1, 6)
    sae.adapt()
    assert (sae.b >= -1).all() and (sae.b <= 0).all()


def test_weights_renormalised_after_step():
    sae = make(BA, BAConfig(width=8, p=0.2, lr=0.5), d=5)
    sae.train_step(torch.randn(1, 16, 5))
    assert torch.allclose(sae.W.norm(dim=-1), torch.ones(1, 8), atol=1e-5)


def test_l1_loss_by_hand():
    sae = make(L1, L1Config(width=2, l1=0.5), d=2)
    sae.W_encT.data = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]).transpose(1, 2).contiguous()
    sae.W_decT.data = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]]).transpose(1, 2).contiguous()
    sae.b_enc.data.zero_()
    sae.b_dec.data.zero_()
    x = torch.tensor([[[1.0, 3.0]]])
    loss, _ = sae.loss(x)
    # z = (1, 3); x̂ = (2, 3); recon ½·1 = 0.5; penalty 0.5·(2·1 + 1·3) = 2.5
    assert loss.item() == pytest.approx(3.0)


def test_keep_top_per_model_k():
    pre = torch.tensor([[[0.1, 0.5, 0.3, -1.0]], [[0.9, 0.2, 0.4, 0.8]]])
    out = keep_top(pre, torch.tensor([1, 3]).view(2, 1, 1), 3)
    assert out[0].tolist() == [[0.0, 0.5, 0.0, 0.0]]
    assert torch.allclose(out[1], torch.tensor([[0.9, 0.0, 0.4, 0.8]]))


def test_topk_l0_is_k_and_decoder_unit_norm():
    sae = make(TopK, TopKConfig(width=16, k=3), d=6)
    x = torch.randn(1, 32, 6) + 3
    _, z, _ = sae.forward(x)
    assert ((z > 0).sum(-1) <= 3).all()
    sae.train_step(x)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(1, 16), atol=1e-5)


def test_batchtopk_keeps_k_times_batch():
    sae = make(BatchTopK, TopKConfig(width=16, k=2), d=6)
    _, z, _ = sae.forward(torch.randn(1, 10, 6) + 3)
    assert (z > 0).sum().item() <= 20 and (z > 0).sum(-1).max() > 0


def test_random_decoder_is_frozen():
    sae = make(RandomDecoder, TopKConfig(width=8, k=2), d=4)
    before = sae.W_dec.clone()
    for _ in range(3):
        sae.train_step(torch.randn(1, 16, 4))
    assert torch.equal(before, sae.W_dec)


def test_jumprelu_code_and_threshold_gradient_by_hand():
    sae = make(JumpReLU, JumpReLUConfig(width=2, l0_coef=1.0, bandwidth=0.2, threshold_init=0.5), d=2)
    pre = torch.tensor([[[0.55, 0.3]]], requires_grad=True)
    z = sae.code(pre)
    assert torch.allclose(z, torch.tensor([[[0.55, 0.0]]]))
    z.sum().backward()
    # d/dθ of u·H(u−θ) at |u−θ| = 0.05 < ε/2: −θ/ε = −0.5/0.2 per neuron 0; neuron 1 outside the window
    g = sae.log_theta.grad.flatten() / 0.5  # chain rule through θ = exp(log θ)
    assert g[0].item() == pytest.approx(-2.5) and g[1].item() == 0.0
    assert pre.grad.flatten().tolist() == [1.0, 0.0]


def test_smooth_relu_values():
    phi, dphi = smooth_relu(torch.tensor([-1.0, 0.0, 0.025, 0.05, 1.0]), 0.05)
    assert torch.allclose(phi, torch.tensor([0.0, 0.0, 0.025**2 / 0.1, 0.025, 0.975]))
    assert torch.allclose(dphi, torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


def test_mba_power_step_by_hand():
    """One neuron w = e1 with bias −0.5: it fires on x1 = (1, 0.2) (u=1), not on x2 = (0, 1) (u=0).
    g = mean[(φ(y)+φ'(y)u) x] = ½(0.5 − δ/2 + 1)·x1 → w_new = x1/|x1|."""
    sae = make(MBA, MBAConfig(width=1, p=0.5, smooth=0.05), d=2)
    sae.W = torch.tensor([[[1.0, 0.0]]])
    sae.b = torch.tensor([[[-0.5]]])
    sae.train_step(torch.tensor([[[1.0, 0.2], [0.0, 1.0]]]))
    want = torch.tensor([1.0, 0.2]) / math.hypot(1, 0.2)
    assert torch.allclose(sae.W.flatten(), want, atol=1e-6)


def test_mba_bias_sets_initial_frequency():
    sae = MBA([MBAConfig(width=64, p=0.1)], 8, [0], "cpu", torch.randn(1, 4096, 8))
    freq = (sae.forward(torch.randn(1, 20000, 8))[2] > 0).float().mean(1)
    assert abs(freq.mean().item() - 0.1) < 0.01


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_ensemble_models_are_independent(name):
    """Model e of an ensemble does exactly what it does alone (same seed, same data)."""
    cls = get_method(name)
    cfg = cls.Config(width=16)
    xs = torch.randn(3, 20, 32, 6)
    ens = cls([cfg] * 3, 6, [0, 1, 2], "cpu", xs[:, 0])
    alone = cls([cfg], 6, [1], "cpu", xs[1:2, 0])
    for t in range(20):
        ens.train_step(xs[:, t])
        alone.train_step(xs[1:2, t])
    assert torch.allclose(ens.decoder()[1], alone.decoder()[0], atol=1e-5)


@pytest.mark.parametrize(
    "method,params,field",
    [
        ("ba", {"p": 0.0}, "p"),
        ("ba", {"p": 1.0}, "p"),
        ("gba", {"htf": 0.01, "ltf": 0.1}, "htf"),
        ("gba", {"groups": 0}, "groups"),
        ("topk", {"k": 0}, "k"),
        ("topk", {"width": 8, "k": 9}, "k"),
        ("ba", {"width": 0}, "width"),
        ("l1", {"l1": -1}, "l1"),
        ("ba", {"k": 3}, "k"),
        ("ba", {"activation": "gelu"}, "activation"),
        ("ba", {"p": float("nan")}, "p"),
        ("nope", {}, "method"),
        ("gba", {"p": 0.1}, "p"),  # GBA has no single target frequency
    ],
)
def test_bad_hyperparameters(method, params, field):
    with pytest.raises(ConfigError) as e:
        make_config(method, params)
    assert e.value.field == field


def test_no_hyperparameter_shadows_a_result_column():
    """load_results puts hyperparameters and metrics side by side: their names must differ."""
    import dataclasses

    from theory_sim.sae import REGISTRY

    metric_names = {
        "l0",
        "dead_fraction",
        "explained_variance",
        "fvu",
        "mse",
        "shrinkage",
        "mmcs",
        "mcc",
        "uniqueness",
        "seconds",
        "steps",
        "status",
        "error",
        "freq_log_error",
        "coef_final",
        "l0_target",
        "chance_frr_0.9",
        "mcc_signed",
        "aligned_uniqueness",
        "dead_latents",
        "precision",
        "recall",
        "f1",
        "accuracy",
        "loss_drop_last_tenth",
        "converged",
        "not_converged_because",
    }
    for cls in REGISTRY.values():
        assert not {f.name for f in dataclasses.fields(cls.Config)} & metric_names, cls.name


def _hand_written_methods():
    """Every registered method whose default configuration trains through the hand-written step."""
    from theory_sim.sae import REGISTRY

    out = []
    for name, cls in sorted(REGISTRY.items()):
        if cls([cls.Config(width=12)], 5, [0], "cpu", torch.zeros(1, 4, 5)).hand_written():
            out.append(name)
    return out


def _variants(cls, **shared):
    """Three configs of ``cls`` whose per-model hyperparameters differ (numbers scaled ×0.5, ×1, ×2; a
    target L0 switched on for two of them), with adaptation and control every few steps."""
    import dataclasses

    fields = {f.name: f.default for f in dataclasses.fields(cls.Config)}
    base = {"width": 12, **{k: 3 for k in ("adapt_every", "control_every") if k in fields}, **shared}
    cfgs = []
    for i, scale in enumerate((0.5, 1.0, 2.0)):
        kw = dict(base)
        for k in cls.PER_MODEL:
            v = fields[k]
            if k == "target_l0":
                kw[k] = (0.0, 2.0, 5.0)[i]
            elif isinstance(v, int) and not isinstance(v, bool):
                kw[k] = max(1, int(v * scale))
            elif isinstance(v, float) and v > 0:
                kw[k] = min(v * scale, 0.9) if k in ("p", "htf", "ltf") else v * scale
        cfgs.append(cls.Config(**kw))
    return cfgs


def _assert_same_step(fused, ref, where):
    """After one step from the same state: the same gradients (Adam's moments: its first step stores
    (1 − β₁)·g and (1 − β₂)·g²) and the same buffers (biases, feedback counts, controlled coefficients).
    Parameters themselves are not compared: Adam's g/(|g| + ε) turns a 1e-8 rounding difference in a
    near-zero gradient into a full lr-sized step of either sign, so instead ``_sync`` copies the reference's
    state into the hand-written model before the next step."""
    params = {id(p) for p in ref.parameters()}
    for pf, pr in zip(fused.parameters(), ref.parameters()):
        for k in ("exp_avg", "exp_avg_sq"):
            a, b = fused.opt.state[pf][k], ref.opt.state[pr][k]
            assert torch.allclose(a, b, atol=1e-7, rtol=1e-4), f"{where}: Adam {k} of a {tuple(pr.shape)} parameter"
    for k, v in vars(ref).items():
        if isinstance(v, torch.Tensor) and id(v) not in params:
            assert torch.allclose(getattr(fused, k), v, atol=1e-6, equal_nan=True), f"{where}: buffer {k}"


def _sync(fused, ref):
    with torch.no_grad():
        for pf, pr in zip(fused.parameters(), ref.parameters()):
            pf.copy_(pr)
            for k, v in ref.opt.state[pr].items():
                fused.opt.state[pf][k].copy_(v)
        params = {id(p) for p in ref.parameters()}
        for k, v in vars(ref).items():
            if isinstance(v, torch.Tensor) and id(v) not in params:
                setattr(fused, k, v.clone())


def _run_pair(cls, cfgs, steps=9, seed=1, device="cpu", rows=16, chunk_bytes=None):
    xs = (torch.randn(steps, len(cfgs), rows, 5, generator=torch.Generator().manual_seed(seed)) + 0.3).to(device)
    fused = cls(cfgs, 5, list(range(len(cfgs))), device, xs[0])
    ref = cls(cfgs, 5, list(range(len(cfgs))), device, xs[0])
    if chunk_bytes is not None:
        fused.chunk_bytes = chunk_bytes
    assert fused.hand_written()
    for t in range(steps):
        lf = fused.train_step(xs[t])
        lr = ref.autograd_step(xs[t])  # the reference: autograd through ``loss``, whatever hand_written says
        assert torch.allclose(lf, lr, atol=1e-5), f"loss at step {t}"
        _assert_same_step(fused, ref, f"step {t}")
        _sync(fused, ref)
    return fused, ref


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]
)
@pytest.mark.parametrize("name", _hand_written_methods())
def test_handwritten_step_matches_autograd(name, device):
    """Each method with a hand-written step (found from the registry) against autograd through its
    ``loss``: parameters, buffers and Adam state after every one of several steps, per-model
    hyperparameters differing inside the ensemble and feedback rules (adaptation, L0 control) firing.
    On a GPU too (the chunking differs there: the whole ensemble in one pass)."""
    cls = get_method(name)
    fused, ref = _run_pair(cls, _variants(cls), device=device)
    if hasattr(ref, "b") and isinstance(ref.b, torch.Tensor) and not ref.b.requires_grad:
        assert ref.b.ne(0).any()  # adaptation ran and moved biases
    if getattr(ref, "controlled", False):
        assert not torch.allclose(
            ref.lam.view(-1)[1:], ref.per_model("l1" if name == "l1" else "l0_coef").view(-1)[1:]
        )  # the controller moved its coefficients


def test_the_registry_has_the_expected_hand_written_methods():
    """So a method that silently lost its fast path (or a registry lookup that finds none) is noticed."""
    assert set(_hand_written_methods()) >= {"ba", "gba", "l1", "topk"}


@pytest.mark.parametrize("activation", ["relu", "jumprelu"])
@pytest.mark.parametrize("train_scale", [True, False])
@pytest.mark.parametrize("cls", [BA, GBA])
def test_ba_handwritten_step_matches_autograd_in_every_variant(cls, activation, train_scale):
    """BA/GBA's switches change the hand-written formulas (gated magnitude, trained scale)."""
    _run_pair(cls, _variants(cls, activation=activation, train_scale=train_scale))


@pytest.mark.parametrize("activation", ["relu", "jumprelu"])
@pytest.mark.parametrize("cls", [BA, GBA])
def test_ba_row_tiles_match_autograd(cls, activation):
    """A wide model's step in row tiles (80 rows in tiles of 32, 32 and 16: what ``row_tile`` picks when one
    model's (B, M) intermediate outgrows ``chunk_bytes``) gives autograd's gradients, buffers and Adam state."""
    fused, _ = _run_pair(cls, _variants(cls, activation=activation), rows=80, chunk_bytes=64)
    assert fused.row_tile(80) == 32 and fused.workspace_rows() == 32


def test_topk_sparse_step_matches_autograd(monkeypatch):
    """TopK's sparse step (the decoder and every gradient on the k active latents: gathers and scatter-adds) against
    autograd, per-model k differing inside the ensemble; forced on at this small width (SPARSE_RATIO 1), and chosen
    by itself at the standard cell's k 4, width 512."""
    from theory_sim.sae.topk import TopK

    monkeypatch.setattr(TopK, "SPARSE_RATIO", 1)
    fused, _ = _run_pair(TopK, _variants(TopK))
    assert fused.sparse()
    tiled, _ = _run_pair(TopK, _variants(TopK), rows=80, chunk_bytes=64)  # and in row tiles (80 rows as 32, 32, 16)
    assert tiled.sparse() and tiled.workspace_rows() == 32
    monkeypatch.undo()
    assert make(TopK, TopKConfig(width=512, k=4), E=1, d=5).sparse()
    assert not make(TopK, TopKConfig(width=512, k=50), E=1, d=5).sparse()


@pytest.mark.parametrize("name", ["topk", "batchtopk", "random_decoder", "topk_saelens"])
@pytest.mark.parametrize("k, auxk", [(4, 0.0), (50, 0.0), (4, 0.5)])
def test_the_dry_run_estimate_knows_which_step_trains(name, k, auxk):
    """A config's step_flops (what ``sweep --dry-run`` estimates from) counts TopK's sparse step (5·B·d·M) exactly
    where the method trains through it, the dense 10·B·d·M elsewhere."""
    cls = get_method(name)
    cfg = make_config(name, {"width": 512, "k": k, "auxk": auxk})
    sae = make(cls, cfg, E=1, d=5)
    sparse = sae.hand_written() and sae.sparse()
    assert sparse == (name == "topk" and k == 4 and auxk == 0)
    assert cfg.step_flops(512, 5) == (5 if sparse else 10) * 512 * 5 * 512


@pytest.mark.parametrize("name", _hand_written_methods())
def test_every_hand_written_step_in_row_tiles_matches_autograd(name):
    """Every method with a hand-written step, its rows in tiles (80 rows as 32, 32, 16), against autograd:
    gradients, buffers (feedback counts, controlled coefficients) and Adam state after several steps."""
    cls = get_method(name)
    fused, _ = _run_pair(cls, _variants(cls), rows=80, chunk_bytes=64)
    assert fused.workspace_rows() == 32


def test_handwritten_step_chunks_the_ensemble_without_changing_it():
    """Chunking the ensemble (here 1 model per pass) gives the numbers of one pass over all models."""
    cfg = BAConfig(width=12, p=0.1, adapt_every=3)
    xs = torch.randn(7, 4, 16, 5, generator=torch.Generator().manual_seed(3))
    one, many = make(BA, cfg, E=4, d=5, B=16), make(BA, cfg, E=4, d=5, B=16)
    one.chunk_bytes, many.chunk_bytes = 1, 2**30
    assert one.chunk_models(16) < 4 and many.chunk_models(16) == 4
    for t in range(7):
        assert torch.allclose(one.train_step(xs[t]), many.train_step(xs[t]), atol=1e-6)
    assert torch.allclose(one.W, many.W, atol=1e-6) and torch.equal(one.b, many.b)


@pytest.mark.parametrize(
    "cls,cfg,names", [(BA, BAConfig(width=6), ("W",)), (L1, L1Config(width=6), ("W_enc", "W_dec"))]
)
def test_directions_are_saved_as_rows_whatever_the_storage(cls, cfg, names):
    """Directions are stored as (E, d, M) columns for the matmuls' sake; what is saved (and W, W_enc,
    W_dec, decoder()) are (E, M, d) rows, the same numbers."""
    sae = make(cls, cfg, E=2, d=5)
    st = sae.state()
    for name in names:
        assert st[name].shape == (2, 6, 5) and torch.equal(st[name], getattr(sae, name).detach())
        assert torch.equal(st[name], getattr(sae, name + "T").detach().transpose(1, 2))
        assert name + "T" not in st
    assert torch.equal(sae.decoder(), st[names[-1]])
    assert torch.allclose(sae.decoder().norm(dim=-1), torch.ones(2, 6), atol=1e-6)


def test_l0_controller_update_by_hand():
    """Three models, targets 2, 0 (off) and 4; after control_every = 2 steps on 5 rows each (10 rows),
    measured L0 = 7, 7, 1.5: λ ← λ·exp(gain·clip(log((L0 + ½)/(target + ½)), −1, 1))."""
    cfgs = [L1Config(width=8, l1=0.1, target_l0=t, control_every=2, control_gain=0.5) for t in (2.0, 0.0, 4.0)]
    sae = L1(cfgs, 3, [0, 1, 2], "cpu", torch.zeros(3, 4, 3))
    sae.ctl_active = torch.tensor([70.0, 70.0, 15.0])
    sae.step_count = 1
    sae.control(5)  # not yet: step 1 of 2
    assert torch.equal(sae.lam.view(-1), torch.full((3,), 0.1))
    sae.step_count = 2
    sae.control(5)
    want = [
        0.1 * math.exp(0.5 * 1.0),  # log(7.5 / 2.5) = 1.10, clipped to 1
        0.1,  # no target: fixed coefficient
        0.1 * math.exp(0.5 * math.log(2.0 / 4.5)),
    ]
    assert sae.lam.view(-1).tolist() == pytest.approx(want, rel=1e-6)
    assert sae.ctl_rows == 0 and sae.ctl_active.sum() == 0  # the count restarts


def test_l0_controller_keeps_the_coefficient_in_range():
    sae = L1(
        [L1Config(width=8, l1=999.0, target_l0=1.0, control_every=1, control_gain=5.0)],
        3,
        [0],
        "cpu",
        torch.zeros(1, 4, 3),
    )
    sae.ctl_active = torch.tensor([40.0])
    sae.step_count = 1
    sae.control(4)
    assert sae.lam.item() == pytest.approx(L1.COEF_RANGE[1])


@pytest.mark.parametrize("name,coef", [("l1", "l1"), ("jumprelu", "l0_coef")])
def test_l0_controller_holds_each_model_at_its_target(name, coef):
    """Two models of one ensemble with targets 2 and 6 on the same data end near their own L0."""
    from theory_sim.model import GeneratorSpec
    from theory_sim.training import GeneratorData, TrainConfig, train_ensemble

    cls = get_method(name)
    cfgs = [cls.Config(width=64, lr=1e-2, target_l0=t, **{coef: 0.05}) for t in (2.0, 6.0)]
    spec = GeneratorSpec(n=32, d=16, s=3)
    res = train_ensemble(
        name,
        cfgs,
        GeneratorData([spec, spec], "cpu"),
        [0, 0],
        TrainConfig(steps=600, batch=128, eval_samples=2048),
        progress=False,
    )
    assert res[0]["l0"] == pytest.approx(2.0, rel=0.3) and res[1]["l0"] == pytest.approx(6.0, rel=0.3)
    assert res[0]["coef_final"] > res[1]["coef_final"]  # sparser needs a larger penalty


def test_target_l0_over_s_resolves_to_a_multiple_of_the_expected_l0():
    from theory_sim.model import GeneratorSpec
    from theory_sim.training import resolve_hyper, spec_scales

    spec = GeneratorSpec(n=64, d=16, s=4)
    cfg = resolve_hyper("l1", {"target_l0_over_s": 1.5}, *spec_scales(spec))
    assert cfg.target_l0 == pytest.approx(6.0)
    with pytest.raises(ConfigError) as e:
        resolve_hyper("l1", {"target_l0_over_s": 1.5}, None, None)
    assert e.value.field == "target_l0_over_s"


def test_matching_pursuit_by_hand():
    """D = I₃ (unit atoms), b_dec = 0, x = (2, 1, −1): k = 1 takes atom 0 (coefficient 2); k = 2 adds atom 1
    (1); k = 3 stops, since the best remaining correlation (−1, atom 2) is not positive; the residual after
    two steps is (0, 0, −1)."""
    from theory_sim.sae.mp import MatchingPursuit, MPConfig

    x = torch.tensor([[[2.0, 1.0, -1.0]]])
    for k, want in ((1, [2.0, 0.0, 0.0]), (2, [2.0, 1.0, 0.0]), (3, [2.0, 1.0, 0.0])):
        sae = MatchingPursuit([MPConfig(width=3, k=k)], 3, [0], "cpu", torch.zeros(1, 4, 3))
        sae.D.data = torch.eye(3).unsqueeze(0)
        z, first = sae.encode(x)
        assert torch.equal(z, torch.tensor([[want]]))
        assert torch.equal(first, x)  # the first step's correlations with orthonormal atoms: x itself
        x_hat, _, _ = sae.forward(x)
        assert torch.allclose(x - x_hat, torch.tensor([[[2.0, 1.0, -1.0]]]) - torch.tensor([[want]]))


def test_matching_pursuit_explains_away_and_keeps_atoms_unit():
    """Two atoms at 60° and x on the first: one step leaves no residual for the second (a one-pass encoder
    would give the second atom cos 60° = 0.5); after a training step the atoms are unit again."""
    from theory_sim.sae.mp import MatchingPursuit, MPConfig

    sae = MatchingPursuit([MPConfig(width=2, k=2)], 2, [0], "cpu", torch.zeros(1, 4, 2))
    sae.D.data = torch.tensor([[[1.0, 0.0], [0.5, 3**0.5 / 2]]])
    z, _ = sae.encode(torch.tensor([[[1.0, 0.0]]]))
    assert torch.allclose(z, torch.tensor([[[1.0, 0.0]]]))
    sae.train_step(torch.randn(1, 8, 2))
    assert torch.allclose(sae.D.norm(dim=-1), torch.ones(1, 2), atol=1e-6)


def test_batchtopk_learns_a_threshold_and_is_evaluated_with_it():
    """θ ← (1 − lr) θ + lr · (smallest activation the batch kept), by hand; at evaluation the code is a
    JumpReLU at θ (as SAELens evaluates BatchTopK), and with eval_code = "batch" the training code."""
    from theory_sim.sae import get_method, make_config

    cfg = make_config("batchtopk", {"width": 4, "k": 1, "threshold_lr": 0.5})
    sae = get_method("batchtopk")([cfg], 3, [0], "cpu", torch.randn(1, 8, 3))
    assert float(sae.threshold) == 0.0
    z = torch.tensor([[[0.0, 2.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]]])
    with torch.no_grad():  # as autograd_step calls it
        sae.after_step({"z": z, "pre": z})
    assert float(sae.threshold) == pytest.approx(0.25)  # 0.5 · 0 + 0.5 · 0.5
    pre = torch.tensor([[[0.2, 0.3, -1.0, 0.26]]])
    top1 = torch.tensor([[[0.0, 0.3, 0.0, 0.0]]])
    assert torch.equal(sae.code(pre), top1)  # training: the top k·B = 1 of the batch
    sae.evaluating = True
    assert torch.equal(sae.code(pre), torch.tensor([[[0.0, 0.3, 0.0, 0.26]]]))  # evaluation: all above θ = 0.25
    batch = get_method("batchtopk")(
        [make_config("batchtopk", {"width": 4, "k": 1, "eval_code": "batch"})], 3, [0], "cpu", torch.randn(1, 8, 3)
    )
    batch.evaluating = True
    assert torch.equal(batch.code(pre), top1)


# ---------------------------------------------------------------------------------------------- BA's bias switches
def test_ba_quantile_init_fires_each_neuron_at_its_target_on_the_first_batch():
    from theory_sim.sae.ba import BA, BAConfig

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4096, 8, generator=g).abs()
    for p in (0.01, 0.1, 0.3):
        m = BA([BAConfig(width=64, p=p, bias_init_quantile=True, bias_floor=-100.0)], 8, [0], torch.device("cpu"), x0)
        u = torch.bmm(x0 - m.b_pre.detach(), m.WT.detach())
        freq = ((u + m.b) > 0).float().mean(1)  # (1, M)
        assert freq.mean().item() == pytest.approx(p, abs=0.003), p
    # without the switch every bias starts at bias_init
    m = BA([BAConfig(width=64, p=0.1)], 8, [0], torch.device("cpu"), x0)
    assert torch.all(m.b == 0)


def test_ba_bias_floor_is_where_the_rule_stops():
    from theory_sim.sae.ba import BA, BAConfig

    x0 = torch.ones(1, 64, 4)
    for floor in (-1.0, -3.0):
        m = BA([BAConfig(width=8, p=0.01, gamma_minus=10.0, bias_floor=floor)], 4, [0], torch.device("cpu"), x0)
        m.buf_count.fill_(64)
        m.buf_rows.fill_(64)
        m.buf_max.fill_(5.0)  # over-active with a large peak: one step would go far below any floor
        m.adapt()
        assert torch.all(m.b == floor), floor
        assert m.report()[0]["bias_at_floor"] == 1.0
    with pytest.raises(Exception, match="bias_init"):
        BAConfig(bias_floor=-1.0, bias_init=-2.0)


def test_every_integer_hyperparameter_refuses_a_bool():
    """`adapt_every = true`, `groups = true`, `dead_steps = true` were once accepted while `k = true` was
    refused: every integer field of every registered method refuses a bool, naming the field."""
    import dataclasses

    from theory_sim.errors import ConfigError
    from theory_sim.sae import REGISTRY

    checked = 0
    for name, cls in REGISTRY.items():
        for f in dataclasses.fields(cls.Config):
            default = getattr(cls.Config(), f.name)
            if isinstance(default, int) and not isinstance(default, bool):
                with pytest.raises(ConfigError) as e:
                    cls.Config(**{f.name: True})
                assert e.value.field == f.name, (name, f.name)
                checked += 1
    assert checked >= 6


def test_topk_saelens_by_hand():
    """SAELens's TopK: decoder rows at norm 0.1, W_enc = W_decᵀ, zero biases; the code ranks pre-activations scaled by
    the decoder rows' norms and decodes z / ‖W_dec‖; its loss is Σ_d (x̂ − x)² (no AuxK before any latent is dead);
    each model's gradient is clipped to norm 1 on its own."""
    from theory_sim.sae.configs import TopKSAELensConfig
    from theory_sim.sae.topk import TopKSAELens

    sae = make(TopKSAELens, TopKSAELensConfig(width=6, k=2, grad_clip=1.0), E=2, d=4, B=8)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.full((2, 6), 0.1))
    assert torch.equal(sae.W_encT, sae.W_decT) and not sae.b_enc.any() and not sae.b_dec.any()
    with torch.no_grad():
        sae.W_decT.mul_(torch.linspace(1, 6, 6).view(1, 1, 6))  # unequal row norms: the rescaling matters
    x = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(1))
    x_hat, z, pre = sae.forward(x)
    n = sae.W_dec.norm(dim=-1, keepdim=True).transpose(1, 2)  # (E, 1, M)
    ref_z = keep_top(pre * n, torch.full((2, 1, 1), 2), 2)
    assert torch.allclose(z, ref_z) and torch.allclose(x_hat, torch.bmm(ref_z / n, sae.W_dec))
    loss, _ = sae.loss(x)
    assert torch.allclose(loss, (x_hat - x).pow(2).sum(-1).mean(-1))
    x = x * torch.tensor([1.0, 1e3]).view(2, 1, 1)  # model 1's gradient far above the clip, model 0's below
    sae.opt.zero_grad()
    sae.loss(x)[0].sum().backward()
    raw = [torch.sqrt(sum(p.grad[e].pow(2).sum() for p in sae.parameters())) for e in range(2)]
    sae.autograd_step(x)
    # Adam's first moment after one step is (1 − β₁)·g: the gradient it was given, clipped per model
    got = [
        torch.sqrt(sum((sae.opt.state[p]["exp_avg"][e] / 0.1).pow(2).sum() for p in sae.parameters())) for e in (0, 1)
    ]
    assert raw[1] > 1 and got[1] == pytest.approx(1.0, rel=1e-4)
    assert got[0] == pytest.approx(min(1.0, float(raw[0])), rel=1e-4)


@pytest.mark.parametrize("since", [[0.0, 5, 5, 0, 5, 0], [0.0, 5, 0, 0, 0, 0]])
def test_topk_saelens_auxk_by_hand(since):
    """With D dead latents, AuxK reconstructs the detached residual from the top min(d/2, D) dead pre-activations
    (scaled by the decoder norms, no ReLU) through the decoder without its bias, weighted min(D / (d/2), 1)."""
    from theory_sim.sae.configs import TopKSAELensConfig
    from theory_sim.sae.topk import TopKSAELens

    d, M = 4, 6
    sae = make(TopKSAELens, TopKSAELensConfig(width=M, k=1, auxk=1.0, dead_steps=1), E=1, d=d, B=5)
    sae.since_fired = torch.tensor([[since]])  # D = 3 dead (> d/2 = 2: k_aux 2, weight 1) or D = 1 (k_aux 1, ½)
    x = torch.randn(1, 5, d, generator=torch.Generator().manual_seed(2))
    loss, _ = sae.loss(x)
    x_hat, z, pre = sae.forward(x)
    n = sae.W_dec.norm(dim=-1).view(1, 1, M)
    pr = (pre * n)[0]
    dead = torch.tensor(since) > 1
    D = int(dead.sum())
    acts = torch.zeros(5, M)
    for b in range(5):
        vals, idx = pr[b].masked_fill(~dead, -torch.inf).topk(min(2, D))
        acts[b, idx] = vals
    recons = (acts / n[0]) @ sae.W_dec[0]
    aux = (recons - (x[0] - x_hat[0])).pow(2).sum(-1).mean()
    assert torch.allclose(loss[0], (x_hat - x).pow(2).sum(-1).mean() + 1.0 * min(D / 2, 1.0) * aux, atol=1e-6)


def test_matryoshka_loss_is_batchtopk_plus_each_inner_level_by_hand():
    """Width 4 in 2 levels of ratio 2: widths [2, 4]. With BatchTopK's code z on the batch, the loss is BatchTopK's
    ½‖x̂ − x‖² plus ½‖z[:, :2] W_dec[:2] + b_dec − x‖² (batch means), written out here; the inner level's gradient
    reaches only the first two decoder rows; levels 1 is BatchTopK's loss itself."""
    from theory_sim.sae.configs import make_config

    torch.manual_seed(3)
    x = torch.randn(1, 8, 3)
    cfg = make_config("matryoshka", {"width": 4, "k": 2, "levels": 2, "level_ratio": 2.0})
    assert cfg.level_widths() == [2, 4]
    m = get_method("matryoshka")([cfg], 3, [0], "cpu", x)
    b = get_method("batchtopk")([make_config("batchtopk", {"width": 4, "k": 2})], 3, [0], "cpu", x)
    for name in ("W_encT", "W_decT", "b_enc", "b_dec"):
        getattr(b, name).data.copy_(getattr(m, name).data)
    loss_m, info = m.loss(x)
    loss_b, _ = b.loss(x)
    z, Wd, bd = info["z"][0], m.W_dec[0], m.b_dec[0]
    inner = 0.5 * ((z[:, :2] @ Wd[:2] + bd - x[0]) ** 2).sum(1).mean()
    assert torch.allclose(loss_m, loss_b + inner, atol=1e-6)
    assert inner > 1e-3  # the inner level is not trivially zero here
    gm = torch.autograd.grad(loss_m.sum(), m.W_decT)[0]
    gb = torch.autograd.grad(loss_b.sum(), b.W_decT)[0]
    assert torch.allclose(gm[..., 2:], gb[..., 2:], atol=1e-6)  # latents beyond the inner level: full loss only
    assert not torch.allclose(gm[..., :2], gb[..., :2], atol=1e-6)
    one = get_method("matryoshka")([make_config("matryoshka", {"width": 4, "k": 2, "levels": 1})], 3, [0], "cpu", x)
    for name in ("W_encT", "W_decT", "b_enc", "b_dec"):
        getattr(one, name).data.copy_(getattr(m, name).data)
    assert torch.allclose(one.loss(x)[0], loss_b)


def test_matryoshka_levels_that_do_not_rise_are_refused_naming_levels():
    from theory_sim.errors import ConfigError
    from theory_sim.sae.configs import make_config

    assert make_config("matryoshka", {"width": 512}).level_widths() == [32, 128, 512]
    with pytest.raises(ConfigError) as e:
        make_config("matryoshka", {"width": 4, "levels": 3, "level_ratio": 4.0})  # widths [0, 1, 4]
    assert e.value.field == "levels"
