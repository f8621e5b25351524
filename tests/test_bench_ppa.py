"""``python -m mxhw.bench ppa``: configuration registry, harness, cache, JSON keys.

Figures are never asserted to equal a value (they are what the tools measure); the tests
check that the harness keeps the block's logic, that the cache avoids tool runs, and the
shape of the output. The real-tool tests use the smallest configuration (seconds).
"""

import json
import math
import re

import pytest
from amaranth.lib import wiring

from mxhw import bench
from mxhw.bench import ppa
from mxhw.bench.ppa import runner
from support.ppa import FAKE_VERSIONS, FakeTools, fake_result, use_tools

TINY = "mul_fp4_e2m1_x_fp4_e2m1"


# ---- registry --------------------------------------------------------------------------

def test_registered_suite():
    assert "ppa" in bench.SUITES


def test_config_names():
    names = list(ppa.CONFIGS)
    assert len(names) == len(set(names))
    for n, cfg in ppa.CONFIGS.items():
        assert cfg.name == n
        assert n.startswith(cfg.block + "_") and re.fullmatch(r"[a-z0-9_]+", n), n
        assert cfg.macs_per_cycle >= 0
    for a, b in ppa.MUL_PAIRS:
        assert f"mul_{a}_x_{b}" in names
    for f in ppa.MX_FORMATS:
        assert f"dot_{f}" in names and f"requant_{f}" in names
        assert (f"align_{f}" in names) == f.startswith("mxfp")
    for f in ("mxfp4", "mxint8"):
        for n in (4, 8, 16):
            assert f"array_{f}_{n}x{n}" in names
            assert ppa.CONFIGS[f"array_{f}_{n}x{n}"].macs_per_cycle == n * n
    assert "modeswitch_mxsf" in names
    assert any(cfg.block == "bitserial" for cfg in ppa.CONFIGS.values())
    bs = ppa.CONFIGS["array_bitserial_mxint8_4x4"]
    assert bs.block == "array" and bs.macs_per_cycle == 16 / 8      # 8 cycles per K step
    assert bs.make().pe_type == "bitserial"
    assert ppa.CONFIGS["dot_mxfp4"].macs_per_cycle == 32
    assert set(ppa.QUICK) <= set(names) | {ppa.SOC}


def test_requant_configs_record_their_pipeline():
    """The re-quantiser configurations build the depth their params show (the report's
    column), the deepest one."""
    from mxhw.dequant import Requantizer
    for f in ppa.MX_FORMATS:
        cfg = ppa.CONFIGS[f"requant_{f}"]
        dut = cfg.make()
        assert cfg.params["pipeline"] == ppa.REQUANT_PIPELINE == dut.latency
        assert (dut.k, dut.in_width, dut.in_frac) == (
            cfg.params["k"], cfg.params["in_width"], cfg.params["in_frac"])
    with pytest.raises(ValueError):
        Requantizer("mxfp4", pipeline=ppa.REQUANT_PIPELINE + 1)


@pytest.mark.parametrize("name", list(ppa.CONFIGS))
def test_config_builds_its_block(name):
    from mxhw.dequant import Aligner, MXSFDecoder, Requantizer
    from mxhw.pe import BitSerialPE, ElementMultiplier, MXDotProduct
    from mxhw.systolic import ScalableArray, SystolicArray
    from mxhw.systolic.tilearray import TileArray
    from mxhw.soc.tileunit import TileGemmUnit
    kinds = {"tilearray": TileArray, "tileunit": TileGemmUnit,
             "mul": ElementMultiplier, "dot": MXDotProduct, "align": Aligner,
             "modeswitch": MXSFDecoder, "requant": Requantizer, "bitserial": BitSerialPE,
             "array": SystolicArray, "scalable": ScalableArray}
    cfg = ppa.CONFIGS[name]
    dut = cfg.make()
    assert isinstance(dut, kinds[cfg.block]) and isinstance(dut, wiring.Component)
    assert cfg.make() is not dut


def test_select():
    everything = ppa.select(large=True)
    assert everything == [*ppa.CONFIGS, ppa.SOC]
    large = [n for n in ppa.CONFIGS
             if re.fullmatch(r"array_.*_16x16", n) or n.startswith("scalable_")]
    assert large and [n for n in everything if ppa.is_large(n)] == large
    assert ppa.select() == [n for n in everything if n not in large]
    assert ppa.select(r"_16x16$|^scalable_") == large      # --only reaches the large arrays
    assert ppa.select(quick=True) == ppa.QUICK
    assert ppa.select(r"^array_mxint8_") == [f"array_mxint8_{n}x{n}" for n in ppa.ARRAY_SIZES]
    assert ppa.select("soc") == [ppa.SOC]
    assert ppa.select("align", quick=True) == ["align_mxfp4"]


