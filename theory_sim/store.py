"""The results database: SQLite (WAL) in the sweep's output folder, plus per-cell ``.npz`` arrays.

One row per cell (cell, method, hyperparameters, seed). Every finished cell is committed in its own
transaction, so a crash loses at most the cells in flight; arrays are written to a temp file and renamed
before the row commits, and loaded with ``allow_pickle=False``.

One writer per folder: ``writer_lock`` (an OS advisory lock, ``fcntl.flock`` on ``writer.lock``) is held by a
sweep for its whole life and by ``plot`` / ``export``; readers (``status``, ``boundary``) need no lock (SQLite's
WAL lets them read while a sweep writes). One design per folder: the store records a fingerprint of the
resolved design (``design_fingerprint``: name, budget, coarse cells, refine tables, seeds); another design is
refused unless forced, which starts a new generation (older cells stay stored, never current again unless
that design runs again). Every stored field is read through ``parse_row``: a damaged field is a ConfigError
naming the cell, and the next sweep run repairs it (``Store.damaged``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ConfigError, StoreError, make_folder
from .model.spec import LATER_FIELDS

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"
LOCK_NAME = "writer.lock"
#: the files of a store that no output may overwrite (the arrays folder is protected as a whole)
STORE_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal", LOCK_NAME)

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
    current INTEGER NOT NULL DEFAULT 1,
    generation INTEGER NOT NULL DEFAULT 1
);
"""

#: the fields of a stored cell row and what each must hold (parse_row)
ROW_FIELDS = ("config", "metrics", "provenance")


class DamagedCell(ConfigError):
    """A stored cell whose ``field`` cannot be read; the next sweep run on the folder repairs it."""

    def __init__(self, folder, cell_hash: str, field: str, detail: str):
        self.cell_hash, self.row_field = cell_hash, field
        super().__init__(
            "out",
            f"the stored {field} of cell {cell_hash} in {folder} is damaged ({detail}); rerun the sweep command "
            "on this folder: it trains damaged cells again (theory-sim status --check lists them all)",
        )


def parse_row(r: dict, folder="the store") -> tuple[dict, dict | None, dict | None]:
    """The one validating reader of a stored cell row: (config, metrics, provenance) as dicts (metrics and
    provenance None while the cell has none); DamagedCell naming the cell and the field otherwise."""
    h = r.get("cell_hash", "?")
    out = []
    for field in ROW_FIELDS:
        text = r.get(field)
        if text is None and field != "config":
            out.append(None)
            continue
        try:
            v = json.loads(text)
        except (TypeError, ValueError):
            raise DamagedCell(folder, h, field, "not JSON") from None
        if not isinstance(v, dict):
            raise DamagedCell(folder, h, field, f"a JSON {type(v).__name__}, not an object")
        out.append(v)
    cfg = out[0]
    for k, typ in (("data", dict), ("method", str), ("params", dict), ("train", dict), ("seed", int)):
        if not isinstance(cfg.get(k), typ) or isinstance(cfg.get(k), bool):
            raise DamagedCell(folder, h, "config", f"its {k!r} is missing or not a {typ.__name__}")
    if r.get("status") == "done" and out[1] is None:
        raise DamagedCell(folder, h, "metrics", "a finished cell without metrics")
    return cfg, out[1], out[2]


