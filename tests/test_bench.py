"""The benchmark CLI: dispatch, JSON shape. Figures are never asserted on (no timing tests)."""

import json
import math
import subprocess
import sys

import pytest

from mxhw import bench

OCP = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]


def _run(*args):
    return subprocess.run([sys.executable, "-m", "mxhw.bench", *args], capture_output=True,
                          text=True, timeout=300)


def test_golden_cli_json(tmp_path):
    out = tmp_path / "golden.json"
    r = _run("golden", "--size", "64", "--json", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    cfg = data.pop("config")
    for key in ("machine", "python", "numpy"):
        assert isinstance(cfg[key], str) and cfg[key]
    assert cfg["size"] == 64
    for f in OCP:
        assert f"quantize_{f}_64_s" in data
        assert f"dequantize_{f}_64_s" in data
    for k, v in data.items():
        assert isinstance(v, (int, float)) and not isinstance(v, bool), k
        assert math.isfinite(v) and v > 0, (k, v)
    # the readable table names every format
    for f in OCP:
        assert f in r.stdout
    assert "Mvalues/s" in r.stdout


def test_golden_default_size_key():
    from mxhw.bench import golden as g
    figures, rows, config = g.run(size=40, formats=["mxfp4"])
    assert list(figures) == ["quantize_mxfp4_40_s", "dequantize_mxfp4_40_s"]
    assert config["size"] == 40 and rows[0][0] == "mxfp4"
    assert "mxfp4" in g.default_formats() and "mxfp4_e2m1" not in g.default_formats()


def test_default_size_is_4096(monkeypatch):
    from mxhw.bench import golden as g
    seen = {}

    def fake_run(size, formats, repeat):
        seen["size"] = size
        return {f"quantize_mxfp4_{size}_s": 1.0}, [("mxfp4", "1", "1", "1", "1")], \
            {"machine": "m", "cpus": 1, "python": "3", "numpy": "2"}
    monkeypatch.setattr(g, "run", fake_run)
    assert g.main([]) == 0
    assert seen["size"] == 4096


def test_unknown_suite():
    r = _run("nosuch")
    assert r.returncode == 2
    assert "unknown suite 'nosuch'; suites: " in r.stderr
    for name in bench.SUITES:
        assert name in r.stderr


def test_no_suite_prints_usage():
    r = _run()
    assert r.returncode == 2 and "usage: python -m mxhw.bench SUITE" in r.stderr
    assert bench.main(["--help"]) == 0


def test_golden_bad_options():
    r = _run("golden", "--size", "0")
    assert r.returncode == 2 and "--size must be a positive integer, not 0" in r.stderr
    r = _run("golden", "--size", "8", "--formats", "fp4_e2m1")
    assert r.returncode == 2 and "'fp4_e2m1' is not a block format; block formats:" in r.stderr
    r = _run("golden", "--size", "8", "--formats", "mxfp9")
    assert r.returncode == 2 and "unknown format 'mxfp9'" in r.stderr


def test_suites_registry_is_extensible(monkeypatch, capsys):
    calls = []
    monkeypatch.setitem(bench.SUITES, "demo", lambda argv: calls.append(argv) or 0)
    assert bench.main(["demo", "--json", "x"]) == 0
    assert calls == [["--json", "x"]]
    assert "golden" in bench.SUITES and callable(bench.SUITES["golden"])


def test_write_json_rejects_non_numbers(tmp_path):
    with pytest.raises(ValueError, match=r"figure 'a' must be a finite number, not 'x'"):
        bench.write_json(tmp_path / "f.json", {"a": "x"}, {})
    bench.write_json(tmp_path / "f.json", {"a": 1.5}, {"python": "3"})
    assert json.loads((tmp_path / "f.json").read_text()) == {"a": 1.5, "config": {"python": "3"}}
