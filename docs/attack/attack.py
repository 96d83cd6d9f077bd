"""A hostile user's afternoon with theory-sim, counted: python docs/attack/attack.py [--json]

Runs bad command lines, bad sweep files, bad data arrays and damaged results stores, each in a fresh temp
folder with a time limit, and classifies what happened:
  ok-refused   one line on stderr, exit 2 (or 1 for a runtime fault), no traceback, nothing written
  repaired     the fault was detected and repaired, exit 0 (damaged-store cases that can be)
  traceback    a Python traceback reached the user
  hang         still running at the time limit
  written      refused, but files were written first
  silent       exit 0 on input that should have been refused
Prints the counts per class (and the cases that are not ok-refused / repaired).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
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
    ]


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
    ]


def main() -> int:
    counts: dict[str, int] = {}
    bad: list[str] = []

    def tally(name, what):
        counts[what] = counts.get(what, 0) + 1
        if what not in ("ok-refused", "repaired"):
            bad.append(f"{what}: {name}")

    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        for name, args in cli_cases():
            d = Path(tempfile.mkdtemp(dir=root))
            (d / "spec.txt").write_text("x")
            before = snapshot(d)
            r = run(args, d)
            tally(name, classify(r, before, snapshot(d)))
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
            con = sqlite3.connect(d / "o" / "results.sqlite")
            con.execute(sql)
            con.commit()
            con.close()
            for cmd in (["status", "o"], ["plot", "o", "--x", "d"], ["export", "o", "--csv", "x.csv"]):
                before = snapshot(d)
                r = run(cmd, d)
                after = snapshot(d) - ({"x.csv"} if cmd[0] == "export" else set())
                tally(f"store {name}: {cmd[0]}", classify(r, before, after, expect_refusal=cmd[0] not in may_answer))
            before = snapshot(d)
            r = run(["sweep", "s.toml", "--out", "o", "--no-progress"], d)
            what = classify(r, before, before, expect_refusal=not repairable, repairable=repairable)
            if what == "repaired":  # only if the store now reads back whole
                check = run(["export", "o", "--csv", "after.csv"], d)
                what = "repaired" if check is not None and check.returncode == 0 else "silent"
            tally(f"store {name}: rerun sweep", what)
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
