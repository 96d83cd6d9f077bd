"""The results database: SQLite (WAL) in the sweep's output folder, plus per-cell ``.npz`` arrays.

One row per cell (cell, method, hyperparameters, seed). Every finished cell is committed in its own
transaction, so a crash loses at most the cells in flight; arrays are written to a temp file and renamed
before the row commits, and loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, StoreError, make_folder
from .model.spec import LATER_FIELDS

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_hash TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    label TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    error TEXT,
    config TEXT NOT NULL,
    metrics TEXT,
    seconds REAL,
    batch_size INTEGER,
    finished_at REAL,
    provenance TEXT,
    current INTEGER NOT NULL DEFAULT 1
);
"""


def to_json(obj, sort_keys: bool = True) -> str:
    """Strict JSON of results (one convention everywhere: the store, ``--json`` output): NaN becomes null,
    ±inf the strings "inf" / "-inf" (``load_results`` turns both back into floats), numpy scalars and
    arrays Python numbers and lists, anything else unknown its ``str``."""

    def clean(v):
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), sort_keys=sort_keys, default=str, allow_nan=False)


def provenance(device: str) -> dict:
    import torch

    from .version import __version__

    commit = None
    try:
        root = Path(__file__).resolve().parent.parent
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        commit = r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "package_version": __version__,
        "git_commit": commit,
        "torch_version": torch.__version__,
        "device": device,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def free_space(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free there"
    except OSError:
        return "free space unknown"


class Store:
    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.path = self.dir / DB_NAME
        self.arrays_dir = self.dir / "arrays"

    # ---------------------------------------------------------------- open / create
    def exists(self) -> bool:
        """Whether an initialised store is here (a leftover empty file from a failed creation is not one)."""
        return self.path.exists() and self.path.stat().st_size > 0

    def create(self) -> None:
        """Creates an empty, initialised database atomically: built in a private temp file, then linked into
        place only if no store appeared meanwhile (a concurrent creator wins and this one uses its store). A
        0-byte leftover of an earlier failed creation is replaced. Disk full (or any OS error) leaves no
        partial store behind and raises StoreError with the folder and its free space."""
        if self.exists():
            return
        if self.path.exists():  # 0 bytes: never initialised, nothing to keep
            self.path.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".results-", suffix=".sqlite.tmp")
        os.close(fd)
        try:
            con = sqlite3.connect(tmp, isolation_level=None)
            try:
                con.executescript(_DDL)
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            finally:
                con.close()
            try:
                os.link(tmp, self.path)  # atomic, and fails if another process created the store first
            except FileExistsError:
                pass
        except (sqlite3.Error, OSError) as e:
            raise StoreError(
                f"cannot create the results database in {self.dir}: {e} "
                f"({free_space(self.dir)}); free space and rerun the same command"
            ) from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def check_compatible(self, sweep_name: str | None, force: bool, sweep_path: str | None = None) -> None:
        """Refuses a store of a newer schema, or of another sweep — another name, or the same name from
        another file (unless force; an edited file at the same path is the same sweep). Writes nothing."""
        if not self.exists():
            return
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            raise ConfigError("out", f"{self.path} is not a theory-sim results database ({e})") from None
        finally:
            con.close()
        if "schema_version" not in meta:  # tables made but never filled in by a creator that died
            raise ConfigError(
                "out", f"{self.path} was never initialised (an interrupted creation); delete it and rerun"
            )
        v = int(meta.get("schema_version", 0))
        if v > SCHEMA_VERSION:
            raise ConfigError(
                "out",
                f"{self.path} was written by a newer theory-sim (schema {v} > {SCHEMA_VERSION}); "
                "upgrade theory-sim to read it",
            )
        if sweep_name is None or force or "sweep_name" not in meta:  # a fresh store: its creator is filling it in
            return
        if meta.get("sweep_name") != sweep_name:
            raise ConfigError(
                "out",
                f"{self.dir} holds results of sweep {meta.get('sweep_name')!r}, not {sweep_name!r}; "
                "use another --out or pass --force",
            )
        if sweep_path and meta.get("sweep_path") and meta["sweep_path"] != sweep_path:
            raise ConfigError(
                "out",
                f"{self.dir} holds results of another sweep file named {sweep_name!r} "
                f"({meta['sweep_path']}); use another --out or pass --force",
            )

    def init(
        self,
        sweep_name: str,
        source: str,
        cells,
        sweep_path: str | None = None,
        force: bool = False,
        budget: str = "full",
    ) -> int:
        """Creates the folder and tables, records the sweep and inserts its cells as pending.
        Returns how many cells were new."""
        make_folder(self.dir, "out")
        make_folder(self.arrays_dir, "out")
        self.create()
        con = self.connect()
        try:
            con.executescript(_DDL)
            if "current" not in [r[1] for r in con.execute("PRAGMA table_info(cells)")]:  # stores made before the flag
                con.execute("ALTER TABLE cells ADD COLUMN current INTEGER NOT NULL DEFAULT 1")
            con.execute("BEGIN IMMEDIATE")
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("sweep_name") not in (None, sweep_name) and not force:  # a creator that raced us
                raise ConfigError(
                    "out",
                    f"{self.dir} was just created for sweep {meta['sweep_name']!r} by another "
                    "process; use another --out",
                )
            for k, v in (
                ("schema_version", str(SCHEMA_VERSION)),
                ("sweep_name", sweep_name),
                ("sweep_source", source),
                ("sweep_path", sweep_path or meta.get("sweep_path", "")),
                ("sweep_budget", budget),
            ):
                con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))
            con.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (str(time.time()),))
            before = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
            con.executemany(  # a re-run may rename a label (presentation only; not part of the hash)
                "INSERT INTO cells (cell_hash, sweep, label, method, seed, status, config) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(cell_hash) DO UPDATE SET label = excluded.label",
                [(c.hash, sweep_name, c.label, c.method, c.seed, "pending", to_json(c.config)) for c in cells],
            )
            after = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
            # cells of an earlier version of the sweep file stay stored but are no longer current
            con.execute("UPDATE cells SET current = 0")
            con.executemany("UPDATE cells SET current = 1 WHERE cell_hash = ?", [(c.hash,) for c in cells])
            con.execute("COMMIT")
        finally:
            con.close()
        return after - before

    # ---------------------------------------------------------------- read / write
    def add_cells(self, con: sqlite3.Connection, sweep_name: str, cells) -> int:
        """Inserts refinement cells as pending (or marks stored ones current again); returns how many were
        new. One transaction: a round is either recorded whole or not at all."""
        con.execute("BEGIN IMMEDIATE")
        before = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        con.executemany(
            "INSERT INTO cells (cell_hash, sweep, label, method, seed, status, config) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(cell_hash) DO UPDATE SET label = excluded.label, current = 1",
            [(c.hash, sweep_name, c.label, c.method, c.seed, "pending", to_json(c.config)) for c in cells],
        )
        after = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        con.execute("COMMIT")
        return after - before

    def metric_of(self, con: sqlite3.Connection, metric: str) -> dict[str, float]:
        """cell hash → ``metric`` of every done cell that has a finite value of it."""
        out = {}
        for h, m in con.execute("SELECT cell_hash, metrics FROM cells WHERE status='done'"):
            v = json.loads(m).get(metric) if m else None
            if isinstance(v, (int, float)) and math.isfinite(v):
                out[h] = float(v)
        return out

    def statuses(self, con=None) -> dict[str, str]:
        own = con is None
        con = con or self.connect()
        try:
            return dict(con.execute("SELECT cell_hash, status FROM cells").fetchall())
        finally:
            if own:
                con.close()

    def write_result(self, con: sqlite3.Connection, cell_hash: str, result: dict, prov: dict) -> bool:
        """Stores one finished cell in its own transaction; returns False if it was already finished."""
        arrays = result.pop("arrays", {}) or {}
        if arrays:
            self._save_arrays(cell_hash, arrays)
        status = result.pop("status")
        error = result.pop("error", None)
        seconds = result.get("seconds")
        batch = result.get("ensemble_size")
        con.execute("BEGIN IMMEDIATE")
        cur = con.execute(
            "UPDATE cells SET status=?, error=?, metrics=?, seconds=?, batch_size=?, finished_at=?, provenance=? "
            "WHERE cell_hash=? AND status='pending'",
            (status, error, to_json(result), seconds, batch, time.time(), to_json(prov), cell_hash),
        )
        con.execute("COMMIT")
        return cur.rowcount == 1

    def _save_arrays(self, cell_hash: str, arrays: dict) -> None:
        self.arrays_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.arrays_dir, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
            os.replace(tmp, self.arrays_dir / f"{cell_hash}.npz")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def damaged(self, con=None) -> list[str]:
        """Hashes of cells marked done whose stored metrics are not valid JSON (a damaged database row)."""
        own = con is None
        con = con or self.connect()
        try:
            rows = con.execute("SELECT cell_hash, metrics FROM cells WHERE status='done'").fetchall()
        finally:
            if own:
                con.close()
        bad = []
        for h, m in rows:
            try:
                json.loads(m or "")
            except ValueError:
                bad.append(h)
        return bad

    def lost_arrays(self, con=None) -> list[str]:
        """Hashes of cells marked done whose ``.npz`` arrays are gone (every done cell writes some)."""
        own = con is None
        con = con or self.connect()
        try:
            done = [h for (h,) in con.execute("SELECT cell_hash FROM cells WHERE status='done'")]
        finally:
            if own:
                con.close()
        return [h for h in done if not (self.arrays_dir / f"{h}.npz").exists()]

    def load_arrays(self, cell_hash: str) -> dict[str, np.ndarray]:
        p = self.arrays_dir / f"{cell_hash}.npz"
        if not p.exists():
            return {}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def meta(self) -> dict:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())
        finally:
            con.close()

    def rows(self) -> list[dict]:
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM cells ORDER BY rowid")]
        finally:
            con.close()