@pytest.mark.parametrize("only, quick, msg", [
    ("nope", False, "--only 'nope' matches no configuration; configurations: mul_"),
    ("dot", True, "--only 'dot' matches no configuration; configurations: "
                  + ", ".join(ppa.QUICK)),
    ("(", False, "--only '(' is not a regular expression: missing ), unterminated subpattern"),
])
def test_select_errors(only, quick, msg):
    with pytest.raises(ValueError) as e:
        ppa.select(only, quick)
    assert str(e.value).startswith(msg)


def test_cli_unknown_only(capsys):
    with pytest.raises(SystemExit) as e:
        ppa.main(["--only", "no_such_block", "--cache", "unused"])
    assert e.value.code == 2
    assert "--only 'no_such_block' matches no configuration" in capsys.readouterr().err


def test_cli_list(capsys):
    assert ppa.main(["--quick", "--list"]) == 0
    assert capsys.readouterr().out.split() == ppa.QUICK


# ---- harness ---------------------------------------------------------------------------

def _port_bits(dut):
    from amaranth.hdl import Value
    ins = outs = 0
    for _, member, value in dut.signature.flatten(dut):
        if member.flow == wiring.In:
            ins += len(Value.cast(value))
        else:
            outs += len(Value.cast(value))
    return ins, outs


def test_harness_ports():
    """The harness reaches the block through sin/sout only, and every block port is
    connected (the block module keeps all its port bits)."""
    il = ppa.harness_rtlil(ppa.CONFIGS["dot_mxint8"])
    top = il[il.index("module \\ppa_top\n"):]
    top = top[:top.index("\nend\n")]
    ports = sorted(re.findall(r"wire width \d+ (?:input|output) \d+\s+\\(\S+)", top))
    assert ports == ["clk", "rst", "sin", "sout"]
    dut = ppa.CONFIGS["dot_mxint8"].make()
    ins, outs = _port_bits(dut)
    blk = il[il.index("module \\ppa_top.dut\n"):]
    blk = blk[:blk.index("\nend\n")]
    widths = re.findall(r"wire width (\d+) (input|output) \d+\s", blk)
    assert sum(int(w) for w, d in widths if d == "input") == ins + 2   # + clk, rst
    assert sum(int(w) for w, d in widths if d == "output") == outs


def test_strip_src_keeps_the_netlist():
    il = ppa.harness_rtlil(ppa.CONFIGS[TINY])
    stripped = ppa.strip_src(il)
    assert "attribute \\src" in il and "\\src" not in stripped
    assert stripped.count("\ncell ") == il.count("\ncell ")
    assert stripped.count("\n  cell ") == il.count("\n  cell ")


@pytest.mark.toolchain
def test_harness_keeps_logic(tmp_path):
    """Real synthesis of the smallest block: the block's module keeps a non-trivial number
    of cells and every figure is a positive (or zero) count."""
    work = tmp_path
    (work / "design.il").write_text(ppa.harness_rtlil(ppa.CONFIGS[TINY]))
    cells = ppa.synth(work, "ecp5")
    fig = ppa.ecp5_figures(cells)
    assert sum(cells.values()) > 10
    assert fig["luts"] + 18 * fig["dsps"] > 10
    assert all(v >= 0 for v in fig.values())
    fmax = ppa.place_and_route(work)
    assert math.isfinite(fmax) and fmax > 1
    xcells = ppa.synth(work, "xc7")
    assert ppa.xc7_figures(xcells)["luts"] > 10


@pytest.mark.toolchain
def test_nodsp_target_maps_multipliers_to_luts(tmp_path):
    """Real synthesis of the INT8 multiplier: ``synth_ecp5`` puts it in a MULT18X18D,
    ``-nodsp`` (target ecp5_nodsp) in LUT logic only."""
    (tmp_path / "design.il").write_text(ppa.harness_rtlil(ppa.CONFIGS["mul_int8_x_int8"]))
    dsp = ppa.ecp5_figures(ppa.synth(tmp_path, "ecp5"))
    lut = ppa.ecp5_figures(ppa.synth(tmp_path, "ecp5_nodsp"))
    assert dsp["dsps"] >= 1
    assert lut["dsps"] == 0 and lut["luts"] > dsp["luts"] + 30
    assert "synth_ecp5 -nodsp" in ppa.SCRIPTS["ecp5_nodsp"]
    assert "-nodsp" not in ppa.SCRIPTS["ecp5"]


