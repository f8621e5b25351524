"""mxhw.dse sweeps: Dask against serial, restart, concurrent sweeps on one database,
failures, exports, the command line, and (toolchain) the PPA suite's figures."""

import csv
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mxhw import dse
from mxhw.dse_db import pareto
from mxhw.dse_space import check_space, point_key, points
from support.dse import Counter, exit_worker, golden_sqnr, rtlil_cells, space, spec

TESTS = Path(__file__).resolve().parents[1]

#: The figures a sweep's table holds per point (timestamps and durations differ per run).
TABLE = ("key", "name", "config", "status", "luts", "ffs", "fmax_mhz", "figures",
         "metric", "objective", "rtl_hash", "error")


def _table(res):
    return [{k: r[k] for k in TABLE} for r in res["points"]]


def _check_against_golden(res, space_dict):
    """Every point done, with the figures its callables give (computed here)."""
    pts = points(check_space(space_dict))
    assert [r["key"] for r in res["points"]] == [point_key(p) for p in pts]
    for r, p in zip(res["points"], pts):
        assert r["status"] == "done", r["error"]
        want = golden_sqnr(p)
        assert r["metric"] == pytest.approx(want)
        assert r["objective"] == pytest.approx(want["sqnr_db"])
        if space_dict["sweep"].get("ppa"):
            cells = rtlil_cells(p)
            assert (r["luts"], r["ffs"], r["rtl_hash"]) == \
                (cells["luts"], cells["ffs"], cells["rtl_hash"])


@pytest.mark.slow
def test_dask_local_cluster_matches_serial(tmp_path):
    s = space(sizes=[1, 2], formats=["mxfp4", ["mxint8", "mxfp4"]], ppa=True,
              objective="sqnr_db")
    serial = dse.run_sweep(s, metric=golden_sqnr, ppa=rtlil_cells, scheduler="serial",
                           out=tmp_path / "serial", progress=False)
    par = dse.run_sweep(s, metric=golden_sqnr, ppa=rtlil_cells, scheduler=None, workers=2,
                        out=tmp_path / "dask", progress=False)
    assert len(serial["points"]) == 2 * 2 * 2
    assert _table(par) == _table(serial)
    assert (par["ppa_calls"], par["metric_calls"]) == (4, 2)
    _check_against_golden(serial, s)
    # and the exports agree
    for name in ("dse.csv",):
        a = list(csv.DictReader(open(tmp_path / "serial" / name)))
        b = list(csv.DictReader(open(tmp_path / "dask" / name)))
        drop = ("started", "finished", "seconds")
        assert [{k: v for k, v in r.items() if k not in drop} for r in a] == \
            [{k: v for k, v in r.items() if k not in drop} for r in b]


def test_restart_reuses_finished_points(tmp_path):
    s = space(sizes=[1, 2], ppa=True, objective="sqnr_db",
              specs={"w4": spec("mxfp4", "mxint8")})
    ppa, met = Counter(rtlil_cells), Counter(golden_sqnr)
    first = dse.run_sweep(s, metric=met, ppa=ppa, scheduler="serial", out=tmp_path,
                          progress=False)
    assert (len(ppa.calls), len(met.calls)) == (2, 1)      # one per array, one per spec
    assert (first["computed"], first["reused"]) == (2, 0)
    ppa2, met2 = Counter(rtlil_cells), Counter(golden_sqnr)
    again = dse.run_sweep(s, metric=met2, ppa=ppa2, scheduler="serial", out=tmp_path,
                          progress=False)
    assert (ppa2.calls, met2.calls) == ([], [])
    assert (again["computed"], again["reused"]) == (0, 2)
    assert _table(again) == _table(first)
    # a larger space: only its new points are computed
    s["specs"]["w8"] = spec("mxint8")
    ppa3, met3 = Counter(rtlil_cells), Counter(golden_sqnr)
    grown = dse.run_sweep(s, metric=met3, ppa=ppa3, scheduler="serial", out=tmp_path,
                          progress=False)
    assert [c["spec"]["default"]["w"] for c in met3.calls] == ["mxint8"]
    assert sorted(c["hw"]["rows"] for c in ppa3.calls) == [1, 2]
    assert (grown["computed"], grown["reused"]) == (2, 2)
    _check_against_golden(grown, s)
    # --rerun: everything again
    ppa4, met4 = Counter(rtlil_cells), Counter(golden_sqnr)
    dse.run_sweep(s, metric=met4, ppa=ppa4, scheduler="serial", out=tmp_path,
                  progress=False, rerun=True)
    assert (len(ppa4.calls), len(met4.calls)) == (2, 2)