def load_results(out_dir: str | Path, current_only: bool = False):
    """One pandas row per (cell, method, hyperparameters, seed): inputs, metrics, status, timing, provenance.

    Columns: ``cell_hash``, ``sweep``, ``label``, ``method``, ``seed``, ``status``, ``error``, ``seconds``,
    ``batch_size``, every generator field (``n``, ``d``, ``s``, ...; a fixed data seed is ``data_seed``), every
    given method parameter (``width``, ``p_over_f``, ``k``, ...), ``train_*`` (steps, batch, ...), the metrics of
    ``theory-sim train --json`` (``frr_0.9``, ``mmcs``, ...; ``steps`` done is ``steps_done``) and the
    provenance (``package_version``, ``git_commit``, ``torch_version``, ``device``). ``current`` is True for
    cells of the sweep file as last run (an edited file leaves its old cells stored, not current);
    ``current_only`` keeps just those.
    """
    import pandas as pd

    store = Store(out_dir)
    if not store.exists():
        raise ConfigError("out", f"no results database in {out_dir!r}")
    store.check_compatible(None, True)
    records = []
    for r in store.rows():
        cfg = json.loads(r["config"])
        if current_only and not r.get("current", 1):
            continue
        rec = {
            k: r[k]
            for k in (
                "cell_hash",
                "sweep",
                "label",
                "method",
                "seed",
                "status",
                "error",
                "seconds",
                "batch_size",
                "finished_at",
            )
        }
        rec["current"] = bool(r.get("current", 1))
        rec.update({("data_seed" if k == "seed" else k): v for k, v in cfg["data"].items()})
        for k, default in LATER_FIELDS.items():  # omitted from stored configs while at their default
            rec.setdefault(k, default)
        rec.update(cfg["params"])
        rec.update({f"train_{k}": v for k, v in cfg["train"].items()})
        if r["metrics"]:
            try:
                m = json.loads(r["metrics"])
            except ValueError:
                raise ConfigError(
                    "out",
                    f"the stored metrics of cell {r['cell_hash']} in {out_dir} are damaged; rerun the sweep command "
                    "on this folder: it trains damaged cells again",
                ) from None
            m["steps_done"] = m.pop("steps", None)
            for k, v in m.items():
                if k not in rec or k in ("seconds",):
                    rec[k] = (
                        float("nan") if v is None else (float(v) if isinstance(v, str) and v in ("inf", "-inf") else v)
                    )
        if r["provenance"]:
            rec.update(json.loads(r["provenance"]))
        records.append(rec)
    for rec in records:  # lists (e.g. mixture_s) as tuples, so columns stay hashable for groupby
        for k, v in rec.items():
            if isinstance(v, list):
                rec[k] = tuple(v)
    return pd.DataFrame.from_records(records)