# ---- cache -----------------------------------------------------------------------------

def test_cache_avoids_tool_runs(tmp_path, monkeypatch):
    fake = FakeTools()
    use_tools(monkeypatch, fake)
    first = ppa.run_config(TINY, tmp_path)
    assert fake.runs == ["yosys synth (ecp5)", "nextpnr-ecp5", "yosys synth (xc7)"]
    assert first["cached"] == {"ecp5": False, "xc7": False} and not first["errors"]
    assert first["ecp5"]["luts"] == 40 and first["ecp5"]["fmax_mhz"] == 123.46
    assert first["xc7"]["luts"] == 30 and first["xc7"]["ffs"] == 9
    again = ppa.run_config(TINY, tmp_path)
    assert len(fake.runs) == 3, "a cached configuration ran the tools again"
    assert again["cached"] == {"ecp5": True, "xc7": True}
    for t in ("ecp5", "xc7"):
        assert again[t] == {k: v for k, v in first[t].items()}
    # another configuration is another RTL hash: it runs
    ppa.run_config("mul_int8_x_int8", tmp_path, targets=("xc7",))
    assert len(fake.runs) == 4
    # --rerun ignores the cache
    ppa.run_config(TINY, tmp_path, targets=("ecp5",), rerun=True)
    assert fake.runs[4:] == ["yosys synth (ecp5)", "nextpnr-ecp5"]


def test_seeds_median_and_spread(tmp_path, monkeypatch):
    """Several placer seeds: nextpnr once per seed on one synthesis; Fmax is the median,
    the spread is kept; the seeds are part of the cache key."""
    fake = FakeTools(fmax={1: 130.0, 2: 101.0, 3: 120.0})
    placed = []

    def tools(cmd, cwd, log, label):
        fake(cmd, cwd, log, label)
        if label == "nextpnr-ecp5":
            placed.append(int(cmd[cmd.index("--seed") + 1]))
    use_tools(monkeypatch, tools)
    r = ppa.run_config(TINY, tmp_path, targets=("ecp5",), seeds=(1, 2, 3))
    assert fake.runs == ["yosys synth (ecp5)"] + ["nextpnr-ecp5"] * 3 and placed == [1, 2, 3]
    assert r["ecp5"]["fmax_mhz"] == 120.0
    assert r["ecp5"]["fmax_seeds_mhz"] == {"1": 130.0, "2": 101.0, "3": 120.0}
    fig = ppa.figures([r])
    assert (fig[f"{TINY}_fmax_mhz"], fig[f"{TINY}_fmax_min_mhz"],
            fig[f"{TINY}_fmax_max_mhz"]) == (120.0, 101.0, 130.0)
    cfg = ppa.run_config_info({"yosys": "Yosys X", "nextpnr_ecp5": "nextpnr Y"})
    cfg["nextpnr_seeds"] = [1, 2, 3]
    ppa.write_report([r], tmp_path / "rep", cfg)
    assert "the median over placer seeds 1, 2, 3)" in (tmp_path / "rep" / "ppa.md").read_text()
    assert ppa.run_config(TINY, tmp_path, targets=("ecp5",), seeds=(1, 2, 3))["cached"] == \
        {"ecp5": True}
    one = ppa.run_config(TINY, tmp_path, targets=("ecp5",))       # seed 1 alone: its own key
    assert one["cached"] == {"ecp5": False} and placed == [1, 2, 3, 1]
    assert one["ecp5"]["fmax_mhz"] == 130.0 and "fmax_seeds_mhz" not in one["ecp5"]
    assert f"{TINY}_fmax_min_mhz" not in ppa.figures([one])
    for bad in [(), (0,), (1, 1), (1.5,), (True,)]:
        with pytest.raises(ValueError, match=r"seeds must be distinct positive integers"):
            ppa.run_config(TINY, tmp_path, seeds=bad)


def test_cli_seeds_wrong(capsys):
    with pytest.raises(SystemExit):
        ppa.main(["--seeds", "0", "--only", TINY])
    assert "--seeds must be at least 1, not 0" in capsys.readouterr().err


