"""Do SAEs saved by `theory-sim train --save-sae` load into SAELens with the same codes?

Two steps, two environments (SAELens is never a dependency of theory-sim):

    # 1. in theory-sim's environment: train small SAEs of every saveable method, save them, and keep the
    #    codes and reconstructions theory_sim.load_sae computes on 1000 evaluation rows
    python docs/crosscheck/saelens_load.py make OUT
    # 2. in a scratch environment with SAELens (python -m venv /tmp/slv && /tmp/slv/bin/pip install sae-lens)
    /tmp/slv/bin/python docs/crosscheck/saelens_load.py check OUT

Measured (SAELens 6.54.12, CPU): all 14 SAEs (topk, random_decoder → TopKSAE; l1, ba, gba → StandardSAE;
jumprelu, batchtopk → JumpReLUSAE; each with and without input scaling) load into the class named, with
max |Δz| = 0 and max |Δx̂| = 0 against theory-sim's loader, whose codes tests hold equal to the trained model's.
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


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
