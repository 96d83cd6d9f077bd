"""Losses and update rules on tiny hand-checkable cases; the ensemble axis; bad hyperparameters."""
import math

import pytest
import torch
from hypothesis import given, strategies as st

from theory_sim.errors import ConfigError
from theory_sim.sae import get_method, make_config
from theory_sim.sae.base import reconstruction_loss
from theory_sim.sae.ba import BA, GBA, BAConfig, GBAConfig
from theory_sim.sae.mba import MBA, MBAConfig, smooth_relu
from theory_sim.sae.untied import L1, BatchTopK, JumpReLU, L1Config, TopK, TopKConfig, JumpReLUConfig, keep_top, RandomDecoder


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
    sae.buf_rows = 20
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
    sae.buf_rows, sae.buf_count = 10, torch.tensor([[[0.0, 5.0]]])
    sae.buf_max = torch.tensor([[[-0.2, 1.0]]])
    sae.adapt()
    assert sae.b[0, 0, 0].item() == 0.0  # min(−0.01 + 0.5·1.0, 0)


def test_gba_group_means_are_per_group():
    cfg = GBAConfig(width=4, groups=2, htf=0.5, ltf=0.05, gamma_plus=0.1)
    sae = make(GBA, cfg)
    assert torch.allclose(sae.target.flatten(), torch.tensor([0.5, 0.5, 0.05, 0.05]))
    sae.b = torch.full((1, 1, 4), -0.5)
    sae.buf_rows = 10
    sae.buf_count = torch.tensor([[[0.0, 3.0, 0.0, 0.2]]])  # 0 and 2 dead; 1 in band; 3 in band (0.02)
    sae.buf_max = torch.tensor([[[-1.0, 0.4, -1.0, 0.8]]])
    sae.adapt()
    assert sae.b[0, 0, 0].item() == pytest.approx(-0.5 + 0.1 * 0.4)  # group 0's positive r: 0.4
    assert sae.b[0, 0, 2].item() == pytest.approx(-0.5 + 0.1 * 0.8)  # group 1's: 0.8
    assert sae.b[0, 0, 1].item() == -0.5 and sae.b[0, 0, 3].item() == -0.5


def test_gba_targets_are_geometric():
    t = GBAConfig(width=6, groups=3, htf=0.1, ltf=0.001).targets()
    assert t == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


@given(st.lists(st.floats(0, 1), min_size=6, max_size=6), st.lists(st.floats(-3, 3), min_size=6, max_size=6),
       st.lists(st.floats(-1, 0), min_size=6, max_size=6), st.floats(0, 2), st.floats(0, 2))
def test_biases_stay_in_range(freqs, peaks, biases, gm, gp):
    sae = make(GBA, GBAConfig(width=6, groups=2, htf=0.3, ltf=0.01, gamma_minus=gm, gamma_plus=gp))
    sae.b = torch.tensor(biases).view(1, 1, 6)
    sae.buf_rows = 100
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
    assert torch.allclose(phi, torch.tensor([0.0, 0.0, 0.025 ** 2 / 0.1, 0.025, 0.975]))
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


@pytest.mark.parametrize("name", ["ba", "gba", "mba", "l1", "topk", "batchtopk", "jumprelu", "random_decoder"])
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


@pytest.mark.parametrize("method,params,field", [
    ("ba", {"p": 0.0}, "p"), ("ba", {"p": 1.0}, "p"), ("gba", {"htf": 0.01, "ltf": 0.1}, "htf"),
    ("gba", {"groups": 0}, "groups"), ("topk", {"k": 0}, "k"), ("topk", {"width": 8, "k": 9}, "k"),
    ("ba", {"width": 0}, "width"), ("l1", {"l1": -1}, "l1"), ("ba", {"k": 3}, "k"),
    ("ba", {"activation": "gelu"}, "activation"), ("ba", {"p": float("nan")}, "p"), ("nope", {}, "method"),
])
def test_bad_hyperparameters(method, params, field):
    with pytest.raises(ConfigError) as e:
        make_config(method, params)
    assert e.value.field == field


def test_no_hyperparameter_shadows_a_result_column():
    """load_results puts hyperparameters and metrics side by side: their names must differ."""
    import dataclasses
    from theory_sim.sae import REGISTRY
    metric_names = {"l0", "dead_fraction", "explained_variance", "fvu", "mse", "shrinkage", "mmcs", "mcc",
                    "uniqueness", "seconds", "steps", "status", "error", "freq_log_error"}
    for cls in REGISTRY.values():
        assert not {f.name for f in dataclasses.fields(cls.Config)} & metric_names, cls.name


@pytest.mark.parametrize("activation", ["relu", "jumprelu"])
@pytest.mark.parametrize("train_scale", [True, False])
@pytest.mark.parametrize("cls,cfg_cls", [(BA, BAConfig), (GBA, GBAConfig)])
def test_ba_handwritten_step_matches_autograd(cls, cfg_cls, activation, train_scale):
    """BA's train_step writes its gradients out by hand; autograd through ``loss`` (the base class's
    step) is the reference: same weights, scales, biases and buffers after steps that cross adaptations."""
    from theory_sim.sae.base import Method
    extra = {"groups": 3, "htf": 0.3, "ltf": 0.02} if cls is GBA else {"p": 0.1}
    cfg = cfg_cls(width=12, activation=activation, train_scale=train_scale, adapt_every=4, **extra)
    xs = torch.randn(9, 3, 16, 5, generator=torch.Generator().manual_seed(1))
    fused, ref = make(cls, cfg, E=3, d=5, B=16), make(cls, cfg, E=3, d=5, B=16)
    for t in range(9):
        lf = fused.train_step(xs[t])
        lr = Method.train_step(ref, xs[t])
        assert torch.allclose(lf, lr, atol=1e-6)
    assert ref.b.ne(0).any()  # adaptation ran and moved biases
    for name in ("W", "a", "b", "buf_count", "buf_max"):
        assert torch.allclose(getattr(fused, name), getattr(ref, name), atol=1e-5), name


@pytest.mark.parametrize("cls,cfgs", [
    (L1, [L1Config(width=12, l1=v) for v in (0.0, 0.05, 0.3)]),
    (TopK, [TopKConfig(width=12, k=v) for v in (1, 3, 5)]),
])
def test_untied_handwritten_step_matches_autograd(cls, cfgs):
    """L1 and TopK (without AuxK) train through hand-written gradients; autograd through ``loss`` is the
    reference (per-model λ and k differ inside the ensemble)."""
    from theory_sim.sae.base import Method
    xs = torch.randn(8, 3, 16, 5, generator=torch.Generator().manual_seed(2))
    x0 = xs[0]
    fused, ref = cls(cfgs, 5, [0, 1, 2], "cpu", x0), cls(cfgs, 5, [0, 1, 2], "cpu", x0)
    assert fused.hand_written()
    for t in range(8):
        assert torch.allclose(fused.train_step(xs[t]), Method.train_step(ref, xs[t]), atol=1e-6)
    for name in ("W_enc", "b_enc", "b_dec", "W_dec"):
        assert torch.allclose(getattr(fused, name), getattr(ref, name), atol=1e-5), name


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


@pytest.mark.parametrize("cls,cfg,names", [(BA, BAConfig(width=6), ("W",)), (L1, L1Config(width=6), ("W_enc", "W_dec"))])
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