def test_run_config_takes_a_config(tmp_path, monkeypatch):
    """A Config outside the registry (another suite's block), LUT-only target: synthesis
    only (no place and route), cached under the Config's name."""
    from mxhw.pe import ParallelMAC
    fake = FakeTools(luts=40)
    calls = fake.runs
    use_tools(monkeypatch, fake)
    cfg = ppa.Config("parallel_demo", "parallel", lambda: ParallelMAC(lanes=2), 2)
    assert "parallel_demo" not in ppa.CONFIGS
    r = ppa.run_config(cfg, tmp_path, targets=("ecp5_nodsp",))
    assert calls == ["yosys synth (ecp5_nodsp)"] and not r["errors"]
    assert r["name"] == "parallel_demo" and r["ecp5_nodsp"]["luts"] == 40
    assert "fmax_mhz" not in r["ecp5_nodsp"]
    assert list(tmp_path.glob("parallel_demo.ecp5_nodsp.*.json"))
    assert ppa.run_config(cfg, tmp_path, targets=("ecp5_nodsp",))["cached"] == \
        {"ecp5_nodsp": True}
    assert len(calls) == 1
    with pytest.raises(ValueError, match=r"unknown target\(s\) \['ice40'\]; targets: "
                                         r"ecp5, ecp5_nodsp, xc7"):
        ppa.run_config(cfg, tmp_path, targets=("ice40",))


def test_too_large_is_not_placed(tmp_path, monkeypatch):
    fake = FakeTools(luts=ppa.ECP5_CAPACITY["luts"] + 1)
    use_tools(monkeypatch, fake)
    r = ppa.run_config("array_mxfp4_2x2", tmp_path, targets=("ecp5",))
    assert fake.runs == ["yosys synth (ecp5)"]
    assert r["ecp5"]["fits"] is False and r["ecp5"]["over_capacity"] == ["luts"]
    fig = ppa.figures([r])
    assert fig["array_mxfp4_2x2_luts"] == ppa.ECP5_CAPACITY["luts"] + 1
    assert "array_mxfp4_2x2_fmax_mhz" not in fig and "array_mxfp4_2x2_peak_gmac_s" not in fig
    assert ppa.table_rows([r])[0][5] == "n/f"
    cfg = ppa.run_config_info({"yosys": "Yosys X", "nextpnr_ecp5": "nextpnr Y"})
    ppa.write_report([r], tmp_path / "rep", cfg)
    assert "`array_mxfp4_2x2`: n/f = does not fit the LFE5U-85F-6CABGA381 (luts 83641 > " \
           "83640): synthesised, not placed." in (tmp_path / "rep" / "ppa.md").read_text()


def test_cache_key_follows_tool_versions(tmp_path, monkeypatch):
    fake = FakeTools()
    use_tools(monkeypatch, fake)
    ppa.run_config(TINY, tmp_path, targets=("xc7",))
    monkeypatch.setattr(runner, "tool_versions",
                        lambda: {"yosys": "Yosys 99.0", "nextpnr_ecp5": "nextpnr-99"})
    r = ppa.run_config(TINY, tmp_path, targets=("xc7",))
    assert r["cached"] == {"xc7": False} and len(fake.runs) == 2


def test_tool_failure_is_reported(tmp_path, monkeypatch):
    from mxhw.toolchain import ToolError

    def failing(cmd, cwd, log, label):
        raise ToolError(f"{label} failed (exit code 1)")
    use_tools(monkeypatch, failing)
    r = ppa.run_config(TINY, tmp_path)
    assert r["errors"] == {"ecp5": "yosys synth (ecp5) failed (exit code 1)",
                           "xc7": "yosys synth (xc7) failed (exit code 1)"}
    assert "ecp5" not in r and ppa.figures([r]) == {f"{TINY}_macs_per_cycle": 1}
    assert not list(tmp_path.glob("*.json")), "a failure must not be cached"