def test_failed_points_are_stored_and_retried(tmp_path):
    s = space(sizes=[1, 2], ppa=True, objective="sqnr_db",
              specs={"w4": spec("mxfp4")})
    bad = Counter(rtlil_cells, fail=lambda p: p["hw"]["rows"] == 2)
    res = dse.run_sweep(s, metric=golden_sqnr, ppa=bad, scheduler="serial", out=tmp_path,
                        progress=False)
    status = {r["config"]["hw"]["rows"]: (r["status"], r["error"]) for r in res["points"]}
    assert status[1] == ("done", None)
    assert status[2] == ("failed", "ppa: RuntimeError: injected failure")
    assert res["failed"] == 1
    ppa = Counter(rtlil_cells)
    res = dse.run_sweep(s, metric=golden_sqnr, ppa=ppa, scheduler="serial", out=tmp_path,
                        progress=False)
    assert [c["hw"]["rows"] for c in ppa.calls] == [2]
    _check_against_golden(res, s)


@pytest.mark.parametrize("metric, err", [
    (lambda p: 3.0, "metric: TypeError: metric returned float, not a dict"),
    (lambda p: {"other": 1.0}, "metric: no number 'sqnr_db' (the objective)"),
    (lambda p: {"sqnr_db": object()}, "metric: TypeError: "),
])
def test_bad_metric_results_fail_the_point(tmp_path, metric, err):
    s = space(sizes=[1], objective="sqnr_db", specs={"w4": spec("mxfp4")})
    res = dse.run_sweep(s, metric=metric, scheduler="serial", out=tmp_path, progress=False)
    (r,) = res["points"]
    assert r["status"] == "failed"
    assert r["error"].startswith(err)


def test_ppa_without_luts_fails_the_point(tmp_path):
    s = space(sizes=[1], ppa=True, specs={"w4": spec("mxfp4")})
    res = dse.run_sweep(s, ppa=lambda p: {"ffs": 3}, metric=golden_sqnr,
                        scheduler="serial", out=tmp_path, progress=False)
    assert res["points"][0]["error"] == "ppa: ValueError: ppa returned no number 'luts' (None)"


@pytest.mark.slow
def test_a_lost_worker_fails_its_point_not_the_sweep(tmp_path):
    import dask
    from distributed import Client, LocalCluster
    s = space(sizes=[1], specs={"w4": spec("mxfp4")}, objective="sqnr_db")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        res = dse.run_sweep(s, metric=exit_worker, scheduler=client, out=tmp_path,
                            progress=False)
        (r,) = res["points"]
        assert r["status"] == "failed"
        assert r["error"].startswith("metric: Dask: KilledWorker: "), r["error"]
        # the client's cluster is still usable, and the point is retried
        res = dse.run_sweep(s, metric=golden_sqnr, scheduler=client, out=tmp_path,
                            progress=False)
    assert res["computed"] == 1
    _check_against_golden(res, s)


CONCURRENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from mxhw import dse
    from support.dse import slow_sqnr, space, spec
    specs = {{n: spec(n) for n in sys.argv[2].split(",")}}
    s = space(sizes=[1, 2, 3, 4], specs=specs, objective="sqnr_db")
    dse.run_sweep(s, metric=slow_sqnr, scheduler="serial", out=sys.argv[1], progress=False)
