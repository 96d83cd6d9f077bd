"""Do SAEs saved by `theory-sim train --save-sae` load into SAELens with the same codes?

Two steps, two environments (SAELens is never a dependency of theory-sim):

    # 1. in theory-sim's environment: train small SAEs of every saveable method, save them, and keep the
    #    codes and reconstructions theory_sim.load_sae computes on 1000 evaluation rows
    python docs/crosscheck/saelens_load.py make OUT
    # 2. in a scratch environment with SAELens (python -m venv /tmp/slv && /tmp/slv/bin/pip install sae-lens)
    /tmp/slv/bin/python docs/crosscheck/saelens_load.py check OUT
    # 3. SAELens -> theory-sim -> SAELens, in the scratch environment (theory-sim's loader needs only torch and
    #    safetensors): SAELens SAEs of every setting theory_sim.load_sae honours, saved by SAELens, loaded and
    #    computed by theory-sim, written back by theory-sim and loaded by SAELens again
    /tmp/slv/bin/python docs/crosscheck/saelens_load.py roundtrip OUT

Measured (SAELens 6.54.12, CPU): all 14 SAEs (topk, random_decoder → TopKSAE; l1, ba, gba → StandardSAE;
jumprelu, batchtopk → JumpReLUSAE; each with and without input scaling) load into the class named, with
max |Δz| = 0 and max |Δx̂| = 0 against theory-sim's loader, whose codes tests hold equal to the trained model's.
Round trip (step 3, SAELens 6.54.12): all 11 settings (standard, topk, jumprelu; apply_b_dec_to_input false;
normalize_activations constant_norm_rescale, layer_norm, expected_average_only_in; rescale_acts_by_decoder_norm)
max |Δz| = max |Δx̂| = 0 between SAELens and theory_sim.load_sae, and again after theory-sim wrote them back.
"""

import glob
import sys

import numpy as np

METHODS = [
    ("topk", {"k": 2}),
    ("l1", {}),
    ("jumprelu", {}),
    ("ba", {"p": 0.05}),
    ("gba", {}),
    ("batchtopk", {"k": 2}),
    ("random_decoder", {"k": 2}),
]


def make(out: str) -> None:
    import theory_sim
    from theory_sim.model import GeneratorSpec
    from theory_sim.training import GeneratorData

    spec = GeneratorSpec(n=32, d=12, s=2)
    x, _ = GeneratorData([spec], "cpu").eval_batch(1000)
    np.save(f"{out}/X.npy", x[0].numpy())
    for m, kw in METHODS:
        for scale in ("none", "mean_norm"):
            d = f"{out}/sae_{m}_{scale}"
            theory_sim.train(
                m, spec, steps=200, batch=128, width=48, input_scale=scale, save_sae=d, force=True, progress=False, **kw
            )
            x_hat, z = theory_sim.load_sae(d).forward(x[0])
            np.save(f"{d}/z.npy", z.numpy())
            np.save(f"{d}/xhat.npy", x_hat.numpy())


def check(out: str) -> None:
    import sae_lens
    import torch
    from sae_lens import SAE

    X = torch.tensor(np.load(f"{out}/X.npy"))
    worst = 0.0
    for d in sorted(glob.glob(f"{out}/sae_*")):
        sae = SAE.load_from_disk(d, device="cpu")
        z = sae.encode(X).detach().numpy()
        x_hat = sae.decode(sae.encode(X)).detach().numpy()
        dz = float(np.abs(z - np.load(f"{d}/z.npy")).max())
        dx = float(np.abs(x_hat - np.load(f"{d}/xhat.npy")).max())
        worst = max(worst, dz, dx)
        print(f"{d.rsplit('/', 1)[1]:28s} {type(sae).__name__:14s} max|dz| {dz:.2e} max|dx_hat| {dx:.2e}")
    print(f"sae_lens {sae_lens.__version__}: worst difference {worst:.2e}")


SETTINGS = [
    ("standard", {}),
    ("standard", {"apply_b_dec_to_input": False}),
    ("standard", {"normalize_activations": "constant_norm_rescale"}),
    ("standard", {"normalize_activations": "layer_norm"}),
    ("standard", {"normalize_activations": "expected_average_only_in"}),
    ("topk", {"k": 3}),
    ("topk", {"k": 3, "apply_b_dec_to_input": False}),
    ("topk", {"k": 3, "rescale_acts_by_decoder_norm": True}),
    ("topk", {"k": 3, "rescale_acts_by_decoder_norm": True, "normalize_activations": "layer_norm"}),
    ("jumprelu", {}),
    ("jumprelu", {"apply_b_dec_to_input": False, "normalize_activations": "constant_norm_rescale"}),
]


def roundtrip(out: str) -> None:
    import os

    import sae_lens
    import torch
    from sae_lens import SAE, JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    from theory_sim.sae.saved import load_sae

    classes = {
        "standard": (StandardSAE, StandardSAEConfig),
        "topk": (TopKSAE, TopKSAEConfig),
        "jumprelu": (JumpReLUSAE, JumpReLUSAEConfig),
    }
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1000, 12, generator=g) * 2 + 0.3
    worst = 0.0
    for i, (arch, kw) in enumerate(SETTINGS):
        cls, cfg_cls = classes[arch]
        sae = cls(cfg_cls(d_in=12, d_sae=48, **kw))
        with torch.no_grad():  # weights far from SAELens's init: non-unit decoder rows, biases, thresholds
            for name, p in sae.named_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (1.7 if name == "W_dec" else 0.5))
                if name == "threshold":
                    p.abs_()
        first, back = f"{out}/rt{i}_saelens", f"{out}/rt{i}_theorysim"
        sae.save_model(first)
        ours = load_sae(first)
        ours.save(back, replace=True)
        again = SAE.load_from_disk(back, device="cpu")
        z_ref = sae.encode(X).detach()
        x_ref = sae.decode(z_ref).detach()
        x_ours, z_ours = ours.forward(X)
        z_again = again.encode(X).detach()
        x_again = again.decode(z_again).detach()
        d = [
            float((a - b).abs().max())
            for a, b in ((z_ours, z_ref), (x_ours, x_ref), (z_again, z_ref), (x_again, x_ref))
        ]
        worst = max(worst, *d)
        print(
            f"{arch:9s} {str(kw):78s} theory-sim vs SAELens max|dz| {d[0]:.1e} max|dx| {d[1]:.1e}; "
            f"after the round trip max|dz| {d[2]:.1e} max|dx| {d[3]:.1e}"
        )
    print(f"sae_lens {sae_lens.__version__}: worst difference {worst:.2e}")


if __name__ == "__main__":
    {"make": make, "check": check, "roundtrip": roundtrip}[sys.argv[1]](sys.argv[2])