def test_soc_figure_cached(tmp_path, monkeypatch):
    import mxhw.build
    calls = []

    def fake_build(board, out=None, config=None, seed=1):
        calls.append(board)
        return {"requested_mhz": 25.0, "seconds": 1.0, "config": {"rows": 2},
                "fmax": {"$glbnet$clk": {"achieved_mhz": 81.5, "constraint_mhz": 25.0},
                         "osc": {"achieved_mhz": 300.0, "constraint_mhz": 25.0}},
                "utilization": {"TRELLIS_COMB": {"used": 1200, "available": 83640},
                                "TRELLIS_FF": {"used": 500, "available": 83640},
                                "DP16KD": {"used": 9, "available": 208}}}
    monkeypatch.setattr(mxhw.build, "build", fake_build)
    monkeypatch.setattr(ppa.runner, "tool_versions", lambda: dict(FAKE_VERSIONS))
    r = ppa.run_soc(tmp_path)
    assert calls == ["ulx3s"] and r["cached"] == {"soc": False}
    fig = ppa.figures([r])
    assert fig == {"soc_ulx3s_fmax_mhz": 81.5, "soc_ulx3s_luts": 1200, "soc_ulx3s_ffs": 500,
                   "soc_ulx3s_dsps": 0, "soc_ulx3s_brams": 9}
    r2 = ppa.run_soc(tmp_path)
    assert calls == ["ulx3s"] and r2["cached"] == {"soc": True}
    assert ppa.figures([r2]) == fig


# ---- figures and the command line ------------------------------------------------------

def test_figures_keys_and_derived():
    fig = ppa.figures([fake_result("array_mxfp4_4x4", luts=2000, fmax=50.0),
                       fake_result("align_mxfp4")])
    for n in ("array_mxfp4_4x4", "align_mxfp4"):
        for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "ccu2c", "xc7_luts",
                  "xc7_ffs", "xc7_dsps", "xc7_brams", "xc7_carry4"):
            assert f"{n}_{k}" in fig
    # 16 MACs per cycle, 2k LUTs, 50 MHz
    assert fig["array_mxfp4_4x4_macs_per_cycle"] == 16
    assert fig["array_mxfp4_4x4_macs_per_cycle_per_klut"] == 8.0
    assert fig["array_mxfp4_4x4_luts_per_mac"] == 125.0
    assert fig["array_mxfp4_4x4_peak_gmac_s"] == 0.8
    assert not any(k.startswith("align_mxfp4_mac") or k.startswith("align_mxfp4_peak")
                   for k in fig)


def test_report_files(tmp_path):
    results = [fake_result(f"array_{f}_{n}x{n}", luts=1000 * n * n, fmax=100.0 - n)
               for f in ppa.ARRAY_FORMATS for n in ppa.ARRAY_SIZES]
    results += [fake_result("dot_mxfp4"), fake_result("mul_fp4_e2m1_x_fp4_e2m1")]
    cfg = ppa.run_config_info({"yosys": "Yosys X", "nextpnr_ecp5": "nextpnr Y"})
    paths = ppa.write_report(results, tmp_path / "rep", cfg)
    names = sorted(p.name for p in paths)
    assert names == ["area_vs_format.png", "fmax_vs_array_size.png", "gmacs_per_klut.png",
                     "ppa.md"]
    for p in paths:
        assert p.stat().st_size > 1000 or p.suffix == ".md"
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "rep" / "ppa.md").read_text()
    assert "Yosys X" in md and ppa.ECP5_PART in md and ppa.XC7_PART in md
    assert md.count("\n| array_") == len(ppa.ARRAY_FORMATS) * len(ppa.ARRAY_SIZES)


