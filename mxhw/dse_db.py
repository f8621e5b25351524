"""The results database of :mod:`mxhw.dse` (SQLite, one row per point) and its exports:
CSV, JSON and the Pareto plot.

Several sweeps may write one database at once (two processes, or two machines on a
shared file system that honours locks): the database is in WAL mode, every write is one
``BEGIN IMMEDIATE`` transaction, connections wait up to :data:`BUSY_TIMEOUT_S` for a lock,
and a finished (``done``) row is never overwritten by another sweep's result for the same
key. Only the sweep's client process writes; Dask workers return results to it.
"""

from __future__ import annotations

import csv
import json
import math
import sqlite3
import time
from pathlib import Path

__all__ = ["DB_NAME", "BUSY_TIMEOUT_S", "COLUMNS", "connect", "done_keys", "write_result",
           "rows", "export_csv", "export_json", "pareto", "plot_pareto"]

DB_NAME = "dse.sqlite"
BUSY_TIMEOUT_S = 60
SCHEMA_VERSION = 1

#: The table's columns (JSON columns hold text).
COLUMNS = ("key", "name", "config", "status", "luts", "ffs", "fmax_mhz", "figures",
           "metric", "objective", "rtl_hash", "tool_versions", "error", "started",
           "finished", "seconds", "sweep")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,      -- hash of the point's canonical JSON
    name TEXT NOT NULL,        -- readable label
    config TEXT NOT NULL,      -- the point (canonical JSON)
    status TEXT NOT NULL,      -- done | failed
    luts REAL,                 -- ECP5 LUT4-equivalents (PPA)
    ffs REAL,
    fmax_mhz REAL,
    figures TEXT,              -- every PPA figure (JSON)
    metric TEXT,               -- the metric's dict (JSON)
    objective REAL,            -- the metric value the Pareto front uses
    rtl_hash TEXT,
    tool_versions TEXT,        -- JSON
    error TEXT,
    started TEXT,              -- UTC, ISO 8601
    finished TEXT,
    seconds REAL,              -- compute time of the point's tasks
    sweep TEXT                 -- the sweep (space name) that wrote the row
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _with_retries(fn, tries=5):
    """``fn()``, retried when SQLite still reports a lock after its busy timeout."""
    for i in range(tries):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or i == tries - 1:
                raise
            time.sleep(0.1 * 2 ** i)


