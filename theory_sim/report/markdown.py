"""REPORT.md and figures/verdicts.json: the verdict objects and their Markdown."""

from __future__ import annotations

import time
from pathlib import Path

from ..outputs import atomic_file

#: the keys of each object in verdicts.json (issue: machine-readable verdicts; REPORT.md renders the same)
VERDICT_KEYS = (
    "experiment",
    "claim",
    "verdict",
    "verdict_at_base",
    "rule",
    "cells",
    "cells_inside_hypotheses",
    "cells_outside_hypotheses",
    "cells_hypotheses_unevaluable",
    "hypotheses",
    "budget_check",
    "switches_tried",
    "switch_folders",
    "conditions",
    "conditions_under_checks",
    "ours_under_checks",
    "ours",
)


def verdict_objects(sections: list[dict]) -> list[dict]:
    return [{k: (s["name"] if k == "experiment" else s.get(k)) for k in VERDICT_KEYS} for s in sections]


def _hyp_text(s: dict) -> str:
    h = s.get("hypotheses") or {}
    req = h.get("require") or []
    if not req:
        return f"none required (all {s['cells']} cells count)"
    consts = f"ε = {h.get('eps', 0):g}, ς = {h.get('varsigma', 0):g}, c_w = {h.get('c_width', 1):g}"
    return (
        f"{', '.join(req)} ({consts}): {s.get('cells_inside_hypotheses', 0)} cells inside, "
        f"{s.get('cells_outside_hypotheses', 0)} outside, {s.get('cells_hypotheses_unevaluable', 0)} not evaluable "
        "(only cells inside count)"
    )


def _check_text(s: dict) -> str:
    b = s.get("budget_check") or {}
    if not b.get("run"):
        return f"not run: {b.get('why', '—')}"
    wf = f", {b['width_factor']:g}× the width" if b.get("width_factor", 1) != 1 else ""
    state = "stable" if b.get("stable") else "**changed: budget-limited**"
    from ..checks import folder_name

    at2 = _conditions_text((s.get("conditions_under_checks") or {}).get(folder_name(None, None)))
    return (
        f"{b['cells']} deciding cells at {b['steps_factor']:g}× the steps{wf}: {b.get('verdict_at_double')}{at2} "
        f"(base budget: {s.get('verdict_at_base')}{_conditions_text(s.get('conditions'))}) — {state}; " + _moved_text(b)
    )


def moved_phrase(m: dict) -> str:
    """One moved cell: "BA (s = 2) frr_0.9 29.0 % → 100.0 % at 2×"."""
    from ..measures import is_fraction

    pct = is_fraction(m["metric"])
    f = (lambda v: f"{100 * v:.1f} %") if pct else (lambda v: f"{v:.3g}")
    return f"{m['cell']} {m['metric']} {f(m['base'][0])} → {f(m['double'][0])}"


def _moved_text(b: dict) -> str:
    """What the cell-by-cell comparison found: how many cells it compared and those that moved."""
    moved = b.get("moved") or []
    head = f"{b.get('compared', 0)} cells compared base vs {b.get('steps_factor', 2):g}×"
    if not moved:
        return head + ", none moved (each 2× interval overlaps its base interval)"
    return (
        head + f", {len(moved)} moved (2× interval wholly outside the base one): " + "; ".join(map(moved_phrase, moved))
    )


def _conditions_text(c: dict | None) -> str:
    return (" (" + ", ".join(f"{k}: {_TRI.get(v, v)}" for k, v in c.items()) + ")") if c else ""


_TRI = {True: "met", False: "failed", None: "undecided"}


def _moved_line(s: dict) -> str:
    """The verdict line's note of the deciding cells that moved at twice the budget (nothing when none did)."""
    b = s.get("budget_check") or {}
    moved = b.get("moved") or []
    if not moved:
        return ""
    shown = "; ".join(moved_phrase(m) for m in moved[:4]) + (f"; {len(moved) - 4} more" if len(moved) > 4 else "")
    return f" **Moved at {b.get('steps_factor', 2):g}× the steps:** {shown}."


def _switch_text(s: dict) -> str:
    sw = s.get("switches_tried") or {}
    under = s.get("conditions_under_checks") or {}
    from ..checks import folder_name

    folders = s.get("switch_folders") or {}

    def cond(k):
        key, value = k.split("=", 1)
        return _conditions_text(under.get(folders.get(k) or folder_name(key, value)))

    return "; ".join(f"{k}: {v}{cond(k)}" for k, v in sw.items()) or "none"


def write_verdicts(out: Path, budget: str, sections: list[dict]) -> Path:
    """figures/verdicts.json: one object per experiment (VERDICT_KEYS)."""
    import json

    path = out / "figures" / "verdicts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        objs = [{**o, "budget": budget} for o in verdict_objects(sections)]
        Path(tmp).write_text(json.dumps(objs, indent=1, default=str) + "\n")
    return path


