"""A hostile user's afternoon with theory-sim, counted: python docs/attack/attack.py [--json]

Runs bad command lines, bad sweep files, bad data arrays and damaged results stores, each in a fresh temp
folder with a time limit, and classifies what happened:
  ok-refused   one line on stderr, exit 2 (or 1 for a runtime fault), no traceback, nothing written
  repaired     the fault was detected and repaired, exit 0 (damaged-store cases that can be)
  traceback    a Python traceback reached the user
  hang         still running at the time limit
  written      refused, but files were written first
  silent       exit 0 on input that should have been refused
  lost         a store was destroyed, mixed two designs, or an output was left half-written
Prints the counts per class (and the cases that are not ok-refused / repaired / accepted); ``--edges`` runs only
round three's cases.
  accepted     exit 0 on input that is valid after all (a byte-order mark, an edit that is the same design)

Round three (issue 32: edges) adds ``edge_cases``: --force onto data, stores and user files, two reports on one
--out, SAELens folders with fields that change the computation and damaged ones, inputs that do nothing or
degenerate, links and overlong paths, a full disk while saving, the input scale's rows, the umask.

Round two (the store issue) adds: outputs through links into a store, two designs on one folder, racing
writers, 1 vs 1.0 on an axis, every damaged field, full disks and closed pipes, hostile file sizes and depths,
sizes that fit one by one but not together, guards bypassed through budgets, kills during export / save.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TIMEOUT = 90
GOOD = """name = "h"
[data]
n = 16
s = 2
[grid]
d = [8]
[[methods]]
name = "topk"
label = "TopK"
width = 16
k = 2
[train]
steps = 20
batch = 32
eval_samples = 256
seeds = [0]
"""


def run(args, cwd):
    try:
        r = subprocess.run(
            [sys.executable, "-m", "theory_sim.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return None
    return r


def snapshot(folder: Path) -> set:
    """Files and folders under ``folder``, leaving out SQLite's own -wal / -shm files beside an existing
    database (any reader of a WAL database may create them; they hold no results)."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm"))}


def classify(r, before, after, expect_refusal=True, repairable=False):
    if r is None:
        return "hang"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if "Traceback" in r.stderr:
        return "traceback"
    if r.returncode == 0:
        return "repaired" if repairable else ("silent" if expect_refusal else "ok-refused")
    if after - before:
        return "written"
    if r.returncode in (1, 2) and len(lines) == 1:
        return "ok-refused"
    return "traceback"  # several lines or another exit code: not the one-line contract


def cli_cases():
    base = ["train", "--steps", "5", "--n", "16", "--d", "8", "--s", "2", "--width", "16", "--no-progress"]
    bad_numbers = ["0", "-1", "nan", "inf", "1e12", "abc", "", "1.5"]
    cases = []
    for opt in ("--n", "--d", "--s", "--width", "--steps", "--batch", "--seeds", "--eval-samples"):
        for v in bad_numbers:
            if opt == "--s" and v == "1.5":
                continue  # a valid expected L0 for bernoulli supports; refused for exact ones below anyway
            args = [a for a in base]
            if opt in args:
                i = args.index(opt)
                args[i + 1] = v
            else:
                args += [opt, v]
            cases.append((f"train {opt} {v!r}", args))
    for opt, vals in {
        "--p-over-f": ["0", "-1", "1e9", "nan"],
        "--k": ["0", "1e9", "x"],
        "--method": ["nope", ""],
        "--device": ["tpu", "cuda:99"],
        "--features": ["nope"],
        "--support": ["x"],
        "--noise-std": ["-1", "nan"],
        "--snr": ["0", "-3"],
        "--threads": ["0", "-2", "1e9"],
    }.items():
        for v in vals:
            cases.append((f"train {opt} {v!r}", base + [opt, v]))
    cases += [
        ("sample --samples 1e14", ["sample", "--samples", "100000000000000"]),
        ("sample --n 1e12", ["sample", "--n", "1000000000000"]),
        ("sample --save onto a file", ["sample", "--samples", "10", "--save", "spec.txt"]),
        ("sample --save under /proc", ["sample", "--samples", "10", "--save", "/proc/xx"]),
        ("sample --spec missing", ["sample", "--spec", "nope.json"]),
        ("plot no store", ["plot", "nowhere"]),
        ("status no store", ["status", "nowhere"]),
        ("boundary no store", ["boundary", "nowhere"]),
        ("export no target", ["export", "nowhere"]),
        ("bench --sizes 0", ["bench", "--sizes", "0", "--no-grid"]),
        ("bench --methods nope", ["bench", "--methods", "nope", "--no-grid"]),
        ("reproduce --only nope", ["reproduce", "--out", "o", "--only", "nope"]),
        ("sweep /dev/zero", ["sweep", "/dev/zero", "--out", "o"]),
        ("sample --spec /dev/zero", ["sample", "--spec", "/dev/zero"]),
        ("sample --spec nested JSON", ["sample", "--spec", "deep.json"]),
        (
            "train width x batch too big",
            ["train", "--width", "1048576", "--batch", "65536", "--n", "1024", "--d", "1024"],
        ),
        ("train --threads 100000", base + ["--threads", "100000"]),
        ("train --data seed overflow", ["train", "--data", "ok.npy", "--seed", "9223372036854775807", "--seeds", "2"]),
        ("train zero ground truth", ["train", "--data", "ok.npy", "--ground-truth", "zero.npy", "--steps", "2"]),
        ("export --csv /dev/full", ["export", "S", "--csv", "/dev/full"]),
        ("export --csv a symlink to the store", ["export", "S", "--csv", "link.csv"]),
        ("export --csv a hard link to the store", ["export", "S", "--csv", "hard.csv"]),
        ("export --csv a hard link to an array", ["export", "S", "--csv", "hard_array.csv"]),
        ("export --csv the -wal file", ["export", "S", "--csv", "S/results.sqlite-wal"]),
        ("plot --fig-dir under /proc", ["plot", "S", "--x", "d", "--fig-dir", "/proc/theory-sim-x"]),
    ]
    return cases


