"""mxhw.dse's results database: concurrent writers, kept finished rows, a bad file."""

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from mxhw import dse_db as db

WRITER = textwrap.dedent("""
    import sys
    from mxhw import dse_db as db
    path, who, lo, hi = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    con = db.connect(path)
    for i in range(lo, hi):
        cfg = {"hw": {"rows": 1, "cols": 1, "dataflow": "output_stationary",
                      "fmt_a": "mxfp4", "fmt_b": "mxfp4", "acc": [32, 16]},
               "spec_name": who, "spec": {"default": {"w": "mxfp4", "a": None}},
               "model": "m", "i": i}
        db.write_result(con, {"key": f"k{i:04d}", "name": f"p{i}", "config": cfg,
                              "status": "done", "luts": i, "metric": {"who": who, "i": i},
                              "objective": i / 2, "sweep": who, "started": "t0",
                              "finished": "t1", "seconds": 0.0})
    con.close()
""")


def test_two_writer_processes(tmp_path):
    script = tmp_path / "w.py"
    script.write_text(WRITER)
    path = tmp_path / "d" / "dse.sqlite"
    ranges = {"A": (0, 300), "B": (150, 450)}           # 150 keys written by both
    procs = [subprocess.Popen([sys.executable, str(script), str(path), who, str(lo),
                               str(hi)], stderr=subprocess.PIPE, text=True)
             for who, (lo, hi) in ranges.items()]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = con.execute("SELECT key, luts, metric, sweep, config, status FROM points").fetchall()
    con.close()
    assert sorted(r[0] for r in rows) == [f"k{i:04d}" for i in range(450)]
    for key, luts, metric, sweep, config, status in rows:
        i = int(key[1:])
        m, c = json.loads(metric), json.loads(config)
        # one writer's row, whole: every column from the same write
        assert status == "done" and luts == i and m == {"who": sweep, "i": i}
        assert c["spec_name"] == sweep and c["i"] == i
        lo, hi = ranges[sweep]
        assert lo <= i < hi


def test_a_done_row_is_kept_and_a_failed_one_replaced(tmp_path):
    con = db.connect(tmp_path / "x.sqlite")
    cfg = {"hw": {}}
    base = {"key": "k", "name": "n", "config": cfg, "started": "a", "finished": "b"}
    assert db.write_result(con, {**base, "status": "failed", "error": "boom"})
    assert db.write_result(con, {**base, "status": "done", "luts": 5})
    assert not db.write_result(con, {**base, "status": "done", "luts": 7})
    (r,) = db.rows(con)
    assert (r["status"], r["luts"], r["error"]) == ("done", 5.0, None)
    assert db.done_keys(con) == {"k"}
    con.close()


def test_not_a_database(tmp_path):
    (tmp_path / "dse.sqlite").write_text("this is not SQLite " * 100)
    with pytest.raises(ValueError, match="not a usable SQLite database"):
        db.connect(tmp_path / "dse.sqlite")
