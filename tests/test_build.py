"""``python -m mxhw.build``: real builds with the open toolchain (slow), CLI errors, and
:mod:`mxhw.toolchain` (running tools, reading their reports)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mxhw.build import main


def run_build(*args):
    return subprocess.run([sys.executable, "-m", "mxhw.build", *args], capture_output=True,
                          text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.toolchain
@pytest.mark.parametrize("board, ext", [("ulx3s", "bit"), ("icebreaker", "bin")])
def test_open_flow_bitstream(tmp_path, board, ext):
    r = run_build("--board", board, "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads((tmp_path / "report.json").read_text())
    bit = Path(rep["bitstream"])
    assert bit == tmp_path / f"mxhw_soc.{ext}" and bit.stat().st_size > 10_000
    assert rep["fmax"], "nextpnr reported no clock"
    for clk, v in rep["fmax"].items():
        # nextpnr holds the clock period in whole picoseconds: 150 MHz is 6666 ps, which
        # it reports as a 150.01 MHz constraint
        assert v["constraint_mhz"] == pytest.approx(rep["requested_mhz"], rel=2e-4), clk
        assert v["achieved_mhz"] >= v["constraint_mhz"], clk
    assert rep["timing_met"] is True
    assert rep["utilization"]
    assert "timing met" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "build.log").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.toolchain
def test_arty_without_vivado(tmp_path, monkeypatch):
    env_path = ":".join(p for p in __import__("os").environ["PATH"].split(":")
                        if not (Path(p) / "vivado").exists())
    monkeypatch.setenv("PATH", env_path)
    monkeypatch.delenv("VIVADO", raising=False)
    r = run_build("--board", "arty", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ["mxhw_soc.v", "mxhw_soc.xdc", "mxhw_soc.tcl", "build_mxhw_soc.sh"]:
        assert (tmp_path / f).stat().st_size > 0, f
    rep = json.loads((tmp_path / "report.json").read_text())
    cells = rep["open_synthesis_cells"]
    assert cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) >= 1
    assert sum(v for k, v in cells.items() if k.startswith("LUT")) > 100
    assert cells.get("MMCME2_BASE") == 1 and cells.get("BUFG", 0) >= 1
    xdc = (tmp_path / "mxhw_soc.xdc").read_text()
    assert "create_clock" in xdc and "10.0" in xdc   # the MMCM output, 100 MHz
    assert "build_mxhw_soc.sh" in r.stdout and "Vivado" in r.stdout


def test_list_boards(capsys):
    assert main(["--list-boards"]) == 0
    out = capsys.readouterr().out
    for b in ["ulx3s", "icebreaker", "arty", "arty-100t"]:
        assert b in out


@pytest.mark.parametrize("args, msg", [
    (["--board", "de10"], "unknown board 'de10'; boards: ulx3s, icebreaker, arty, arty-100t"),
    ([], "--board is required"),
])
def test_cli_errors(capsys, args, msg):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


@pytest.mark.parametrize("item, msg", [
    ("nope=1", "--config takes KEY=VALUE with KEY one of clk_hz, baud"),
    ("baud=fast", "--config baud needs an integer, not 'fast'"),
    ("scratch_words=100", "scratch_words must be a power of two, not 100"),
    ("dataflow=ws", "dataflow must be one of 'output_stationary', 'weight_stationary', not 'ws'"),
    ("depth=8", "depth applies to the weight-stationary dataflow only"),
])
def test_bad_config(item, msg):
    with pytest.raises(SystemExit, match=msg):
        main(["--board", "ulx3s", "--config", item])


def test_bad_format_is_one_line():
    """A format the SoC does not take: one line on stderr, no traceback, exit code 1."""
    r = run_build("--board", "ulx3s", "--config", "fmt_a=mxfp5")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("mxhw.build: ") and "'mxfp5'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_config_format_alias():
    """``--config fmt_a=mxfp4``: golden's alias, resolved to its name by SoCConfig."""
    from mxhw import golden
    from mxhw.boards import get_board
    from mxhw.build import _parse_config
    cfg = _parse_config(["fmt_a=mxfp4", "fmt_b=mxint8"], get_board("ulx3s").config)
    assert (cfg.fmt_a, cfg.fmt_b) == (golden.formats.get("mxfp4").name, "mxint8")


def test_config_strings_and_ints():
    from mxhw.boards import get_board
    from mxhw.build import _parse_config
    cfg = _parse_config(["fmt_a=mxint8", "rows=0x3", "cols=2"], get_board("ulx3s").config)
    assert (cfg.fmt_a, cfg.rows, cfg.cols) == ("mxint8", 3, 2)


@pytest.mark.parametrize("item, msg", [
    ("clk_hz=60000000", "clk_hz must be one of the PLL's frequencies 25000000, "),
])
def test_ulx3s_pll_frequency_checked(item, msg):
    with pytest.raises(ValueError, match=msg):
        from mxhw.build import build
        from mxhw.boards import get_board
        import dataclasses
        build("ulx3s", config=dataclasses.replace(get_board("ulx3s").config, clk_hz=60_000_000))


