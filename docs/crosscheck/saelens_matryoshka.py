"""Is theory-sim's `matryoshka` the loss SAELens's MatryoshkaBatchTopK trains? Same weights, same rows, both losses
and their gradients. Run in a scratch environment with SAELens (never a dependency of theory-sim):

    python3 -m venv /tmp/slv && /tmp/slv/bin/pip install torch==2.13.0 sae-lens scipy pandas matplotlib tqdm
    /tmp/slv/bin/python docs/crosscheck/saelens_matryoshka.py

theory-sim's model is made and given random weights (decoder rows unit norm, as it keeps them), SAELens's
MatryoshkaBatchTopKTrainingSAE (widths 32, 128, 512; apply_b_dec_to_input; no AuxK) gets the same tensors; both see
one batch of 512 rows of theory-sim's generator (n 128, d 42, s 3). SAELens's MSE is Σ_d (x̂ − x)², theory-sim's
½‖x̂ − x‖², so SAELens's loss and gradients should be twice theory-sim's.

Measured (SAELens 6.54.12, torch 2.13.0 CPU): SAELens 18.668503 = 2 × theory-sim 18.668503 (SAELens's parts: outer
MSE 10.155, inner levels 32 and 128: 3.755 and 4.758); gradients of W_enc, W_dec, b_enc, b_dec equal to within
3e-8 … 2.4e-7 of gradients up to 2.3.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))


def main():
    from sae_lens.saes.matryoshka_batchtopk_sae import (
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
    )
    from sae_lens.saes.sae import TrainStepInput

    from theory_sim.model.spec import GeneratorSpec
    from theory_sim.sae import get_method, make_config
    from theory_sim.training import GeneratorData

    torch.manual_seed(0)
    d, M, k = 42, 512, 3
    x = GeneratorData([GeneratorSpec(n=128, d=d, s=3, seed=1)], "cpu").sample(512)  # (1, 512, d)
    cfg = make_config("matryoshka", {"width": M, "k": k, "levels": 3, "level_ratio": 4.0})
    ours = get_method("matryoshka")([cfg], d, [0], "cpu", x)
    with torch.no_grad():  # weights away from the tied init, so every term is exercised
        ours.W_encT.add_(0.3 * torch.randn_like(ours.W_encT))
        ours.b_enc.normal_(0, 0.1)
        ours.b_dec.add_(0.1 * torch.randn_like(ours.b_dec))
    theirs = MatryoshkaBatchTopKTrainingSAE(
        MatryoshkaBatchTopKTrainingSAEConfig(
            d_in=d,
            d_sae=M,
            k=k,
            matryoshka_widths=cfg.level_widths(),
            apply_b_dec_to_input=True,
            rescale_acts_by_decoder_norm=False,
            aux_loss_coefficient=0.0,
        )
    )
    with torch.no_grad():
        theirs.W_enc.copy_(ours.W_encT[0])
        theirs.W_dec.copy_(ours.W_dec[0])
        theirs.b_enc.copy_(ours.b_enc[0, 0])
        theirs.b_dec.copy_(ours.b_dec[0, 0])
    loss_ours, _ = ours.loss(x)
    out = theirs.training_forward_pass(
        TrainStepInput(sae_in=x[0], coefficients={}, dead_neuron_mask=None, n_training_steps=0, is_logging_step=False)
    )
    print(
        "levels", cfg.level_widths(), "SAELens losses:", {k: round(float(v.detach()), 5) for k, v in out.losses.items()}
    )
    print(f"loss: SAELens {float(out.loss.detach()):.6f}, 2 x theory-sim {2 * float(loss_ours.sum().detach()):.6f}")
    g_ours = torch.autograd.grad(loss_ours.sum(), [ours.W_encT, ours.W_decT, ours.b_enc, ours.b_dec])
    g_theirs = torch.autograd.grad(out.loss, [theirs.W_enc, theirs.W_dec, theirs.b_enc, theirs.b_dec])
    pairs = [
        ("W_enc", g_theirs[0], 2 * g_ours[0][0]),
        ("W_dec", g_theirs[1], 2 * g_ours[1][0].T),
        ("b_enc", g_theirs[2], 2 * g_ours[2][0, 0]),
        ("b_dec", g_theirs[3], 2 * g_ours[3][0, 0]),
    ]
    for name, a, b in pairs:
        print(
            f"d loss / d {name}: max |SAELens − 2 x theory-sim| {float((a - b).abs().max()):.2e} "
            f"(max |g| {float(a.abs().max()):.2e})"
        )


if __name__ == "__main__":
    main()