def data_cases(tmp: Path):
    arrays = {
        "complex": np.ones((4, 3), dtype=complex),
        "strings": np.array([["a", "b"]]),
        "1-D": np.ones(5),
        "empty": np.ones((0, 3)),
        "structured": np.zeros(3, dtype=[("a", "f4")]),
        "object": np.array([None, 1]),
    }
    out = []
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", a, allow_pickle=True)
        out.append((f"train --data {name}", ["train", "--data", f"{name}.npy", "--steps", "2"], f"{name}.npy"))
    out.append(("train --data an .npz", ["train", "--data", "x.npz", "--steps", "2"], "x.npz"))
    out.append(("train --data /dev/null", ["train", "--data", "/dev/null", "--steps", "2"], None))
    out.append(("train --data plus --n", ["train", "--data", "ok.npy", "--n", "10", "--steps", "2"], "ok.npy"))
    return out


def sweep_cases():
    s = GOOD
    return [
        ("name escapes", s.replace('name = "h"', 'name = "../x"')),
        ("name absolute", s.replace('name = "h"', 'name = "/tmp/x"')),
        ("grid not a table", s.replace("[grid]\nd = [8]", "").replace('name = "h"', 'name = "h"\ngrid = 3')),
        ("range of floats", s.replace("d = [8]", "d = {range = [8.5, 12, 1.5]}")),
        ("huge grid", s.replace("d = [8]", "d = {range = [1, 1000000000, 1]}")),
        ("duplicate label", s + '[[methods]]\nname = "topk"\nlabel = "TopK"\nwidth = 16\nk = 3\n'),
        ("seed >= 2^63", s.replace("seeds = [0]", "seeds = [9223372036854775808]")),
        ("unknown budget key", s + "[budgets.quick]\nbogus = 1\n"),
        ("plot x == y", s + '[plot]\nx = "d"\ny = "d"\n'),
        ("refine axis not an axis", s + '[refine]\naxis = "p_over_f"\n'),
        ("refine level outside", s.replace("k = 2", "k = [1, 2]") + '[refine]\naxis = "k"\nlevel = 2\n'),
        ("refine tolerance 1", s.replace("k = 2", "k = [1, 2]") + '[refine]\naxis = "k"\ntolerance = 1\n'),
        ("refine rounds 0", s.replace("k = 2", "k = [1, 2]") + '[refine]\naxis = "k"\nmax_rounds = 0\n'),
        ("not TOML", "name = \n"),
        ("methods = [3]", s.replace("[[methods]]", "[[other]]").replace('name = "h"', 'name = "h"\nmethods = [3]')),
        ("negative width", s.replace("width = 16", "width = -16")),
        ("k_over_f on topk", s.replace("k = 2", "k_over_f = 2.0")),
        ("role not an identifier", s.replace('label = "TopK"', 'label = "TopK"\nrole = "Bad Role"')),
        ("1 and 1.0 on one axis", s.replace("d = [8]", "d = [8]\nsnr = [0.1, 1, 1.0]")),
        ("-0.0 and 0.0 on one axis", s.replace("d = [8]", "d = [8]\nshared = [0.0, -0.0]")),
        (
            "budget merges two labels",
            s + '[[methods]]\nname = "l1"\nlabel = "L1"\n[budgets.tiny]\nall_methods = {label = "same"}\n',
        ),
        ("budget empty label", s + '[budgets.tiny]\nall_methods = {label = ""}\n'),
        ("plot tuned unknown", s + '[plot]\ntuned = ["nonexistent"]\n'),
        ("plot metric unknown", s + '[plot]\nmetric = "nonexistent"\n'),
        ("TOML nested 50,000 deep", "a = " + "[" * 50000 + "]" * 50000 + "\n"),
        ("a 2 MiB sweep file", "# x\n" * 600000),
    ]


