"""``python -m mxhw.build``: real builds with the open toolchain (slow) and CLI errors."""

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
    ("dataflow=ws", "dataflow must be one of output_stationary, weight_stationary, not 'ws'"),
    ("depth=8", "depth applies to the weight-stationary dataflow only"),
])
def test_bad_config(item, msg):
    with pytest.raises(SystemExit, match=msg):
        main(["--board", "ulx3s", "--config", item])


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
