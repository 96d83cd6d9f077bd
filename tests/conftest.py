import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
settings.register_profile("ci", deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

CUDA = torch.cuda.is_available()


def cli_inprocess(*args, cwd=None, timeout=None):
    """``theory-sim ARGS`` through ``cli.main`` in this process — no interpreter start and torch import per call
    (seconds each on 2 cores) — as a CompletedProcess (returncode, stdout, stderr). For one-line refusals and
    ordinary runs; a test that needs a real process (signals, kills, concurrent writers, a closed stdout) uses
    a subprocess. ``timeout`` is accepted for the subprocess helpers' signature and unused."""
    import contextlib
    import io
    import subprocess

    from theory_sim import cli

    out, err = io.StringIO(), io.StringIO()
    here, threads = os.getcwd(), torch.get_num_threads()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as e:  # argparse's own exits
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)  # main sets the CLI's thread policy; the test process keeps its own
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
