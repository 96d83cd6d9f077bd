"""Progress that reads well where it lands: a tqdm bar on a terminal, and one plain line per ``LOG_STEP`` of
the work in a log file or pipe (a bar redrawn with carriage returns floods a log with thousands of updates).

Both count work units (model-steps for a sweep, steps for ``train``), so the ETA weighs cells by their
work; both take the same calls (``update``, ``set_description``, ``set_postfix``, ``close``)."""

from __future__ import annotations

import sys
import time

#: a log line every this fraction of the work
LOG_STEP = 0.1


class LogBar:
    """tqdm's interface, written as one line per LOG_STEP of ``total``: description, percent, counts, rate,
    ETA, and the postfix."""

    def __init__(self, total, initial=0, desc="", unit="", file=None, disable=False, **_):
        self.total, self.n, self.desc, self.unit = max(1, total), initial, desc, unit
        self.file, self.disable = file or sys.stderr, disable
        self.t0, self.n0, self.postfix = time.monotonic(), initial, ""
        self.next = (int(self.n / self.total / LOG_STEP) + 1) * LOG_STEP

    def update(self, k=1):
        self.n += k
        if self.n / self.total >= self.next - 1e-12:
            self.next = (int(self.n / self.total / LOG_STEP + 1e-9) + 1) * LOG_STEP
            self._line()

    def _line(self):
        if self.disable:
            return
        dt = time.monotonic() - self.t0
        rate = (self.n - self.n0) / dt if dt > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        eta_s = f"{int(eta // 60)}:{int(eta % 60):02d}" if eta == eta else "?"
        print(
            f"{self.desc}: {100 * min(self.n, self.total) / self.total:3.0f}% ({_si(self.n)}/{_si(self.total)}"
            f"{self.unit}, {_si(rate)}{self.unit}/s, ETA {eta_s}){self.postfix}",
            file=self.file,
            flush=True,
        )

    def set_description(self, desc, refresh=True):
        self.desc = desc

    def set_postfix(self, **kw):
        self.postfix = " " + ", ".join(f"{k}={v}" for k, v in kw.items()) if kw else ""

    def close(self):
        pass


def _si(v: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.2g}"


def bar(total, initial=0, desc="", unit="", disable=False, file=None, **kw):
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a LogBar."""
    file = file or sys.stderr
    try:
        tty = file.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=disable, file=file, **kw)
    return LogBar(total, initial, desc, unit, file, disable)