""")


def test_two_concurrent_sweeps_leave_a_consistent_database(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(CONCURRENT.format(tests=str(TESTS)))
    groups = ["mxfp4,mxint8,mxfp6_e2m3", "mxint8,mxfp6_e2m3,mxfp8_e4m3"]
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "out"), g],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for g in groups]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    con = sqlite3.connect(tmp_path / "out" / "dse.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = con.execute("SELECT key, config, status, metric FROM points").fetchall()
    con.close()
    want = {}
    for g in groups:
        s = space(sizes=[1, 2, 3, 4], specs={n: spec(n) for n in g.split(",")})
        for p in points(check_space(s)):
            want[point_key(p)] = p
    assert sorted(k for k, *_ in rows) == sorted(want)          # each point once
    for key, config, status, metric in rows:
        assert status == "done"
        p = json.loads(config)
        assert point_key(p) == key
        assert json.loads(metric) == pytest.approx(golden_sqnr(p))


def test_pareto_front():
    def row(key, luts, obj, status="done"):
        return {"key": key, "luts": luts, "objective": obj, "status": status}
    rs = [row("a", 100, 10.0), row("b", 200, 20.0), row("c", 150, 5.0),
          row("d", 200, 15.0), row("e", 50, 1.0), row("f", 10, 99.0, "failed"),
          row("g", 300, float("nan")), row("h", 100, 10.0)]
    assert sorted(pareto(rs)) == ["a", "b", "e", "h"]
    assert sorted(pareto(rs, minimize=True)) == ["e"]


# ---- the command line --------------------------------------------------------------------

TINY = """
[sweep]
name = "tiny"
metric = "sqnr"
ppa = true

[hardware]
sizes = [1, 2]
formats = ["mxfp4"]

[specs.w4]
default = {w = "mxfp4", a = "mxint8"}