def _damage_npz(o: Path):
    p = sorted((o / "arrays").glob("*.npz"))[0]
    p.write_bytes(p.read_bytes()[:40])


def _replace_db(o: Path, kind: str):
    for p in o.glob("results.sqlite*"):
        p.unlink()
    if kind == "folder":
        (o / "results.sqlite").mkdir()
    else:
        (o / "results.sqlite").write_text("not a database\n" * 20)


def store_cases():
    """(name, SQL that damages a finished store, whether a rerun of the sweep can repair it, the read commands
    that may still answer (exit 0 is right for them: the damage does not touch what they read))."""
    return [
        ("schema row deleted", "DELETE FROM meta WHERE key = 'schema_version'", False, ()),
        ("metrics JSON garbled", "UPDATE cells SET metrics = '{oops'", True, ()),
        (
            "stored TOML garbled",
            "UPDATE meta SET value = 'name = ' WHERE key = 'sweep_source'",
            True,
            ("status", "export"),
        ),
        (
            "results dropped (pending again)",
            "UPDATE cells SET status = 'pending', metrics = NULL",
            True,
            ("status", "export"),
        ),
        ("config garbled", "UPDATE cells SET config = '{oops'", True, ()),
        ("metrics = '[]'", "UPDATE cells SET metrics = '[]'", True, ()),
        ("metrics = 'null'", "UPDATE cells SET metrics = 'null'", True, ()),
        ("provenance garbled", "UPDATE cells SET provenance = 'x'", True, ()),
        ("schema_version = 'abc'", "UPDATE meta SET value = 'abc' WHERE key = 'schema_version'", True, ()),
        ("a truncated .npz", _damage_npz, True, ("status", "export")),
        ("database replaced by a folder", lambda o: _replace_db(o, "folder"), False, ()),
        ("database replaced by a text file", lambda o: _replace_db(o, "text"), False, ()),
    ]


def _sweep(d: Path, *extra, file="s.toml", out="o"):
    return run(["sweep", file, "--out", out, "--no-progress", *extra], d)