@pytest.mark.toolchain
def test_cli_end_to_end(tmp_path):
    """The smallest configuration through the real tools, as ``--quick`` runs them."""
    import subprocess
    import sys
    out = tmp_path / "ppa.json"
    r = subprocess.run([sys.executable, "-m", "mxhw.bench", "ppa", "--only", f"^{TINY}$",
                        "-j", "1", "--cache", str(tmp_path / "cache"), "--json", str(out),
                        "--report", str(tmp_path / "rep")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(out.read_text())
    cfg = data.pop("config")
    assert cfg["yosys"].startswith("Yosys 0.64") and "nextpnr" in cfg["nextpnr_ecp5"]
    assert cfg["ecp5_part"] == ppa.ECP5_PART and cfg["xc7_part"] == ppa.XC7_PART
    for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "xc7_luts", "xc7_ffs",
              "xc7_dsps", "xc7_brams", "macs_per_cycle", "peak_gmac_s"):
        v = data[f"{TINY}_{k}"]
        assert isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, k
    assert data[f"{TINY}_fmax_mhz"] > 0
    assert TINY in r.stdout and (tmp_path / "rep" / "ppa.md").exists()
    # a second run is served from the cache
    r = subprocess.run([sys.executable, "-m", "mxhw.bench", "ppa", "--only", f"^{TINY}$",
                        "-j", "1", "--cache", str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and f"{TINY}: cached" in r.stdout


def test_dsp_array_also_measured_lut_only(tmp_path, monkeypatch):
    """An array whose ECP5 netlist has DSP blocks is synthesised LUT-only too (no place and
    route for it); an array without DSPs is not; the figure and the table column follow."""
    with_dsps = FakeTools(cells={"ecp5": (("LUT4", 40), ("MULT18X18D", 4)),
                                 "ecp5_nodsp": (("LUT4", 400), ("TRELLIS_FF", 9))}, fmax=99.0)
    without = FakeTools(luts=50, fmax=99.0)
    calls = []

    def fake(cmd, cwd, log, label):
        calls.append(label)
        (without if "mxfp4" in str(cwd) else with_dsps)(cmd, cwd, log, label)
    use_tools(monkeypatch, fake)
    dsp = ppa.run_task("array_mxint8_2x2", tmp_path, False)
    assert calls == ["yosys synth (ecp5)", "nextpnr-ecp5", "yosys synth (xc7)",
                     "yosys synth (ecp5_nodsp)"]
    assert dsp["ecp5"]["dsps"] == 4 and dsp["ecp5_nodsp"]["luts"] == 400
    assert dsp["cached"] == {"ecp5": False, "xc7": False, "ecp5_nodsp": False}
    calls.clear()
    nodsp = ppa.run_task("array_mxfp4_2x2", tmp_path, False)
    assert calls == ["yosys synth (ecp5)", "nextpnr-ecp5", "yosys synth (xc7)"]
    assert "ecp5_nodsp" not in nodsp
    fig = ppa.figures([dsp, nodsp])
    assert fig["array_mxint8_2x2_nodsp_luts"] == 400
    assert "array_mxfp4_2x2_nodsp_luts" not in fig
    rows = ppa.table_rows([dsp, nodsp])
    col = ppa.HEADERS.index("LUT, no DSP")
    assert rows[0][col] == "400" and rows[1][col] == "-"
    calls.clear()
    assert ppa.run_task("array_mxint8_2x2", tmp_path, False)["cached"] == \
        {"ecp5": True, "xc7": True, "ecp5_nodsp": True}
    assert calls == []


def test_synth_only_labelled(tmp_path, monkeypatch):
    """``pnr=False`` (``--synth-only``): ECP5 synthesis alone, no nextpnr, no xc7; the
    record and the figures say so, no Fmax is made up, and it has its own cache key."""
    fake = FakeTools()
    use_tools(monkeypatch, fake)
    r = ppa.run_task(TINY, tmp_path, False, pnr=False)
    assert fake.runs == ["yosys synth (ecp5)"] and "xc7" not in r
    assert r["ecp5"]["synth_only"] is True and "fmax_mhz" not in r["ecp5"]
    fig = ppa.figures([r])
    assert fig[f"{TINY}_synth_only"] == 1 and fig[f"{TINY}_luts"] == 40
    assert f"{TINY}_fmax_mhz" not in fig and f"{TINY}_peak_gmac_s" not in fig
    assert ppa.table_rows([r])[0][5] == "synth"
    full = ppa.run_config(TINY, tmp_path, targets=("ecp5",))     # placed: another key
    assert fake.runs[1:] == ["yosys synth (ecp5)", "nextpnr-ecp5"]
    assert "synth_only" not in full["ecp5"] and full["ecp5"]["fmax_mhz"] == 123.46
    with pytest.raises(ValueError, match="--synth-only does not apply to the SoC"):
        ppa.run_task(ppa.SOC, tmp_path, False, pnr=False)


def test_cache_shared_by_rtl(tmp_path, monkeypatch):
    """Configurations of one circuit (a scalable array's modes) share one tool run: the
    cache is keyed by the RTL, not the name."""
    fake = FakeTools()
    use_tools(monkeypatch, fake)
    a, b = (ppa.Config(f"tiny_{n}", "mul", ppa.CONFIGS[TINY].make, 1, {}) for n in "ab")
    ra = ppa.run_config(a, tmp_path, targets=("ecp5",), pnr=False)
    rb = ppa.run_config(b, tmp_path, targets=("ecp5",), pnr=False)
    assert fake.runs == ["yosys synth (ecp5)"] and rb["cached"] == {"ecp5": True}
    assert rb["ecp5"] == ra["ecp5"]


def test_cli_synth_only_soc(capsys):
    with pytest.raises(SystemExit) as e:
        ppa.main(["--synth-only"])
    assert e.value.code == 2
    assert "--synth-only does not apply to the SoC" in capsys.readouterr().err
