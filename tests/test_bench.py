"""The benchmark CLI: dispatch, JSON shape. Figures are never asserted on (no timing tests)."""

import json
import math
import subprocess
import sys

import pytest

from mxhw import bench
from support.ppa import use_tools

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


# ---- bitserial: cycles and area at equal throughput ------------------------------------

SMALL = ["--rows", "4", "--cols", "32", "--pes", "2", "--lanes", "4", "--group", "16"]


class FakeSynth:
    """Stands in for Yosys and nextpnr (the real tools are in the slow test): writes the
    stat file of the target in the label with a LUT count that grows with the design's
    RTLIL (so different designs get different counts), counts the runs."""

    STAT = "=== ppa_top.dut ===\n\n  {n} cells\n  {l} LUT4\n  3 CCU2C\n  {f} TRELLIS_FF\n" \
           "  {d} MULT18X18D\n"

    def __init__(self):
        self.runs = []

    def __call__(self, cmd, cwd, log, label):
        import re
        self.runs.append(label)
        if "yosys" in label:
            target = re.search(r"\((\w+)\)", label).group(1)
            size = len((cwd / "design.il").read_text().splitlines())
            luts, ffs, dsps = size // 10, size // 20, 0 if target == "ecp5_nodsp" else 2
            (cwd / f"{target}_stat.txt").write_text(self.STAT.format(
                n=luts + ffs + dsps + 3, l=luts, f=ffs, d=dsps))
            if target == "ecp5":
                (cwd / "ecp5.json").write_text("{}")
        else:
            (cwd / "ecp5_report.json").write_text(json.dumps({
                "fmax": {"clk": {"achieved": 111.0, "constraint": 300.0}},
                "utilization": {}, "critical_paths": []}))


def _check_bitserial_json(data, rows, cols):
    cfg = data.pop("config")
    for key in ("gemv_cycles_w3", "gemv_cycles_w4", "gemv_cycles_w8", "gemv_cycles_bitmod_fp3",
                "gemv_cycles_bitmod_fp4", "ratio_w3", "ratio_w4", "ratio_w8",
                "parallel_int8_cycles", "engine_luts", "engine_ffs", "engine_dsp_luts",
                "engine_dsp_ffs", "engine_dsp_dsps"):
        assert key in data, key
    for k, v in data.items():
        assert isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), k
    for n in ("w3", "w4", "w8"):
        cycles = data[f"gemv_cycles_{n}"]
        assert data[f"ratio_{n}"] == cycles / data["parallel_int8_cycles"]
        assert data[f"engine_macs_per_cycle_{n}"] == rows * cols / cycles
        # P: the engine's measured MACs per cycle, rounded up
        p = data[f"parallel_lanes_{n}"]
        assert p >= 1 and p - 1 < rows * cols / cycles <= p
        assert data[f"area_ratio_{n}"] == data[f"parallel_luts_{n}"] / data["engine_luts"]
        for k in ("parallel_luts", "parallel_ffs", "parallel_dsp_luts", "parallel_dsp_ffs",
                  "parallel_dsp_dsps"):
            assert f"{k}_{n}" in data
    # fewer cycles -> more multipliers for the same throughput
    assert data["parallel_lanes_w3"] >= data["parallel_lanes_w4"] >= data["parallel_lanes_w8"]
    assert cfg["ecp5_part"] == "LFE5U-85F-6CABGA381"
    assert cfg["yosys"].startswith("Yosys ") and cfg["nextpnr_ecp5"]
    assert cfg["lut_only_synth"] == "synth_ecp5 -nodsp" and cfg["dsp_synth"] == "synth_ecp5"
    assert cfg["int_engine_types"] == ["int3", "int4", "int8"]
    return cfg