def design_fingerprint(name: str, budget: str, cells, refine, seeds, extend=None) -> str:
    """What makes two runs of a sweep the same design: its name, budget, coarse cells (their hashes, so
    comments, whitespace and [plot] / [report] edits do not count), refine tables, seeds and [extend] (only when
    set, so designs from before it existed keep their fingerprints)."""
    design = {
        "name": name,
        "budget": budget,
        "cells": sorted(c.hash for c in cells),
        "refine": [repr(r) for r in refine],
        "seeds": list(seeds),
    }
    if extend:
        design["extend"] = extend
    blob = json.dumps(design, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@contextlib.contextmanager
def writer_lock(folder, what: str, required: bool = True):
    """Holds the folder's writer lock for the ``with`` block: ``fcntl.flock`` on the folder itself (so taking
    it writes nothing, and the OS releases it when this process ends however it ends), with the holder's pid
    and command in ``writer.lock`` while held, for the message another writer gets: StoreError (exit 1).
    ``required=False`` (export, plot into another folder): a folder that cannot be opened is read unlocked."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; one writer is then the user's responsibility
        yield
        return
    holder = Path(folder) / LOCK_NAME
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        if not required:
            yield
            return
        raise StoreError(f"cannot lock {folder}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"cannot lock {folder}: {e.strerror or e}") from None
            try:
                words = holder.read_text(errors="replace").split()
            except OSError:
                words = []
            who = f"pid {words[0]} ({' '.join(words[1:]) or 'theory-sim'})" if words else "another process"
            raise StoreError(
                f"{folder} is being written by {who}; wait for it to finish (theory-sim status {folder} "
                "reads it meanwhile) or use another folder"
            ) from None
        wrote = False
        with contextlib.suppress(OSError):  # a read-only folder (export) has no holder note
            holder.write_text(f"{os.getpid()} {what}\n")
            wrote = True
        try:
            yield
        finally:
            if wrote:
                holder.unlink(missing_ok=True)
    finally:
        os.close(fd)


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


def existing(out_dir) -> "Store":
    """The store of a results folder that must already hold one; ConfigError naming ``out`` otherwise (the one
    wording of that refusal, given before anything heavy is imported)."""
    store = Store(out_dir)
    if not store.exists():
        raise ConfigError("out", f"no results database in {str(out_dir)!r}")
    return store


class Store:
    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.path = self.dir / DB_NAME
        self.arrays_dir = self.dir / "arrays"

    # ---------------------------------------------------------------- open / create
    def exists(self) -> bool:
        """Whether a store is here (a leftover empty file from a failed creation is not one; a folder or
        another file in its place is, and ``read_meta`` says what it is)."""
        return self.path.is_dir() or (self.path.exists() and self.path.stat().st_size > 0)

    def create(self) -> None:
        """Creates an empty, initialised database atomically: built in a private temp file, then linked into
        place only if no store appeared meanwhile (a concurrent creator wins and this one uses its store). A
        0-byte leftover of an earlier failed creation is replaced. Disk full (or any OS error) leaves no
        partial store behind and raises StoreError with the folder and its free space."""
        if self.exists():
            return
        if self.path.exists():  # 0 bytes: never initialised, nothing to keep
            self.path.unlink(missing_ok=True)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".results-", suffix=".sqlite.tmp")
            os.close(fd)
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
            if tmp:
                Path(tmp).unlink(missing_ok=True)

    def connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise self._db_error(e) from None
        return con

    def _db_error(self, e: Exception) -> Exception:
        """The one line for a database that cannot be read: a folder in its place, another kind of file, a
        store that is only locked (busy), a disk that is full."""
        text = str(e)
        if self.path.is_dir():
            return ConfigError("out", f"{self.path} is a folder, not a results database; move it away")
        if "locked" in text or "busy" in text:
            return StoreError(
                f"{self.path} is locked by another process (a writer in the middle of a transaction); retry"
            )
        if "disk" in text and ("full" in text or "I/O" in text):
            return StoreError(f"cannot use {self.path}: {text} ({free_space(self.dir)})")
        if isinstance(e, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return ConfigError("out", f"{self.path} is not a theory-sim results database ({text})")
        return ConfigError("out", f"cannot read {self.path}: {text}")

    def _read_only(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise self._db_error(IsADirectoryError())
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as e:
            raise self._db_error(e) from None

    def read_meta(self) -> dict:
        """The meta table, validated: a readable database of this schema or older (ConfigError otherwise,
        one line saying what the file is). ``schema_version`` is an int, or None when it is damaged."""
        con = self._read_only()
        try:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            con.execute("SELECT cell_hash FROM cells LIMIT 1").fetchall()
        except sqlite3.Error as e:
            if "no such table" in str(e):
                raise ConfigError("out", f"{self.path} is not a theory-sim results database ({e})") from None
            raise self._db_error(e) from None
        finally:
            con.close()
        if "schema_version" not in meta:  # tables made but never filled in by a creator that died
            raise ConfigError(
                "out", f"{self.path} was never initialised (an interrupted creation); delete it and rerun"
            )
        try:
            meta["schema_version"] = int(meta["schema_version"])
        except ValueError:
            meta["schema_version"] = None
        v = meta["schema_version"]
        if v is not None and v > SCHEMA_VERSION:
            raise ConfigError(
                "out",
                f"{self.path} was written by a newer theory-sim (schema {v} > {SCHEMA_VERSION}); "
                "upgrade theory-sim to read it",
            )
        return meta

    def check_compatible(
        self, sweep_name: str | None, force: bool, sweep_path: str | None = None, design: str | None = None
    ) -> None:
        """Refuses a store of a newer schema, of another sweep (another name, or the same name from another
        file), or of another design of this sweep (another budget, cells, refine tables or seeds), unless
        force. A reader (``sweep_name`` None) is refused only a store it cannot read, including a damaged
        ``schema_version`` (a writer repairs that). Writes nothing."""
        if not self.exists():
            return
        if sweep_name is None:  # a reader
            self.meta()
            return
        meta = self.read_meta()
        if force or "sweep_name" not in meta:  # a fresh store: its creator is filling it in
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
        if design and meta.get("design") and meta["design"] != design:
            raise ConfigError(
                "out",
                f"{self.dir} holds another design of sweep {sweep_name!r} (stored: budget "
                f"{meta.get('sweep_budget', 'full')}, generation {meta.get('generation', 1)}): the budget, the "
                "grid, the methods, the refine tables or the seeds differ; rerun it as it was, use another --out, "
                "or pass --force to start a new generation (the old cells stay stored and are never pooled with it)",
            )

    def init(
        self,
        sweep_name: str,
        source: str,
        cells,
        sweep_path: str | None = None,
        force: bool = False,
        budget: str = "full",
        design: str | None = None,
    ) -> int:
        """Creates the folder and tables, records the sweep and its design and inserts its cells as pending. A
        design other than the stored one (only with force) starts a new generation. Returns how many cells
        were new."""
        make_folder(self.dir, "out")
        make_folder(self.arrays_dir, "out")
        self.create()
        con = self.connect()
        try:
            con.executescript(_DDL)
            columns = [r[1] for r in con.execute("PRAGMA table_info(cells)")]
            if "current" not in columns:  # stores made before the flag
                con.execute("ALTER TABLE cells ADD COLUMN current INTEGER NOT NULL DEFAULT 1")
            if "generation" not in columns:  # stores made before generations: all of generation 1
                con.execute("ALTER TABLE cells ADD COLUMN generation INTEGER NOT NULL DEFAULT 1")
            con.execute("BEGIN IMMEDIATE")
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("sweep_name") not in (None, sweep_name) and not force:  # a creator that raced us
                raise ConfigError(
                    "out",
                    f"{self.dir} was just created for sweep {meta['sweep_name']!r} by another "
                    "process; use another --out",
                )
            try:
                generation = int(meta.get("generation", 1))
            except ValueError:
                generation = 1
            if design and meta.get("design") not in (None, design):
                generation += 1
            for k, v in (
                ("schema_version", str(SCHEMA_VERSION)),
                ("sweep_name", sweep_name),
                ("sweep_source", source),
                ("sweep_path", sweep_path or meta.get("sweep_path", "")),
                ("sweep_budget", budget),
                ("design", design or meta.get("design", "")),
                ("generation", str(generation)),
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
            con.executemany(
                "UPDATE cells SET current = 1, generation = ? WHERE cell_hash = ?",
                [(generation, c.hash) for c in cells],
            )
            con.execute("COMMIT")
        except sqlite3.Error as e:
            raise self._db_error(e) from None
        finally:
            con.close()
        return after - before

    # ---------------------------------------------------------------- read / write
    def add_cells(self, con: sqlite3.Connection, sweep_name: str, cells) -> int:
        """Inserts refinement cells as pending (or marks stored ones current again, in this generation);
        returns how many were new. One transaction: a round is either recorded whole or not at all."""
        con.execute("BEGIN IMMEDIATE")
        generation = int(dict(con.execute("SELECT key, value FROM meta").fetchall()).get("generation", 1))
        before = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        con.executemany(
            "INSERT INTO cells (cell_hash, sweep, label, method, seed, status, config, generation) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(cell_hash) DO UPDATE SET label = excluded.label, "
            "config = excluded.config, current = 1, generation = excluded.generation",
            [(c.hash, sweep_name, c.label, c.method, c.seed, "pending", to_json(c.config), generation) for c in cells],
        )
        after = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        con.execute("COMMIT")
        return after - before

    def metric_of(self, con: sqlite3.Connection, metric: str) -> dict[str, float]:
        """cell hash → ``metric`` of every done cell that has a finite value of it."""
        out = {}
        for h, m in con.execute("SELECT cell_hash, metrics FROM cells WHERE status='done'"):
            try:
                v = json.loads(m).get(metric) if m else None
            except (ValueError, AttributeError):  # damaged: repaired before any round reads it
                v = None
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

    def remove_stray_temps(self) -> int:
        """Deletes ``arrays/*.npz.tmp`` left by a writer that was killed mid-write (call under the writer lock:
        no other writer can own one then). Returns how many."""
        n = 0
        for p in self.arrays_dir.glob("*.npz.tmp") if self.arrays_dir.is_dir() else ():
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
        return n

    def damaged(self, con=None) -> list[tuple[str, str]]:
        """(hash, field) of every cell whose stored row ``parse_row`` refuses (config, metrics, provenance)."""
        own = con is None
        con = con or self.connect()
        try:
            con.row_factory = sqlite3.Row
            rows = [dict(r) for r in con.execute("SELECT cell_hash, status, config, metrics, provenance FROM cells")]
        finally:
            con.row_factory = None
            if own:
                con.close()
        bad = []
        for r in rows:
            try:
                parse_row(r, self.dir)
            except DamagedCell as e:
                bad.append((r["cell_hash"], e.row_field))
        return bad

    def array_problem(self, cell_hash: str, full: bool = False) -> str | None:
        """Why a done cell's ``.npz`` cannot be used ("lost", "unreadable: ..."), or None. ``full``: also
        checks every member's CRC (reads it all); otherwise only the zip's directory (catches truncation)."""
        p = self.arrays_dir / f"{cell_hash}.npz"
        if not p.exists():
            return "lost"
        try:
            with zipfile.ZipFile(p) as z:
                bad = z.testzip() if full else None
            if bad is not None:
                return f"unreadable: member {bad} fails its CRC"
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
            return f"unreadable: {e}"
        return None

    def lost_arrays(self, con=None, full: bool = False) -> list[str]:
        """Hashes of cells marked done whose ``.npz`` arrays are gone or unreadable (every done cell writes
        some)."""
        own = con is None
        con = con or self.connect()
        try:
            done = [h for (h,) in con.execute("SELECT cell_hash FROM cells WHERE status='done'")]
        finally:
            if own:
                con.close()
        return [h for h in done if self.array_problem(h, full)]

    def load_arrays(self, cell_hash: str) -> dict[str, np.ndarray]:
        p = self.arrays_dir / f"{cell_hash}.npz"
        if not p.exists():
            return {}
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
            raise ConfigError(
                "out",
                f"the arrays of cell {cell_hash} in {self.dir} are damaged ({e}); rerun the sweep command on this "
                "folder: it trains them again",
            ) from None

    def meta(self) -> dict:
        """The meta table for a reader: ``read_meta``, and a ConfigError when schema_version is damaged (a
        writer repairs it)."""
        meta = self.read_meta()
        if meta["schema_version"] is None:
            raise ConfigError(
                "out",
                f"the schema_version stored in {self.path} is damaged; rerun the sweep command on this folder to "
                "repair it",
            )
        return meta

    def rows(self) -> list[dict]:
        con = self._read_only()
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute("SELECT * FROM cells ORDER BY rowid")]
        except sqlite3.Error as e:
            raise self._db_error(e) from None
        finally:
            con.close()

    def check(self) -> list[tuple[str, str]]:
        """Every problem a rerun would repair, as (cell hash or "meta", what): damaged rows, lost or unreadable
        arrays (every member's CRC checked), a damaged schema_version. Reads only."""
        meta = self.read_meta()
        out = [("meta", "schema_version is damaged")] if meta["schema_version"] is None else []
        con = self._read_only()
        try:
            out += [(h, f"damaged {f}") for h, f in self.damaged(con)]
            damaged = {h for h, _ in out}
            for (h,) in con.execute("SELECT cell_hash FROM cells WHERE status='done'").fetchall():
                why = self.array_problem(h, full=True) if h not in damaged else None
                if why:
                    out.append((h, f"arrays {why}"))
        finally:
            con.close()
        return out


def trajectory_of(arrays: dict) -> dict | None:
    """The training trajectory stored in a result's arrays as plain lists: ``step``, ``frr_0.9`` (None where
    there is no ground truth), ``l0`` and ``loss`` of each recorded step's training batch (None at step 0,
    before any step). None when nothing was recorded."""
    frr = {int(st): float(v) for st, v in arrays.get("frr_trajectory", np.zeros((0, 2)))}
    rest = {int(st): (float(l0), float(loss)) for st, l0, loss in arrays.get("trajectory", np.zeros((0, 3)))}
    steps = sorted(set(frr) | set(rest))
    if not steps:
        return None
    return {
        "step": steps,
        "frr_0.9": [frr.get(st) for st in steps],
        "l0": [rest[st][0] if st in rest else None for st in steps],
        "loss": [rest[st][1] if st in rest else None for st in steps],
    }


#: the per-feature table's own columns (``load_results(per_feature=True)``; docs/science.md §5)
PER_FEATURE_COLUMNS = (
    "feature",
    "f",
    "f_eval",
    "h",
    "best_latent",
    "best_cos",
    "best_latent_freq",
    "matched_latent",
    "matched_cos",
    "matched_latent_freq",
    "log2_freq_ratio",
    "matched_latent_target",
    "log2_target_ratio",
)


def per_feature_rows(arrays: dict) -> dict | None:
    """One finished cell's per-feature record as columns (PER_FEATURE_COLUMNS → (n,) arrays) from its stored
    arrays, or None when it has no recovery arrays (no ground truth). f: the data model's frequency of each feature
    (its measured frequency on the evaluation rows where the model is unknown); f_eval, h: measured on the
    evaluation rows (h the mean non-zero magnitude); best latent: max signed cosine; matched latent: the signed
    Hungarian matching (−1 and NaN where unmatched, and in cells stored before it was kept); a latent's frequency:
    the fraction of evaluation rows it fires on; log2_freq_ratio: log₂(matched latent's frequency / f); for BA/GBA
    the matched latent's target frequency (matched_latent_target) and log2_target_ratio = log₂(its target / f)."""
    if "feature_best" not in arrays:
        return None
    n = len(arrays["feature_best"])
    nan = np.full(n, np.nan)
    nf = arrays.get("neuron_freq")
    f_eval = arrays.get("feature_freq_eval", nan)
    f = arrays.get("feature_freq", nan)
    f = np.where(np.isfinite(f), f, f_eval)
    best = arrays["feature_arg"].astype(np.int64)
    matched = arrays.get("feature_matched", np.full(n, -1)).astype(np.int64)

    def freq_of(idx):
        if nf is None:
            return nan
        return np.where(idx >= 0, nf[np.clip(idx, 0, len(nf) - 1)], np.nan)

    mf = freq_of(matched)
    nt = arrays.get("neuron_target")
    mt = np.where(matched >= 0, nt[np.clip(matched, 0, len(nt) - 1)], np.nan) if nt is not None else nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log2(mf / f)
        tratio = np.log2(mt / f)
    return {
        "feature": np.arange(n),
        "f": f,
        "f_eval": f_eval,
        "h": arrays.get("feature_mag_eval", nan),
        "best_latent": best,
        "best_cos": arrays["feature_best"].astype(float),
        "best_latent_freq": freq_of(best),
        "matched_latent": matched,
        "matched_cos": arrays.get("feature_matched_cos", nan).astype(float),
        "matched_latent_freq": mf,
        "log2_freq_ratio": ratio,
        "matched_latent_target": mt,
        "log2_target_ratio": tratio,
    }


def load_results(
    out_dir: str | Path, current_only: bool = False, trajectories: bool = False, per_feature: bool = False
):
    """One pandas row per (cell, method, hyperparameters, seed): inputs, metrics, status, timing, provenance.

    Columns: ``cell_hash``, ``sweep``, ``label``, ``method``, ``seed``, ``status``, ``error``, ``seconds``,
    ``batch_size``, every generator field (``n``, ``d``, ``s``, ...; a fixed data seed is ``data_seed``), every
    given method parameter (``width``, ``p_over_f``, ``k``, ...), ``train_*`` (steps, batch, ...), the metrics of
    ``theory-sim train --json`` (``frr_0.9``, ``mmcs``, ...; ``steps`` done is ``steps_done``) and the
    provenance (``package_version``, ``git_commit``, ``torch_version``, ``device``). ``current`` is True for
    cells of the sweep design as last run (another design, run with --force, leaves the old cells stored, not
    current); ``generation`` is the design generation that last made a cell current; ``current_only`` keeps
    just the current ones. A damaged stored row is a ConfigError naming the cell and the field.
    ``trajectories``: a ``trajectory`` column, each cell's recorded training curve as a dict of lists
    (``step``, ``frr_0.9``, ``l0``, ``loss``; ``trajectory_of``) read from its arrays, or None —
    the way to see whether a run was still climbing when it stopped.
    ``per_feature``: instead one row per (finished cell, true feature) — the cell's inputs (cell_hash, label,
    method, seed, current, generation, data fields, hyperparameters, ``train_*``) and PER_FEATURE_COLUMNS
    (``per_feature_rows``).
    """
    import pandas as pd

    store = existing(out_dir)
    store.check_compatible(None, True)
    records = []
    for r in store.rows():
        if current_only and not r.get("current", 1):
            continue
        cfg, metrics, prov = parse_row(r, out_dir)
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
        rec["generation"] = int(r.get("generation") or 1)
        rec.update({("data_seed" if k == "seed" else k): v for k, v in cfg["data"].items()})
        for k, default in LATER_FIELDS.items():  # omitted from stored configs while at their default
            rec.setdefault(k, default)
        rec.update(cfg["params"])
        rec.update({f"train_{k}": v for k, v in cfg["train"].items()})
        rec["_inputs"] = list(rec)
        if metrics is not None:
            m = dict(metrics)
            m["steps_done"] = m.pop("steps", None)
            for k, v in m.items():
                if k not in rec or k in ("seconds",):
                    rec[k] = (
                        float("nan") if v is None else (float(v) if isinstance(v, str) and v in ("inf", "-inf") else v)
                    )
        if prov is not None:
            rec.update(prov)
        records.append(rec)
    if trajectories:
        for rec in records:
            rec["trajectory"] = trajectory_of(store.load_arrays(rec["cell_hash"])) if rec["status"] == "done" else None
    if per_feature:
        return _per_feature_frame(store, records)
    for rec in records:  # lists (e.g. mixture_s) as tuples, so columns stay hashable for groupby
        rec.pop("_inputs")
        for k, v in rec.items():
            if isinstance(v, list):
                rec[k] = tuple(v)
    return pd.DataFrame.from_records(records)


def _per_feature_frame(store: "Store", records: list[dict]):
    """The per-feature table of ``load_results(per_feature=True)``: each finished cell's inputs repeated over its
    features beside ``per_feature_rows``; an empty frame with the columns when no cell has recovery arrays."""
    import pandas as pd

    frames = []
    for rec in records:
        if rec["status"] != "done":
            continue
        cols = per_feature_rows(store.load_arrays(rec["cell_hash"]))
        if cols is None:
            continue
        skip = ("status", "error", "seconds", "batch_size", "finished_at", "_inputs")
        keys = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in rec.items() if k in rec["_inputs"] and k not in skip
        }
        frame = pd.DataFrame(cols)
        for k, v in reversed(keys.items()):
            frame.insert(0, k, [v] * len(frame))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["cell_hash", "label", "method", "seed", *PER_FEATURE_COLUMNS])
    return pd.concat(frames, ignore_index=True)