def test_arty_mmcm_frequency_checked(tmp_path):
    import dataclasses
    from mxhw.build import build
    from mxhw.boards import get_board
    cfg = dataclasses.replace(get_board("arty").config, clk_hz=166_666_667)
    with pytest.raises(ValueError, match=r"no exact MMCM setting makes 166666667 Hz from "
                                         r"100000000 Hz \(VCO 600-1200 MHz\)"):
        build("arty", out=tmp_path, config=cfg)


def test_config_dataflow():
    from mxhw.boards import get_board
    from mxhw.build import _parse_config
    base = get_board("ulx3s").config
    cfg = _parse_config(["depth=8", "dataflow=weight_stationary"], base)
    assert (cfg.dataflow, cfg.depth, cfg.tile_depth) == ("weight_stationary", 8, 8)
    assert (cfg.rows, cfg.cols, cfg.clk_hz) == (base.rows, base.cols, base.clk_hz)
    assert _parse_config([], base).dataflow == "output_stationary"


# ---- mxhw.toolchain --------------------------------------------------------------------

STAT_LOG = """
=== first ===
       3 cells
       3   LUT4

=== design ===

       17 wires
       9 cells
       2   $scopeinfo
       5   LUT4
       2   TRELLIS_FF

  Chip area: 0
"""


def test_yosys_stat_cells_reads_the_last_block():
    from mxhw.toolchain import yosys_stat_cells
    assert yosys_stat_cells(STAT_LOG) == {"LUT4": 5, "TRELLIS_FF": 2}


def test_parse_nextpnr_report(tmp_path):
    from mxhw.toolchain import parse_nextpnr_report
    rep = {"fmax": {"clk": {"achieved": 151.234, "constraint": 150.0}},
           "utilization": {"TRELLIS_FF": {"used": 10, "available": 100},
                           "DP16KD": {"used": 0, "available": 208}},
           "critical_paths": [{"from": "clk", "to": "clk", "path": [
               {"type": "clk-to-q", "from": {"cell": "a"}},
               {"type": "logic", "from": {"cell": "b"}},
               {"type": "routing", "from": {"cell": "c"}}]}]}
    (tmp_path / "r.json").write_text(json.dumps(rep))
    fmax, util, crit = parse_nextpnr_report(tmp_path / "r.json")
    assert fmax == {"clk": {"achieved_mhz": 151.23, "constraint_mhz": 150.0}}
    assert util == {"TRELLIS_FF": {"used": 10, "available": 100}}
    assert crit == [{"from": "clk", "to": "clk", "cells": ["b"]}]


def test_run_logged(tmp_path, capsys):
    import os
    from mxhw.toolchain import ToolError, run_logged
    log = tmp_path / "tool.log"
    run_logged(["sh", "-c", "echo hello; echo made > out.txt"], tmp_path, dict(os.environ),
               log, "greeting", quiet=True)
    assert (tmp_path / "out.txt").read_text() == "made\n"     # ran in the working folder
    assert "hello" in log.read_text() and capsys.readouterr().out == ""
    with pytest.raises(ToolError, match=r"(?s)failing failed \(exit code 3\); last lines "
                                        r"of .*tool.log:.*boom"):
        run_logged(["sh", "-c", "echo boom; exit 3"], tmp_path, dict(os.environ), log,
                   "failing")
    assert "hello" in log.read_text(), "the log is appended to"
    out = capsys.readouterr().out
    assert "failing ..." in out


def test_missing_tool(monkeypatch):
    from mxhw.build import BuildError
    from mxhw.toolchain import ToolError, find_tool
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolError, match=r"yowasp-no-such-tool not found: install the open "
                                        r"toolchain"):
        find_tool("yowasp-no-such-tool")
    assert BuildError is ToolError


def test_tool_version_skips_the_first_run_notice(tmp_path, monkeypatch):
    """On a fresh YoWASP cache a tool first says it is preparing: that is not its version
    (the PPA cache keys hold the versions)."""
    from mxhw.toolchain import tool_version
    tool = tmp_path / "yowasp-fake"
    tool.write_text("#!/bin/sh\necho 'Preparing to run yowasp-fake. This might take a "
                    "while...' >&2\necho 'fake 1.2 (git sha1 abc)' >&2\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tool_version("yowasp-fake") == "fake 1.2 (git sha1 abc)"


@pytest.mark.parametrize("board, hz, msg", [
    ("icebreaker", 24_000_000, r"config.clk_hz \(24000000\) must be the icebreaker clock "
                               r"\(12000000\): this board has no PLL stage"),
    ("ulx3s", 150_500_000, r"clk_hz must be one of the PLL's frequencies 25000000, "),
    ("arty", 166_666_667, r"no exact MMCM setting makes 166666667 Hz"),
])
def test_board_check_clock(board, hz, msg):
    from mxhw.boards import get_board
    b = get_board(board)
    b.check_clock(b.clk_hz)                     # the board's own clock is fine
    with pytest.raises(ValueError, match=msg):
        b.check_clock(hz)