def scenario_cases(root: Path):
    """Cases that need more than one command: yields (name, class)."""
    slow = GOOD.replace("steps = 20", "steps = 4000").replace("d = [8]", "d = [8, 10, 12, 14]")

    # two designs of one file on one folder (another budget), in sequence: the second is refused
    d = Path(tempfile.mkdtemp(dir=root))
    (d / "s.toml").write_text(GOOD + "[budgets.tiny]\ntrain = {steps = 5}\n")
    _sweep(d)
    before = snapshot(d)
    r = _sweep(d, "--budget", "tiny")
    yield "two budgets on one folder", classify(r, before, snapshot(d))

    # a second writer while a sweep runs: refused in one line (exit 1) naming the holder
    d = Path(tempfile.mkdtemp(dir=root))
    (d / "s.toml").write_text(slow)
    first = subprocess.Popen(
        [sys.executable, "-m", "theory_sim.cli", "sweep", "s.toml", "--out", "o", "--no-progress"],
        cwd=d,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if (d / "o" / "writer.lock").exists():
            break
        time.sleep(0.05)
    results = {
        c: run(args, d)
        for c, args in (
            ("sweep", ["sweep", "s.toml", "--out", "o", "--no-progress"]),
            ("plot", ["plot", "o", "--x", "d"]),
            ("export", ["export", "o", "--csv", "x.csv"]),
        )
    }
    status = run(["status", "o"], d)
    first.wait(timeout=TIMEOUT)
    for c, r in results.items():
        ok = r is not None and r.returncode == 1 and "being written by pid" in r.stderr
        yield f"a second {c} while a sweep runs", "ok-refused" if ok else classify(r, set(), set())
    yield "status while a sweep runs", "accepted" if status is not None and status.returncode == 0 else "traceback"

    # two files with one sweep name racing into one fresh folder: one runs, the other is refused
    d = Path(tempfile.mkdtemp(dir=root))
    (d / "a").mkdir()
    (d / "b").mkdir()
    (d / "a" / "s.toml").write_text(slow.replace("steps = 4000", "steps = 400"))
    (d / "b" / "s.toml").write_text(slow.replace("steps = 4000", "steps = 300"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "theory_sim.cli", "sweep", f"{x}/s.toml", "--out", "o", "--no-progress"],
            cwd=d,
            stderr=subprocess.PIPE,
            text=True,
        )
        for x in ("a", "b")
    ]
    codes = sorted(p.wait(timeout=TIMEOUT) for p in procs)
    con = sqlite3.connect(d / "o" / "results.sqlite")
    designs = {s for (s,) in con.execute("SELECT DISTINCT config FROM cells WHERE current = 1")}
    steps = {json.loads(c)["train"]["steps"] for c in designs}
    con.close()
    yield (
        "two files of one name racing",
        "ok-refused" if codes[0] == 0 and codes[1] in (1, 2) and len(steps) == 1 else "lost",
    )

    # a byte-order mark and a comment edit: accepted
    d = Path(tempfile.mkdtemp(dir=root))
    (d / "s.toml").write_bytes("\ufeff".encode() + GOOD.encode())
    r = _sweep(d)
    yield "a UTF-8 byte-order mark", "accepted" if r is not None and r.returncode == 0 else classify(r, set(), set())
    (d / "s.toml").write_text("# edited\n" + GOOD)
    r = _sweep(d)
    yield (
        "a comment edit (same design)",
        "accepted" if r is not None and r.returncode == 0 else classify(r, set(), set()),
    )

    # stdout on a full disk
    for name, args in (
        ("status > /dev/full", ["status", "o"]),
        ("boundary --json > /dev/full", ["boundary", "o", "--json", "--axis", "d"]),
    ):
        with open("/dev/full", "w") as full:
            r = subprocess.run(
                [sys.executable, "-m", "theory_sim.cli", *args], cwd=d, stdout=full, stderr=subprocess.PIPE, text=True
            )
        yield name, classify(r, set(), set())

    # SIGKILL during export and during sample --save: nothing partial, and the rerun works
    d = Path(tempfile.mkdtemp(dir=root))
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "theory_sim.cli",
            "sample",
            "--n",
            "64",
            "--d",
            "16",
            "--samples",
            "3000000",
            "--save",
            "big",
        ],
        cwd=d,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(4)
    p.send_signal(signal.SIGKILL)
    p.wait()
    left = [x.name for x in d.iterdir()]
    r = run(["sample", "--n", "16", "--d", "8", "--samples", "100", "--save", "big"], d)
    ok = "big" not in left and r is not None and r.returncode == 0 and (d / "big" / "spec.json").exists()
    yield "SIGKILL during sample --save, then rerun", "repaired" if ok else "lost"
    (d / "s.toml").write_text(GOOD)
    _sweep(d)
    p = subprocess.Popen(
        [sys.executable, "-m", "theory_sim.cli", "export", "o", "--csv", "x.csv"], cwd=d, stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    partial = (d / "x.csv").exists() and len((d / "x.csv").read_text().splitlines()) != 2
    yield "SIGKILL during export", "lost" if partial else "repaired"


TRAIN = ["train", "--method", "topk", "--k", "2", "--width", "16", "--steps", "5", "--no-progress"]
GEN = ["--n", "16", "--d", "8", "--s", "2"]


def _intact(folder: Path, before: dict) -> bool:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def _contents(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _api(fn) -> str:
    """An in-process case: ok-refused when ``fn`` raises the project's one-line ConfigError, accepted when it returns
    True (the input was honoured exactly), silent when it returns False, traceback on any other exception."""
    from theory_sim.errors import ConfigError

    try:
        return "accepted" if fn() else "silent"
    except ConfigError as e:
        return "ok-refused" if "\n" not in str(e) else "traceback"
    except Exception:  # noqa: BLE001 — the class being counted
        return "traceback"


def edge_cases(root: Path):
    """Issue 32's cases, each yielding (name, class)."""
    import json as _json

    import torch
    from safetensors.torch import save_file

    d = Path(tempfile.mkdtemp(dir=root))
    run(["sample", *GEN, "--samples", "2000", "--save", "smp"], d)
    # lost data: --force onto what the command reads, a results store, a user's folder
    for name, target, extra in (
        ("--force onto the --data folder", "smp", ["--data", "smp"]),
        ("--force onto a results store", "o", GEN),
        ("--force onto a folder of the user's files", "mine", GEN),
    ):
        if target == "o":
            (d / "s.toml").write_text(GOOD)
            _sweep(d)
        if target == "mine":
            (d / "mine").mkdir(exist_ok=True)
            (d / "mine" / "notes.txt").write_text("mine")
        before = _contents(d / target)
        r = run([*TRAIN, *extra, "--save-sae", target, "--force"], d)
        yield name, ("lost" if not _intact(d / target, before) else classify(r, set(), set()))
    # two reports on one --out at once: the second is refused while the first holds the folder
    e = Path(tempfile.mkdtemp(dir=root))
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "theory_sim.cli",
            "reproduce",
            "--budget",
            "tiny",
            "--only",
            "phase,noise",
            "--out",
            "rep",
            "--no-progress",
        ],
        cwd=e,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if (e / "rep" / "writer.lock").exists():
            break
        time.sleep(0.05)
    r = run(["reproduce", "--budget", "tiny", "--only", "theorem", "--out", "rep", "--no-progress"], e)
    first.wait(timeout=TIMEOUT * 4)
    ok = r is not None and r.returncode == 1 and "being written" in r.stderr
    report = (e / "rep" / "figures" / "REPORT.md").read_text() if (e / "rep" / "figures" / "REPORT.md").exists() else ""
    yield "two reproduce on one --out at once", "ok-refused" if ok and "## phase" in report else "lost"

    # SAELens folders: fields that change the computation honoured (by hand, as SAELens computes) or refused
    from theory_sim import load_sae

    g = torch.Generator().manual_seed(0)
    t = {
        "W_enc": torch.randn(8, 20, generator=g),
        "b_enc": torch.randn(20, generator=g) * 0.1,
        "W_dec": torch.randn(20, 8, generator=g) * 1.7,
        "b_dec": torch.randn(8, generator=g),
        "threshold": torch.rand(20, generator=g) * 0.3,
    }
    X = torch.randn(64, 8, generator=g) + 0.5

    def folder(cfg, tensors=None, name="sae"):
        f = Path(tempfile.mkdtemp(dir=root)) / name
        f.mkdir()
        (f / "cfg.json").write_text(_json.dumps(cfg))
        save_file(tensors or t, str(f / "sae_weights.safetensors"))
        return f

    base = {"architecture": "topk", "d_in": 8, "d_sae": 20, "k": 3, "dtype": "float32"}

    def exact_no_b_dec():
        z = load_sae(folder({**base, "apply_b_dec_to_input": False})).encode(X)
        pre = X @ t["W_enc"] + t["b_enc"]
        v, i = pre.topk(3, dim=-1)
        return torch.allclose(z, torch.zeros_like(pre).scatter(-1, i, v.relu()), atol=1e-5)

    def exact_rescale():
        x_hat, z = load_sae(folder({**base, "rescale_acts_by_decoder_norm": True})).forward(X)
        n = t["W_dec"].norm(dim=-1)
        pre = ((X - t["b_dec"]) @ t["W_enc"] + t["b_enc"]) * n
        v, i = pre.topk(3, dim=-1)
        zz = torch.zeros_like(pre).scatter(-1, i, v.relu())
        return torch.allclose(z, zz, atol=1e-5) and torch.allclose(x_hat, (zz / n) @ t["W_dec"] + t["b_dec"], atol=1e-5)

    yield "load_sae apply_b_dec_to_input = false", _api(exact_no_b_dec)
    yield "load_sae rescale_acts_by_decoder_norm = true", _api(exact_rescale)
    damaged = {
        "normalize_activations covariance_whitening": ({**base, "normalize_activations": "covariance_whitening"}, t),
        "normalize_activations garbage": ({**base, "normalize_activations": "x"}, t),
        "d_in 'eight'": ({**base, "d_in": "eight"}, t),
        "d_in 9 vs the weights": ({**base, "d_in": 9}, t),
        "d_in missing": ({k: v for k, v in base.items() if k != "d_in"}, t),
        "d_sae -16": ({**base, "d_sae": -16}, t),
        "d_sae 0": ({**base, "d_sae": 0}, t),
        "d_sae 1e15": ({**base, "d_sae": 10**15}, t),
        "dtype float128": ({**base, "dtype": "float128"}, t),
        "NaN weights": (base, {**t, "W_enc": torch.full((8, 20), float("nan"))}),
        "inf weights": (base, {**t, "b_dec": torch.full((8,), float("inf"))}),
        "int32 weights": (base, {**t, "W_dec": t["W_dec"].to(torch.int32)}),
        "transposed W_enc": (base, {**t, "W_enc": t["W_enc"].T.contiguous()}),
        "k 0": ({**base, "k": 0}, t),
        "k -1": ({**base, "k": -1}, t),
        "k true": ({**base, "k": True}, t),
        "k 1e9": ({**base, "k": 10**9}, t),
        "k > d_sae": ({**base, "k": 21}, t),
        "jumprelu threshold of the wrong length": (
            {**base, "architecture": "jumprelu"},
            {**t, "threshold": torch.zeros(3)},
        ),
    }
    for name, (cfg, tensors) in damaged.items():
        yield f"load_sae {name}", _api(lambda cfg=cfg, tensors=tensors: load_sae(folder(cfg, tensors)) and False)
    yield (
        "load_sae float64 tensors",
        _api(
            lambda: torch.allclose(
                load_sae(folder({**base, "dtype": "float64"}, {k: v.double() for k, v in t.items()})).encode(X),
                load_sae(folder(base)).encode(X),
                atol=1e-5,
            )
        ),
    )
    for name, data in (("empty", b""), ("truncated", None), ("lying header", None)):
        f = folder(base)
        w = f / "sae_weights.safetensors"
        raw = w.read_bytes()
        w.write_bytes(
            data
            if data is not None
            else (raw[: len(raw) // 2] if name == "truncated" else (10**9).to_bytes(8, "little") + raw[8:])
        )
        yield f"load_sae {name} safetensors", _api(lambda f=f: load_sae(f) and False)

    # inputs checked as a whole
    X8 = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    np.save(d / "x.npy", X8)
    np.save(d / "zero.npy", np.zeros((200, 8), np.float32))
    H = np.abs(np.random.default_rng(1).normal(size=(200, 4))).astype(np.float32)
    H[3, 1] = np.nan
    np.save(d / "hnan.npy", H)
    np.save(d / "v.npy", np.eye(4, 8, dtype=np.float32))
    run(["sample", *GEN, "--seed", "7", "--samples", "2000", "--save", "other"], d)
    run(["sample", *GEN, "--samples", "2000", "--save", "mixed"], d)
    (d / "mixed" / "V.npy").write_bytes((d / "other" / "V.npy").read_bytes())
    run(["sample", *GEN, "--samples", "2000", "--save", "garbled"], d)
    (d / "garbled" / "spec.json").write_text("{garbage")
    for name, args in (
        ("--activations with NaN", [*TRAIN, "--data", "x.npy", "--ground-truth", "v.npy", "--activations", "hnan.npy"]),
        ("--eval-activations without --eval-data", [*TRAIN, "--data", "x.npy", "--eval-activations", "hnan.npy"]),
        ("a sample folder with another world's V", [*TRAIN, "--data", "mixed"]),
        ("a sample folder with a garbage spec.json", [*TRAIN, "--data", "garbled"]),
        ("all-zero --data", [*TRAIN, "--data", "zero.npy"]),
        ("sample --mag-spread 50", ["sample", *GEN, "--magnitude", "per_feature", "--mag-spread", "50", "--json"]),
        ("sample --dictionary-bias 1e30", ["sample", *GEN, "--dictionary-bias", "1e30", "--json"]),
        ("sample --zipf with the default support", ["sample", *GEN, "--zipf", "2", "--json"]),
        ("sample --frequencies with the default support", ["sample", *GEN, "--frequencies", "zipf", "--json"]),
        (
            "sample --hierarchy-exclusive without a hierarchy",
            ["sample", *GEN, "--hierarchy-exclusive", "true", "--json"],
        ),
        (
            "sample --correlation-scale with rank 0",
            ["sample", *GEN, "--support", "bernoulli", "--correlation-scale", "0.3"],
        ),
        ("train --device cuda:1 (no card here)", [*TRAIN, *GEN, "--device", "cuda:1"]),
        ("boundary --level nan", ["boundary", "o", "--level", "nan"]),
        ("boundary --tolerance -1", ["boundary", "o", "--tolerance", "-1"]),
        ("--save-sae . --force", [*TRAIN, *GEN, "--save-sae", ".", "--force"]),
        ("--save-sae a dangling link", [*TRAIN, *GEN, "--save-sae", "dangling"]),
        ("--save-sae a 256-byte name", [*TRAIN, *GEN, "--save-sae", "x" * 256]),
        ("--save-sae a 4,200-byte path", [*TRAIN, *GEN, "--save-sae", "y/" * 2100]),
        ("sweep --out a 256-byte name", ["sweep", "s.toml", "--out", "x" * 256]),
        ("export --csv a 256-byte name", ["export", "o", "--csv", "x" * 256]),
    ):
        if name == "--save-sae a dangling link" and not (d / "dangling").is_symlink():
            os.symlink(d / "nowhere", d / "dangling")
        before = snapshot(d)
        yield name, classify(run(args, d), before, snapshot(d))
    env = dict(os.environ, THEORY_SIM_THREADS="garbage")
    r = subprocess.run(
        [sys.executable, "-m", "theory_sim.cli", "sweep", "s.toml", "--out", "o2", "--dry-run"],
        capture_output=True,
        text=True,
        cwd=d,
        env=env,
        timeout=TIMEOUT,
    )
    yield "sweep --dry-run with THEORY_SIM_THREADS=garbage", classify(r, set(), set())
    (d / "real").mkdir()
    os.symlink(d / "real", d / "link")
    r = run([*TRAIN, *GEN, "--save-sae", "link"], d)
    ok = r is not None and r.returncode == 0 and (d / "real" / "cfg.json").exists() and (d / "link").is_symlink()
    yield "--save-sae into a link to a folder (written through)", "accepted" if ok else classify(r, set(), set())
    mode = (d / "real").stat().st_mode & 0o777, (d / "real" / "cfg.json").stat().st_mode & 0o777
    umask = os.umask(0o022)
    os.umask(umask)
    want = (0o777 & ~umask, 0o666 & ~umask)
    yield "saved SAE folder follows the umask", "accepted" if mode == want else "silent"

    def scale_on_training_rows():
        import theory_sim

        X2 = X8.copy()
        X2[-40:] *= 1000
        kw = dict(
            steps=10,
            batch=32,
            eval_samples=40,
            width=8,
            k=2,
            input_scale="mean_norm",
            progress=False,
            keep_weights=True,
        )
        a = theory_sim.train("topk", X8, **kw)[0]
        b = theory_sim.train("topk", X2, **kw)[0]
        return a["input_scale"] == b["input_scale"] and all(
            np.array_equal(a["arrays"][k], b["arrays"][k]) for k in a["arrays"] if k.startswith("w_")
        )

    yield "input_scale ignores the held-out rows (x1000: weights bit-identical)", _api(scale_on_training_rows)
    # a full disk while saving: a 64 KiB tmpfs where this user may mount one (root in a sandbox); else skipped
    full = Path(tempfile.mkdtemp(dir=root))
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True).returncode
        == 0
    ):
        try:
            before = snapshot(full)
            r = run(
                [*TRAIN, "--n", "64", "--d", "64", "--s", "2", "--width", "2048", "--save-sae", str(full / "sae")], d
            )
            yield "disk full while saving an SAE", classify(r, before, snapshot(full))
        finally:
            subprocess.run(["umount", str(full)], capture_output=True)


def main() -> int:
    counts: dict[str, int] = {}
    bad: list[str] = []

    def tally(name, what):
        counts[what] = counts.get(what, 0) + 1
        if what not in ("ok-refused", "repaired", "accepted"):
            bad.append(f"{what}: {name}")

    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        for name, what in edge_cases(root):
            tally(f"edge: {name}", what)
        if "--edges" in sys.argv:  # issue 32's cases only
            return _report(counts, bad)
        finished = Path(tempfile.mkdtemp(dir=root))
        (finished / "s.toml").write_text(GOOD)
        run(["sweep", "s.toml", "--out", "S", "--no-progress"], finished)
        for name, args in cli_cases():
            d = Path(tempfile.mkdtemp(dir=root))
            (d / "spec.txt").write_text("x")
            (d / "deep.json").write_text("[" * 100000 + "]" * 100000)
            np.save(d / "ok.npy", np.abs(np.random.default_rng(0).normal(size=(64, 3))).astype(np.float32))
            np.save(d / "zero.npy", np.zeros((4, 3), np.float32))
            if "S" in args:
                subprocess.run(["cp", "-r", str(finished / "S"), str(d / "S")], check=True)
                (d / "link.csv").symlink_to(d / "S" / "results.sqlite")
                os.link(d / "S" / "results.sqlite", d / "hard.csv")
                os.link(next((d / "S" / "arrays").glob("*.npz")), d / "hard_array.csv")
            before = snapshot(d)
            db = (d / "S" / "results.sqlite").read_bytes() if "S" in args else None
            r = run(args, d)
            what = classify(r, before, snapshot(d))
            if db is not None and (d / "S" / "results.sqlite").read_bytes() != db:
                what = "lost"
            tally(name, what)
        for name, what in scenario_cases(root):
            tally(name, what)
        for name, args, _ in data_cases(root):
            d = Path(tempfile.mkdtemp(dir=root))
            for f in root.glob("*.npy"):
                (d / f.name).write_bytes(f.read_bytes())
            np.save(d / "ok.npy", np.ones((8, 3), dtype=np.float32))
            np.savez(d / "x.npz", a=np.ones(3))
            before = snapshot(d)
            tally(name, classify(run(args, d), before, snapshot(d)))
        for name, text in sweep_cases():
            d = Path(tempfile.mkdtemp(dir=root))
            (d / "s.toml").write_text(text)
            before = snapshot(d)
            tally(
                f"sweep: {name}",
                classify(run(["sweep", "s.toml", "--out", "o", "--no-progress"], d), before, snapshot(d)),
            )
        for name, sql, repairable, may_answer in store_cases():
            d = Path(tempfile.mkdtemp(dir=root))
            (d / "s.toml").write_text(GOOD)
            run(["sweep", "s.toml", "--out", "o", "--no-progress"], d)
            if callable(sql):
                sql(d / "o")
            else:
                con = sqlite3.connect(d / "o" / "results.sqlite")
                con.execute(sql)
                con.commit()
                con.close()
            for cmd in (
                ["status", "o"],
                ["plot", "o", "--x", "d"],
                ["export", "o", "--csv", "x.csv"],
                ["boundary", "o", "--axis", "d"],
            ):
                before = snapshot(d)
                r = run(cmd, d)
                after = snapshot(d) - ({"x.csv"} if cmd[0] == "export" else set())
                may = cmd[0] in may_answer or (cmd[0] == "boundary" and "status" in may_answer)
                tally(f"store {name}: {cmd[0]}", classify(r, before, after, expect_refusal=not may))
            before = snapshot(d)
            r = run(["sweep", "s.toml", "--out", "o", "--no-progress"], d)
            what = classify(r, before, before, expect_refusal=not repairable, repairable=repairable)
            if what == "repaired":  # only if the store now reads back whole
                check = run(["export", "o", "--csv", "after.csv"], d)
                what = "repaired" if check is not None and check.returncode == 0 else "silent"
            tally(f"store {name}: rerun sweep", what)
    return _report(counts, bad)


def _report(counts: dict, bad: list) -> int:
    total = sum(counts.values())
    if "--json" in sys.argv:
        print(json.dumps({"tried": total, **counts, "not_ok": bad}))
    else:
        print(f"tried {total}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for b in bad:
            print("  " + b)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("THEORY_SIM_THREADS", "1")
    sys.exit(main())