[specs.w8]
default = {w = "mxint8"}
"*.attn.*" = {w = "mxfp8_e4m3", a = "none"}
"""


def _cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "mxhw.dse", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_cli_end_to_end_without_synthesis(tmp_path):
    from mxhw.golden import compare
    (tmp_path / "tiny.toml").write_text(TINY)
    r = _cli("--space", "tiny.toml", "--out", "res", "--no-ppa", "--workers", "1", "-q",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dse: 4 point(s): 4 computed (0 failed), 0 reused" in r.stdout
    assert "Traceback" not in r.stderr
    res = tmp_path / "res"
    for f in ("dse.sqlite", "dse.csv", "dse.json"):
        assert f"wrote res/{f}" in r.stdout
        assert (res / f).stat().st_size > 0
    assert not (res / "pareto.png").exists()        # no LUT figures, no plot
    rows = list(csv.DictReader(open(res / "dse.csv")))
    assert len(rows) == 4
    t = compare.synthetic(0, (64, 256))
    for row in rows:
        w = {"w4": "mxfp4", "w8": "mxint8"}[row["spec_name"]]
        bpv, sqnr, _ = compare.evaluate(t["gaussian"], w)
        assert float(row["objective"]) == pytest.approx(sqnr)
        assert float(row["metric_bits_per_weight"]) == bpv
        assert row["status"] == "done" and row["luts"] == ""
    doc = json.loads((res / "dse.json").read_text())
    assert len(doc["points"]) == 4 and doc["info"]["objective"] == "sqnr_db"
    # a second run reuses every point
    r = _cli("--space", "tiny.toml", "--out", "res", "--no-ppa", "--serial", "-q",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dse: 4 point(s): 0 computed (0 failed), 4 reused" in r.stdout
    # --list
    r = _cli("--space", "tiny.toml", "--list", cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 4
    assert "mxfp4_2x2_os/w8" in r.stdout


def test_cli_writes_a_pareto_plot(tmp_path, monkeypatch, capsys):
    # in process, so the PPA callable can be a cheap one (no synthesis)
    (tmp_path / "tiny.toml").write_text(TINY)
    monkeypatch.setattr(dse, "suite_ppa", lambda point, cache=None: rtlil_cells(point))
    rc = dse.main(["--space", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "o"),
                   "--serial", "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    png = (tmp_path / "o" / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "pareto: mxfp4_1x1_os/w8" in out        # the fewest cells and the best SQNR


@pytest.mark.parametrize("args, text, msg", [
    (["--space", "s.toml"], '[hardware]\nsizes = [99]\nformats = ["mxfp4"]\n',
     "s.toml: hardware.sizes[0]: an integer in 1..16, not 99"),
    (["--space", "s.toml"], "[hardware\n", "not valid TOML"),
    (["--space", "missing.toml"], None, "cannot read"),
    (["--space", "s.toml", "--scheduler", "tcp://127.0.0.1:9", "--no-ppa"], TINY,
     "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
])
def test_cli_errors_are_one_line(tmp_path, args, text, msg):
    if text is not None:
        (tmp_path / "s.toml").write_text(text)
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    r = _cli(*args, "--out", "o", cwd=tmp_path, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("dse: error: ") and msg in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_usage_errors(tmp_path):
    r = _cli("--space", "s.toml", "--workers", "0", cwd=tmp_path)
    assert r.returncode == 2 and "--workers must be at least 1" in r.stderr
    r = _cli(cwd=tmp_path)
    assert r.returncode == 2 and "--space" in r.stderr


# ---- the PPA suite (synthesis) -------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.toolchain
def test_suite_ppa_of_the_smallest_array(tmp_path):
    """The default PPA is the suite's: a 2x2 MXFP4 point gets the figures of
    ``array_mxfp4_2x2`` from :func:`mxhw.bench.ppa.run_config` (the same cache entry)."""
    from mxhw.bench.ppa import run_config
    s = space(sizes=[2], ppa=True, specs={"w4": spec("mxfp4")})
    cache = tmp_path / "cache"
    res = dse.run_sweep(s, scheduler="serial", out=tmp_path / "o", cache=cache,
                        progress=False)
    (r,) = res["points"]
    assert r["status"] == "done", r["error"]
    suite = run_config("array_mxfp4_2x2", cache, targets=("ecp5",))
    assert suite["cached"] == {"ecp5": True}            # the sweep filled the suite's cache
    e = suite["ecp5"]
    assert (r["luts"], r["ffs"], r["fmax_mhz"], r["rtl_hash"]) == \
        (e["luts"], e["ffs"], e["fmax_mhz"], suite["rtl_hash"])
    assert r["luts"] > 0 and r["fmax_mhz"] > 0
    assert set(r["tool_versions"]) == {"yosys", "nextpnr_ecp5"}
    assert r["figures"]["config"] == "array_mxfp4_2x2"


def test_default_model_metric_follows_the_mxhw_model_contract(tmp_path, monkeypatch):
    """Without a metric, a ``metric = "model"`` sweep calls
    ``mxhw.model.evaluate(model=..., spec=Spec.from_dict(point's spec), texts=None)``
    once per spec (a stand-in mxhw.model here: the real one is another branch's)."""
    import importlib.machinery
    import types

    import mxhw
    calls = []

    class Spec:
        def __init__(self, d):
            self.d = d

        @classmethod
        def from_dict(cls, d):
            return cls(d)

    def evaluate(model="minilm", spec=None, texts=None):
        calls.append((model, spec.d, texts))
        w = spec.d["default"]["w"]
        return {"bits_per_weight": {"mxfp4": 4.25, "mxint8": 8.25}[w],
                "cos_mean": {"mxfp4": 0.9, "mxint8": 0.99}[w], "cos_min": 0.5,
                "top1_agree": 0.8}
    fake = types.ModuleType("mxhw.model")
    fake.__spec__ = importlib.machinery.ModuleSpec("mxhw.model", None)
    fake.Spec, fake.evaluate = Spec, evaluate
    monkeypatch.setitem(sys.modules, "mxhw.model", fake)
    monkeypatch.setattr(mxhw, "model", fake, raising=False)
    s = space(sizes=[1, 2], metric="model", model="tiny-bert",
              specs={"w4": spec("mxfp4", "mxint8"),
                     "w8": spec("mxint8", **{"*.attn.*": {"w": "mxfp4", "a": "none"}})})
    res = dse.run_sweep(s, scheduler="serial", out=tmp_path, progress=False)
    assert calls == [("tiny-bert", {"default": {"w": "mxfp4", "a": "mxint8"}}, None),
                     ("tiny-bert", {"default": {"w": "mxint8", "a": None},
                                    "*.attn.*": {"w": "mxfp4", "a": None}}, None)]
    assert res["objective"] == "cos_mean"
    assert [r["objective"] for r in res["points"]] == [0.9, 0.99, 0.9, 0.99]
    assert all(r["status"] == "done" for r in res["points"])
