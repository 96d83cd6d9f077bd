"""One TopK cell side by side with SAELens's synthetic trainer, in one run: steps per second and recovery.

Run in a scratch environment with SAELens and theory-sim's dependencies (SAELens is never a dependency):

    python3 -m venv /tmp/slv && /tmp/slv/bin/pip install torch==2.13.0 sae-lens scipy pandas matplotlib tqdm
    /tmp/slv/bin/python docs/crosscheck/saelens_speed.py [--steps 2000] [--threads 2] [--calls 3]

The cell (the design's single-cell target): n 256 features in d 64, 4 active per row on average, width 512, k 4,
batch 512, 2,000 steps, each trainer drawing its own rows on the fly from its own generator in its own law —
theory-sim's default (exactly s = 4 per row, the theorem's model), SAELens's ActivationGenerator (each feature
independently with probability 4/256) over a FeatureDictionary — each at the learning rate at which the
cross-check found it best (theory-sim 1e-3, SAELens 3e-3). Each trainer first makes one untimed warm-up call
(a tenth of the steps: the first call of a process pays lazy imports and the allocator's first pages, 1.1 s for
theory-sim here), then each is timed as a whole call (set-up, data, training, theory-sim's evaluation included),
alternately, ``--calls`` times (default 3, seeds 0, 1, ...); steps/s is the best of those calls (this machine's
timings move by up to 40 % between calls minutes apart), recovery FRR@0.9 against each trainer's own dictionary
(mean over the seeds).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))


def ours(steps, seed, lr=1e-3):
    import theory_sim
    from theory_sim.model.spec import GeneratorSpec

    spec = GeneratorSpec(n=256, d=64, s=4)  # its own generator's law: exactly s per row (the theorem's)
    t0 = time.perf_counter()
    r = theory_sim.train("topk", spec, seeds=(seed,), steps=steps, batch=512, width=512, k=4, lr=lr, progress=False)
    return time.perf_counter() - t0, r[0]["frr_0.9"]


def theirs(steps, seed, lr=3e-3):
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary
    from sae_lens.synthetic.training import train_toy_sae

    from theory_sim.metrics import best_cosines, frr

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    fd = FeatureDictionary(num_features=256, hidden_dim=64)
    gen = ActivationGenerator(256, 4 / 256)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=64, d_sae=512, k=4))
    train_toy_sae(sae, fd, gen, training_samples=steps * 512, batch_size=512, lr=lr, device="cpu")
    el = time.perf_counter() - t0
    V = fd.feature_vectors.detach()
    return el, frr(best_cosines(V, sae.W_dec.detach())[0], 0.9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["THEORY_SIM_THREADS"] = str(args.threads)
    rows = {"theory-sim": [], "SAELens": []}
    ours(max(1, args.steps // 10), 99)  # warm-up calls, untimed
    theirs(max(1, args.steps // 10), 99)
    for seed in range(args.calls):
        rows["theory-sim"].append(ours(args.steps, seed))
        rows["SAELens"].append(theirs(args.steps, seed))
    rate = {}
    for name, rs in rows.items():
        rate[name] = args.steps / min(t for t, _ in rs)
        print(
            f"{name:10s} {rate[name]:7.1f} steps/s (best of {len(rs)} calls; {', '.join(f'{t:.1f}' for t, _ in rs)} s) "
            f"FRR@0.9 {np.mean([f for _, f in rs]):.3f} ({', '.join(f'{f:.3f}' for _, f in rs)})"
        )
    print(f"theory-sim / SAELens: {rate['theory-sim'] / rate['SAELens']:.2f}x (torch {torch.__version__})")


if __name__ == "__main__":
    main()