def test_bitserial_json_keys_consistent(tmp_path, monkeypatch, capsys):
    """Small engine, real simulation, fake synthesis: the keys and how they relate."""
    from mxhw.bench import bitserial
    fake = FakeSynth()
    use_tools(monkeypatch, fake)
    out = tmp_path / "bs.json"
    assert bitserial.main([*SMALL, "--cache", str(tmp_path / "c"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    cfg = _check_bitserial_json(data, 4, 32)
    # the engine's acc_width: act 8 + wbits 8 + clog2(group 16) + scale 8 + clog2(32 / 16)
    assert (cfg["pes"], cfg["lanes"], cfg["group"], cfg["acc_width"]) == (2, 4, 16, 29)
    # one engine, one datapath per distinct P, each LUT-only + DSP (+ place and route)
    designs = 1 + len({data[f"parallel_lanes_{n}"] for n in ("w3", "w4", "w8")})
    assert len(fake.runs) == 3 * designs
    assert data["engine_fmax_mhz"] == 111.0
    assert data["engine_dsp_dsps"] == 2 and data["parallel_dsp_dsps_w8"] == 2
    assert cfg["yosys"] in printed and "LFE5U-85F-6CABGA381" in printed
    assert "synth_ecp5 -nodsp" in printed
    # a re-run takes every synthesis result from the cache
    assert bitserial.main([*SMALL, "--cache", str(tmp_path / "c"), "--json", str(out)]) == 0
    assert len(fake.runs) == 3 * designs
    assert json.loads(out.read_text())["area_ratio_w3"] == data["area_ratio_w3"]


def test_bitserial_no_synth(tmp_path, monkeypatch):
    from mxhw.bench import bitserial
    fake = FakeSynth()
    use_tools(monkeypatch, fake)
    out = tmp_path / "bs.json"
    assert bitserial.main([*SMALL, "--no-synth", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert fake.runs == [] and "gemv_cycles_w3" in data
    assert not any(k.startswith(("area_ratio", "engine_", "parallel_lanes")) for k in data)


def test_bitserial_parallel_lanes():
    from mxhw.bench.bitserial import parallel_lanes
    assert parallel_lanes(16, 256, 107) == 39      # 38.28 MACs/cycle
    assert parallel_lanes(16, 256, 256) == 16      # exact
    assert parallel_lanes(1, 8, 100) == 1          # at least one multiplier


def test_bitserial_synth_failure_is_reported(tmp_path, monkeypatch):
    from mxhw.bench import bitserial
    from mxhw.build import BuildError

    def failing(cmd, cwd, log, label):
        raise BuildError(f"{label} failed (exit code 1)")
    use_tools(monkeypatch, failing)
    figures, _, config = bitserial.run(rows=2, cols=16, pes=2, lanes=4, group=16)
    with pytest.raises(RuntimeError, match=r"bitserial_gemv_p2_l4_g16_c16_int3_4_8 "
                                           r"\(ecp5_nodsp\) failed:\nyosys synth"):
        bitserial.synthesise(figures, config, cache=tmp_path)


@pytest.mark.slow
@pytest.mark.toolchain
def test_bitserial_real_tools(tmp_path):
    """Yosys and nextpnr on a tiny engine and its bit-parallel datapaths (tens of seconds):
    the LUT-only mapping has no DSP cells, the DSP mapping of an INT8 multiplier has."""
    out = tmp_path / "bs.json"
    r = _run("bitserial", "--rows", "2", "--cols", "16", "--pes", "2", "--lanes", "2",
             "--group", "8", "--cache", str(tmp_path / "c"), "--json", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    _check_bitserial_json(data, 2, 16)
    assert data["engine_luts"] > 0 and data["engine_ffs"] > 0
    for n in ("w3", "w4", "w8"):
        assert data[f"parallel_luts_{n}"] > 0 and data[f"parallel_dsp_dsps_{n}"] >= 1
        assert data[f"parallel_fmax_mhz_{n}"] > 1
    # a fresh cache: the engine is synthesised (equal P at two precisions is one design,
    # so a later datapath may already be cached within the run)
    assert "bitserial_gemv_p2_l2_g8_c16_int3_4_8: cached" not in r.stdout
    again = _run("bitserial", "--rows", "2", "--cols", "16", "--pes", "2", "--lanes", "2",
                 "--group", "8", "--cache", str(tmp_path / "c"))
    assert again.returncode == 0, again.stderr
    designs = [l for l in again.stdout.splitlines() if l.startswith("  bitserial_gemv_")
               or l.startswith("  parallel_int8_mac_")]
    assert designs and all(l.endswith(": cached") for l in designs), again.stdout