def connect(path):
    """A connection to the database at ``path`` (created with its schema if new), in WAL
    mode with a busy timeout; autocommit (transactions are explicit)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")

    def setup():
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif row[0] != str(SCHEMA_VERSION):
                raise ValueError(f"{path}: database schema {row[0]}, this mxhw writes "
                                 f"{SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    try:
        _with_retries(setup)
    except sqlite3.DatabaseError as e:
        con.close()
        raise ValueError(f"{path}: not a usable SQLite database ({e})") from None
    except BaseException:
        con.close()
        raise
    return con


def done_keys(con):
    """Keys of the finished points."""
    return {k for (k,) in con.execute("SELECT key FROM points WHERE status = 'done'")}


def _num(v):
    return None if v is None else float(v)


def write_result(con, rec):
    """Insert or update one point's row (``rec``: a dict over :data:`COLUMNS`, JSON
    columns as Python objects) in one transaction; a ``done`` row already there is kept.
    Returns True when the row was written."""
    vals = dict(rec)
    for k in ("config", "figures", "metric", "tool_versions"):
        if vals.get(k) is not None and not isinstance(vals[k], str):
            vals[k] = json.dumps(vals[k], sort_keys=True, separators=(",", ":"))
    for k in ("luts", "ffs", "fmax_mhz", "objective", "seconds"):
        vals[k] = _num(vals.get(k))
    cols = ", ".join(COLUMNS)
    marks = ", ".join(f":{c}" for c in COLUMNS)
    upd = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "key")
    sql = (f"INSERT INTO points ({cols}) VALUES ({marks}) ON CONFLICT(key) DO UPDATE SET "
           f"{upd} WHERE points.status != 'done'")
    params = {c: vals.get(c) for c in COLUMNS}

    def tx():
        con.execute("BEGIN IMMEDIATE")
        try:
            n = con.execute(sql, params).rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return n > 0
    return _with_retries(tx)


def rows(con, keys=None):
    """The rows (dicts over :data:`COLUMNS`, JSON columns parsed) of ``keys`` in that
    order (missing keys left out), or every row by name."""
    cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM points ORDER BY name, key")
    got = {}
    for r in cur:
        d = dict(zip(COLUMNS, r))
        for k in ("config", "figures", "metric", "tool_versions"):
            if d[k] is not None:
                d[k] = json.loads(d[k])
        got[d["key"]] = d
    if keys is None:
        return list(got.values())
    return [got[k] for k in keys if k in got]


def _flat(r):
    """One CSV/plot row: the point's fields, the PPA figures and each metric value."""
    c = r["config"]
    h = c["hw"]
    out = {"key": r["key"], "name": r["name"], "status": r["status"], "rows": h["rows"],
           "cols": h["cols"], "dataflow": h["dataflow"], "fmt_a": h["fmt_a"],
           "fmt_b": h["fmt_b"], "acc": f"fixed({h['acc'][0]}, {h['acc'][1]})",
           "spec_name": c["spec_name"], "spec": json.dumps(c["spec"], sort_keys=True),
           "model": c["model"], "luts": r["luts"], "ffs": r["ffs"],
           "fmax_mhz": r["fmax_mhz"], "objective": r["objective"]}
    for k, v in sorted((r["metric"] or {}).items()):
        out[f"metric_{k}"] = v
    out.update({"rtl_hash": r["rtl_hash"], "error": r["error"], "started": r["started"],
                "finished": r["finished"], "seconds": r["seconds"]})
    return out


def export_csv(rs, path):
    """``rs`` (from :func:`rows`) as CSV, one line per point."""
    flat = [_flat(r) for r in rs]
    fields = list(dict.fromkeys(k for f in flat for k in f))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for f in flat:
            w.writerow({k: "" if f.get(k) is None else f[k] for k in fields})
    return path


def export_json(rs, path, info=None):
    """``rs`` as JSON: ``{"info": info, "points": rs}``."""
    Path(path).write_text(json.dumps({"info": info or {}, "points": rs}, indent=1,
                                     sort_keys=True) + "\n")
    return path


def pareto(rs, minimize=False):
    """Keys of the points on the Pareto front of fewer LUT4-eq. and a better objective
    (higher, or lower with ``minimize``), among finished points that have both."""
    pts = [(r["luts"], -r["objective"] if minimize else r["objective"], r["key"])
           for r in rs if r["status"] == "done" and r["luts"] is not None
           and r["objective"] is not None and not math.isnan(r["objective"])]
    front = []
    for luts, obj, key in pts:
        dominated = any(l2 <= luts and o2 >= obj and (l2 < luts or o2 > obj)
                        for l2, o2, _ in pts)
        if not dominated:
            front.append(key)
    return front


def plot_pareto(rs, path, objective, minimize=False, title=None):
    """Scatter of the objective against LUT4-eq. with the Pareto front; returns ``path``,
    or None when no point has both figures."""
    pts = [r for r in rs if r["status"] == "done" and r["luts"] is not None
           and r["objective"] is not None]
    if not pts:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    front = set(pareto(rs, minimize))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    ax.scatter([r["luts"] for r in pts], [r["objective"] for r in pts], s=18, c="0.6",
               label="points")
    fr = sorted((r for r in pts if r["key"] in front), key=lambda r: r["luts"])
    ax.plot([r["luts"] for r in fr], [r["objective"] for r in fr], "o-", color="C3",
            label="Pareto front")
    for r in fr:
        ax.annotate(r["name"], (r["luts"], r["objective"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("ECP5 LUT4-eq.")
    ax.set_ylabel(objective + (" (lower is better)" if minimize else ""))
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