def _clauses(text: str) -> list[str]:
    """A rule's ``ours`` text as its clauses: split at "; " and " | " outside brackets, so each number
    keeps its interval."""
    out, depth, cur, i = [], 0, "", 0
    while i < len(text):
        ch = text[i]
        depth += ch in "([{"
        depth -= ch in ")]}"
        for sep in ("; ", " | "):
            if depth <= 0 and text.startswith(sep, i):
                out.append(cur.strip())
                cur, i = "", i + len(sep)
                break
        else:
            cur += ch
            i += 1
    out.append(cur.strip())
    return [c.rstrip(".") for c in out if c]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def not_in_report(names: list[str], budget: str, everything: tuple[str, ...]) -> str:
    """The line a report run on a subset (``--only``) of ``everything`` carries: which experiments it does not
    hold and the command that runs them, so a partial report is never read as the whole reproduction ("" when
    complete)."""
    rest = [e for e in everything if e not in names]
    if not rest:
        return ""
    return (
        f"**Not in this report** ({len(rest)} of {len(everything)} experiments; this run was given "
        f"`--only {','.join(names)}`): {', '.join(rest)}. "
        f"`theory-sim reproduce --budget {budget} --only {','.join(rest)}` runs them."
    )


def _write_report(
    out: Path, budget: str, sections: list[dict], timings: dict, device: str = "auto", everything: tuple[str, ...] = ()
) -> Path:
    import torch

    from ..device import device_name
    from ..version import __version__

    lines = [
        f"# theory-sim reproduction report ({budget} budget)",
        "",
        f"theory-sim {__version__}, torch {torch.__version__}, on {device_name(device)}, "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"(this run {sum(timings.values()):.0f} s wall, stored cells reused). "
        "Every number below is computed from the results stored beside this file by the rule stated with it; "
        "the paper's numbers come from the sweep files. Budgets other than `full` are smaller than the paper's "
        "experiments (fewer seeds, smaller widths, fewer steps): read their verdicts as such.",
        "",
        "**How to read the numbers.** A value is the mean over seeds with its 95 % interval in brackets: the "
        "Student-t interval over seeds, widened for a recovery fraction to contain the Wilson interval of the "
        "pooled feature count (k of n × seeds), so three seeds that agree still carry finite-feature uncertainty. "
        "A rule compares intervals, not means: a condition whose interval straddles its threshold is undecided, "
        "and a verdict that an undecided condition could flip is **inconclusive**. Boundaries are fitted "
        "crossings (logistic in log x on per-seed values; the interval covers the seeds and the fit's form, and "
        "stays inside the bracket; with one seed the bracket is the interval). Every comparison gives each method "
        "a grid spanning its working range (decades, or matched L0 through the L0 controller); a method whose best "
        'choice sits on the edge of its grid is flagged "edge of grid — widen it". A run is converged when BA/GBA '
        "neurons fire at most 2× above their targets on average (their rule caps frequencies), an L0 target is "
        "met within 25 %, the loss levelled off and FRR@0.9 stopped rising; the others are hatched in the "
        "figures. **Hypotheses**: each experiment lists in its sweep file the theorem's hypotheses a cell must "
        "meet (computed per cell; cells outside are dotted in the figures and never counted). **Budget check**: "
        "the deciding cells, declared in the sweep file, are re-trained at twice the steps and the rule applied "
        "again; a verdict that changes is **budget-limited**. The DECIDE switches tried at the deciding cells are "
        "listed with the verdict under each. The same objects are in verdicts.json.",
        "",
        "| experiment | claim | verdict |",
        "|---|---|---|",
    ]
    for s in sections:
        lines.append(f"| [{s['name']}](#{s['name']}) | {s['claim']} | **{s['verdict']}** |")
    missing = not_in_report([s["name"] for s in sections], budget, everything)
    if missing:
        lines += ["", missing]
    for s in sections:
        clauses = _clauses(s["ours"])
        lines += [
            "",
            f"## {s['name']}",
            "",
            f"**{s['verdict']}** — {s['claim']}. Deciding: {'; '.join(clauses[:2])}." + _moved_line(s),
            "",
            "| | |",
            "|---|---|",
            f"| paper | {_cell(s['paper'])} |",
            f"| ours | {_cell('; '.join(clauses[:3]))} |",
            f"| cells | {s['cells']} ({s['failed']} failed, {s['not_converged']} did not converge)"
            + (
                f"; {s['cells_graphed']} of them trained as CUDA graphs on the counter stream, the rest eagerly"
                if "cells_graphed" in s
                else ""
            )
            + " |",
            f"| hypotheses | {_cell(_hyp_text(s))} |",
            f"| budget check | {_cell(_check_text(s))} |",
            f"| switches at the deciding cells | {_cell(_switch_text(s))} |",
            f"| time | training {s['train_seconds']:.0f} s (sum over ensembles, as stored); this run "
            f"{timings[s['name']]:.0f} s |",
            "",
            f"**Detail.** {s['description']}",
            "",
            f"*Rule (fixed before the numbers):* {s['rule']}",
            "",
            "*Ours, in full:*",
            "",
            *[f"- {c}" for c in clauses],
            "",
        ]
        for p in s["figures"]:  # the report sits beside its figures: links are bare file names
            lines.append(f"![{s['name']}]({Path(p).name})")
    path = out / "figures" / "REPORT.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return path
